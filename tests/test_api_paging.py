"""Pagination (three next-link styles, caps, loops, origins) and 202 polling, on a real WireMock."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest

from tests.http_contract_support import hang_guard, header, other_origin, sequence
from tests.support_api import TOKEN, json_response, make_config
from tools.wiremock_server import WireMock
from utils.api_factory import TxoRestAPI, create_rest_api
from utils.exceptions import ApiOperationError, ApiTimeoutError
from utils.pagination import extract_records, next_link, parse_link_header

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
    assert all(header(r, "Authorization") == f"Bearer {TOKEN}" for r in wiremock.requests())


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
    assert header(first, "Authorization") == f"Bearer {TOKEN}"
    assert header(second, "Authorization") is None


def test_progress_is_logged_for_long_runs(
    wiremock: WireMock, api: TxoRestAPI, caplog: pytest.LogCaptureFixture
) -> None:
    for n in range(12):
        body: dict[str, Any] = {"value": [n]}
        if n < 11:
            body["next"] = f"/api/items?page={n + 1}"
        stub_page(wiremock, None if n == 0 else {"page": str(n)}, json_response(body))
    with caplog.at_level("INFO", logger="utils.pagination"):
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
    assert all(header(p, "Authorization") == f"Bearer {TOKEN}" for p in polls)


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
    assert all(header(e, "Authorization") == f"Bearer {TOKEN}" for e in entries)


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
    assert header(first, "Authorization") == f"Bearer {TOKEN}"
    assert header(second, "Authorization") is None  # another origin gets no token
