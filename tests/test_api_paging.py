"""Pagination (three next-link styles, caps, loops, origins) and 202 polling, on a real WireMock."""

from __future__ import annotations

import base64
import itertools
import time
from typing import Any

import pytest

from tests.http_contract_support import (
    API_TOKEN,
    TOKEN as CONTRACT_TOKEN,
    always,
    client,
    closed_port,
    contract_config,
    gaps_ms,
    hang_guard,
    header,
    json_response,
    make_config,
    other_origin,
    respond,
    sequence,
)
from tools.wiremock_server import WireMock
from utils import _http_body as http_body, _redaction as redaction
from utils._pagination import extract_records, next_link, parse_link_header
from utils._rest_client import OriginBoundSession, origin_of
from utils.api_factory import ApiManager, TxoRestAPI, create_rest_api
from utils.exceptions import ApiOperationError, ApiTimeoutError, HelpfulError

pytestmark = pytest.mark.usefixtures(hang_guard.__name__)


def stub_page(
    wm: WireMock, query: dict[str, str] | None, response: dict[str, Any], path: str = "/api/items"
) -> None:
    request: dict[str, Any] = {"method": "GET", "urlPath": path}
    if query is not None:
        request["queryParameters"] = {k: {"equalTo": v} for k, v in query.items()}
    else:
        request["queryParameters"] = {"page": {"absent": True}}
    wm.stub({"request": request, "response": response})


# -- pure parsing ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value,expected",
    [
        ('<https://a/p2>; rel="next"', {"next": "https://a/p2"}),
        ("<https://a/p2>; rel=next", {"next": "https://a/p2"}),
        (
            '<https://a/p1>; rel="prev", <https://a/p3>; REL="Next"',
            {"prev": "https://a/p1", "next": "https://a/p3"},
        ),
        (
            '<https://a/p9>; rel="next last"; title="x, y"',
            {"next": "https://a/p9", "last": "https://a/p9"},
        ),
        ('<https://a/q?x=1,2>; type="a"; rel="next"', {"next": "https://a/q?x=1,2"}),
        ('<https://a/m;v=1>; rel="next"', {"next": "https://a/m;v=1"}),
        ('<https://a/p2>; title="a, <b>"; rel="next"', {"next": "https://a/p2"}),
        ("", {}),
        (None, {}),
        ("garbage", {}),
    ],
)
def test_parse_link_header(value: str | None, expected: dict[str, str]) -> None:
    assert parse_link_header(value) == expected


def test_next_link_prefers_odata_and_resolves_relative() -> None:
    page = "https://api.example.com/v2/items?page=1"
    assert (
        next_link({"@odata.nextLink": "items?page=2"}, {}, page)
        == "https://api.example.com/v2/items?page=2"
    )
    assert (
        next_link({"next": "/v2/items?page=3"}, {}, page)
        == "https://api.example.com/v2/items?page=3"
    )
    assert (
        next_link([], {"Link": '</v2/items?page=4>; rel="next"'}, page)
        == "https://api.example.com/v2/items?page=4"
    )
    assert next_link({"value": [], "next": None}, {}, page) is None


@pytest.mark.parametrize("key", ["value", "data", "items", "results"])
def test_records_come_from_each_known_key(key: str) -> None:
    assert extract_records({key: [1, 2], "count": 2}, "u") == [1, 2]


def test_page_without_records_is_an_error() -> None:
    with pytest.raises(ApiOperationError, match="without a list of records"):
        extract_records({"id": 1}, "https://api.example.com/x")


# -- the three styles against WireMock ---------------------------------------------------------
def test_odata_next_link_and_params_only_on_first_request(
    wiremock: WireMock, api: TxoRestAPI
) -> None:
    base = f"{wiremock.base_url}/api/items"
    wiremock.stub(
        {
            "request": {
                "method": "GET",
                "urlPath": "/api/items",
                "queryParameters": {"$top": {"equalTo": "2"}},
            },
            "response": json_response({"value": [1, 2], "@odata.nextLink": f"{base}?$skiptoken=a"}),
        }
    )
    stub_page(
        wiremock,
        {"$skiptoken": "a"},
        json_response({"value": [3, 4], "@odata.nextLink": f"{base}?$skiptoken=b"}),
    )
    stub_page(wiremock, {"$skiptoken": "b"}, json_response({"value": [5]}))
    assert api.get_all("items", params={"$top": 2}) == [1, 2, 3, 4, 5]
    urls = [r["url"] for r in wiremock.find("GET", "/api/items")]
    assert urls == ["/api/items?$top=2", "/api/items?$skiptoken=a", "/api/items?$skiptoken=b"]
    assert all(header(r, "Authorization") == f"Bearer {API_TOKEN}" for r in wiremock.requests())


def test_link_header_pagination(wiremock: WireMock, api: TxoRestAPI) -> None:
    base = f"{wiremock.base_url}/api/items"
    stub_page(
        wiremock,
        None,
        {
            **json_response([{"id": 1}]),
            "headers": {
                "Content-Type": "application/json",
                "Link": f'<{base}?page=9>; rel="last", <{base}?page=2>; REL="Next"',
            },
        },
    )
    stub_page(
        wiremock,
        {"page": "2"},
        {
            **json_response([{"id": 2}]),
            "headers": {
                "Content-Type": "application/json",
                "Link": f"<{base}?page=1>; rel=prev, </api/items?page=3>; rel=next",
            },
        },
    )
    stub_page(
        wiremock,
        {"page": "3"},
        {
            **json_response([{"id": 3}]),
            "headers": {
                "Content-Type": "application/json",
                "Link": f'<{base}?page=1>; rel="first"',
            },
        },
    )
    assert [p for p in api.iter_pages("items")] == [[{"id": 1}], [{"id": 2}], [{"id": 3}]]
    assert wiremock.count("GET", "/api/items") == 3


def test_json_next_pagination_with_data_key(wiremock: WireMock, api: TxoRestAPI) -> None:
    stub_page(wiremock, None, json_response({"data": ["a", "b"], "next": "items?page=2"}))
    stub_page(wiremock, {"page": "2"}, json_response({"data": ["c"], "next": None}))
    assert api.get_all("/items") == ["a", "b", "c"]
    assert wiremock.count("GET", "/api/items") == 2


@pytest.mark.parametrize("key", ["items", "results"])
def test_other_record_keys(wiremock: WireMock, api: TxoRestAPI, key: str) -> None:
    stub_page(wiremock, None, json_response({key: [1], "next": "/api/items?page=2"}))
    stub_page(wiremock, {"page": "2"}, json_response({key: [2]}))
    assert api.get_all("items") == [1, 2]


def test_server_capping_page_size_loses_no_record(wiremock: WireMock, api: TxoRestAPI) -> None:
    base = f"{wiremock.base_url}/api/items"
    total, cap = 100, 20
    for start in range(0, total, cap):
        page: dict[str, Any] = {"value": [{"id": n} for n in range(start, start + cap)]}
        if start + cap < total:
            page["@odata.nextLink"] = f"{base}?page={start + cap}"
        query = {"$top": "100"} if start == 0 else {"page": str(start)}
        wiremock.stub(
            {
                "request": {
                    "method": "GET",
                    "urlPath": "/api/items",
                    "queryParameters": {k: {"equalTo": v} for k, v in query.items()},
                },
                "response": json_response(page),
            }
        )
    records = api.get_all("items", params={"$top": 100})
    assert [r["id"] for r in records] == list(range(total))
    assert wiremock.count("GET", "/api/items") == total // cap


def test_repeated_next_link_is_an_error_not_a_loop(wiremock: WireMock, api: TxoRestAPI) -> None:
    base = f"{wiremock.base_url}/api/items"
    stub_page(wiremock, None, json_response({"value": [1], "@odata.nextLink": f"{base}?page=2"}))
    stub_page(
        wiremock, {"page": "2"}, json_response({"value": [2], "@odata.nextLink": f"{base}?page=2"})
    )
    pages = api.iter_pages("items")
    assert next(pages) == [1]
    with pytest.raises(ApiOperationError, match="Pagination loop"):
        next(pages)
    assert wiremock.count("GET", "/api/items") == 2


def test_iter_pages_streams_one_request_per_page_taken(wiremock: WireMock, api: TxoRestAPI) -> None:
    base = f"{wiremock.base_url}/api/items"
    stub_page(wiremock, None, json_response({"value": [1], "@odata.nextLink": f"{base}?page=2"}))
    stub_page(wiremock, {"page": "2"}, json_response({"value": [2]}))
    pages = api.iter_pages("items")
    assert wiremock.count("GET", "/api/items") == 0
    next(pages)
    assert wiremock.count("GET", "/api/items") == 1
    assert list(pages) == [[2]]


def test_next_link_on_another_origin_gets_no_token(wiremock: WireMock, api: TxoRestAPI) -> None:
    stub_page(
        wiremock,
        None,
        json_response(
            {"value": [1], "@odata.nextLink": f"{other_origin(wiremock)}/api/items?page=2"}
        ),
    )
    stub_page(wiremock, {"page": "2"}, json_response({"value": [2]}))
    assert api.get_all("items") == [1, 2]
    first, second = wiremock.find("GET", "/api/items")
    assert header(first, "Authorization") == f"Bearer {API_TOKEN}"
    assert header(second, "Authorization") is None


def test_progress_is_logged_for_long_runs(
    wiremock: WireMock, api: TxoRestAPI, caplog: pytest.LogCaptureFixture
) -> None:
    for n in range(12):
        body: dict[str, Any] = {"value": [n]}
        if n < 11:
            body["next"] = f"/api/items?page={n + 1}"
        stub_page(wiremock, None if n == 0 else {"page": str(n)}, json_response(body))
    with caplog.at_level("INFO", logger="utils._pagination"):
        assert api.get_all("items") == list(range(12))
    progress = [r.getMessage() for r in caplog.records if "10 pages" in r.getMessage()]
    assert len(progress) == 1 and "10 records" in progress[0]


# -- 202 polling -------------------------------------------------------------------------------
def test_202_relative_location_is_polled_until_done(wiremock: WireMock, api: TxoRestAPI) -> None:
    wiremock.stub(
        {
            "request": {"method": "POST", "urlPath": "/api/v1/jobs"},
            "response": {"status": 202, "headers": {"Location": "jobs/7/status"}},
        }
    )
    sequence(
        wiremock,
        "GET",
        "/api/v1/jobs/7/status",
        [{"status": 202}, {"status": 202}, json_response({"done": True})],
    )
    assert api.post("v1/jobs", {"run": 1}) == {"done": True}
    assert wiremock.count("POST", "/api/v1/jobs") == 1
    polls = wiremock.find("GET", "/api/v1/jobs/7/status")
    assert len(polls) == 3
    assert all(header(p, "Authorization") == f"Bearer {API_TOKEN}" for p in polls)


def test_202_absolute_location_and_retry_after(wiremock: WireMock, api: TxoRestAPI) -> None:
    wiremock.stub(
        {
            "request": {"method": "GET", "urlPath": "/api/export"},
            "response": {
                "status": 202,
                "headers": {"Location": f"{wiremock.base_url}/ops/1", "Retry-After": "1"},
            },
        }
    )
    wiremock.stub(
        {"request": {"method": "GET", "urlPath": "/ops/1"}, "response": json_response({"rows": 3})}
    )
    assert api.get("export") == {"rows": 3}
    (started,) = wiremock.find("GET", "/api/export")
    (poll,) = wiremock.find("GET", "/ops/1")
    assert 1000 <= poll["loggedDate"] - started["loggedDate"] < 1500  # Retry-After, not 50 ms


def test_202_poll_interval_when_no_retry_after(wiremock: WireMock) -> None:
    config = make_config(f"{wiremock.base_url}/api", {"api-timeouts": {"async-poll-interval": 0.3}})
    wiremock.stub(
        {
            "request": {"method": "POST", "urlPath": "/api/jobs"},
            "response": {"status": 202, "headers": {"Location": "/api/jobs/1"}},
        }
    )
    sequence(wiremock, "GET", "/api/jobs/1", [{"status": 202}, json_response({"ok": 1})])
    with create_rest_api(config) as client:
        assert client.post("jobs") == {"ok": 1}
    stamps = [r["loggedDate"] for r in wiremock.requests()]
    assert [b - a >= 300 for a, b in itertools.pairwise(stamps)] == [True, True]


def test_202_gives_up_after_async_max_wait(wiremock: WireMock) -> None:
    config = make_config(
        f"{wiremock.base_url}/api",
        {"api-timeouts": {"async-max-wait": 0.5, "async-poll-interval": 0.1}},
    )
    wiremock.stub(
        {
            "request": {"method": "POST", "urlPath": "/api/jobs"},
            "response": {"status": 202, "headers": {"Location": "/api/jobs/1"}},
        }
    )
    wiremock.stub(
        {"request": {"method": "GET", "urlPath": "/api/jobs/1"}, "response": {"status": 202}}
    )
    started = time.monotonic()
    with create_rest_api(config) as client, pytest.raises(ApiTimeoutError) as caught:
        client.post("jobs")
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 1.5
    assert caught.value.status_code == 202
    assert 3 <= wiremock.count("GET", "/api/jobs/1") <= 6


def test_each_poll_has_its_own_retry_budget(wiremock: WireMock, api: TxoRestAPI) -> None:
    wiremock.stub(
        {
            "request": {"method": "POST", "urlPath": "/api/jobs"},
            "response": {"status": 202, "headers": {"Location": "/api/jobs/1"}},
        }
    )
    sequence(
        wiremock,
        "GET",
        "/api/jobs/1",
        [
            {"status": 503},
            {"status": 503},
            {"status": 202},
            {"status": 503},
            {"status": 503},
            json_response({"ok": 1}),
        ],
    )
    assert api.post("jobs") == {"ok": 1}  # max-retries 2: each poll survives two 503s
    assert wiremock.count("GET", "/api/jobs/1") == 6


def test_202_location_on_another_origin_gets_no_token(wiremock: WireMock, api: TxoRestAPI) -> None:
    wiremock.stub(
        {
            "request": {"method": "POST", "urlPath": "/api/jobs"},
            "response": {
                "status": 202,
                "headers": {"Location": f"{other_origin(wiremock)}/status/1"},
            },
        }
    )
    wiremock.stub(
        {"request": {"method": "GET", "urlPath": "/status/1"}, "response": json_response({"ok": 1})}
    )
    assert api.post("jobs") == {"ok": 1}
    (poll,) = wiremock.find("GET", "/status/1")
    assert header(poll, "Authorization") is None


def test_202_without_location_returns_its_body(wiremock: WireMock, api: TxoRestAPI) -> None:
    wiremock.stub(
        {
            "request": {"method": "POST", "urlPath": "/api/queue"},
            "response": json_response({"queued": True}, 202),
        }
    )
    assert api.post("queue", {}) == {"queued": True}
    assert wiremock.count("ANY") == 1


# -- Microsoft Graph delta queries ---------------------------------------------------------------
DELTA_PATH = "/api/users/delta"
SELECT = {"$select": "displayName,mail"}
FRESH_URL = f"{DELTA_PATH}?$select=displayName,mail"


def stub_url(wm: WireMock, url: str, response: dict[str, Any]) -> None:
    """Answer a GET of exactly ``url`` (path and raw query, as the server receives it)."""
    wm.stub({"request": {"method": "GET", "url": url}, "response": response})


def user(n: int) -> dict[str, Any]:
    return {"id": f"u{n}", "displayName": f"User {n}"}


REMOVED = {"id": "u9", "@removed": {"reason": "deleted"}}
GONE = json_response(
    {"error": {"code": "syncStateNotFound", "message": "The sync state is not found."}}, 410
)


def test_delta_follows_next_links_until_the_delta_link(wiremock: WireMock, api: TxoRestAPI) -> None:
    base = f"{wiremock.base_url}{DELTA_PATH}"
    stub_url(
        wiremock,
        FRESH_URL,
        json_response({"value": [user(1), user(2)], "@odata.nextLink": f"{base}?$skiptoken=p2"}),
    )
    stub_url(
        wiremock,
        f"{DELTA_PATH}?$skiptoken=p2",
        json_response({"value": [], "@odata.nextLink": f"{base}?$skiptoken=p3"}),
    )
    stub_url(
        wiremock,
        f"{DELTA_PATH}?$skiptoken=p3",
        json_response({"value": [user(3), REMOVED], "@odata.deltaLink": f"{base}?$deltatoken=d1"}),
    )
    pull = api.delta("users/delta", params=SELECT)
    assert pull.delta_link is None
    assert list(pull.pages()) == [[user(1), user(2)], [], [user(3), REMOVED]]
    assert pull.delta_link == f"{base}?$deltatoken=d1"
    assert pull.resynced is False
    entries = wiremock.requests()
    assert [e["url"] for e in entries] == [
        FRESH_URL,
        f"{DELTA_PATH}?$skiptoken=p2",
        f"{DELTA_PATH}?$skiptoken=p3",
    ]
    assert all(header(e, "Authorization") == f"Bearer {API_TOKEN}" for e in entries)


def test_delta_resumes_from_a_saved_link_without_the_fresh_params(
    wiremock: WireMock, api: TxoRestAPI
) -> None:
    base = f"{wiremock.base_url}{DELTA_PATH}"
    stub_url(
        wiremock,
        f"{DELTA_PATH}?$deltatoken=d1",
        json_response({"value": [REMOVED], "@odata.deltaLink": "delta?$deltatoken=d2"}),
    )
    pull = api.delta("users/delta", f"{base}?$deltatoken=d1", SELECT)
    assert list(pull.pages()) == [[REMOVED]]
    assert pull.delta_link == f"{base}?$deltatoken=d2"  # a relative link, resolved
    assert [e["url"] for e in wiremock.requests()] == [f"{DELTA_PATH}?$deltatoken=d1"]


def test_delta_410_gone_restarts_once_from_the_path_and_warns(
    wiremock: WireMock, api: TxoRestAPI, caplog: pytest.LogCaptureFixture
) -> None:
    base = f"{wiremock.base_url}{DELTA_PATH}"
    stub_url(wiremock, f"{DELTA_PATH}?$deltatoken=expired", GONE)
    stub_url(
        wiremock,
        FRESH_URL,
        json_response({"value": [user(1)], "@odata.deltaLink": f"{base}?$deltatoken=new"}),
    )
    pull = api.delta("users/delta", f"{base}?$deltatoken=expired", SELECT)
    with caplog.at_level("WARNING"):
        pages = list(pull.pages())
    assert pages == [[user(1)]]
    assert pull.resynced is True
    assert pull.delta_link == f"{base}?$deltatoken=new"
    assert [e["url"] for e in wiremock.requests()] == [
        f"{DELTA_PATH}?$deltatoken=expired",
        FRESH_URL,
    ]
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "410 Gone" in warnings[0].getMessage()


def test_delta_410_on_the_resync_too_is_an_error(wiremock: WireMock, api: TxoRestAPI) -> None:
    base = f"{wiremock.base_url}{DELTA_PATH}"
    stub_url(wiremock, f"{DELTA_PATH}?$deltatoken=expired", GONE)
    stub_url(wiremock, FRESH_URL, GONE)
    pull = api.delta("users/delta", f"{base}?$deltatoken=expired", SELECT)
    with pytest.raises(ApiOperationError) as caught:
        list(pull.pages())
    assert caught.value.status_code == 410
    assert pull.delta_link is None
    assert wiremock.count("GET") == 2


def test_delta_without_a_delta_link_on_the_last_page_is_an_error(
    wiremock: WireMock, api: TxoRestAPI
) -> None:
    stub_url(wiremock, FRESH_URL, json_response({"value": [user(1)]}))
    pull = api.delta("users/delta", params=SELECT)
    with pytest.raises(ApiOperationError) as caught:
        list(pull.pages())
    assert "@odata.deltaLink" in caught.value.what_went_wrong
    assert pull.delta_link is None


def test_delta_keeps_the_paging_rules_loops_and_token_origin(
    wiremock: WireMock, api: TxoRestAPI
) -> None:
    elsewhere = f"{other_origin(wiremock)}{DELTA_PATH}"
    stub_url(
        wiremock,
        FRESH_URL,
        json_response({"value": [1], "@odata.nextLink": f"{elsewhere}?$skiptoken=x"}),
    )
    stub_url(
        wiremock,
        f"{DELTA_PATH}?$skiptoken=x",
        json_response({"value": [2], "@odata.nextLink": f"{elsewhere}?$skiptoken=x"}),
    )
    pull = api.delta("users/delta", params=SELECT)
    with pytest.raises(ApiOperationError, match="Pagination loop"):
        list(pull.pages())
    first, second = wiremock.requests()
    assert header(first, "Authorization") == f"Bearer {API_TOKEN}"
    assert header(second, "Authorization") is None  # another origin gets no token


def test_pages_are_exactly_what_the_stdlib_decoding_gives(
    wiremock: WireMock, api: TxoRestAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = (
        b'{"value": [{"id": 12345678901234567890123, "x": 1.5}, {"id": 2, "x": 0.1}],'
        b' "@odata.nextLink": "' + f"{wiremock.base_url}/api/items?page=2".encode() + b'"}'
    )
    second = b'\xef\xbb\xbf{"value": [{"id": 3, "s": "\\ud800", "a": 1, "a": 2, "x": NaN}]}'
    for query, body in ((None, first), ({"page": "2"}, second)):
        response = {"status": 200, "base64Body": base64.b64encode(body).decode()}
        response["headers"] = {"Content-Type": "application/json; charset=utf-8"}
        stub_page(wiremock, query, response)
    fast = repr(list(api.iter_pages("items")))
    monkeypatch.setattr(http_body, "orjson", None)  # the stdlib path alone
    assert fast == repr(list(api.iter_pages("items")))
    assert "12345678901234567890123" in fast and "nan" in fast and "'a': 2" in fast
    assert wiremock.count("GET", url_path="/api/items") == 4


# ==== contract_http_paths: Contract tests of URLs, pagination, return values and error contents of the HTTP client.
#
# Written from DESIGN §3 (``utils.api_factory``) and §4 (relative paths, one ``/``); each case
# checks what the real WireMock received.
SECRET_VALUE = "qS9-very-secret-value-41"


# -- paths ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("base", "path", "expected"),
    [
        ("/api", "customers", "/api/customers"),
        ("/api", "/customers", "/api/customers"),
        ("/api/", "customers", "/api/customers"),
        ("/api/", "/customers", "/api/customers"),
        ("/api/v2.0/", "customers", "/api/v2.0/customers"),
        ("/api/v2.0", "companies(1)/customers", "/api/v2.0/companies(1)/customers"),
        ("", "customers", "/customers"),
        ("/", "/customers", "/customers"),
    ],
)
def test_relative_path_is_appended_with_one_slash(
    wiremock: WireMock, base: str, path: str, expected: str
) -> None:
    always(wiremock, "GET", expected, respond(200, {"ok": 1}))
    with client(wiremock, base=base) as api:
        assert api.get(path) == {"ok": 1}
    (entry,) = wiremock.requests()
    assert entry["url"] == expected
    assert header(entry, "Authorization") == f"Bearer {CONTRACT_TOKEN}"


def test_absolute_url_is_used_as_given(wiremock: WireMock) -> None:
    always(wiremock, "GET", "/elsewhere/x", respond(200, {"abs": 1}))
    with client(wiremock, base="/api/v2") as api:
        assert api.get(f"{wiremock.base_url}/elsewhere/x") == {"abs": 1}
    (entry,) = wiremock.requests()
    assert entry["url"] == "/elsewhere/x"
    assert header(entry, "Authorization") == f"Bearer {CONTRACT_TOKEN}"  # same origin as the base


def test_absolute_url_on_another_origin_gets_no_token(wiremock: WireMock) -> None:
    always(wiremock, "GET", "/x", respond(200, {}))
    with client(wiremock) as api:
        api.get(f"{other_origin(wiremock)}/x")
    (entry,) = wiremock.requests()
    assert header(entry, "Authorization") is None


def test_query_in_the_path_and_params_are_merged(wiremock: WireMock) -> None:
    always(wiremock, "GET", "/api/customers", respond(200, []))
    with client(wiremock) as api:
        api.get("customers?$filter=name eq 'A'", params={"$top": 5, "$select": "id,name"})
    (entry,) = wiremock.requests()
    query = {k: v["values"] for k, v in entry["queryParams"].items()}
    assert query == {"$filter": ["name eq 'A'"], "$top": ["5"], "$select": ["id,name"]}


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_body_verbs_send_json(wiremock: WireMock, method: str) -> None:
    always(wiremock, method, "/api/c", respond(201, {"id": 7}))
    with client(wiremock) as api:
        assert getattr(api, method.lower())("c", {"name": "Ä", "n": 1.5}) == {"id": 7}
    (entry,) = wiremock.requests()
    assert entry["method"] == method
    assert header(entry, "Content-Type") == "application/json"
    import json

    assert json.loads(entry["body"]) == {"name": "Ä", "n": 1.5}


def test_delete_with_params(wiremock: WireMock) -> None:
    always(wiremock, "DELETE", "/api/c(1)", respond(204))
    with client(wiremock) as api:
        assert api.delete("c(1)", params={"force": "true"}) is None
    (entry,) = wiremock.requests()
    assert entry["url"] == "/api/c(1)?force=true"


def test_without_auth_no_authorization_header_and_no_token_needed(wiremock: WireMock) -> None:
    always(wiremock, "GET", "/api/open", respond(200, {"open": 1}))
    config = contract_config(f"{wiremock.base_url}/api", token=None)
    with create_rest_api(config, require_auth=False) as api:
        assert api.get("open") == {"open": 1}
    (entry,) = wiremock.requests()
    assert header(entry, "Authorization") is None


def test_api_manager_reuses_clients_and_closes_every_session(wiremock: WireMock) -> None:
    always(wiremock, "GET", "/api/x", respond(200, {}))
    config = contract_config(f"{wiremock.base_url}/api")
    with ApiManager(config) as manager:
        authed = manager.get_rest_api()
        open_ = manager.get_rest_api(require_auth=False)
        assert manager.get_rest_api() is authed
        assert open_ is not authed
        authed.get("x")
        open_.get("x")
        pools = [
            adapter.poolmanager
            for api in (authed, open_)
            for adapter in api.transport.session.adapters.values()
        ]
        assert sum(len(p.pools) for p in pools) >= 2
    assert all(len(p.pools) == 0 for p in pools)
    entries = wiremock.requests()
    assert [header(e, "Authorization") for e in entries] == [f"Bearer {CONTRACT_TOKEN}", None]


# -- return values -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (respond(200, {"a": [1, 2]}), {"a": [1, 2]}),
        (respond(200, [1, "x"]), [1, "x"]),
        (respond(200, "", headers={"Content-Type": "application/json"}), None),
        (respond(200), None),
        (respond(204), None),
        (respond(200, "plain text", headers={"Content-Type": "text/plain"}), "plain text"),
        (
            respond(200, "Grüße, €", headers={"Content-Type": "text/plain; charset=utf-8"}),
            "Grüße, €",
        ),
        (respond(200, "Grüße, €", headers={"Content-Type": "text/plain"}), "Grüße, €"),
        (respond(200, "<a>é</a>", headers={"Content-Type": "application/xml"}), "<a>é</a>"),
        (respond(200, '{"x": "é"}', headers={"Content-Type": "application/json"}), {"x": "é"}),
        (
            respond(200, '{"x": 1}', headers={"Content-Type": "application/problem+json"}),
            {"x": 1},
        ),
        (respond(200, '{"n": 2}'), {"n": 2}),
        (respond(201, {"id": 1}), {"id": 1}),
        (respond(200, "true", headers={"Content-Type": "application/json"}), True),
    ],
)
def test_return_value(wiremock: WireMock, response: dict[str, Any], expected: Any) -> None:
    always(wiremock, "GET", "/api/r", response)
    with client(wiremock) as api:
        assert api.get("r") == expected


def test_invalid_json_declared_as_json_is_a_helpful_error(wiremock: WireMock) -> None:
    always(
        wiremock,
        "GET",
        "/api/r",
        respond(200, "{oops", headers={"Content-Type": "application/json"}),
    )
    with client(wiremock) as api, pytest.raises(ApiOperationError) as caught:
        api.get("r")
    assert caught.value.status_code == 200
    assert caught.value.method == "GET"
    assert caught.value.url == f"{wiremock.base_url}/api/r"
    assert wiremock.count("ANY") == 1


def test_head_is_answered_with_the_headers(wiremock: WireMock) -> None:
    always(wiremock, "HEAD", "/api/r", respond(200, headers={"ETag": '"v1"'}))
    with client(wiremock) as api:
        assert api.head("r")["etag"] == '"v1"'
    assert wiremock.count("HEAD", "/api/r") == 1


# -- pagination ----------------------------------------------------------------------------------
def page(records: list[Any], key: str | None = "value", **links: Any) -> dict[str, Any]:
    body: Any = records if key is None else {key: records}
    if key is not None:
        body.update(links)
    return respond(200, body)


@pytest.mark.parametrize("absolute", [True, False])
def test_odata_next_link_and_params_only_first(wiremock: WireMock, absolute: bool) -> None:
    prefix = f"{wiremock.base_url}/api/" if absolute else ""
    stub_url(
        wiremock,
        "/api/c?$top=2",
        page([1, 2], **{"@odata.nextLink": f"{prefix}c?$skiptoken=2"}),
    )
    stub_url(
        wiremock,
        "/api/c?$skiptoken=2",
        page([3, 4], **{"@odata.nextLink": f"{prefix}c?$skiptoken=4"}),
    )
    stub_url(wiremock, "/api/c?$skiptoken=4", page([5]))
    with client(wiremock) as api:
        pages = list(api.iter_pages("c", {"$top": 2}))
        assert pages == [[1, 2], [3, 4], [5]]
        assert api.get_all("c", {"$top": 2}) == [1, 2, 3, 4, 5]
    entries = wiremock.requests()[:3]
    assert [e["url"] for e in entries] == [
        "/api/c?$top=2",
        "/api/c?$skiptoken=2",
        "/api/c?$skiptoken=4",
    ]
    assert all(header(e, "Authorization") == f"Bearer {CONTRACT_TOKEN}" for e in entries)


@pytest.mark.parametrize(
    "link",
    [
        '<{next}>; rel="next"',
        "<{next}>; rel=next",
        '<{first}>; rel="first", <{next}>; rel="next", <{last}>; rel="last"',
        '<{prev}>;rel="prev",<{next}>;rel="next"',
        '<{next}>; REL="Next"',
        '<{next}> ; rel = "next"',
        '<{next}>; rel="next last"',
        '<{next}>; title="a, b; c"; rel="next"',
        '<{next}>; type="application/json"; rel="next"',
    ],
)
def test_link_header_next(wiremock: WireMock, link: str) -> None:
    urls = {
        "next": f"{wiremock.base_url}/api/c?page=2",
        "first": f"{wiremock.base_url}/api/c?page=1",
        "prev": f"{wiremock.base_url}/api/c?page=0",
        "last": f"{wiremock.base_url}/api/c?page=9",
    }
    stub_url(wiremock, "/api/c", respond(200, [1], headers={"Link": link.format(**urls)}))
    stub_url(wiremock, "/api/c?page=2", respond(200, [2]))
    with client(wiremock) as api:
        assert api.get_all("c") == [1, 2]
    assert [e["url"] for e in wiremock.requests()] == ["/api/c", "/api/c?page=2"]


def test_relative_link_header(wiremock: WireMock) -> None:
    stub_url(wiremock, "/api/v1/c", respond(200, [1], headers={"Link": '<c?page=2>; rel="next"'}))
    stub_url(wiremock, "/api/v1/c?page=2", respond(200, [2]))
    with client(wiremock) as api:
        assert api.get_all("v1/c") == [1, 2]


def test_link_header_without_next_ends(wiremock: WireMock) -> None:
    link = f'<{wiremock.base_url}/api/c?page=1>; rel="prev"'
    stub_url(wiremock, "/api/c", respond(200, [1], headers={"Link": link}))
    with client(wiremock) as api:
        assert api.get_all("c") == [1]
    assert wiremock.count("ANY") == 1


@pytest.mark.parametrize("key", ["value", "data", "items", "results"])
def test_records_come_from_the_known_keys(wiremock: WireMock, key: str) -> None:
    stub_url(wiremock, "/api/c", page([{"id": 1}], key, next="c?p=2"))
    stub_url(wiremock, "/api/c?p=2", page([{"id": 2}], key))
    with client(wiremock) as api:
        assert api.get_all("c") == [{"id": 1}, {"id": 2}]


def test_json_next_link_absolute(wiremock: WireMock) -> None:
    stub_url(wiremock, "/api/c", page([1], "data", next=f"{wiremock.base_url}/api/c?p=2"))
    stub_url(wiremock, "/api/c?p=2", page([2], "data", next=None))
    with client(wiremock) as api:
        assert api.get_all("c") == [1, 2]


def test_json_api_links_next(wiremock: WireMock) -> None:
    stub_url(wiremock, "/api/c", page([1], "data", links={"next": "/api/c?p=2", "self": "/api/c"}))
    stub_url(wiremock, "/api/c?p=2", page([2], "data", links={"next": None}))
    with client(wiremock) as api:
        assert api.get_all("c") == [1, 2]


def test_empty_last_page(wiremock: WireMock) -> None:
    stub_url(wiremock, "/api/c", page([1, 2], **{"@odata.nextLink": "c?p=2"}))
    stub_url(wiremock, "/api/c?p=2", page([]))
    with client(wiremock) as api:
        assert api.get_all("c") == [1, 2]
        assert [r for p in api.iter_pages("c") for r in p] == [1, 2]


def test_empty_collection(wiremock: WireMock) -> None:
    stub_url(wiremock, "/api/c", page([]))
    with client(wiremock) as api:
        assert api.get_all("c") == []


def test_server_capping_the_page_size_loses_nothing(wiremock: WireMock) -> None:
    # asked for 5 per page, the server gives 3 and a next link that says where it stopped
    records = list(range(1, 12))
    stub_url(wiremock, "/api/c?$top=5", page(records[0:3], **{"@odata.nextLink": "c?$skip=3"}))
    stub_url(wiremock, "/api/c?$skip=3", page(records[3:6], **{"@odata.nextLink": "c?$skip=6"}))
    stub_url(wiremock, "/api/c?$skip=6", page(records[6:9], **{"@odata.nextLink": "c?$skip=9"}))
    stub_url(wiremock, "/api/c?$skip=9", page(records[9:11]))
    with client(wiremock) as api:
        assert api.get_all("c", {"$top": 5}) == records
    assert wiremock.count("GET") == 4


@pytest.mark.parametrize("loop", ["c?p=1", "c?p=2"])
def test_repeated_next_link_is_an_error(wiremock: WireMock, loop: str) -> None:
    stub_url(wiremock, "/api/c?p=1", page([1], **{"@odata.nextLink": "c?p=2"}))
    stub_url(wiremock, "/api/c?p=2", page([2], **{"@odata.nextLink": loop}))
    with client(wiremock) as api, pytest.raises(ApiOperationError) as caught:
        api.get_all("c?p=1")
    assert wiremock.count("GET") == 2
    assert caught.value.method == "GET"


def test_next_link_to_the_first_page_with_params_is_a_loop(wiremock: WireMock) -> None:
    stub_url(wiremock, "/api/c?$top=1", page([1], **{"@odata.nextLink": "c?$top=1"}))
    stub_url(wiremock, "/api/c?$top=1", page([1], **{"@odata.nextLink": "c?$top=1"}))
    with client(wiremock) as api, pytest.raises(ApiOperationError):
        api.get_all("c", {"$top": 1})
    assert wiremock.count("GET") <= 2


def test_next_link_on_another_host_gets_no_token(wiremock: WireMock) -> None:
    stub_url(
        wiremock, "/api/c", page([1], **{"@odata.nextLink": f"{other_origin(wiremock)}/api/c?p=2"})
    )
    stub_url(wiremock, "/api/c?p=2", page([2]))
    with client(wiremock) as api:
        assert api.get_all("c") == [1, 2]
    first, second = wiremock.requests()
    assert header(first, "Authorization") == f"Bearer {CONTRACT_TOKEN}"
    assert header(second, "Authorization") is None


def test_a_failing_page_is_retried_within_the_walk(wiremock: WireMock) -> None:
    stub_url(wiremock, "/api/c", page([1], **{"@odata.nextLink": "c?p=2"}))
    sequence(wiremock, "GET", "", [respond(503), page([2])], url="/api/c?p=2")
    with client(wiremock) as api:
        assert api.get_all("c") == [1, 2]
    assert wiremock.count("GET") == 3


def test_iter_pages_is_lazy(wiremock: WireMock) -> None:
    stub_url(wiremock, "/api/c", page([1], **{"@odata.nextLink": "c?p=2"}))
    stub_url(wiremock, "/api/c?p=2", page([2]))
    with client(wiremock) as api:
        pages = api.iter_pages("c")
        assert next(pages) == [1]
        assert wiremock.count("GET") == 1


# -- what errors show --------------------------------------------------------------------------
def test_error_has_exact_status_url_and_method(wiremock: WireMock) -> None:
    always(wiremock, "PATCH", "/api/c(1)", respond(409, {"error": {"message": "changed"}}))
    with client(wiremock) as api, pytest.raises(ApiOperationError) as caught:
        api.patch("c(1)", {"a": 1}, params={"company": "x"})
    assert caught.value.status_code == 409
    assert caught.value.method == "PATCH"
    assert caught.value.url == f"{wiremock.base_url}/api/c(1)?company=x"
    assert "changed" in str(caught.value)


@pytest.mark.parametrize(
    "name", ["api_key", "client_secret", "access_token", "apikey", "x-api-key", "password", "sig"]
)
def test_error_url_hides_secret_query_values(wiremock: WireMock, name: str) -> None:
    always(wiremock, "GET", "/api/c", respond(404))
    with client(wiremock) as api, pytest.raises(ApiOperationError) as caught:
        api.get(f"c?{name}={SECRET_VALUE}", params={"top": 1})
    assert SECRET_VALUE not in caught.value.url
    assert SECRET_VALUE not in str(caught.value)
    assert caught.value.url == f"{wiremock.base_url}/api/c?{name}={redaction.REDACTED}&top=1"


def test_error_url_has_no_userinfo(wiremock: WireMock) -> None:
    always(wiremock, "GET", "/api/c", respond(500))
    base = wiremock.base_url.replace("http://", f"http://user:{SECRET_VALUE}@") + "/api"
    config = contract_config(base, {"retry-strategy": {"max-retries": 0}})
    with create_rest_api(config) as api, pytest.raises(ApiOperationError) as caught:
        api.get("c")
    assert SECRET_VALUE not in caught.value.url
    assert "user:" not in caught.value.url
    assert SECRET_VALUE not in str(caught.value)


@pytest.mark.parametrize(
    "response",
    [
        respond(400, {"error": {"message": f"bad token {CONTRACT_TOKEN}"}}),
        respond(500, f"trace: Authorization: Bearer {CONTRACT_TOKEN}"),
        respond(404, {"message": f"client_secret={SECRET_VALUE} is wrong"}),
        respond(429, {"detail": f"key {CONTRACT_TOKEN}"}),
    ],
)
def test_no_secret_in_any_error_text(wiremock: WireMock, response: dict[str, Any]) -> None:
    always(wiremock, "GET", "/api/c", response)
    with client(wiremock) as api, pytest.raises(HelpfulError) as caught:
        api.get("c", params={"api_key": SECRET_VALUE})
    text = f"{caught.value}|{caught.value!r}|{getattr(caught.value, 'url', '')}"
    assert CONTRACT_TOKEN not in text
    assert SECRET_VALUE not in text


# -- request bodies ------------------------------------------------------------------------------
def test_body_with_decimal_datetime_and_nan_is_sent_as_json(wiremock: WireMock) -> None:
    import datetime as dt
    import json
    from decimal import Decimal

    always(wiremock, "POST", "/api/c", respond(201, {"id": 1}))
    data = {
        "amount": Decimal("12.30"),
        "when": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        "missing": float("nan"),
        "name": "Ø",
    }
    with client(wiremock) as api:
        assert api.post("c", data) == {"id": 1}
    (entry,) = wiremock.requests()
    assert header(entry, "Content-Type") == "application/json"
    assert '"amount": 12.30' in entry["body"]
    assert json.loads(entry["body"]) == {
        "amount": 12.3,
        "when": "2026-01-02T03:04:05+00:00",
        "missing": None,
        "name": "Ø",
    }


def test_body_that_cannot_be_json_fails_before_sending(wiremock: WireMock) -> None:
    always(wiremock, "POST", "/api/c", respond(201))
    with client(wiremock) as api, pytest.raises(HelpfulError):
        api.post("c", {"x": object()})
    assert wiremock.count("ANY") == 0


def test_retries_resend_the_same_body_and_a_given_content_type_is_kept(wiremock: WireMock) -> None:
    sequence(wiremock, "PUT", "/api/c", [respond(503), respond(200, {"ok": 1})])
    with client(wiremock) as api:
        api.put("c", {"n": [1, 2]}, headers={"content-type": "application/merge-patch+json"})
    first, second = wiremock.requests()
    assert first["body"] == second["body"]
    assert header(second, "Content-Type") == "application/merge-patch+json"


# -- broken links --------------------------------------------------------------------------------
@pytest.mark.parametrize("location", ["http://[bad", "ftp://x/y", "javascript:void(0)"])
def test_202_with_a_broken_location_is_a_helpful_error(wiremock: WireMock, location: str) -> None:
    always(wiremock, "POST", "/api/go", respond(202, headers={"Location": location}))
    with client(wiremock) as api, pytest.raises(ApiOperationError) as caught:
        api.post("go")
    assert caught.value.url == f"{wiremock.base_url}/api/go"
    assert wiremock.count("ANY") == 1


def test_broken_next_link_is_a_helpful_error(wiremock: WireMock) -> None:
    stub_url(wiremock, "/api/c", page([1], **{"@odata.nextLink": "http://[::1"}))
    with client(wiremock) as api, pytest.raises(ApiOperationError):
        api.get_all("c")
    assert wiremock.count("ANY") == 1


@pytest.mark.parametrize("base", ["api.example.com/v2", "ftp://files.example.com", "https://", " "])
def test_base_url_that_is_not_http_is_a_configuration_error(base: str) -> None:
    from utils.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError):
        create_rest_api(contract_config(base))


@pytest.mark.parametrize(
    "given", [CONTRACT_TOKEN, f"Bearer {CONTRACT_TOKEN}", f"bearer  {CONTRACT_TOKEN} "]
)
def test_token_is_sent_once_prefixed(wiremock: WireMock, given: str) -> None:
    always(wiremock, "GET", "/api/x", respond(200, {}))
    config = contract_config(f"{wiremock.base_url}/api", token=given)
    with create_rest_api(config) as api:
        api.get("x")
    (entry,) = wiremock.requests()
    assert header(entry, "Authorization") == f"Bearer {CONTRACT_TOKEN}"


def test_page_headers_go_with_every_page(wiremock: WireMock) -> None:
    stub_url(wiremock, "/api/c", page([1], **{"@odata.nextLink": "c?p=2"}))
    stub_url(wiremock, "/api/c?p=2", page([2]))
    with client(wiremock) as api:
        assert api.get_all("c", headers={"ConsistencyLevel": "eventual"}) == [1, 2]
    assert [header(e, "ConsistencyLevel") for e in wiremock.requests()] == ["eventual"] * 2


# -- redirects and politeness ----------------------------------------------------------------------
@pytest.mark.parametrize(("method", "status"), [("GET", 302), ("GET", 301), ("PUT", 307)])
def test_redirect_to_another_origin_drops_the_token(
    wiremock: WireMock, method: str, status: int
) -> None:
    target = f"{other_origin(wiremock)}/moved/x"
    always(wiremock, method, "/api/x", respond(status, headers={"Location": target}))
    always(wiremock, "ANY", "/moved/x", respond(200, {"moved": 1}))
    with client(wiremock) as api:
        assert api.request(method, "x", data={"a": 1} if method == "PUT" else None) == {"moved": 1}
    first, second = wiremock.requests()
    assert header(first, "Authorization") == f"Bearer {CONTRACT_TOKEN}"
    assert second["url"] == "/moved/x"
    assert header(second, "Authorization") is None


def test_redirect_on_the_same_origin_keeps_the_token(wiremock: WireMock) -> None:
    always(wiremock, "GET", "/api/x", respond(302, headers={"Location": "/api/y"}))
    always(wiremock, "GET", "/api/y", respond(200, {"y": 1}))
    with client(wiremock) as api:
        assert api.get("x") == {"y": 1}
    assert [header(e, "Authorization") for e in wiremock.requests()] == [
        f"Bearer {CONTRACT_TOKEN}"
    ] * 2


def test_api_delay_pauses_before_every_request_retries_included(wiremock: WireMock) -> None:
    sequence(wiremock, "GET", "/api/x", [respond(503), respond(200, {})])
    behavior = {"api-delay-seconds": 0.3, "retry-strategy": {"backoff-factor": 0}}
    with client(wiremock, behavior=behavior) as api:
        started = time.monotonic()
        api.get("x")
        api.get("x")
        elapsed = time.monotonic() - started
    gaps = gaps_ms(wiremock)
    assert len(gaps) == 2
    assert all(gap >= 300 for gap in gaps), gaps
    assert elapsed >= 0.9  # three requests, each after its own pause


def test_netrc_credentials_never_replace_or_add_authorization(
    wiremock: WireMock, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(
        "machine 127.0.0.1 login bob password netrc-pass-123\n"
        "machine localhost login bob password netrc-pass-123\n"
    )
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    always(wiremock, "GET", "/api/x", respond(200, {}))
    always(wiremock, "GET", "/y", respond(200, {}))
    with client(wiremock) as api:
        api.get("x")
        api.get(f"{other_origin(wiremock)}/y")
    config = contract_config(f"{wiremock.base_url}/api", token=None)
    with create_rest_api(config, require_auth=False) as api:
        api.get("x")
    seen = [header(e, "Authorization") for e in wiremock.requests()]
    assert seen == [f"Bearer {CONTRACT_TOKEN}", None, None]


def test_proxy_from_the_environment_carries_the_requests(
    wiremock: WireMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # WireMock is the proxy: the API host does not resolve, so an answer proves the proxy.
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    always(wiremock, "GET", "/api/x", respond(200, {"via": "proxy"}))
    monkeypatch.setenv("HTTP_PROXY", wiremock.base_url)
    config = contract_config("http://api.proxied.invalid/api")
    with create_rest_api(config) as api:
        assert [api.get("x"), api.get("x")] == [{"via": "proxy"}] * 2
    monkeypatch.undo()  # the journal is read directly
    seen = wiremock.requests()
    assert [header(e, "Host") for e in seen] == ["api.proxied.invalid"] * 2
    assert [header(e, "Authorization") for e in seen] == [f"Bearer {CONTRACT_TOKEN}"] * 2


def test_no_proxy_sends_its_hosts_direct_and_a_request_may_name_its_own_proxy(
    wiremock: WireMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    always(wiremock, "GET", "/api/x", respond(200, {"ok": True}))
    always(wiremock, "GET", "/y", respond(200, {"ok": "y"}))
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")  # nobody listens
    monkeypatch.setenv("NO_PROXY", "localhost")
    with client(wiremock) as api:  # the API is 127.0.0.1: not in NO_PROXY, so proxied
        with pytest.raises(HelpfulError):
            api.get("x")
        assert api.get(f"{other_origin(wiremock)}/y") == {"ok": "y"}  # in NO_PROXY
        with pytest.raises(HelpfulError):  # each origin keeps its own answer
            api.get("x")
        monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")  # a change is seen at once
        assert api.get("x") == {"ok": True}
    elsewhere = f"http://elsewhere.invalid:{wiremock.port}/y"
    # A request that names its own proxy takes requests' own path, and that proxy wins.
    session = OriginBoundSession(origin_of(wiremock.base_url))
    with session:
        answer = session.get(elsewhere, proxies={"http": wiremock.base_url}, timeout=10)
    assert answer.json() == {"ok": "y"}
    monkeypatch.undo()  # the journal is read without the dead proxy
    assert [header(e, "Host") for e in wiremock.requests()] == [
        f"localhost:{wiremock.port}",
        f"127.0.0.1:{wiremock.port}",
        f"elsewhere.invalid:{wiremock.port}",
    ]


def test_ca_bundle_from_the_environment_is_still_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/corporate-ca.pem")
    with OriginBoundSession(origin_of("https://api.example.com")) as session:
        for _ in range(2):  # the first answer, then the kept one
            settings = session.merge_environment_settings(
                "https://api.example.com/v2/x", {}, None, None, None
            )
            assert settings["verify"] == "/etc/ssl/certs/corporate-ca.pem"
            settings["proxies"]["https"] = "http://changed.invalid"  # a copy each time
