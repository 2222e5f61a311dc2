"""Contract tests of token refresh, 202 polling, the circuit breaker and the rate limiter.

Written from DESIGN §3 (``utils.api_common``, ``utils.api_factory``) and §4 (Location is
resolved like a browser resolves a link); every count is the server's journal.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.http_contract_support import (
    CLIENT_SECRET,
    always,
    client,
    closed_port,
    contract_config,
    gaps_ms,
    hang_guard,
    header,
    max_in_window,
    other_origin,
    respond,
    sequence,
    stamps_ms,
)
from tools.wiremock_server import WireMock
from utils import auth, run_stats
from utils.api_factory import create_rest_api
from utils.exceptions import (
    ApiAuthenticationError,
    ApiOperationError,
    ApiRateLimitError,
    ApiTimeoutError,
    CircuitOpenError,
)

pytestmark = pytest.mark.usefixtures(hang_guard.__name__)

TOKEN_A = "first-token-Xk29dLq0"
TOKEN_B = "second-token-Pw81zRt7"
THREADS = 8


@pytest.fixture(autouse=True)
def fresh_token_providers() -> Iterator[None]:
    auth.clear_token_providers()
    yield
    auth.clear_token_providers()


# -- 401: one refresh, one retry ------------------------------------------------------------------
def oauth_config(wm: WireMock) -> dict[str, Any]:
    config = contract_config(f"{wm.base_url}/api", token=None)
    config["global"].update(
        {
            "oauth-token-url": f"{wm.base_url}/oauth/token",
            "client-id": "contract-client",
            "oauth-scope": "https://api/.default",
        }
    )
    config["_client_secret"] = CLIENT_SECRET
    return config


def stub_tokens(wm: WireMock) -> None:
    sequence(
        wm,
        "POST",
        "/oauth/token",
        [
            respond(200, {"access_token": TOKEN_A, "expires_in": 3600, "token_type": "Bearer"}),
            respond(200, {"access_token": TOKEN_B, "expires_in": 3600, "token_type": "Bearer"}),
        ],
    )


def stub_by_token(
    wm: WireMock, method: str, path: str, token: str, response: dict[str, Any]
) -> None:
    wm.stub(
        {
            "priority": 1,
            "request": {
                "method": method,
                "urlPath": path,
                "headers": {"Authorization": {"equalTo": f"Bearer {token}"}},
            },
            "response": response,
        }
    )


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_401_refreshes_the_token_once_and_retries_once(wiremock: WireMock, method: str) -> None:
    stub_tokens(wiremock)
    stub_by_token(wiremock, method, "/api/me", TOKEN_A, respond(401))
    stub_by_token(wiremock, method, "/api/me", TOKEN_B, respond(200, {"me": 1}))
    with create_rest_api(oauth_config(wiremock)) as api:
        assert api.request(method, "me") == {"me": 1}
    assert wiremock.count("POST", "/oauth/token") == 2
    calls = wiremock.find(method, "/api/me")
    assert [header(c, "Authorization") for c in calls] == [f"Bearer {TOKEN_A}", f"Bearer {TOKEN_B}"]


def test_401_twice_is_an_auth_error_without_a_loop(wiremock: WireMock) -> None:
    stub_tokens(wiremock)
    always(wiremock, "GET", "/api/me", respond(401, {"error": "invalid_token"}))
    with create_rest_api(oauth_config(wiremock)) as api, pytest.raises(ApiAuthenticationError) as e:
        api.get("me")
    assert wiremock.count("POST", "/oauth/token") == 2
    assert wiremock.count("GET", "/api/me") == 2
    assert TOKEN_A not in str(e.value) and TOKEN_B not in str(e.value)
    assert CLIENT_SECRET not in str(e.value)


def test_401_refresh_is_outside_the_retry_budget(wiremock: WireMock) -> None:
    stub_tokens(wiremock)
    stub_by_token(wiremock, "GET", "/api/me", TOKEN_A, respond(401))
    sequence(wiremock, "GET", "/api/me", [respond(503), respond(200, {"me": 2})])
    config = oauth_config(wiremock)
    config["script-behavior"]["retry-strategy"]["max-retries"] = 1
    # the token-B stub above is the scenario: 401 (A), then 503, 200 with B
    with create_rest_api(config) as api:
        assert api.get("me") == {"me": 2}
    assert wiremock.count("GET", "/api/me") == 3


def test_401_with_only_an_az_token_fails_without_refreshing(wiremock: WireMock) -> None:
    always(wiremock, "GET", "/api/me", respond(401))
    always(wiremock, "POST", "/oauth/token", respond(200, {"access_token": TOKEN_B}))
    config = oauth_config(wiremock)
    del config["_client_secret"]
    config["_az_token"] = f"Bearer {TOKEN_A}"
    config["_token"] = TOKEN_A
    with create_rest_api(config) as api, pytest.raises(ApiAuthenticationError) as caught:
        api.get("me")
    assert wiremock.count("POST", "/oauth/token") == 0
    assert wiremock.count("GET", "/api/me") == 1
    assert TOKEN_A not in str(caught.value)


def test_401_with_a_given_token_and_no_credentials_is_an_auth_error(wiremock: WireMock) -> None:
    always(wiremock, "GET", "/api/me", respond(401))
    with client(wiremock) as api, pytest.raises(ApiAuthenticationError):
        api.get("me")
    assert wiremock.count("ANY") == 1


def test_threads_hit_by_401_refresh_the_token_only_once(wiremock: WireMock) -> None:
    stub_tokens(wiremock)
    stub_by_token(wiremock, "GET", "/api/me", TOKEN_A, respond(401, fixedDelayMilliseconds=150))
    stub_by_token(wiremock, "GET", "/api/me", TOKEN_B, respond(200, {"me": 1}))
    with create_rest_api(oauth_config(wiremock)) as api:
        results = api.map(lambda _: api.get("me"), range(THREADS), max_workers=THREADS)
    assert results == [{"me": 1}] * THREADS
    assert wiremock.count("POST", "/oauth/token") == 2


def test_client_without_auth_acquires_no_token(wiremock: WireMock) -> None:
    stub_tokens(wiremock)
    always(wiremock, "GET", "/api/open", respond(200, {"open": 1}))
    with create_rest_api(oauth_config(wiremock), require_auth=False) as api:
        assert api.get("open") == {"open": 1}
    assert wiremock.count("POST", "/oauth/token") == 0
    (entry,) = wiremock.find("GET", "/api/open")
    assert header(entry, "Authorization") is None


def test_token_requests_bypass_the_rate_limiter_and_breaker(wiremock: WireMock) -> None:
    stub_tokens(wiremock)
    stub_by_token(wiremock, "GET", "/api/me", TOKEN_A, respond(401))
    stub_by_token(wiremock, "GET", "/api/me", TOKEN_B, respond(200, {"me": 1}))
    config = oauth_config(wiremock)
    config["script-behavior"]["rate-limiting"] = {
        "enabled": True,
        "calls-per-second": 2,
        "burst-size": 1,
    }
    run_stats.reset()
    with create_rest_api(config) as api:
        assert api.get("me") == {"me": 1}
    assert run_stats.get(run_stats.API_CALLS) == 2  # the API calls, not the token requests
    (gap,) = gaps_ms(wiremock, "GET", "/api/me")
    assert gap >= 480  # the second API call waited for the limiter, the token POST did not


# -- 202 Accepted --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("request_path", "location", "polled_path", "query"),
    [
        ("/api/v1/orders", "status/1", "/api/v1/status/1", None),
        ("/api/v1/orders/", "status/1", "/api/v1/orders/status/1", None),
        ("/api/v1/orders", "../jobs/1", "/api/jobs/1", None),
        ("/api/v1/orders", "/jobs/1", "/jobs/1", None),
        ("/api/v1/orders", "?page=2", "/api/v1/orders", "page=2"),
        ("/api/v1/orders", "./done", "/api/v1/done", None),
    ],
)
def test_202_location_resolves_like_a_browser(
    wiremock: WireMock, request_path: str, location: str, polled_path: str, query: str | None
) -> None:
    always(wiremock, "POST", request_path, respond(202, headers={"Location": location}))
    poll: dict[str, Any] = {"method": "GET", "urlPath": polled_path}
    if query:
        poll["queryParameters"] = {"page": {"equalTo": "2"}}
    wiremock.stub({"request": poll, "response": respond(200, {"done": True})})
    with client(wiremock, base="") as api:
        assert api.post(request_path, {"x": 1}) == {"done": True}
    polls = wiremock.find("GET", polled_path)
    assert len(polls) == 1
    assert header(polls[0], "Authorization") == "Bearer contract-token-Zq81xVw3"
    assert wiremock.count("POST", request_path) == 1


def test_202_location_relative_to_the_poll_that_returned_it(wiremock: WireMock) -> None:
    always(wiremock, "POST", "/api/a/start", respond(202, headers={"Location": "b/1"}))
    always(wiremock, "GET", "/api/a/b/1", respond(202, headers={"Location": "../c/2?x=1"}))
    always(wiremock, "GET", "/api/a/c/2", respond(202, headers={"Location": "/root/3"}))
    always(wiremock, "GET", "/root/3", respond(200, {"finished": 3}))
    with client(wiremock) as api:
        assert api.post("a/start") == {"finished": 3}
    paths = [r["url"] for r in wiremock.requests()]
    assert paths == ["/api/a/start", "/api/a/b/1", "/api/a/c/2?x=1", "/root/3"]


def test_202_absolute_location_on_another_origin_gets_no_token(wiremock: WireMock) -> None:
    elsewhere = f"{other_origin(wiremock)}/jobs/9"
    always(wiremock, "POST", "/api/start", respond(202, headers={"Location": elsewhere}))
    always(wiremock, "GET", "/jobs/9", respond(200, {"ok": 1}))
    with client(wiremock) as api:
        assert api.post("start") == {"ok": 1}
    (poll,) = wiremock.find("GET", "/jobs/9")
    assert header(poll, "Authorization") is None
    (start,) = wiremock.find("POST", "/api/start")
    assert header(start, "Authorization") is not None


def test_202_from_a_get_is_polled_too(wiremock: WireMock) -> None:
    always(wiremock, "GET", "/api/report", respond(202, headers={"Location": "report/status"}))
    sequence(wiremock, "GET", "/api/report/status", [respond(202), respond(200, [1, 2])])
    with client(wiremock) as api:
        assert api.get("report") == [1, 2]
    assert wiremock.count("GET", "/api/report/status") == 2


def test_202_retry_after_sets_the_poll_pace(wiremock: WireMock) -> None:
    always(
        wiremock, "POST", "/api/go", respond(202, headers={"Location": "go/s", "Retry-After": "1"})
    )
    always(wiremock, "GET", "/api/go/s", respond(200, {}))
    with client(wiremock) as api:
        api.post("go")
    (gap,) = gaps_ms(wiremock)
    assert 1000 <= gap < 1400


def test_202_poll_interval_paces_polls_without_retry_after(wiremock: WireMock) -> None:
    always(wiremock, "POST", "/api/go", respond(202, headers={"Location": "go/s"}))
    sequence(wiremock, "GET", "/api/go/s", [respond(202), respond(202), respond(200, {})])
    with client(wiremock, {"api-timeouts": {"async-poll-interval": 0.25}}) as api:
        api.post("go")
    gaps = gaps_ms(wiremock)
    assert len(gaps) == 3
    assert all(250 <= g < 550 for g in gaps), gaps


def test_202_past_async_max_wait_is_a_timeout(wiremock: WireMock) -> None:
    always(wiremock, "POST", "/api/go", respond(202, headers={"Location": "go/s"}))
    always(wiremock, "GET", "/api/go/s", respond(202))
    behavior = {"api-timeouts": {"async-max-wait": 0.6, "async-poll-interval": 0.1}}
    started = time.monotonic()
    with client(wiremock, behavior) as api, pytest.raises(ApiTimeoutError) as caught:
        api.post("go")
    elapsed = time.monotonic() - started
    assert 0.6 <= elapsed < 1.2
    polls = wiremock.count("GET", "/api/go/s")
    assert 4 <= polls <= 7
    assert caught.value.status_code == 202
    assert caught.value.method == "POST"  # the call that did not finish, not one poll
    assert caught.value.url == f"{wiremock.base_url}/api/go"
    assert "/api/go/s" in caught.value.what_went_wrong


def test_async_max_wait_clock_starts_at_the_first_202(wiremock: WireMock) -> None:
    always(
        wiremock,
        "POST",
        "/api/go",
        respond(202, headers={"Location": "go/s"}, fixedDelayMilliseconds=700),
    )
    sequence(wiremock, "GET", "/api/go/s", [respond(202), respond(200, {"ok": 1})])
    behavior = {"api-timeouts": {"async-max-wait": 0.5, "async-poll-interval": 0.1}}
    with client(wiremock, behavior) as api:
        assert api.post("go") == {"ok": 1}


def test_202_without_location_returns_its_body(wiremock: WireMock) -> None:
    always(wiremock, "POST", "/api/go", respond(202, {"queued": True}))
    with client(wiremock) as api:
        assert api.post("go") == {"queued": True}
    assert wiremock.count("ANY") == 1


def test_each_poll_has_its_own_retry_budget(wiremock: WireMock) -> None:
    always(wiremock, "POST", "/api/go", respond(202, headers={"Location": "go/s"}))
    sequence(
        wiremock,
        "GET",
        "/api/go/s",
        [respond(503), respond(202), respond(500), respond(200, {"ok": 1})],
    )
    with client(wiremock, {"retry-strategy": {"max-retries": 1}}) as api:
        assert api.post("go") == {"ok": 1}
    assert wiremock.count("GET", "/api/go/s") == 4
    assert wiremock.count("POST", "/api/go") == 1


def test_poll_failing_past_its_budget_is_an_error_not_a_repost(wiremock: WireMock) -> None:
    always(wiremock, "POST", "/api/go", respond(202, headers={"Location": "go/s"}))
    always(wiremock, "GET", "/api/go/s", respond(500))
    with (
        client(wiremock, {"retry-strategy": {"max-retries": 1}}) as api,
        pytest.raises(ApiOperationError) as caught,
    ):
        api.post("go")
    assert caught.value.status_code == 500
    assert caught.value.method == "GET"
    assert wiremock.count("GET", "/api/go/s") == 2
    assert wiremock.count("POST", "/api/go") == 1


def test_polls_go_through_the_rate_limiter(wiremock: WireMock) -> None:
    always(wiremock, "POST", "/api/go", respond(202, headers={"Location": "go/s"}))
    sequence(wiremock, "GET", "/api/go/s", [respond(202), respond(202), respond(200, {})])
    behavior = {"rate-limiting": {"enabled": True, "calls-per-second": 4, "burst-size": 1}}
    with client(wiremock, behavior) as api:
        api.post("go")
    gaps = gaps_ms(wiremock)
    assert len(gaps) == 3
    # 250 ms apart when admitted; the server's clock sees them with some network jitter
    # (the first request also opens the connection), while the 20 ms poll interval alone
    # would give gaps far below 200 ms
    assert all(g >= 200 for g in gaps), gaps


def test_polls_go_through_the_breaker(wiremock: WireMock) -> None:
    always(wiremock, "POST", "/api/go", respond(202, headers={"Location": "go/s"}))
    always(wiremock, "GET", "/api/go/s", respond(500))
    behavior = {
        "retry-strategy": {"max-retries": 5},
        "circuit-breaker": {"enabled": True, "failure-threshold": 2, "timeout-seconds": 30},
    }
    with client(wiremock, behavior) as api, pytest.raises(CircuitOpenError):
        api.post("go")
    assert wiremock.count("GET", "/api/go/s") == 2


# -- circuit breaker -----------------------------------------------------------------------------
def breaker(threshold: int = 3, timeout: float = 30, retries: int = 5) -> dict[str, Any]:
    return {
        "retry-strategy": {"max-retries": retries},
        "circuit-breaker": {
            "enabled": True,
            "failure-threshold": threshold,
            "timeout-seconds": timeout,
        },
    }


def test_breaker_opens_after_exactly_threshold_failed_attempts(wiremock: WireMock) -> None:
    always(wiremock, "GET", "/api/r", respond(500))
    run_stats.reset()
    with client(wiremock, breaker(threshold=3)) as api:
        with pytest.raises(CircuitOpenError) as caught:
            api.get("r")
        assert wiremock.count("GET", "/api/r") == 3
        for _ in range(3):
            with pytest.raises(CircuitOpenError):
                api.get("r")
        assert isinstance(caught.value, ApiOperationError)
        assert caught.value.method == "GET"
        assert caught.value.url == f"{wiremock.base_url}/api/r"
    assert wiremock.count("GET", "/api/r") == 3
    assert run_stats.get(run_stats.BREAKER_OPENS) == 1


def test_open_breaker_fails_at_once_instead_of_sleeping_for_a_retry(wiremock: WireMock) -> None:
    always(wiremock, "GET", "/api/r", respond(500))
    behavior = breaker(threshold=2, timeout=30)
    behavior["retry-strategy"]["backoff-factor"] = 0.6
    started = time.monotonic()
    with client(wiremock, behavior) as api, pytest.raises(CircuitOpenError):
        api.get("r")
    # the 0.6 s backoff after the first failure is due; the 1.2 s one after the second is not
    assert 0.6 <= time.monotonic() - started < 1.5
    assert wiremock.count("GET", "/api/r") == 2


def test_circuit_open_error_names_the_call_with_its_query(wiremock: WireMock) -> None:
    always(wiremock, "GET", "/api/r", respond(500))
    with client(wiremock, breaker(threshold=1, retries=0)) as api:
        with pytest.raises(ApiOperationError):
            api.get("r", params={"a": 1})
        with pytest.raises(CircuitOpenError) as caught:
            api.get("r", params={"a": 2, "api_key": "k-123456"})
    assert caught.value.url == f"{wiremock.base_url}/api/r?a=2&api_key=[REDACTED]"
    assert str(caught.value).startswith(f"❌ Problem: GET {caught.value.url}: The circuit")
    assert "k-123456" not in str(caught.value)
    assert caught.value.method == "GET"
    assert caught.value.status_code is None
    assert wiremock.count("ANY") == 1


def test_breaker_counts_consecutive_failures_only(wiremock: WireMock) -> None:
    sequence(
        wiremock,
        "GET",
        "/api/r",
        [respond(500), respond(200, {}), respond(500), respond(200, {}), respond(500)],
    )
    with client(wiremock, breaker(threshold=2, retries=0)) as api:
        for expected in (ApiOperationError, None, ApiOperationError, None):
            if expected is None:
                api.get("r")
            else:
                with pytest.raises(ApiOperationError) as caught:
                    api.get("r")
                assert not isinstance(caught.value, CircuitOpenError)
        assert api.transport.breaker.state == "closed"


def test_breaker_lets_exactly_one_trial_after_the_timeout(wiremock: WireMock) -> None:
    always(wiremock, "GET", "/api/r", respond(500))
    with client(wiremock, breaker(threshold=2, timeout=0.3)) as api:
        with pytest.raises(CircuitOpenError):
            api.get("r")
        assert wiremock.count("GET", "/api/r") == 2
        time.sleep(0.35)
        assert api.transport.breaker.state == "half-open"
        with pytest.raises(CircuitOpenError):
            api.get("r")  # the trial fails (500): open again, the retry is refused
        assert wiremock.count("GET", "/api/r") == 3
        with pytest.raises(CircuitOpenError):
            api.get("r")
        assert wiremock.count("GET", "/api/r") == 3


@pytest.mark.parametrize("status", [400, 404, 409, 422])
def test_4xx_is_not_a_breaker_failure(wiremock: WireMock, status: int) -> None:
    always(wiremock, "GET", "/api/r", respond(status))
    with client(wiremock, breaker(threshold=2)) as api:
        for _ in range(4):
            with pytest.raises(ApiOperationError) as caught:
                api.get("r")
            assert not isinstance(caught.value, CircuitOpenError)
    assert wiremock.count("GET", "/api/r") == 4


def test_429_is_not_a_breaker_failure(wiremock: WireMock) -> None:
    always(wiremock, "GET", "/api/r", respond(429))
    with client(wiremock, breaker(threshold=2, retries=3)) as api:
        with pytest.raises(ApiRateLimitError):
            api.get("r")
        assert api.transport.breaker.state == "closed"
    assert wiremock.count("GET", "/api/r") == 4


@pytest.mark.parametrize("trial", [respond(404), respond(200, {}), respond(429)])
def test_half_open_trial_below_500_closes_the_breaker(
    wiremock: WireMock, trial: dict[str, Any]
) -> None:
    sequence(wiremock, "GET", "/api/r", [respond(500), respond(500), trial, respond(200, {"n": 1})])
    with client(wiremock, breaker(threshold=2, timeout=0.2, retries=0)) as api:
        for _ in range(2):
            with pytest.raises(ApiOperationError):
                api.get("r")
        time.sleep(0.25)
        try:
            api.get("r")
        except ApiOperationError as err:
            assert not isinstance(err, CircuitOpenError)
        assert api.transport.breaker.state == "closed"
        assert api.get("r") == {"n": 1}
    assert wiremock.count("GET", "/api/r") == 4


def test_breaker_counts_timeouts_and_faults(wiremock: WireMock) -> None:
    sequence(
        wiremock,
        "GET",
        "/api/r",
        [{"fault": "CONNECTION_RESET_BY_PEER"}, respond(200, {}, fixedDelayMilliseconds=600)],
    )
    behavior = {**breaker(threshold=2), "api-timeouts": {"rest-timeout-seconds": 0.2}}
    with client(wiremock, behavior) as api, pytest.raises(CircuitOpenError):
        api.get("r")
    assert wiremock.count("GET", "/api/r") == 2


def test_breaker_counts_refused_connections() -> None:
    config = contract_config(f"http://127.0.0.1:{closed_port()}/api", breaker(threshold=2))
    run_stats.reset()
    with create_rest_api(config) as api, pytest.raises(CircuitOpenError):
        api.get("r")
    assert run_stats.get(run_stats.API_CALLS) == 2


def test_disabled_breaker_never_opens(wiremock: WireMock) -> None:
    always(wiremock, "GET", "/api/r", respond(500))
    behavior = breaker(threshold=1)
    behavior["circuit-breaker"]["enabled"] = False
    with client(wiremock, behavior) as api:
        for _ in range(2):
            with pytest.raises(ApiOperationError) as caught:
                api.get("r")
            assert not isinstance(caught.value, CircuitOpenError)
    assert wiremock.count("GET", "/api/r") == 12


def test_only_one_trial_reaches_the_server_under_threads(wiremock: WireMock) -> None:
    sequence(
        wiremock,
        "GET",
        "/api/r",
        [respond(500), respond(200, {"trial": 1}, fixedDelayMilliseconds=400)],
    )
    with client(wiremock, breaker(threshold=1, timeout=0.2, retries=0)) as api:
        with pytest.raises(ApiOperationError):
            api.get("r")
        time.sleep(0.25)
        wiremock.reset_journal()
        outcomes: list[Any] = []
        lock = threading.Lock()
        gate = threading.Barrier(THREADS)

        def worker() -> None:
            gate.wait()
            try:
                result: Any = api.get("r")
            except Exception as err:  # collected for the assertions below
                result = err
            with lock:
                outcomes.append(result)

        threads = [threading.Thread(target=worker) for _ in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    assert wiremock.count("GET", "/api/r") == 1
    assert outcomes.count({"trial": 1}) == 1
    assert sum(isinstance(o, CircuitOpenError) for o in outcomes) == THREADS - 1


# -- rate limiter, through the real client -------------------------------------------------------
@pytest.mark.parametrize(("rate", "burst"), [(20.0, 1), (25.0, 4)])
def test_rate_limit_holds_across_threads_as_the_server_sees_it(
    wiremock: WireMock, rate: float, burst: int
) -> None:
    always(wiremock, "GET", "/api/item", respond(200, {"ok": 1}))
    calls = 30
    behavior = {"rate-limiting": {"enabled": True, "calls-per-second": rate, "burst-size": burst}}
    with client(wiremock, behavior) as api:
        started = time.monotonic()
        results = api.map(lambda _: api.get("item"), range(calls), max_workers=THREADS)
        elapsed = time.monotonic() - started
    assert results == [{"ok": 1}] * calls
    stamps = stamps_ms(wiremock, "GET", "/api/item")
    assert len(stamps) == calls
    for window in (0.1, 0.25, 0.5, 1.0):
        # +5 ms: the journal keeps whole milliseconds and sees the requests with network jitter
        assert max_in_window(stamps, window * 1000) <= burst + rate * (window + 0.005), window
    assert elapsed >= (calls - burst) / rate - 0.05


def test_threads_sharing_one_client_get_their_own_answers(wiremock: WireMock) -> None:
    wiremock.stub(
        {
            "request": {"method": "GET", "urlPathPattern": "/api/items/[0-9]+"},
            "response": {
                "status": 200,
                "body": '{"path": "{{request.path}}"}',
                "headers": {"Content-Type": "application/json"},
                "transformers": ["response-template"],
            },
        }
    )
    results: dict[int, Any] = {}
    lock = threading.Lock()
    with client(wiremock) as api:

        def worker(k: int) -> None:
            for i in range(k * 10, k * 10 + 10):
                body = api.get(f"items/{i}")
                with lock:
                    results[i] = body

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    assert results == {i: {"path": f"/api/items/{i}"} for i in range(THREADS * 10)}
    assert wiremock.count("GET") == THREADS * 10


def test_a_url_that_cannot_be_sent_is_not_a_breaker_failure(wiremock: WireMock) -> None:
    always(wiremock, "GET", "/api/r", respond(200, {"ok": 1}))
    with client(wiremock, breaker(threshold=2)) as api:
        for url in ("ftp://files.example.com/x", "http://[bad/x", "https://"):
            with pytest.raises(ApiOperationError) as caught:
                api.get(url)
            assert not isinstance(caught.value, CircuitOpenError)
            assert caught.value.status_code is None
        assert api.get("r") == {"ok": 1}
    assert wiremock.count("ANY") == 1
