"""Retries, Retry-After, faults, timeouts and the circuit breaker, counted by a real WireMock."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from email.utils import format_datetime
from typing import Any

import pytest

from tests.http_contract_support import gaps_ms, hang_guard, header, sequence
from tests.support_api import json_response, make_config
from tools.wiremock_server import WireMock, free_port
from utils import run_stats
from utils.api_factory import create_rest_api
from utils.exceptions import (
    ApiOperationError,
    ApiRateLimitError,
    ApiTimeoutError,
    CircuitOpenError,
)

pytestmark = pytest.mark.usefixtures(hang_guard.__name__)

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
FAULTS = [
    "CONNECTION_RESET_BY_PEER",
    "EMPTY_RESPONSE",
    "MALFORMED_RESPONSE_CHUNK",
    "RANDOM_DATA_THEN_CLOSE",
]


def client_for(wm: WireMock, behavior: dict[str, Any] | None = None) -> Any:
    return create_rest_api(make_config(f"{wm.base_url}/api", behavior))


# -- status sequences --------------------------------------------------------------------------
def test_503_503_200_makes_three_requests(wiremock: WireMock) -> None:
    sequence(
        wiremock, "GET", "/api/s", [{"status": 503}, {"status": 503}, json_response({"ok": 1})]
    )
    with client_for(wiremock) as api:
        assert api.get("s") == {"ok": 1}
    assert wiremock.count("GET", "/api/s") == 3


def test_500_forever_makes_one_plus_max_retries_requests(wiremock: WireMock) -> None:
    wiremock.stub(
        {"request": {"method": "GET", "urlPath": "/api/down"}, "response": {"status": 500}}
    )
    with (
        client_for(wiremock, {"retry-strategy": {"max-retries": 2}}) as api,
        pytest.raises(ApiOperationError) as caught,
    ):
        api.get("down")
    assert caught.value.status_code == 500
    assert "after 3 attempts" in caught.value.what_went_wrong
    assert wiremock.count("GET", "/api/down") == 3


def test_max_retries_zero_sends_once(wiremock: WireMock) -> None:
    wiremock.stub(
        {"request": {"method": "GET", "urlPath": "/api/down"}, "response": {"status": 502}}
    )
    with (
        client_for(wiremock, {"retry-strategy": {"max-retries": 0}}) as api,
        pytest.raises(ApiOperationError),
    ):
        api.get("down")
    assert wiremock.count("GET", "/api/down") == 1


def test_backoff_doubles_between_retries(wiremock: WireMock) -> None:
    wiremock.stub(
        {"request": {"method": "GET", "urlPath": "/api/down"}, "response": {"status": 500}}
    )
    with (
        client_for(wiremock, {"retry-strategy": {"max-retries": 2, "backoff-factor": 0.15}}) as api,
        pytest.raises(ApiOperationError),
    ):
        api.get("down")
    first, second = gaps_ms(wiremock, url_path="/api/down")
    assert 150 <= first < 300  # not yet doubled
    assert 300 <= second < 600


@pytest.mark.parametrize("status", [500, 502, 504])
def test_post_is_not_retried_on_server_errors(wiremock: WireMock, status: int) -> None:
    wiremock.stub(
        {"request": {"method": "POST", "urlPath": "/api/orders"}, "response": {"status": status}}
    )
    with client_for(wiremock) as api, pytest.raises(ApiOperationError) as caught:
        api.post("orders", {"n": 1})
    assert caught.value.status_code == status
    assert wiremock.count("POST", "/api/orders") == 1


def test_post_retried_on_503_with_retry_after(wiremock: WireMock) -> None:
    sequence(
        wiremock,
        "POST",
        "/api/orders",
        [{"status": 503, "headers": {"Retry-After": "0.1"}}, json_response({"id": 9}, 201)],
    )
    with client_for(wiremock) as api:
        assert api.post("orders", {"n": 1}) == {"id": 9}
    assert wiremock.count("POST", "/api/orders") == 2


def test_post_not_retried_on_503_without_retry_after(wiremock: WireMock) -> None:
    wiremock.stub(
        {"request": {"method": "PATCH", "urlPath": "/api/orders"}, "response": {"status": 503}}
    )
    with client_for(wiremock) as api, pytest.raises(ApiOperationError):
        api.patch("orders", {"n": 1})
    assert wiremock.count("PATCH", "/api/orders") == 1


@pytest.mark.parametrize(
    ("method", "headers", "behavior", "sent"),
    [
        ("PATCH", {"If-Match": 'W/"7"'}, None, 2),  # an ETag makes a PATCH repeatable
        ("PATCH", None, None, 1),
        ("POST", {"Idempotency-Key": "order-42"}, None, 2),
        ("POST", None, {"retry-strategy": {"idempotency-keys": True}}, 2),
        ("POST", None, None, 1),
        ("PUT", None, None, 2),
        ("DELETE", None, None, 2),
    ],
)
def test_single_writes_are_retried_after_a_500_when_idempotent(
    wiremock: WireMock,
    method: str,
    headers: dict[str, str] | None,
    behavior: dict[str, Any] | None,
    sent: int,
) -> None:
    sequence(wiremock, method, "/api/orders/1", [{"status": 500}, json_response({"ok": 1})])
    with client_for(wiremock, behavior) as api:
        call = (
            api.delete
            if method == "DELETE"
            else lambda path, **kw: api.request(method, path, data={"n": 1}, **kw)
        )
        if sent == 1:
            with pytest.raises(ApiOperationError):
                call("orders/1", headers=headers)
        else:
            assert call("orders/1", headers=headers) == {"ok": 1}
    seen = wiremock.find(method, "/api/orders/1")
    assert len(seen) == sent
    keys = {header(e, "Idempotency-Key") for e in seen}
    assert len(keys) == 1  # one key per call, the same on its retry
    if behavior:
        assert UUID.match(str(keys.pop()))


def test_a_412_names_the_server_message(wiremock: WireMock) -> None:
    wiremock.stub(
        {
            "request": {"method": "PATCH", "urlPath": "/api/c(1)"},
            "response": json_response({"error": {"message": "Changed by Ann."}}, 412),
        }
    )
    with client_for(wiremock) as api, pytest.raises(ApiOperationError) as caught:
        api.patch("c(1)", {"a": 1}, headers={"If-Match": 'W/"1"'})
    assert caught.value.status_code == 412
    assert "Changed by Ann." in caught.value.what_went_wrong
    assert wiremock.count("PATCH") == 1  # a precondition failure is final


def test_post_retried_on_429(wiremock: WireMock) -> None:
    sequence(wiremock, "POST", "/api/orders", [{"status": 429}, json_response({"id": 1}, 201)])
    with client_for(wiremock) as api:
        assert api.post("orders", {}) == {"id": 1}
    assert wiremock.count("POST", "/api/orders") == 2


def test_429_forever_is_a_rate_limit_error(wiremock: WireMock) -> None:
    wiremock.stub(
        {"request": {"method": "GET", "urlPath": "/api/busy"}, "response": {"status": 429}}
    )
    before = run_stats.get(run_stats.RATE_LIMITED)
    with client_for(wiremock) as api, pytest.raises(ApiRateLimitError) as caught:
        api.get("busy")
    assert caught.value.status_code == 429
    assert wiremock.count("GET", "/api/busy") == 3
    assert run_stats.get(run_stats.RATE_LIMITED) - before == 3


# -- Retry-After -------------------------------------------------------------------------------
def test_retry_after_seconds_is_honoured(wiremock: WireMock) -> None:
    sequence(
        wiremock,
        "GET",
        "/api/ra",
        [{"status": 429, "headers": {"Retry-After": "1"}}, json_response({})],
    )
    with client_for(wiremock) as api:
        api.get("ra")
    (gap,) = gaps_ms(wiremock, url_path="/api/ra")
    assert 1000 <= gap < 1500  # backoff alone would be 10 ms


def test_retry_after_http_date_is_honoured(wiremock: WireMock) -> None:
    target = int(time.time()) + 2  # HTTP-dates have whole seconds
    when = format_datetime(datetime.fromtimestamp(target, tz=timezone.utc), usegmt=True)
    sequence(
        wiremock,
        "GET",
        "/api/date",
        [{"status": 503, "headers": {"Retry-After": when}}, json_response({})],
    )
    with client_for(wiremock) as api:
        api.get("date")
    first, second = wiremock.find("GET", "/api/date")
    assert second["loggedDate"] >= target * 1000 - 20  # not before the date (20 ms clock slack)
    assert second["loggedDate"] - first["loggedDate"] >= 900


def test_retry_after_longer_than_max_wait_fails_at_once(wiremock: WireMock) -> None:
    wiremock.stub(
        {
            "request": {"method": "GET", "urlPath": "/api/later"},
            "response": {"status": 429, "headers": {"Retry-After": "3600"}},
        }
    )
    started = time.monotonic()
    with client_for(wiremock) as api, pytest.raises(ApiRateLimitError) as caught:
        api.get("later")
    assert time.monotonic() - started < 1.0
    assert caught.value.retry_after == 3600
    assert "max-wait-seconds" in caught.value.how_to_fix
    assert wiremock.count("GET", "/api/later") == 1


def test_max_wait_seconds_is_configurable(wiremock: WireMock) -> None:
    wiremock.stub(
        {
            "request": {"method": "GET", "urlPath": "/api/later"},
            "response": {"status": 503, "headers": {"Retry-After": "2"}},
        }
    )
    with (
        client_for(wiremock, {"retry-strategy": {"max-wait-seconds": 1}}) as api,
        pytest.raises(ApiRateLimitError) as caught,
    ):
        api.get("later")
    assert (caught.value.retry_after, caught.value.status_code) == (2.0, 503)
    assert wiremock.count("GET", "/api/later") == 1


# -- faults and timeouts -----------------------------------------------------------------------
@pytest.mark.parametrize("fault", FAULTS)
def test_get_recovers_from_a_broken_response(wiremock: WireMock, fault: str) -> None:
    sequence(wiremock, "GET", "/api/f", [{"fault": fault}, json_response({"ok": True})])
    with client_for(wiremock) as api:
        assert api.get("f") == {"ok": True}
    assert wiremock.count("GET", "/api/f") == 2


@pytest.mark.parametrize("fault", FAULTS)
def test_get_gives_up_on_a_fault_after_the_budget(wiremock: WireMock, fault: str) -> None:
    wiremock.stub({"request": {"method": "GET", "urlPath": "/api/f"}, "response": {"fault": fault}})
    with client_for(wiremock) as api, pytest.raises(ApiOperationError) as caught:
        api.get("f")
    assert caught.value.status_code is None
    assert wiremock.count("GET", "/api/f") == 3


@pytest.mark.parametrize("fault", ["CONNECTION_RESET_BY_PEER", "EMPTY_RESPONSE"])
def test_post_is_not_retried_after_a_fault(wiremock: WireMock, fault: str) -> None:
    wiremock.stub(
        {"request": {"method": "POST", "urlPath": "/api/f"}, "response": {"fault": fault}}
    )
    with client_for(wiremock) as api, pytest.raises(ApiOperationError):
        api.post("f", {"a": 1})
    assert wiremock.count("POST", "/api/f") == 1


def test_slow_response_past_the_timeout_is_a_timeout_error(wiremock: WireMock) -> None:
    wiremock.stub(
        {
            "request": {"method": "GET", "urlPath": "/api/slow"},
            "response": {**json_response({}), "fixedDelayMilliseconds": 1500},
        }
    )
    behavior = {"api-timeouts": {"rest-timeout-seconds": 0.4}, "retry-strategy": {"max-retries": 1}}
    started = time.monotonic()
    with client_for(wiremock, behavior) as api, pytest.raises(ApiTimeoutError) as caught:
        api.get("slow")
    assert time.monotonic() - started < 1.4
    assert caught.value.method == "GET"
    assert wiremock.count("GET", "/api/slow") == 2


def test_post_is_not_retried_after_a_read_timeout(wiremock: WireMock) -> None:
    wiremock.stub(
        {
            "request": {"method": "POST", "urlPath": "/api/slow"},
            "response": {**json_response({}), "fixedDelayMilliseconds": 1500},
        }
    )
    with (
        client_for(wiremock, {"api-timeouts": {"rest-timeout-seconds": 0.4}}) as api,
        pytest.raises(ApiTimeoutError),
    ):
        api.post("slow", {})
    assert wiremock.count("POST", "/api/slow") == 1


def test_post_is_retried_when_the_connection_is_refused() -> None:
    config = make_config(f"http://127.0.0.1:{free_port()}/api")
    before = run_stats.get(run_stats.API_CALLS)
    with create_rest_api(config) as api, pytest.raises(ApiOperationError) as caught:
        api.post("orders", {"a": 1})
    assert run_stats.get(run_stats.API_CALLS) - before == 3
    assert caught.value.status_code is None
    assert "after 3 attempts" in caught.value.what_went_wrong


# -- circuit breaker ---------------------------------------------------------------------------
BREAKER = {
    "retry-strategy": {"max-retries": 0},
    "circuit-breaker": {"enabled": True, "failure-threshold": 3, "timeout-seconds": 30},
}


def test_breaker_opens_after_consecutive_5xx_and_stops_calling(wiremock: WireMock) -> None:
    wiremock.stub({"request": {"method": "GET", "urlPath": "/api/b"}, "response": {"status": 500}})
    before = run_stats.get(run_stats.BREAKER_OPENS)
    with client_for(wiremock, BREAKER) as api:
        for _ in range(3):
            with pytest.raises(ApiOperationError) as caught:
                api.get("b")
            assert not isinstance(caught.value, CircuitOpenError)
        assert wiremock.count("GET", "/api/b") == 3
        with pytest.raises(CircuitOpenError):
            api.get("b")
    assert wiremock.count("GET", "/api/b") == 3
    assert run_stats.get(run_stats.BREAKER_OPENS) - before == 1


def test_breaker_counts_each_retry_attempt(wiremock: WireMock) -> None:
    wiremock.stub({"request": {"method": "GET", "urlPath": "/api/b"}, "response": {"status": 503}})
    behavior = {**BREAKER, "retry-strategy": {"max-retries": 5}}
    with client_for(wiremock, behavior) as api, pytest.raises(CircuitOpenError):
        api.get("b")
    assert wiremock.count("GET", "/api/b") == 3


def test_4xx_is_not_a_breaker_failure_and_closes_half_open(wiremock: WireMock) -> None:
    behavior = {
        **BREAKER,
        "circuit-breaker": {"enabled": True, "failure-threshold": 2, "timeout-seconds": 0.3},
    }
    wiremock.stub({"request": {"method": "GET", "urlPath": "/api/b"}, "response": {"status": 500}})
    wiremock.stub(
        {"request": {"method": "GET", "urlPath": "/api/missing"}, "response": {"status": 404}}
    )
    with client_for(wiremock, behavior) as api:
        for _ in range(5):
            with pytest.raises(ApiOperationError):
                api.get("missing")
        assert api.transport.breaker.state == "closed"
        for _ in range(2):
            with pytest.raises(ApiOperationError):
                api.get("b")
        assert api.transport.breaker.state == "open"
        time.sleep(0.35)
        with pytest.raises(ApiOperationError) as caught:
            api.get("missing")  # the half-open trial reaches the server and gets a 404
        assert caught.value.status_code == 404
        assert api.transport.breaker.state == "closed"
    assert wiremock.count("GET", "/api/missing") == 6


def test_breaker_applies_to_connection_failures() -> None:
    config = make_config(f"http://127.0.0.1:{free_port()}/api", BREAKER)
    with create_rest_api(config) as api:
        for _ in range(3):
            with pytest.raises(ApiOperationError):
                api.get("x")
        with pytest.raises(CircuitOpenError):
            api.get("x")


def test_calls_queued_at_the_limiter_are_not_sent_once_the_breaker_opens(
    wiremock: WireMock,
) -> None:
    behavior = {
        **BREAKER,
        "circuit-breaker": {"enabled": True, "failure-threshold": 2, "timeout-seconds": 30},
        "rate-limiting": {"enabled": True, "calls-per-second": 4, "burst-size": 1},
    }
    wiremock.stub({"request": {"method": "GET", "urlPath": "/api/b"}, "response": {"status": 500}})
    outcomes: list[str] = []

    def call(_: int) -> None:
        try:
            api.get("b")
        except CircuitOpenError:
            outcomes.append("open")
        except ApiOperationError:
            outcomes.append("500")

    with client_for(wiremock, behavior) as api:
        api.map(call, range(8), max_workers=8)
    assert sorted(outcomes) == ["500", "500"] + ["open"] * 6
    assert wiremock.count("GET", "/api/b") == 2
