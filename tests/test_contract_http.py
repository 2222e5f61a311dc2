"""Contract tests of the HTTP client's retries (DESIGN §3 ``utils.api_factory``), from the spec.

Each case counts what a real WireMock received: the retry table for every status × method,
the budget, the backoff and ``Retry-After`` waits measured from the server's journal, broken
responses, refused connections and timeouts.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import pytest
import requests
from urllib3.exceptions import ReadTimeoutError

from tests.http_contract_support import (
    always,
    client,
    closed_port,
    contract_config,
    gaps_ms,
    hang_guard,
    respond,
    sequence,
)
from tools.wiremock_server import WireMock
from utils import run_stats
from utils.api_factory import create_rest_api
from utils.exceptions import ApiOperationError, ApiRateLimitError, ApiTimeoutError
from utils.retry_policy import RetryPolicy, TransportFailure, classify_exception

pytestmark = pytest.mark.usefixtures(hang_guard.__name__)

IDEMPOTENT = ["GET", "PUT", "DELETE", "HEAD", "OPTIONS"]
UNSAFE = ["POST", "PATCH"]
RETRIED_IDEMPOTENT = {429, 500, 502, 503, 504}
NOT_RETRIED = [400, 403, 404, 405, 408, 409, 410, 422, 501, 505]
FAULTS = [
    "CONNECTION_RESET_BY_PEER",
    "EMPTY_RESPONSE",
    "MALFORMED_RESPONSE_CHUNK",
    "RANDOM_DATA_THEN_CLOSE",
]
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
