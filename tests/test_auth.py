"""Token acquisition against a real WireMock token endpoint: request body, cache, refresh,
retries and every failure the identity provider can produce."""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import parse_qs

import pytest

from tests.support_clock import FakeClock
from tools.wiremock_server import WireMock, free_port
from utils import _auth as auth, _redaction as redaction, run_stats
from utils.exceptions import ApiAuthenticationError, ConfigurationError

TOKEN_PATH = "/oauth2/token"
SECRET = "s3cr3t-Client-Value-Qx7"
TOKEN = "eyJ0eXAi.test-access-token.Zz9"

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _fresh_state() -> None:
    auth.clear_token_providers()
    redaction.clear_registered_secrets()
    run_stats.reset()


def make_config(token_url: str, **behavior: Any) -> dict[str, Any]:
    retry = {"max-retries": 3, "backoff-factor": 0.01, "max-wait-seconds": 5}
    retry.update(behavior.pop("retry", {}))
    return {
        "global": {
            "api-base-url": "https://api.example.com",
            "tenant-id": "tenant-guid",
            "client-id": "client-123",
            "oauth-scope": "https://api.example.com/.default",
            "oauth-token-url": token_url,
        },
        "script-behavior": {
            "api-timeouts": {"rest-timeout-seconds": behavior.pop("timeout", 2)},
            "retry-strategy": retry,
        },
        "_client_secret": SECRET,
        "_org_id": "acme",
        "_env_type": "test",
    }


def stub_token(wm: WireMock, token: str = TOKEN, expires_in: Any = 3599, **scenario: str) -> None:
    mapping: dict[str, Any] = {
        "request": {"method": "POST", "urlPath": TOKEN_PATH},
        "response": {
            "status": 200,
            "jsonBody": {"token_type": "Bearer", "expires_in": expires_in, "access_token": token},
        },
    }
    mapping.update(scenario)
    wm.stub(mapping)


def stub_two_tokens(wm: WireMock) -> None:
    """``token-one`` for the first token request, ``token-two`` for every one after it."""
    stub_token(
        wm,
        "token-one",
        scenarioName="t",
        requiredScenarioState="Started",
        newScenarioState="second",
    )
    stub_token(wm, "token-two", scenarioName="t", requiredScenarioState="second")


def stub_status(wm: WireMock, status: int, body: Any = None, **response: Any) -> None:
    resp: dict[str, Any] = {"status": status, **response}
    if isinstance(body, dict):
        resp["jsonBody"] = body
    elif body is not None:
        resp["body"] = body
    wm.stub({"request": {"method": "POST", "urlPath": TOKEN_PATH}, "response": resp})


def token_requests(wm: WireMock) -> int:
    return wm.count("POST", TOKEN_PATH)


def provider_for(wm: WireMock, sleeps: list[float] | None = None, **kw: Any) -> auth.TokenProvider:
    recorded = sleeps if sleeps is not None else []
    clock = kw.pop("clock", FakeClock())
    return auth.TokenProvider(
        make_config(wm.base_url + TOKEN_PATH, **kw), clock=clock, sleep=recorded.append
    )


def test_client_credentials_form_post_as_the_server_saw_it(wiremock: WireMock) -> None:
    stub_token(wiremock)
    assert provider_for(wiremock).get_token() == TOKEN
    [request] = wiremock.find("POST", TOKEN_PATH)
    assert request["headers"]["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert parse_qs(request["body"]) == {
        "grant_type": ["client_credentials"],
        "client_id": ["client-123"],
        "client_secret": [SECRET],
        "scope": ["https://api.example.com/.default"],
    }
    assert "Authorization" not in request["headers"]
    assert run_stats.get(run_stats.TOKENS_ACQUIRED) == 1


def test_token_is_cached_for_several_calls(wiremock: WireMock) -> None:
    stub_token(wiremock)
    provider = provider_for(wiremock)
    assert [provider.get_token() for _ in range(5)] == [TOKEN] * 5
    assert token_requests(wiremock) == 1


@pytest.mark.parametrize(
    ("expires_in", "still_cached_at", "renewed_at"),
    [
        (3600, 3299.0, 3301.0),  # margin 300 s
        ("3600", 3299.0, 3301.0),  # Azure v1 sends a string
        (20, 9.0, 10.5),  # short lifetime: margin is half of it
    ],
)
def test_token_renewed_at_its_safety_margin(
    wiremock: WireMock, expires_in: Any, still_cached_at: float, renewed_at: float
) -> None:
    stub_token(wiremock, expires_in=expires_in)
    clock = FakeClock()
    provider = provider_for(wiremock, clock=clock)
    start = clock.now
    provider.get_token()
    clock.now = start + still_cached_at
    provider.get_token()
    assert token_requests(wiremock) == 1
    clock.now = start + renewed_at
    provider.get_token()
    assert token_requests(wiremock) == 2


def test_refresh_forces_a_new_token(wiremock: WireMock) -> None:
    stub_two_tokens(wiremock)
    provider = provider_for(wiremock)
    assert provider.get_token() == "token-one"
    assert provider.can_refresh
    assert provider.refresh() == "token-two"
    assert provider.get_token() == "token-two"
    assert token_requests(wiremock) == 2


def test_refresh_of_an_already_replaced_token_makes_no_request(wiremock: WireMock) -> None:
    stub_two_tokens(wiremock)
    provider = provider_for(wiremock)
    provider.get_token()
    assert provider.refresh(rejected_token="token-one") == "token-two"
    assert provider.refresh(rejected_token="token-one") == "token-two"
    assert token_requests(wiremock) == 2


def test_concurrent_first_calls_make_one_request(wiremock: WireMock) -> None:
    wiremock.stub(
        {
            "request": {"method": "POST", "urlPath": TOKEN_PATH},
            "response": {
                "status": 200,
                "fixedDelayMilliseconds": 200,
                "jsonBody": {"access_token": TOKEN, "expires_in": 3599},
            },
        }
    )
    provider = provider_for(wiremock)
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(provider.get_token())) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [TOKEN] * 8
    assert token_requests(wiremock) == 1


@pytest.mark.parametrize("given", [TOKEN, f"Bearer {TOKEN}", f"bearer  {TOKEN} "])
def test_az_token_is_used_without_a_request(wiremock: WireMock, given: str) -> None:
    config = make_config(wiremock.base_url + TOKEN_PATH)
    del config["_client_secret"]
    config["_az_token"] = given
    provider = auth.TokenProvider(config)
    assert provider.get_token() == TOKEN
    assert not provider.can_refresh
    with pytest.raises(ApiAuthenticationError, match="cannot be refreshed"):
        provider.refresh()
    assert token_requests(wiremock) == 0


def test_tokens_and_secrets_are_registered_for_redaction(wiremock: WireMock) -> None:
    stub_token(wiremock)
    provider_for(wiremock).get_token()
    redacted = redaction.redact(f"sent {TOKEN} with {SECRET}")
    assert TOKEN not in redacted
    assert SECRET not in redacted


def test_missing_client_credentials_are_named(wiremock: WireMock) -> None:
    config = make_config(wiremock.base_url + TOKEN_PATH)
    del config["_client_secret"]
    config["global"].update(
        {"client-id": None, "oauth-scope": "", "oauth-token-url": None, "tenant-id": None}
    )
    provider = auth.TokenProvider(config)
    with pytest.raises(ConfigurationError) as caught:
        provider.get_token()
    message = str(caught.value)
    for name in ("tenant-id", "client-id", "oauth-scope", "client-secret"):
        assert name in message
    assert "config/acme-test-config-secrets.json" in message
    assert token_requests(wiremock) == 0


def test_azure_endpoint_built_from_tenant_id() -> None:
    config = make_config("")
    config["global"]["oauth-token-url"] = None
    assert auth.TokenProvider(config).token_url == (
        "https://login.microsoftonline.com/tenant-guid/oauth2/v2.0/token"
    )


def test_invalid_client_names_the_fix_never_the_secret(wiremock: WireMock) -> None:
    stub_status(
        wiremock,
        400,
        {
            "error": "invalid_client",
            "error_description": f"AADSTS7000215: Invalid client secret provided: {SECRET}",
        },
    )
    with pytest.raises(ApiAuthenticationError) as caught:
        provider_for(wiremock).get_token()
    message = str(caught.value)
    assert "400 invalid_client: AADSTS7000215: Invalid client secret provided" in message
    assert "client-secret" in caught.value.how_to_fix
    assert SECRET not in message
    assert token_requests(wiremock) == 1


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, {"error": "unauthorized"}, "401 unauthorized"),
        (400, {"error": "invalid_scope", "error_description": "bad scope"}, "oauth-scope"),
        (200, "<html>login page</html>", "not a JSON object"),
        (200, {"token_type": "Bearer"}, "without an access_token"),
        (404, None, "404"),
    ],
)
def test_endpoint_failures_are_authentication_errors_without_retry(
    wiremock: WireMock, status: int, body: Any, expected: str
) -> None:
    stub_status(wiremock, status, body)
    with pytest.raises(ApiAuthenticationError) as caught:
        provider_for(wiremock).get_token()
    assert expected in str(caught.value)
    assert SECRET not in str(caught.value)
    assert token_requests(wiremock) == 1


def test_server_errors_are_retried_twice_at_most(wiremock: WireMock) -> None:
    stub_status(wiremock, 503, {"error": "temporarily_unavailable"})
    sleeps: list[float] = []
    with pytest.raises(ApiAuthenticationError, match="503 temporarily_unavailable"):
        provider_for(wiremock, sleeps).get_token()
    assert token_requests(wiremock) == 3
    assert sleeps == [0.01, 0.02]


def test_max_retries_zero_means_one_token_request(wiremock: WireMock) -> None:
    stub_status(wiremock, 500)
    with pytest.raises(ApiAuthenticationError):
        provider_for(wiremock, retry={"max-retries": 0}).get_token()
    assert token_requests(wiremock) == 1


def test_transient_failure_then_success(wiremock: WireMock) -> None:
    wiremock.stub(
        {
            "scenarioName": "s",
            "requiredScenarioState": "Started",
            "newScenarioState": "up",
            "request": {"method": "POST", "urlPath": TOKEN_PATH},
            "response": {"status": 502},
        }
    )
    stub_token(wiremock, scenarioName="s", requiredScenarioState="up")
    assert provider_for(wiremock).get_token() == TOKEN
    assert token_requests(wiremock) == 2


def test_retry_after_is_honoured_up_to_max_wait(wiremock: WireMock) -> None:
    stub_status(wiremock, 429, {"error": "throttled"}, headers={"Retry-After": "0.5"})
    sleeps: list[float] = []
    with pytest.raises(ApiAuthenticationError):
        provider_for(wiremock, sleeps).get_token()
    assert sleeps == [0.5, 0.5]
    assert token_requests(wiremock) == 3


def test_retry_after_beyond_max_wait_fails_at_once(wiremock: WireMock) -> None:
    stub_status(wiremock, 429, {"error": "throttled"}, headers={"Retry-After": "60"})
    sleeps: list[float] = []
    with pytest.raises(ApiAuthenticationError, match="429 throttled"):
        provider_for(wiremock, sleeps).get_token()
    assert sleeps == []
    assert token_requests(wiremock) == 1


def test_timeout_is_retried_then_reported(wiremock: WireMock) -> None:
    wiremock.stub(
        {
            "request": {"method": "POST", "urlPath": TOKEN_PATH},
            "response": {
                "status": 200,
                "fixedDelayMilliseconds": 1500,
                "jsonBody": {"access_token": TOKEN},
            },
        }
    )
    with pytest.raises(ApiAuthenticationError, match=r"did not answer within 0\.2s"):
        provider_for(wiremock, timeout=0.2, retry={"max-retries": 1}).get_token()
    assert token_requests(wiremock) == 2


def test_connection_refused_is_an_authentication_error() -> None:
    url = f"http://127.0.0.1:{free_port()}{TOKEN_PATH}"
    sleeps: list[float] = []
    provider = auth.TokenProvider(make_config(url), sleep=sleeps.append)
    with pytest.raises(ApiAuthenticationError, match="Connection refused") as caught:
        provider.get_token()
    assert "Check the network" in caught.value.how_to_fix
    assert len(sleeps) == auth.TOKEN_MAX_RETRIES


def test_one_shared_provider_per_credential_set(wiremock: WireMock) -> None:
    stub_token(wiremock)
    config = make_config(wiremock.base_url + TOKEN_PATH)
    first = auth.get_token_provider(config)
    config["_token"] = first.get_token()  # what script_runner injects
    assert auth.get_token_provider(dict(config)) is first
    other = dict(config, _client_secret="another-secret-value")
    assert auth.get_token_provider(other) is not first
    assert token_requests(wiremock) == 1


def test_given_token_without_credentials_is_served_as_is() -> None:
    config: dict[str, Any] = {"global": {"api-base-url": "https://x"}, "_token": "Bearer abc-123"}
    provider = auth.get_token_provider(config)
    assert provider.get_token() == "abc-123"
    assert not provider.can_refresh


@pytest.mark.parametrize(
    ("status", "body", "detail", "fix_names"),
    [
        (
            400,
            {"error": "invalid_client", "error_description": "AADSTS7000215: bad.\nTrace ID: 1"},
            "400 invalid_client: AADSTS7000215: bad.",
            "client-secret",
        ),
        (401, None, "401", "client-secret"),
        (400, {"error": "invalid_scope"}, "400 invalid_scope", "oauth-scope"),
        (400, {"error": "invalid_request"}, "400 invalid_request", "tenant-id"),
        (503, {"error": "temporarily_unavailable"}, "503 temporarily_unavailable", "run again"),
        (418, "teapot", "418", "token endpoint"),
    ],
)
def test_refusals_are_explained(status: int, body: Any, detail: str, fix_names: str) -> None:
    got_detail, fix = auth.explain_refusal(status, body)
    assert got_detail == detail
    assert fix_names in fix


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (3599, 3599.0),
        ("120", 120.0),
        (None, 3600.0),
        ("soon", 3600.0),
        (0, 3600.0),
        (-5, 3600.0),
        ("inf", 3600.0),
        ("nan", 3600.0),
    ],
)
def test_expires_in_is_parsed_defensively(value: Any, seconds: float) -> None:
    assert auth.expires_in(value) == seconds


def test_urls_in_messages_lose_credentials_and_query() -> None:
    assert redaction.safe_url("https://u:p@login.example.com:8443/t/token?code=x", query=False) == (
        "https://login.example.com:8443/t/token"
    )


def test_redirect_is_not_followed(wiremock: WireMock) -> None:
    wiremock.stub(
        {
            "request": {"method": "POST", "urlPath": TOKEN_PATH},
            "response": {"status": 307, "headers": {"Location": "/elsewhere"}},
        }
    )
    with pytest.raises(ApiAuthenticationError, match="307, a redirect"):
        provider_for(wiremock).get_token()
    assert wiremock.count("ANY") == 1
