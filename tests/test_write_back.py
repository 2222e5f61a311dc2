"""write_many, WriteReport and load_write_report against a real WireMock (DESIGN §7).

Every count is the server's: the request journal says what was sent, not the client.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.http_contract_support import (
    UUID4,
    hang_guard,
    header,
    json_response,
    make_config,
    sequence,
)
from tools.wiremock_server import WireMock
from utils import _run_control as run_control, run_stats
from utils.api_factory import (
    TxoRestAPI,
    WriteReport,
    WriteRequest,
    WriteResult,
    create_rest_api,
    load_write_report,
)
from utils.exceptions import (
    ApiOperationError,
    FileOperationError,
    PartialWriteError,
    ValidationError,
)

pytestmark = pytest.mark.usefixtures(hang_guard.__name__)

ETAG = 'W/"JzE5OzEyMzQ1Njc4OTsxOyc="'
BATCH = "/api/$batch"


def client_for(wm: WireMock, behavior: dict[str, Any] | None = None, **extra: Any) -> TxoRestAPI:
    return create_rest_api(make_config(f"{wm.base_url}/api", behavior, **extra))


def odata_error(status: int, message: str, **headers: str) -> dict[str, Any]:
    return json_response({"error": {"code": "BadRequest", "message": message}}, status, **headers)


def stub(wm: WireMock, method: str, path: str, response: dict[str, Any], **more: Any) -> None:
    wm.stub({"request": {"method": method, "urlPath": path, **more}, "response": response})


def rows(report: WriteReport) -> list[tuple[Any, ...]]:
    """``(key, status, http_status, attempts)`` per result, in order."""
    return [(r.key, r.status, r.http_status, r.attempts) for r in report.results]


@pytest.fixture
def dry_run_off() -> Iterator[None]:
    run_control.reset()
    yield
    run_control.reset()


# -- one request per record ----------------------------------------------------------------
def test_every_outcome_is_accounted_for_in_input_order(wiremock: WireMock) -> None:
    stub(wiremock, "PATCH", "/api/customers(1)", json_response({"id": 1, "blocked": "All"}))
    stub(wiremock, "PATCH", "/api/customers(2)", odata_error(400, "Blocked must be All."))
    stub(
        wiremock,
        "PATCH",
        "/api/customers(3)",
        odata_error(412, "Another user has already changed the record."),
    )
    sequence(
        wiremock,
        "PATCH",
        "/api/customers(4)",
        [{"status": 429, "headers": {"Retry-After": "0.05"}}, {"status": 204}],
    )
    stub(wiremock, "PATCH", "/api/customers(5)", odata_error(500, "Deadlock."))
    items = [
        WriteRequest(
            f"customers({n})", {"blocked": "All"}, key=f"C{n}", etag=ETAG if n == 3 else None
        )
        for n in range(1, 6)
    ]

    with client_for(wiremock) as api:
        report = api.write_many("PATCH", items, max_workers=3)

    assert rows(report) == [
        ("C1", "ok", 200, 1),
        ("C2", "failed", 400, 1),
        ("C3", "failed", 412, 1),
        ("C4", "ok", 204, 2),
        ("C5", "failed", 500, 1),
    ]
    ok, bad, changed, _, deadlock = report.results
    assert ok.response == {"id": 1, "blocked": "All"}
    assert bad.error == "HTTP 400 Bad Request. The server said: Blocked must be All."
    assert changed.error is not None and "changed since it was read" in changed.error
    assert "Another user has already changed the record." in changed.error
    assert deadlock.error is not None and "not retried" in deadlock.error
    assert "Deadlock." in deadlock.error
    assert report.counts == {"ok": 2, "failed": 3}
    assert report.counts["not-sent"] == 0
    assert [r.key for r in report.failed] == ["C2", "C3", "C5"]
    assert report.not_sent == []
    per_path = {n: wiremock.count("PATCH", f"/api/customers({n})") for n in range(1, 6)}
    assert per_path == {1: 1, 2: 1, 3: 1, 4: 2, 5: 1}
    sent = wiremock.find("PATCH", "/api/customers(3)")[0]
    assert header(sent, "If-Match") == ETAG
    assert json.loads(sent["body"]) == {"blocked": "All"}
    assert report.to_records()[1] == {
        "key": "C2",
        "method": "PATCH",
        "path": "customers(2)",
        "status": "failed",
        "http_status": 400,
        "attempts": 1,
        "error": "HTTP 400 Bad Request. The server said: Blocked must be All.",
    }


@pytest.mark.parametrize(
    ("method", "item", "answers", "status", "attempts"),
    [
        ("PATCH", WriteRequest("r", {"a": 1}), [500, 200], "failed", 1),
        ("PATCH", WriteRequest("r", {"a": 1}, etag=ETAG), [500, 200], "ok", 2),
        ("PATCH", WriteRequest("r", {"a": 1}, headers={"if-match": "*"}), [502, 200], "ok", 2),
        ("PATCH", WriteRequest("r", {"a": 1}), [429, 200], "ok", 2),
        ("PATCH", WriteRequest("r", {"a": 1}, etag=ETAG), [500], "failed", 3),
        ("PUT", WriteRequest("r", {"a": 1}), [503, 504, 200], "ok", 3),
        ("DELETE", WriteRequest("r"), [500, 204], "ok", 2),
        ("POST", WriteRequest("r", {"a": 1}), [500, 201], "failed", 1),
        ("POST", WriteRequest("r", {"a": 1}), [504, 201], "failed", 1),
        (
            "POST",
            WriteRequest("r", {"a": 1}, headers={"Idempotency-Key": "k-1"}),
            [500, 201],
            "ok",
            2,
        ),
    ],
)
def test_records_are_retried_as_their_idempotency_allows(
    wiremock: WireMock,
    method: str,
    item: WriteRequest,
    answers: list[int],
    status: str,
    attempts: int,
) -> None:
    sequence(wiremock, method, "/api/r", [{"status": s} for s in answers])

    with client_for(wiremock) as api:  # max-retries 2
        (result,) = api.write_many(method, [item]).results

    assert (result.status, result.attempts) == (status, attempts)
    assert wiremock.count(method, "/api/r") == attempts


def test_idempotency_keys_give_each_post_its_own_key_kept_across_retries(
    wiremock: WireMock,
) -> None:
    for n in (1, 2):
        sequence(wiremock, "POST", f"/api/orders/{n}", [{"status": 500}, {"status": 201}])

    with client_for(wiremock, {"retry-strategy": {"idempotency-keys": True}}) as api:
        report = api.write_many("POST", [(f"orders/{n}", {"n": n}) for n in (1, 2)])

    assert rows(report) == [("orders/1", "ok", 201, 2), ("orders/2", "ok", 201, 2)]
    keys = {
        n: [header(e, "Idempotency-Key") for e in wiremock.find("POST", f"/api/orders/{n}")]
        for n in (1, 2)
    }
    assert all(UUID4.match(str(k[0])) for k in keys.values())
    assert keys[1][0] == keys[1][1] and keys[2][0] == keys[2][1]  # same key on the retry
    assert keys[1][0] != keys[2][0]  # a fresh key per record


def test_breaker_opening_mid_way_leaves_the_rest_not_sent(wiremock: WireMock) -> None:
    stub(wiremock, "PATCH", "/api/items/1", {"status": 204})
    wiremock.stub(
        {
            "request": {"method": "PATCH", "urlPathPattern": "/api/items/[2-4]"},
            "response": {"status": 500},
        }
    )
    stub(wiremock, "PATCH", "/api/items/5", {"status": 204})
    behavior = {"circuit-breaker": {"enabled": True, "failure-threshold": 3, "timeout-seconds": 30}}

    with client_for(wiremock, behavior) as api:
        report = api.write_many(
            "PATCH", [(f"items/{n}", {"n": n}) for n in range(1, 9)], max_workers=1
        )

    assert [r.status for r in report.results] == ["ok"] + ["failed"] * 3 + ["not-sent"] * 4
    assert all(r.attempts == 0 and r.http_status is None for r in report.not_sent)
    assert all("circuit breaker" in str(r.error) for r in report.not_sent)
    assert wiremock.count("PATCH") == 4
    assert run_stats.get(run_stats.BREAKER_OPENS) >= 1


def test_a_token_that_cannot_be_refreshed_leaves_the_rest_not_sent(wiremock: WireMock) -> None:
    stub(wiremock, "PATCH", "/api/items/1", {"status": 204})
    stub(wiremock, "PATCH", "/api/items/2", odata_error(401, "Token expired."))

    with client_for(wiremock) as api:  # a given token, no client credentials
        report = api.write_many("PATCH", [(f"items/{n}", {}) for n in range(1, 5)], max_workers=1)

    assert rows(report)[:2] == [("items/1", "ok", 204, 1), ("items/2", "failed", 401, 1)]
    assert [r.status for r in report.results[2:]] == ["not-sent", "not-sent"]
    assert "could not be refreshed" in str(report.results[2].error)
    assert wiremock.count("PATCH") == 2


def test_a_record_whose_body_has_no_json_form_fails_alone(wiremock: WireMock) -> None:
    stub(wiremock, "PUT", "/api/ok", {"status": 204})

    with client_for(wiremock) as api:
        report = api.write_many("PUT", [("bad", {"when": object()}), ("ok", {"a": 1})])

    assert rows(report) == [("bad", "failed", None, 0), ("ok", "ok", 204, 1)]
    assert wiremock.count("PUT") == 1


def test_a_secret_in_an_error_never_reaches_the_report(wiremock: WireMock, root: Path) -> None:
    stub(
        wiremock, "PUT", "/api/a", odata_error(400, "bad header Authorization: Bearer abc.def.ghi")
    )

    with client_for(wiremock) as api:
        report = api.write_many(
            "PUT", [("a", {"when": object()}), ("a", {})], report=("output", "r.csv")
        )

    saved = (root / "output" / "r.csv").read_text()
    assert "abc.def.ghi" not in saved and "test-token-4f1c9a77e2" not in saved
    assert "[REDACTED]" in str(report.results[1].error)


def test_a_202_is_polled_and_counts_one_attempt(wiremock: WireMock) -> None:
    stub(wiremock, "POST", "/api/jobs", json_response({}, 202, Location="jobs/7"))
    stub(wiremock, "GET", "/api/jobs/7", json_response({"done": True}))

    with client_for(wiremock) as api:
        (result,) = api.write_many("POST", [("jobs", {"go": 1})]).results

    assert (result.status, result.attempts, result.response) == ("ok", 1, {"done": True})


@pytest.mark.parametrize(
    ("method", "items", "batch_size"),
    [
        ("GET", [("a", None)], None),
        ("PATCH", [("a", None), "b"], None),
        ("PATCH", [("a", None), ("b",)], None),
        ("PATCH", [WriteRequest("a")], 0),
    ],
)
def test_bad_arguments_send_nothing(
    wiremock: WireMock, method: str, items: list[Any], batch_size: int | None
) -> None:
    with client_for(wiremock) as api, pytest.raises(ValidationError):
        api.write_many(method, items, batch=batch_size is not None, batch_size=batch_size)
    assert wiremock.requests() == []


@pytest.mark.parametrize(
    ("report", "error"),
    [
        (("output", "writes.txt"), ValidationError),
        (("output", "writes"), ValidationError),
        ("writes.csv", ValidationError),
        (("output", "../escape.csv"), FileOperationError),
        (("nowhere", "writes.csv"), FileOperationError),
    ],
)
def test_a_report_that_could_not_be_saved_is_refused_before_anything_is_sent(
    wiremock: WireMock, root: Path, report: Any, error: type[Exception]
) -> None:
    with client_for(wiremock) as api, pytest.raises(error):
        api.write_many("PUT", [("a", {})], report=report)
    assert wiremock.requests() == []


def test_write_request_needs_a_path_and_keeps_its_key_as_text() -> None:
    with pytest.raises(ValidationError):
        WriteRequest("")
    assert WriteRequest("customers(7)").key == "customers(7)"
    assert WriteRequest("customers(7)", key=7).key == "7"
    assert WriteRequest("c", etag="e", headers={"IF-MATCH": "old"}).request_headers() == {
        "If-Match": "e"
    }


# -- $batch --------------------------------------------------------------------------------
def batch_answer(*responses: dict[str, Any], **headers: str) -> dict[str, Any]:
    return json_response({"responses": list(responses)}, **headers)


def answer(id_: str, status: int, body: Any = None, **headers: str) -> dict[str, Any]:
    out: dict[str, Any] = {"id": id_, "status": status, "headers": headers}
    if body is not None:
        out["body"] = body
    return out


def stub_envelope(wm: WireMock, holding_id: str, response: dict[str, Any], priority: int) -> None:
    """Answer an envelope that holds the record with id ``holding_id`` with ``response``."""
    wm.stub(
        {
            "priority": priority,
            "request": {
                "method": "POST",
                "urlPath": BATCH,
                "bodyPatterns": [{"matchesJsonPath": f"$.requests[?(@.id == '{holding_id}')]"}],
            },
            "response": response,
        }
    )


def envelope_ids(wm: WireMock) -> list[list[str]]:
    return [[r["id"] for r in json.loads(e["body"])["requests"]] for e in wm.find("POST", BATCH)]


def test_batch_answers_out_of_order_and_a_throttled_record_goes_in_a_later_envelope(
    wiremock: WireMock,
) -> None:
    # envelope 1 holds records 1-3, answered 3, 1, 2; record 2 is throttled (Retry-After 1)
    stub_envelope(
        wiremock,
        "1",
        batch_answer(
            answer("3", 200, {"id": 3}),
            answer("1", 204),
            answer("2", 429, {"error": {"message": "Too many."}}, **{"Retry-After": "1"}),
        ),
        priority=1,
    )
    # envelope 2 holds records 4-5, answered 5 (a 412), then 4
    stub_envelope(
        wiremock,
        "4",
        batch_answer(
            answer("5", 412, {"error": {"code": "Conflict", "message": "Changed by Ann."}}),
            answer("4", 200, {"id": 4}),
        ),
        priority=1,
    )
    # the later envelope holds record 2 alone
    stub_envelope(wiremock, "2", batch_answer(answer("2", 200, {"id": 2})), priority=2)
    items = [
        WriteRequest(f"customers({n})", {"blocked": "All"}, key=f"C{n}", etag=f'W/"{n}"')
        for n in range(1, 6)
    ]

    with client_for(wiremock) as api:
        report = api.write_many("PATCH", items, batch=True, batch_size=3)

    assert rows(report) == [
        ("C1", "ok", 204, 1),
        ("C2", "ok", 200, 2),
        ("C3", "ok", 200, 1),
        ("C4", "ok", 200, 1),
        ("C5", "failed", 412, 1),
    ]
    assert report.results[2].response == {"id": 3}
    assert "changed since it was read" in str(report.results[4].error)
    assert "Changed by Ann." in str(report.results[4].error)
    assert envelope_ids(wiremock) == [["1", "2", "3"], ["4", "5"], ["2"]]
    first, _, later = wiremock.find("POST", BATCH)
    assert later["loggedDate"] - first["loggedDate"] >= 1000  # after the Retry-After
    assert json.loads(first["body"])["requests"][0] == {
        "id": "1",
        "method": "PATCH",
        "url": "customers(1)",
        "headers": {"If-Match": 'W/"1"', "Content-Type": "application/json"},
        "body": {"blocked": "All"},
    }
    assert header(first, "Authorization") == "Bearer test-token-4f1c9a77e2"
    assert wiremock.count("PATCH") == 0


def test_batch_size_defaults_to_update_batch_size(wiremock: WireMock) -> None:
    wiremock.stub(
        {
            "request": {"method": "POST", "urlPath": BATCH},
            "response": {
                "status": 200,
                "headers": {"Content-Type": "application/json"},
                "body": "{\"responses\": [{{#each (jsonPath request.body '$.requests') as |r|}}"
                '{{#unless @first}},{{/unless}}{"id": "{{r.id}}", "status": 204}{{/each}}]}',
                "transformers": ["response-template"],
            },
        }
    )
    behavior = {"batch-handling": {"read-batch-size": 10, "update-batch-size": 4}}

    with client_for(wiremock, behavior) as api:
        report = api.write_many("DELETE", [(f"x/{n}", None) for n in range(10)], batch=True)

    assert report.counts == {"ok": 10}
    assert [len(ids) for ids in envelope_ids(wiremock)] == [4, 4, 2]
    entry = json.loads(wiremock.find("POST", BATCH)[0]["body"])["requests"][0]
    assert entry == {"id": "1", "method": "DELETE", "url": "x/0", "headers": {}}


@pytest.mark.parametrize(
    ("envelope", "statuses", "sent"),
    [
        # a 500 to the whole envelope: the PATCH with an ETag is re-sent, the other is not
        ({"status": 500}, ["ok", "failed"], 2),
        # a throttled envelope: every record goes again, after the Retry-After
        ({"status": 429, "headers": {"Retry-After": "0.2"}}, ["ok", "ok"], 2),
        # an answer that is not a batch answer: like a broken connection
        (json_response({"unexpected": True}), ["ok", "failed"], 2),
        # a timeout: the record with an ETag is re-sent
        ({"status": 200, "fixedDelayMilliseconds": 1500}, ["ok", "failed"], 2),
    ],
)
def test_a_failed_envelope_is_judged_record_by_record(
    wiremock: WireMock, envelope: dict[str, Any], statuses: list[str], sent: int
) -> None:
    wiremock.stub(
        {
            "scenarioName": "envelope",
            "requiredScenarioState": "Started",
            "newScenarioState": "again",
            "request": {"method": "POST", "urlPath": BATCH},
            "response": envelope,
        }
    )
    wiremock.stub(
        {
            "scenarioName": "envelope",
            "requiredScenarioState": "again",
            "request": {"method": "POST", "urlPath": BATCH},
            "response": batch_answer(answer("2", 204), answer("1", 204)),
        }
    )
    items = [WriteRequest("a", {"n": 1}, etag=ETAG), WriteRequest("b", {"n": 2})]

    with client_for(wiremock) as api:
        report = api.write_many("PATCH", items, batch=True)

    assert [r.status for r in report.results] == statuses
    assert wiremock.count("POST", BATCH) == sent
    assert envelope_ids(wiremock)[-1] == (["1", "2"] if statuses == ["ok", "ok"] else ["1"])


def test_a_record_missing_from_the_batch_answer_is_a_failure(wiremock: WireMock) -> None:
    stub(wiremock, "POST", BATCH, batch_answer(answer("1", 204)))

    with client_for(wiremock) as api:
        report = api.write_many("POST", [("a", {}), ("b", {})], batch=True)

    assert rows(report) == [("a", "ok", 204, 1), ("b", "failed", None, 1)]
    assert "no response for it" in str(report.results[1].error)


def test_batched_posts_carry_idempotency_keys_kept_on_re_send(wiremock: WireMock) -> None:
    sequence(
        wiremock,
        "POST",
        BATCH,
        [
            batch_answer(answer("1", 503, None, **{"Retry-After": "0.05"}), answer("2", 201)),
            batch_answer(answer("1", 201)),
        ],
    )

    with client_for(wiremock, {"retry-strategy": {"idempotency-keys": True}}) as api:
        report = api.write_many("POST", [("o", {"n": 1}), ("o", {"n": 2})], batch=True)

    assert rows(report) == [("o", "ok", 201, 2), ("o", "ok", 201, 1)]
    first, second = (json.loads(e["body"])["requests"] for e in wiremock.find("POST", BATCH))
    keys = [r["headers"]["Idempotency-Key"] for r in first]
    assert all(UUID4.match(k) for k in keys) and keys[0] != keys[1]
    assert second[0]["headers"]["Idempotency-Key"] == keys[0]


def test_breaker_opening_in_batch_mode_leaves_the_rest_not_sent(wiremock: WireMock) -> None:
    stub(wiremock, "POST", BATCH, {"status": 502})
    behavior = {"circuit-breaker": {"enabled": True, "failure-threshold": 2, "timeout-seconds": 30}}

    with client_for(wiremock, behavior) as api:
        report = api.write_many(
            "PATCH", [(f"i/{n}", {}) for n in range(6)], batch=True, batch_size=2
        )

    assert [r.status for r in report.results] == ["failed"] * 4 + ["not-sent"] * 2
    assert wiremock.count("POST", BATCH) == 2
    assert all("circuit breaker" in str(r.error) for r in report.not_sent)


# -- dry run -------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["config", "flag"])
def test_dry_run_sends_no_write_and_logs_each(
    wiremock: WireMock, caplog: pytest.LogCaptureFixture, how: str, dry_run_off: None
) -> None:
    stub(wiremock, "GET", "/api/customers", json_response({"value": [{"id": 1}]}))
    extra = {"_dry_run": True} if how == "config" else {}
    if how == "flag":
        run_control.set_dry_run(True)
    caplog.set_level(logging.INFO)

    with client_for(wiremock, **extra) as api:
        assert api.get_all("customers") == [{"id": 1}]  # reads are real
        assert api.post("customers", {"n": 1}) is None
        assert api.put("customers(1)", {"n": 1}) is None
        assert api.patch("customers(1)", {"n": 1}) is None
        assert api.delete("customers(1)", params={"api_key": "k-9"}) is None
        assert api.request("patch", "customers(2)", data={}) is None
        each = api.write_many("PATCH", [("customers(3)", {})], report=None)
        batched = api.write_many("DELETE", [("customers(4)", None)], batch=True)

    assert rows(each) == [("customers(3)", "dry-run", None, 0)]
    assert rows(batched) == [("customers(4)", "dry-run", None, 0)]
    assert [(e["method"], e["url"]) for e in wiremock.requests()] == [("GET", "/api/customers")]
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("DRY RUN")]
    base = f"{wiremock.base_url}/api"
    assert said == [
        f"DRY RUN: would POST {base}/customers",
        f"DRY RUN: would PUT {base}/customers(1)",
        f"DRY RUN: would PATCH {base}/customers(1)",
        f"DRY RUN: would DELETE {base}/customers(1)?api_key=[REDACTED]",
        f"DRY RUN: would PATCH {base}/customers(2)",
        f"DRY RUN: would PATCH {base}/customers(3)",
        f"DRY RUN: would DELETE {base}/customers(4)",
    ]
    assert all(r.levelno == logging.INFO for r in caplog.records if "DRY RUN" in r.getMessage())
    each.raise_for_failures()  # a dry run is no failure


# -- the report ----------------------------------------------------------------------------
@pytest.mark.parametrize("ext", ["json", "jsonl", "csv", "xlsx", "parquet"])
def test_the_report_is_saved_and_reads_back_the_same(
    wiremock: WireMock, root: Path, ext: str
) -> None:
    stub(wiremock, "PATCH", "/api/c/1", json_response({"id": 1}))
    stub(wiremock, "PATCH", "/api/c/2", odata_error(422, 'Field "x" is read-only, ünïcode.'))
    items = [WriteRequest("c/1", {}, key="00123"), WriteRequest("c/2", {}, key="NA")]

    with client_for(wiremock) as api:
        report = api.write_many("PATCH", items, report=("output", f"sub/writes.{ext}"))

    assert report.saved_to == root / "output" / "sub" / f"writes.{ext}"
    back = load_write_report("output", f"sub/writes.{ext}")
    assert back.to_records() == report.to_records()
    assert [r.response for r in back.results] == [None, None]
    assert back.results[0] == WriteResult("00123", "PATCH", "c/1", "ok", 200, 1, None)
    assert [r.key for r in back.failed] == ["NA"]
    assert back.saved_to == report.saved_to


@pytest.mark.parametrize("ext", ["json", "csv", "xlsx", "parquet"])
def test_an_empty_report_reads_back_empty(wiremock: WireMock, root: Path, ext: str) -> None:
    with client_for(wiremock) as api:
        report = api.write_many("PUT", [], report=("output", f"none.{ext}"))
    assert len(report) == 0 and report.counts == {}
    assert len(load_write_report("output", f"none.{ext}")) == 0


def test_a_file_that_is_not_a_report_is_a_validation_error(root: Path) -> None:
    (root / "output").mkdir()
    (root / "output" / "other.csv").write_text("id,name\n1,a\n")
    with pytest.raises(ValidationError, match="not a write report"):
        load_write_report("output", "other.csv")


def test_raise_for_failures_names_the_counts_the_first_failure_and_the_report() -> None:
    report = WriteReport(
        [
            WriteResult("A", "PATCH", "c(1)", "ok", 200, 1),
            WriteResult(
                "B", "PATCH", "c(2)", "failed", 412, 1, "HTTP 412: changed since it was read"
            ),
            WriteResult("C", "PATCH", "c(3)", "not-sent", None, 0, "not sent: the run was stopped"),
        ],
        saved_to=Path("output/w.csv"),
    )
    with pytest.raises(PartialWriteError) as caught:
        report.raise_for_failures()
    err = caught.value
    assert isinstance(err, ApiOperationError)
    assert err.report is report
    assert (err.status_code, err.method) == (412, "PATCH")
    assert "1 of 3 records written, 1 failed, 1 not sent" in err.what_went_wrong
    assert "B: HTTP 412: changed since it was read" in err.what_went_wrong
    assert "output/w.csv" in err.what_went_wrong
    assert "re-run only the failed and not-sent keys" in err.how_to_fix
    WriteReport(report.ok).raise_for_failures()  # all written: nothing raised
