"""Retries, Retry-After, faults, timeouts and the circuit breaker, counted by a real WireMock."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import pytest
import requests
from urllib3.exceptions import ReadTimeoutError

from tests.http_contract_support import (
    UUID4,
    always,
    client,
    closed_port,
    contract_config,
    gaps_ms,
    hang_guard,
    header,
    json_response,
    make_config,
    respond,
    sequence,
)
from tools.wiremock_server import WireMock, free_port
from utils import run_stats
from utils._retry_policy import RetryPolicy, TransportFailure, classify_exception
from utils.api_factory import create_rest_api
from utils.exceptions import (
    ApiOperationError,
    ApiRateLimitError,
    ApiTimeoutError,
    CircuitOpenError,
)

pytestmark = pytest.mark.usefixtures(hang_guard.__name__)

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
        assert UUID4.match(str(keys.pop()))


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


# ==== contract_http: Contract tests of the HTTP client's retries (DESIGN §3 ``utils.api_factory``), from the spec.
#
# Each case counts what a real WireMock received: the retry table for every status × method,
# the budget, the backoff and ``Retry-After`` waits measured from the server's journal, broken
# responses, refused connections and timeouts.
IDEMPOTENT = ["GET", "PUT", "DELETE", "HEAD", "OPTIONS"]
UNSAFE = ["POST", "PATCH"]
RETRIED_IDEMPOTENT = {429, 500, 502, 503, 504}
NOT_RETRIED = [400, 403, 404, 405, 408, 409, 410, 422, 501, 505]

MAX_RETRIES = 2


def call(api: Any, method: str, path: str) -> Any:
    """One call through the public client, whatever the method."""
    return api.request(method, path)


IN_A_MINUTE = "an HTTP-date a minute from now"


def http_date(seconds_from_now: float) -> str:
    when = datetime.now(timezone.utc) + timedelta(seconds=seconds_from_now)
    return format_datetime(when, usegmt=True)


# -- the retry table -----------------------------------------------------------------------------
@pytest.mark.parametrize("method", IDEMPOTENT + UNSAFE)
@pytest.mark.parametrize("status", sorted(RETRIED_IDEMPOTENT) + NOT_RETRIED)
def test_status_method_table(wiremock: WireMock, method: str, status: int) -> None:
    always(wiremock, method, "/api/r", respond(status))
    retried = status in RETRIED_IDEMPOTENT if method in IDEMPOTENT else status == 429
    with client(wiremock) as api, pytest.raises(ApiOperationError) as caught:
        call(api, method, "r")
    assert wiremock.count(method, "/api/r") == (1 + MAX_RETRIES if retried else 1)
    assert wiremock.count("ANY") == wiremock.count(method, "/api/r")
    assert caught.value.status_code == status
    assert caught.value.method == method
    assert caught.value.url == f"{wiremock.base_url}/api/r"
    if status == 429:
        assert isinstance(caught.value, ApiRateLimitError)


@pytest.mark.parametrize("method", IDEMPOTENT + UNSAFE)
def test_503_with_retry_after_is_retried_for_every_method(wiremock: WireMock, method: str) -> None:
    always(wiremock, method, "/api/r", respond(503, headers={"Retry-After": "0.01"}))
    with client(wiremock) as api, pytest.raises(ApiOperationError) as caught:
        call(api, method, "r")
    assert caught.value.status_code == 503
    assert wiremock.count(method, "/api/r") == 1 + MAX_RETRIES


@pytest.mark.parametrize("method", UNSAFE)
@pytest.mark.parametrize("retry_after", ["0", "-3", "soon", "", http_date(-60)])
def test_503_without_usable_retry_after_is_not_retried_for_post(
    wiremock: WireMock, method: str, retry_after: str
) -> None:
    always(wiremock, method, "/api/r", respond(503, headers={"Retry-After": retry_after}))
    with client(wiremock) as api, pytest.raises(ApiOperationError):
        call(api, method, "r")
    assert wiremock.count(method, "/api/r") == 1


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_recovers_after_transient_statuses(wiremock: WireMock, method: str) -> None:
    sequence(
        wiremock,
        method,
        "/api/r",
        [respond(429), respond(503, headers={"Retry-After": "0.01"}), respond(200, {"ok": 1})],
    )
    with client(wiremock) as api:
        assert call(api, method, "r") == {"ok": 1}
    assert wiremock.count(method, "/api/r") == 3


@pytest.mark.parametrize("max_retries", [0, 1, 3])
def test_budget_is_one_plus_max_retries(wiremock: WireMock, max_retries: int) -> None:
    always(wiremock, "GET", "/api/r", respond(500))
    run_stats.reset()
    with (
        client(wiremock, {"retry-strategy": {"max-retries": max_retries}}) as api,
        pytest.raises(ApiOperationError),
    ):
        api.get("r")
    assert wiremock.count("GET", "/api/r") == 1 + max_retries
    assert run_stats.get(run_stats.API_CALLS) == 1 + max_retries
    assert run_stats.get(run_stats.RETRIES) == max_retries


def test_a_success_on_the_last_allowed_attempt_is_returned(wiremock: WireMock) -> None:
    sequence(wiremock, "GET", "/api/r", [respond(502), respond(504), respond(200, [1])])
    with client(wiremock) as api:
        assert api.get("r") == [1]
    assert wiremock.count("GET", "/api/r") == 3


def test_429_counts_as_rate_limited(wiremock: WireMock) -> None:
    sequence(wiremock, "GET", "/api/r", [respond(429), respond(200, [])])
    run_stats.reset()
    with client(wiremock) as api:
        api.get("r")
    assert run_stats.get(run_stats.RATE_LIMITED) == 1


# -- backoff and Retry-After, measured by the server ----------------------------------------------
def test_backoff_doubles_from_the_factor(wiremock: WireMock) -> None:
    always(wiremock, "GET", "/api/r", respond(500))
    behavior = {"retry-strategy": {"max-retries": 3, "backoff-factor": 0.08}}
    with client(wiremock, behavior) as api, pytest.raises(ApiOperationError):
        api.get("r")
    gaps = gaps_ms(wiremock, "GET", "/api/r")
    assert len(gaps) == 3
    for n, gap in enumerate(gaps, start=1):
        expected = 80 * 2 ** (n - 1)
        assert expected <= gap < expected + 250, gaps


def test_backoff_is_jittered_within_the_factors(wiremock: WireMock) -> None:
    always(wiremock, "GET", "/api/r", respond(500))
    behavior = {
        "retry-strategy": {"max-retries": 3, "backoff-factor": 0.1},
        "jitter": {"min-factor": 0.4, "max-factor": 0.5},
    }
    with client(wiremock, behavior) as api, pytest.raises(ApiOperationError):
        api.get("r")
    gaps = gaps_ms(wiremock, "GET", "/api/r")
    for n, gap in enumerate(gaps, start=1):
        base = 100 * 2 ** (n - 1)
        assert 0.4 * base <= gap < 0.5 * base + 120, gaps
    assert gaps[-1] < 400  # the unjittered 400 ms would be too long


@pytest.mark.parametrize(
    ("value", "min_ms"),
    [("1", 1000), ("0.4", 400), (" 1 ", 1000)],
)
def test_retry_after_seconds_replaces_the_backoff(
    wiremock: WireMock, value: str, min_ms: int
) -> None:
    sequence(
        wiremock, "GET", "/api/r", [respond(429, headers={"Retry-After": value}), respond(200)]
    )
    with client(wiremock) as api:
        assert api.get("r") is None
    (gap,) = gaps_ms(wiremock, "GET", "/api/r")
    assert min_ms <= gap < min_ms + 300


def test_retry_after_http_date_in_the_future_is_waited_for(wiremock: WireMock) -> None:
    sequence(
        wiremock,
        "GET",
        "/api/r",
        [respond(503, headers={"Retry-After": http_date(2)}), respond(200)],
    )
    with client(wiremock) as api:
        api.get("r")
    (gap,) = gaps_ms(wiremock, "GET", "/api/r")
    # an HTTP-date has whole seconds: "now + 2 s" truncated is between 1 and 2 s away
    assert 900 <= gap <= 2300


@pytest.mark.parametrize("value", ["0", "-5", "garbage", http_date(-30), "Thu, 99 Foo 2026"])
def test_unusable_retry_after_falls_back_to_the_backoff(wiremock: WireMock, value: str) -> None:
    sequence(
        wiremock, "GET", "/api/r", [respond(429, headers={"Retry-After": value}), respond(200)]
    )
    with client(wiremock, {"retry-strategy": {"backoff-factor": 0.25}}) as api:
        api.get("r")
    (gap,) = gaps_ms(wiremock, "GET", "/api/r")
    assert 250 <= gap < 600


def test_jitter_never_shortens_retry_after(wiremock: WireMock) -> None:
    sequence(
        wiremock, "GET", "/api/r", [respond(429, headers={"Retry-After": "0.5"}), respond(200)]
    )
    behavior = {"jitter": {"min-factor": 0.1, "max-factor": 0.2}}
    with client(wiremock, behavior) as api:
        api.get("r")
    (gap,) = gaps_ms(wiremock, "GET", "/api/r")
    assert gap >= 500


def test_jitter_may_lengthen_retry_after(wiremock: WireMock) -> None:
    sequence(
        wiremock, "GET", "/api/r", [respond(429, headers={"Retry-After": "0.2"}), respond(200)]
    )
    behavior = {"jitter": {"min-factor": 2.0, "max-factor": 2.0}}
    with client(wiremock, behavior) as api:
        api.get("r")
    (gap,) = gaps_ms(wiremock, "GET", "/api/r")
    assert 400 <= gap < 700


@pytest.mark.parametrize(
    ("method", "status", "value"),
    [
        ("GET", 429, "10"),
        ("POST", 429, "10"),
        ("GET", 503, "10"),
        ("PATCH", 503, "10"),
        ("GET", 429, IN_A_MINUTE),
    ],
)
def test_retry_after_past_max_wait_fails_at_once(
    wiremock: WireMock, method: str, status: int, value: str
) -> None:
    if value == IN_A_MINUTE:  # the date is made when the test runs, not when it is collected
        value = http_date(60)
    always(wiremock, method, "/api/r", respond(status, headers={"Retry-After": value}))
    started = time.monotonic()
    with client(wiremock) as api, pytest.raises(ApiRateLimitError) as caught:
        call(api, method, "r")
    assert time.monotonic() - started < 1.0
    assert wiremock.count("ANY") == 1
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 2
    if value == "10":
        assert caught.value.retry_after == 10.0
    assert caught.value.status_code == status
    assert caught.value.method == method


def test_max_wait_defaults_to_300_seconds(wiremock: WireMock) -> None:
    always(wiremock, "GET", "/api/r", respond(429, headers={"Retry-After": "301"}))
    config = contract_config(f"{wiremock.base_url}/api")
    del config["script-behavior"]["retry-strategy"]["max-wait-seconds"]
    with create_rest_api(config) as api, pytest.raises(ApiRateLimitError) as caught:
        api.get("r")
    assert caught.value.retry_after == 301.0
    assert wiremock.count("ANY") == 1


def test_429_after_the_budget_is_a_rate_limit_error_with_the_hint(wiremock: WireMock) -> None:
    always(wiremock, "GET", "/api/r", respond(429, headers={"Retry-After": "0.05"}))
    with client(wiremock) as api, pytest.raises(ApiRateLimitError) as caught:
        api.get("r")
    assert caught.value.retry_after == pytest.approx(0.05)
    assert caught.value.status_code == 429
    assert wiremock.count("GET", "/api/r") == 1 + MAX_RETRIES


# -- broken responses ----------------------------------------------------------------------------
@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_idempotent_call_retries_a_broken_response(
    wiremock: WireMock, fault: str, method: str
) -> None:
    always(wiremock, method, "/api/r", {"fault": fault})
    with client(wiremock) as api, pytest.raises(ApiOperationError) as caught:
        call(api, method, "r")
    assert wiremock.count(method, "/api/r") == 1 + MAX_RETRIES
    assert caught.value.status_code is None
    assert caught.value.method == method
    assert caught.value.url == f"{wiremock.base_url}/api/r"
    assert not isinstance(caught.value, ApiTimeoutError)


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("method", UNSAFE)
def test_post_and_patch_are_not_repeated_after_a_broken_response(
    wiremock: WireMock, fault: str, method: str
) -> None:
    always(wiremock, method, "/api/r", {"fault": fault})
    with client(wiremock) as api, pytest.raises(ApiOperationError):
        call(api, method, "r")
    assert wiremock.count(method, "/api/r") == 1


@pytest.mark.parametrize("fault", FAULTS)
def test_get_recovers_after_one_broken_response(wiremock: WireMock, fault: str) -> None:
    sequence(wiremock, "GET", "/api/r", [{"fault": fault}, respond(200, {"n": 1})])
    with client(wiremock) as api:
        assert api.get("r") == {"n": 1}
    assert wiremock.count("GET", "/api/r") == 2


@pytest.mark.parametrize("method", ["GET", "POST", "PATCH"])
def test_refused_connection_is_retried_for_every_method(method: str) -> None:
    # Nobody listens, so no server can count: the client's own attempt counter and the
    # waits it must have slept (backoff 0.1, 0.2) are the evidence.
    config = contract_config(
        f"http://127.0.0.1:{closed_port()}/api",
        {"retry-strategy": {"max-retries": 2, "backoff-factor": 0.1}},
    )
    run_stats.reset()
    started = time.monotonic()
    with create_rest_api(config) as api, pytest.raises(ApiOperationError) as caught:
        call(api, method, "r")
    assert time.monotonic() - started >= 0.3
    assert run_stats.get(run_stats.API_CALLS) == 3
    assert run_stats.get(run_stats.RETRIES) == 2
    assert caught.value.status_code is None
    assert not isinstance(caught.value, ApiTimeoutError)


# -- timeouts ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("method", "requests_sent"), [("GET", 3), ("PUT", 3), ("POST", 1)])
def test_slow_response_is_a_timeout(wiremock: WireMock, method: str, requests_sent: int) -> None:
    always(wiremock, method, "/api/slow", respond(200, {"late": 1}, fixedDelayMilliseconds=1500))
    behavior = {"api-timeouts": {"rest-timeout-seconds": 0.25}}
    started = time.monotonic()
    with client(wiremock, behavior) as api, pytest.raises(ApiTimeoutError) as caught:
        call(api, method, "slow")
    elapsed = time.monotonic() - started
    assert wiremock.count(method, "/api/slow") == requests_sent
    assert 0.25 * requests_sent <= elapsed < 0.25 * requests_sent + 1.0
    assert caught.value.method == method
    assert caught.value.url == f"{wiremock.base_url}/api/slow"


def test_response_under_the_timeout_is_not_a_timeout(wiremock: WireMock) -> None:
    always(wiremock, "GET", "/api/slow", respond(200, {"ok": 1}, fixedDelayMilliseconds=100))
    with client(wiremock, {"api-timeouts": {"rest-timeout-seconds": 0.5}}) as api:
        assert api.get("slow") == {"ok": 1}
    assert wiremock.count("GET", "/api/slow") == 1


def test_dribbled_response_past_the_timeout_is_a_timeout(wiremock: WireMock) -> None:
    always(
        wiremock,
        "GET",
        "/api/drip",
        respond(200, "x" * 64, chunkedDribbleDelay={"numberOfChunks": 4, "totalDuration": 2000}),
    )
    behavior = {"api-timeouts": {"rest-timeout-seconds": 0.3}, "retry-strategy": {"max-retries": 1}}
    with client(wiremock, behavior) as api, pytest.raises(ApiTimeoutError):
        api.get("drip", headers={"Accept-Encoding": "identity"})
    assert wiremock.count("GET", "/api/drip") == 2


def test_body_stalling_after_the_headers_is_a_timeout(wiremock: WireMock) -> None:
    # With gzip the server sends the headers with the first chunk and holds the rest back:
    # requests reports a read timeout inside the body as a ConnectionError, and it must still
    # be an ApiTimeoutError.
    always(
        wiremock,
        "GET",
        "/api/drip",
        respond(200, "x" * 64, chunkedDribbleDelay={"numberOfChunks": 5, "totalDuration": 1500}),
    )
    behavior = {
        "api-timeouts": {"rest-timeout-seconds": 0.45},
        "retry-strategy": {"max-retries": 0},
    }
    with client(wiremock, behavior) as api, pytest.raises(ApiTimeoutError) as caught:
        api.get("drip", headers={"Accept-Encoding": "gzip"})
    assert wiremock.count("GET", "/api/drip") == 1
    assert caught.value.url == f"{wiremock.base_url}/api/drip"


def test_timeout_applies_per_socket_read_not_to_the_whole_body(wiremock: WireMock) -> None:
    always(
        wiremock,
        "GET",
        "/api/drip",
        respond(200, "y" * 60, chunkedDribbleDelay={"numberOfChunks": 6, "totalDuration": 900}),
    )
    # identity: a gzip filter on the server would hold the chunks back until the end
    with client(wiremock, {"api-timeouts": {"rest-timeout-seconds": 0.6}}) as api:
        assert api.get("drip", headers={"Accept-Encoding": "identity"}) == "y" * 60
    assert wiremock.count("GET", "/api/drip") == 1


def test_read_timeout_inside_the_body_is_classified_as_a_timeout() -> None:
    # what requests raises when the body stalls after the headers (see the WireMock case above)
    err = requests.ConnectionError(ReadTimeoutError(None, "/r", "Read timed out."))
    assert classify_exception(err) is TransportFailure.TIMEOUT
    assert not RetryPolicy().is_retryable("POST", err)
    assert RetryPolicy().is_retryable("GET", err)


def test_tls_failure_is_not_retried_and_says_so(wiremock: WireMock) -> None:
    # https:// to WireMock's plain-HTTP port: a real handshake failure
    config = contract_config(wiremock.base_url.replace("http://", "https://") + "/api")
    run_stats.reset()
    with create_rest_api(config) as api, pytest.raises(ApiOperationError) as caught:
        api.get("r")
    assert run_stats.get(run_stats.API_CALLS) == 1
    assert caught.value.status_code is None
    assert "TLS" in caught.value.what_went_wrong
    assert "REQUESTS_CA_BUNDLE" in caught.value.how_to_fix
