"""Errors of the HTTP client: secret-free URLs, and a how-to-fix that fits the status."""

from __future__ import annotations

from typing import Any

import pytest

from tests.http_contract_support import API_TOKEN, hang_guard, make_config
from tools.wiremock_server import WireMock
from utils._http_errors import encode_query, safe_url, url_with_params
from utils.api_factory import create_rest_api
from utils.exceptions import ApiOperationError

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
    body: dict[str, Any] = {"error": {"message": f"token {API_TOKEN} is not valid here"}}
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
    assert API_TOKEN not in str(caught.value)
    assert "is not valid here" in str(caught.value)


def test_responses_and_retries_are_logged_at_debug_without_secrets(
    wiremock: WireMock, caplog: pytest.LogCaptureFixture
) -> None:
    wiremock.stub(
        {"request": {"method": "GET", "urlPath": "/api/log"}, "response": {"status": 503}}
    )
    config = make_config(f"{wiremock.base_url}/api", {"retry-strategy": {"max-retries": 1}})
    with (
        caplog.at_level("DEBUG", logger="utils._rest_client"),
        create_rest_api(config) as api,
        pytest.raises(ApiOperationError),
    ):
        api.get("log", params={"api_key": "very-secret-key-1"})
    lines = [r.getMessage() for r in caplog.records if r.name == "utils._rest_client"]
    text = "\n".join(lines)
    assert "very-secret-key-1" not in text
    assert "GET " in text and "api_key=[REDACTED]" in text
    assert "-> 503 on attempt 1" in text and "-> 503 on attempt 2" in text
    assert "Retry 1 of 1 for GET" in text and "waiting 0.010s" in text


@pytest.mark.parametrize(
    ("params", "query"),
    [
        ({"$filter": "name eq 'A B'"}, "$filter=name%20eq%20'A%20B'"),
        ({"$orderby": "date desc,id", "$top": 5}, "$orderby=date%20desc,id&$top=5"),
        ({"$filter": "time gt 2025-06-30T10:00:00Z"}, "$filter=time%20gt%202025-06-30T10:00:00Z"),
        ({"q": "1+1=2 & #x ?y;z"}, "q=1%2B1%3D2%20%26%20%23x%20%3Fy%3Bz"),
        ({"q": "ü/€"}, "q=%C3%BC/%E2%82%AC"),
        ({"id": [1, 2], "skip": None}, "id=1&id=2"),
        ([("a b", "x"), ("a b", "y")], "a%20b=x&a%20b=y"),
        ("already=encoded%20as%20is", "already=encoded%20as%20is"),
        ({"raw": b"bytes value"}, "raw=bytes%20value"),
    ],
)
def test_encode_query_is_rfc_3986_never_plus_for_space(params: Any, query: str) -> None:
    assert encode_query(params) == query


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://a.example/x", "https://a.example/x?$top=2"),
        ("https://a.example/x?p=1", "https://a.example/x?p=1&$top=2"),
        ("https://a.example/x?", "https://a.example/x?$top=2"),
        ("https://a.example/x#frag", "https://a.example/x?$top=2"),
    ],
)
def test_url_with_params_adds_the_query_as_sent(url: str, expected: str) -> None:
    assert url_with_params(url, {"$top": 2}) == expected
    assert url_with_params(url, None) == url
