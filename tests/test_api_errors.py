"""Errors of the HTTP client: secret-free URLs, and a how-to-fix that fits the status."""

from __future__ import annotations

from typing import Any

import pytest

from tests.http_contract_support import hang_guard
from tests.support_api import TOKEN, make_config
from tests.wiremock_server import WireMock
from utils.api_factory import create_rest_api
from utils.exceptions import ApiOperationError
from utils.http_errors import safe_url

pytestmark = pytest.mark.usefixtures(hang_guard.__name__)


@pytest.mark.parametrize(
    "url,expected",
    [
        ("https://api.example.com/x", "https://api.example.com/x"),
        ("https://user:pw@api.example.com:8443/x", "https://api.example.com:8443/x"),
        ("https://a.example/x?api_key=k&top=5", "https://a.example/x?api_key=[REDACTED]&top=5"),
        ("https://a.example/x?access_token=t#frag", "https://a.example/x?access_token=[REDACTED]"),
        ("https://a.example/x?sig=abc&sv=2020", "https://a.example/x?sig=[REDACTED]&sv=2020"),
        ("https://a.example/x?Client_Secret=s", "https://a.example/x?Client_Secret=[REDACTED]"),
        ("https://a.example/x?%24skiptoken=p2", "https://a.example/x?%24skiptoken=p2"),
        ("https://a.example/x?countrycode=DK", "https://a.example/x?countrycode=DK"),
    ],
)
def test_safe_url(url: str, expected: str) -> None:
    assert safe_url(url) == expected


@pytest.mark.parametrize(
    "status,fix_words",
    [
        (400, "server's message"),
        (403, "permission"),
        (404, "api-base-url"),
        (409, "read it again"),
        (422, "server's message"),
        (500, "trouble"),
        (501, "trouble"),
    ],
)
def test_how_to_fix_fits_the_status(wiremock: WireMock, status: int, fix_words: str) -> None:
    wiremock.stub(
        {"request": {"method": "DELETE", "urlPath": "/api/r"}, "response": {"status": status}}
    )
    config = make_config(f"{wiremock.base_url}/api", {"retry-strategy": {"max-retries": 0}})
    with create_rest_api(config) as api, pytest.raises(ApiOperationError) as caught:
        api.delete("r")
    err = caught.value
    assert fix_words in err.how_to_fix
    assert (err.status_code, err.method) == (status, "DELETE")
    assert f"HTTP {status}" in err.what_went_wrong


def test_no_token_in_any_error_text(wiremock: WireMock) -> None:
    body: dict[str, Any] = {"error": {"message": f"token {TOKEN} is not valid here"}}
    wiremock.stub(
        {
            "request": {"method": "GET", "urlPath": "/api/echo"},
            "response": {"status": 400, "jsonBody": body},
        }
    )
    with (
        create_rest_api(make_config(f"{wiremock.base_url}/api")) as api,
        pytest.raises(ApiOperationError) as caught,
    ):
        api.get("echo")
    assert TOKEN not in str(caught.value)
    assert "is not valid here" in str(caught.value)


def test_responses_and_retries_are_logged_at_debug_without_secrets(
    wiremock: WireMock, caplog: pytest.LogCaptureFixture
) -> None:
    wiremock.stub(
        {"request": {"method": "GET", "urlPath": "/api/log"}, "response": {"status": 503}}
    )
    config = make_config(f"{wiremock.base_url}/api", {"retry-strategy": {"max-retries": 1}})
    with (
        caplog.at_level("DEBUG", logger="utils.rest_client"),
        create_rest_api(config) as api,
        pytest.raises(ApiOperationError),
    ):
        api.get("log", params={"api_key": "very-secret-key-1"})
    lines = [r.getMessage() for r in caplog.records if r.name == "utils.rest_client"]
    text = "\n".join(lines)
    assert "very-secret-key-1" not in text
    assert "GET " in text and "api_key=[REDACTED]" in text
    assert "-> 503 on attempt 1" in text and "-> 503 on attempt 2" in text
    assert "Retry 1 of 1 for GET" in text and "waiting 0.010s" in text
