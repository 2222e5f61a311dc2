"""TxoRestAPI against a real WireMock: URLs, bodies, errors, auth, origins, threads, manager.

Its helpers, shared with the other ``test_api_*`` modules, are in ``tests/http_contract_support.py``.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote

import pytest

from tests.http_contract_support import (
    API_TOKEN,
    CLIENT_SECRET,
    SERVER_JITTER_MS,
    always,
    client,
    closed_port,
    contract_config,
    gaps_ms,
    hang_guard,
    header,
    json_response,
    make_config,
    max_in_window,
    other_origin,
    respond,
    sequence,
    stamps_ms,
)
from tools.wiremock_server import WireMock
from utils import _auth as auth, _http_body as http_body, run_stats
from utils.api_factory import ApiManager, TxoRestAPI, create_rest_api
from utils.exceptions import (
    ApiAuthenticationError,
    ApiOperationError,
    ApiRateLimitError,
    ApiTimeoutError,
    CircuitOpenError,
    ConfigurationError,
)

pytestmark = pytest.mark.usefixtures(hang_guard.__name__)


# -- URLs and bodies ---------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["customers", "/customers", "//customers"])
def test_relative_paths_join_with_exactly_one_slash(
    wiremock: WireMock, api: TxoRestAPI, path: str
) -> None:
    wiremock.stub(
        {"request": {"method": "GET", "url": "/api/customers"}, "response": json_response([1])}
    )
    assert api.get(path) == [1]
    assert wiremock.count("GET", url="/api/customers") == 1


def test_base_url_with_trailing_slash(wiremock: WireMock) -> None:
    wiremock.stub(
        {"request": {"method": "GET", "url": "/api/x"}, "response": json_response({"a": 1})}
    )
    with create_rest_api(make_config(f"{wiremock.base_url}/api/")) as client:
        assert client.get("/x") == {"a": 1}
    assert wiremock.count("GET", url="/api/x") == 1


def test_get_sends_bearer_token_and_params(wiremock: WireMock, api: TxoRestAPI) -> None:
    wiremock.stub(
        {
            "request": {"method": "GET", "urlPath": "/api/items"},
            "response": json_response({"ok": True}),
        }
    )
    assert api.get("items", params={"$top": 5}) == {"ok": True}
    (seen,) = wiremock.find("GET", "/api/items")
    assert header(seen, "Authorization") == f"Bearer {API_TOKEN}"
    assert seen["url"] == "/api/items?$top=5"


def test_post_put_patch_send_json_bodies(wiremock: WireMock, api: TxoRestAPI) -> None:
    for method in ("POST", "PUT", "PATCH"):
        wiremock.stub(
            {
                "request": {"method": method, "urlPath": "/api/items"},
                "response": json_response({"m": method}, 201),
            }
        )
    assert api.post("items", {"name": "a"}) == {"m": "POST"}
    assert api.put("items", {"name": "b"}) == {"m": "PUT"}
    assert api.patch("items", {"name": "c"}) == {"m": "PATCH"}
    bodies = [r["body"] for r in wiremock.requests()]
    assert bodies == ['{"name": "a"}', '{"name": "b"}', '{"name": "c"}']


def test_empty_body_is_none_and_text_is_text(wiremock: WireMock, api: TxoRestAPI) -> None:
    wiremock.stub(
        {"request": {"method": "DELETE", "urlPath": "/api/items/1"}, "response": {"status": 204}}
    )
    wiremock.stub(
        {
            "request": {"method": "GET", "urlPath": "/api/csv"},
            "response": {
                "status": 200,
                "body": "a,b\n1,2\n",
                "headers": {"Content-Type": "text/csv"},
            },
        }
    )
    assert api.delete("items/1") is None
    assert api.get("csv") == "a,b\n1,2\n"


def test_json_body_without_content_type_is_parsed(wiremock: WireMock, api: TxoRestAPI) -> None:
    wiremock.stub(
        {
            "request": {"method": "GET", "urlPath": "/api/raw"},
            "response": {"status": 200, "body": '{"n": 3}'},
        }
    )
    assert api.get("raw") == {"n": 3}


def test_without_auth_no_authorization_header(wiremock: WireMock) -> None:
    wiremock.stub(
        {"request": {"method": "GET", "urlPath": "/api/public"}, "response": json_response([])}
    )
    config = make_config(f"{wiremock.base_url}/api")
    del config["_token"]
    with create_rest_api(config, require_auth=False) as client:
        assert client.get("public") == []
    (seen,) = wiremock.find("GET", "/api/public")
    assert header(seen, "Authorization") is None


def test_missing_base_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="api-base-url"):
        create_rest_api({"global": {}, "_token": API_TOKEN})


def test_api_delay_pauses_before_each_request(wiremock: WireMock) -> None:
    wiremock.stub(
        {"request": {"method": "GET", "urlPath": "/api/slowly"}, "response": json_response({})}
    )
    config = make_config(f"{wiremock.base_url}/api", {"api-delay-seconds": 0.2})
    with create_rest_api(config) as client:
        client.get("slowly")
        client.get("slowly")
    first, second = wiremock.find("GET", "/api/slowly")
    assert second["loggedDate"] - first["loggedDate"] >= 200


# -- errors ------------------------------------------------------------------------------------
def test_404_says_check_the_path(wiremock: WireMock, api: TxoRestAPI) -> None:
    wiremock.stub(
        {"request": {"method": "GET", "urlPath": "/api/nope"}, "response": {"status": 404}}
    )
    with pytest.raises(ApiOperationError) as caught:
        api.get("nope")
    err = caught.value
    assert (err.status_code, err.method, err.url) == (404, "GET", f"{wiremock.base_url}/api/nope")
    assert "api-base-url" in err.how_to_fix
    assert wiremock.count("GET", "/api/nope") == 1


def test_403_says_permissions(wiremock: WireMock, api: TxoRestAPI) -> None:
    wiremock.stub(
        {"request": {"method": "GET", "urlPath": "/api/secret"}, "response": {"status": 403}}
    )
    with pytest.raises(ApiOperationError) as caught:
        api.get("secret")
    assert caught.value.status_code == 403
    assert "permission" in caught.value.how_to_fix


def test_400_shows_the_server_message_truncated_and_redacted(
    wiremock: WireMock, api: TxoRestAPI
) -> None:
    message = "Field 'email' is invalid; client_secret=hunter2hunter2 " + "x" * 500
    wiremock.stub(
        {
            "request": {"method": "POST", "urlPath": "/api/items"},
            "response": json_response({"error": {"code": "BadRequest", "message": message}}, 400),
        }
    )
    with pytest.raises(ApiOperationError) as caught:
        api.post("items", {"email": "nope"})
    text = str(caught.value)
    assert "Field 'email' is invalid" in text
    assert "hunter2hunter2" not in text
    assert "x" * 400 not in text
    assert caught.value.status_code == 400
    assert wiremock.count("POST", "/api/items") == 1


def test_error_url_has_no_credentials_or_secret_params(wiremock: WireMock) -> None:
    wiremock.stub({"request": {"method": "GET", "urlPath": "/api/x"}, "response": {"status": 404}})
    base = wiremock.base_url.replace("http://", "http://user:pa55word@")
    with (
        create_rest_api(make_config(f"{base}/api")) as client,
        pytest.raises(ApiOperationError) as caught,
    ):
        client.get("x", params={"api_key": "k3y-value-123", "top": 2})
    assert "pa55word" not in str(caught.value) and "pa55word" not in caught.value.url
    assert "k3y-value-123" not in str(caught.value) and "k3y-value-123" not in caught.value.url
    assert caught.value.url.endswith("/api/x?api_key=[REDACTED]&top=2")


# -- auth --------------------------------------------------------------------------------------
def test_401_without_client_credentials_is_an_auth_error(wiremock: WireMock) -> None:
    from utils._auth import clear_token_providers

    clear_token_providers()
    wiremock.stub({"request": {"method": "GET", "urlPath": "/api/me"}, "response": {"status": 401}})
    config = make_config(f"{wiremock.base_url}/api", _az_token=API_TOKEN)
    with create_rest_api(config) as client, pytest.raises(ApiAuthenticationError):
        client.get("me")
    assert wiremock.count("GET", "/api/me") == 1


def _oauth_config(wm: WireMock) -> dict[str, Any]:
    config = make_config(f"{wm.base_url}/api", _client_secret="s3cr3t-value-xyz")
    del config["_token"]
    config["global"].update(
        {
            "oauth-token-url": f"{wm.base_url}/oauth/token",
            "client-id": "client-1",
            "oauth-scope": "api://x/.default",
        }
    )
    return config


def test_401_refreshes_the_token_once_and_retries(wiremock: WireMock) -> None:
    from utils._auth import clear_token_providers

    clear_token_providers()
    sequence(
        wiremock,
        "POST",
        "/oauth/token",
        [
            json_response({"access_token": "first-token-aaaa", "expires_in": 3600}),
            json_response({"access_token": "second-token-bbbb", "expires_in": 3600}),
        ],
    )
    sequence(wiremock, "GET", "/api/me", [{"status": 401}, json_response({"me": 1})])
    with create_rest_api(_oauth_config(wiremock)) as client:
        assert client.get("me") == {"me": 1}
    assert wiremock.count("POST", "/oauth/token") == 2
    calls = wiremock.find("GET", "/api/me")
    assert [header(c, "Authorization") for c in calls] == [
        "Bearer first-token-aaaa",
        "Bearer second-token-bbbb",
    ]


def test_401_after_refresh_is_an_auth_error(wiremock: WireMock) -> None:
    from utils._auth import clear_token_providers

    clear_token_providers()
    wiremock.stub(
        {
            "request": {"method": "POST", "urlPath": "/oauth/token"},
            "response": json_response({"access_token": "tok-zzzzzzzz", "expires_in": 3600}),
        }
    )
    wiremock.stub({"request": {"method": "GET", "urlPath": "/api/me"}, "response": {"status": 401}})
    with (
        create_rest_api(_oauth_config(wiremock)) as client,
        pytest.raises(ApiAuthenticationError, match="even after a token refresh"),
    ):
        client.get("me")
    assert wiremock.count("GET", "/api/me") == 2
    assert wiremock.count("POST", "/oauth/token") == 2


def test_redirect_to_another_origin_drops_the_token(wiremock: WireMock) -> None:
    wiremock.stub(
        {
            "request": {"method": "GET", "urlPath": "/api/moved"},
            "response": {
                "status": 302,
                "headers": {"Location": f"{other_origin(wiremock)}/elsewhere"},
            },
        }
    )
    wiremock.stub(
        {
            "request": {"method": "GET", "urlPath": "/elsewhere"},
            "response": json_response({"here": True}),
        }
    )
    with create_rest_api(make_config(f"{wiremock.base_url}/api")) as client:
        assert client.get("moved") == {"here": True}
    (moved,) = wiremock.find("GET", "/api/moved")
    (landed,) = wiremock.find("GET", "/elsewhere")
    assert header(moved, "Authorization") == f"Bearer {API_TOKEN}"
    assert header(landed, "Authorization") is None


def test_absolute_url_on_another_origin_gets_no_token(wiremock: WireMock, api: TxoRestAPI) -> None:
    wiremock.stub(
        {"request": {"method": "GET", "urlPath": "/foreign"}, "response": json_response([])}
    )
    api.get(f"{other_origin(wiremock)}/foreign")
    api.get(f"{wiremock.base_url}/foreign")
    foreign, own = wiremock.find("GET", "/foreign")
    assert header(foreign, "Authorization") is None
    assert header(own, "Authorization") == f"Bearer {API_TOKEN}"


# -- manager and counters ----------------------------------------------------------------------
def test_api_manager_reuses_clients_and_closes_them(wiremock: WireMock) -> None:
    wiremock.stub(
        {"request": {"method": "GET", "urlPath": "/api/ping"}, "response": json_response({})}
    )
    with ApiManager(make_config(f"{wiremock.base_url}/api")) as manager:
        authed = manager.get_rest_api()
        assert manager.get_rest_api() is authed
        anonymous = manager.get_rest_api(require_auth=False)
        assert anonymous is not authed
        authed.get("ping")
        anonymous.get("ping")
        pools = [
            c.transport.session.get_adapter("http://x").poolmanager.pools
            for c in (authed, anonymous)
        ]
        assert all(len(p) == 1 for p in pools)
    assert all(len(p) == 0 for p in pools)


def test_counters_count_requests_and_retries(wiremock: WireMock, api: TxoRestAPI) -> None:
    sequence(wiremock, "GET", "/api/c", [{"status": 429}, {"status": 503}, json_response({})])
    before = run_stats.snapshot()
    api.get("c")
    after = run_stats.snapshot()

    def delta(name: str) -> int:
        return after.get(name, 0) - before.get(name, 0)

    assert (
        delta(run_stats.API_CALLS),
        delta(run_stats.RETRIES),
        delta(run_stats.RATE_LIMITED),
    ) == (3, 2, 1)


# -- named APIs (global.apis) ------------------------------------------------------------------
BC_SCOPE = "https://api.businesscentral.dynamics.com/.default"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
SCOPE_TOKENS = {BC_SCOPE: "bc-token-1111aaaa", GRAPH_SCOPE: "graph-token-2222bbbb"}


def stub_token_per_scope(wm: WireMock) -> None:
    """The token endpoint answers each scope of the form with that scope's own token."""
    for scope, token in SCOPE_TOKENS.items():
        wm.stub(
            {
                "request": {
                    "method": "POST",
                    "urlPath": "/oauth/token",
                    "bodyPatterns": [{"contains": "scope=" + quote(scope, safe="")}],
                },
                "response": json_response({"access_token": token, "expires_in": 3600}),
            }
        )


def two_api_config(wm: WireMock, **graph: Any) -> dict[str, Any]:
    """Business Central as the default API at 127.0.0.1, Graph (and a Graph beta with the same
    scope) on another origin (localhost) of the same WireMock; client credentials."""
    from utils._auth import clear_token_providers

    clear_token_providers()
    config = make_config(f"{wm.base_url}/bc")
    del config["_token"]
    config["_client_secret"] = "shared-secret-9d8c7b"
    config["global"].update(
        {
            "oauth-token-url": f"{wm.base_url}/oauth/token",
            "client-id": "client-1",
            "oauth-scope": BC_SCOPE,
            "apis": {
                "graph": {
                    "api-base-url": f"{other_origin(wm)}/graph/v1.0",
                    "oauth-scope": GRAPH_SCOPE,
                    **graph,
                },
                "graph-beta": {
                    "api-base-url": f"{other_origin(wm)}/graph/beta",
                    "oauth-scope": GRAPH_SCOPE,
                },
            },
        }
    )
    for path in ("/bc/customers", "/graph/v1.0/users", "/graph/beta/users"):
        wm.stub({"request": {"method": "GET", "urlPath": path}, "response": json_response([path])})
    return config


def token_requests_per_scope(wm: WireMock) -> dict[str, int]:
    scopes = [parse_qs(r["body"])["scope"][0] for r in wm.find("POST", "/oauth/token")]
    return {scope: scopes.count(scope) for scope in sorted(set(scopes))}


def authorization_per_path(wm: WireMock) -> dict[str, set[str | None]]:
    seen: dict[str, set[str | None]] = {}
    for entry in wm.find("GET"):
        seen.setdefault(entry["url"].split("?")[0], set()).add(header(entry, "Authorization"))
    return seen


def test_each_api_gets_the_token_of_its_scope_requested_once(wiremock: WireMock) -> None:
    stub_token_per_scope(wiremock)
    with ApiManager(two_api_config(wiremock)) as manager:
        for _ in range(2):
            assert manager.get_rest_api().get("customers") == ["/bc/customers"]
            assert manager.get_rest_api(api="graph").get("users") == ["/graph/v1.0/users"]
            assert manager.get_rest_api(api="graph-beta").get("users") == ["/graph/beta/users"]
    # one token per (token URL, client id, scope): Graph and Graph beta share theirs
    assert token_requests_per_scope(wiremock) == {BC_SCOPE: 1, GRAPH_SCOPE: 1}
    assert authorization_per_path(wiremock) == {
        "/bc/customers": {"Bearer bc-token-1111aaaa"},
        "/graph/v1.0/users": {"Bearer graph-token-2222bbbb"},
        "/graph/beta/users": {"Bearer graph-token-2222bbbb"},
    }
    [form] = [parse_qs(r["body"]) for r in wiremock.find("POST", "/oauth/token")][1:]
    assert (form["client_id"], form["client_secret"]) == (["client-1"], ["shared-secret-9d8c7b"])


def test_each_token_goes_only_to_its_own_apis_origin(wiremock: WireMock) -> None:
    stub_token_per_scope(wiremock)
    config = two_api_config(wiremock)
    with ApiManager(config) as manager:
        bc, graph = manager.get_rest_api(), manager.get_rest_api(api="graph")
        assert graph.get(f"{wiremock.base_url}/bc/customers") == ["/bc/customers"]
        assert bc.get(f"{other_origin(wiremock)}/graph/v1.0/users") == ["/graph/v1.0/users"]
    assert authorization_per_path(wiremock) == {
        "/bc/customers": {None},
        "/graph/v1.0/users": {None},
    }


def test_an_entry_may_set_its_own_client_id(wiremock: WireMock) -> None:
    stub_token_per_scope(wiremock)
    config = two_api_config(wiremock, **{"client-id": "graph-app-7"})
    with create_rest_api(config, api="graph") as graph:
        graph.get("users")
    [form] = [parse_qs(r["body"]) for r in wiremock.find("POST", "/oauth/token")]
    assert (form["client_id"], form["scope"]) == (["graph-app-7"], [GRAPH_SCOPE])


def test_a_401_refreshes_only_that_apis_token(wiremock: WireMock) -> None:
    stub_token_per_scope(wiremock)
    config = two_api_config(wiremock)
    sequence(wiremock, "GET", "/graph/v1.0/me", [{"status": 401}, json_response({"me": 1})])
    with ApiManager(config) as manager:
        manager.get_rest_api().get("customers")
        assert manager.get_rest_api(api="graph").get("me") == {"me": 1}
    assert token_requests_per_scope(wiremock) == {BC_SCOPE: 1, GRAPH_SCOPE: 2}


@pytest.mark.parametrize("given", ["static-graph-5e5e", "Bearer static-graph-5e5e"])
def test_a_static_name_token_serves_that_api_and_az_token_the_default(
    wiremock: WireMock, given: str
) -> None:
    config = two_api_config(wiremock)
    del config["_client_secret"]
    config.update({"_az_token": "Bearer static-bc-4d4d", "_graph_token": given})
    with ApiManager(config) as manager:
        manager.get_rest_api().get("customers")
        manager.get_rest_api(api="graph").get("users")
    assert wiremock.count("POST", "/oauth/token") == 0
    assert authorization_per_path(wiremock) == {
        "/bc/customers": {"Bearer static-bc-4d4d"},
        "/graph/v1.0/users": {"Bearer static-graph-5e5e"},
    }


def test_az_token_does_not_serve_a_named_api(wiremock: WireMock) -> None:
    config = two_api_config(wiremock)
    config.update({"_az_token": "static-bc-4d4d"})
    del config["_client_secret"]
    with pytest.raises(ConfigurationError) as caught:
        create_rest_api(config, api="graph")
    text = str(caught.value)
    assert "for the API 'graph': there is no graph-token secret" in text
    assert "client-secret (secrets file)" in text
    assert wiremock.count("ANY") == 0


def test_missing_credentials_of_a_named_api_name_its_keys(wiremock: WireMock) -> None:
    config = two_api_config(wiremock)
    config["global"]["oauth-scope"] = None
    config["global"]["apis"]["graph"]["oauth-scope"] = None
    with pytest.raises(ConfigurationError) as caught:
        create_rest_api(config, api="graph")
    assert "global → apis → graph → oauth-scope (or global → oauth-scope)" in str(caught.value)


@pytest.mark.parametrize("name", ["grahp", "Graph", ""])
def test_an_unknown_api_name_lists_the_known_ones(wiremock: WireMock, name: str) -> None:
    config = two_api_config(wiremock)
    with ApiManager(config) as manager, pytest.raises(ConfigurationError) as caught:
        manager.get_rest_api(api=name)
    assert f"No API named {name!r}" in caught.value.what_went_wrong
    assert "global → apis names graph, graph-beta." in caught.value.what_went_wrong
    assert wiremock.count("ANY") == 0


def test_an_api_name_without_any_apis_says_so() -> None:
    with pytest.raises(ConfigurationError) as caught:
        create_rest_api(make_config("https://api.example.com"), api="graph")
    assert "none (the config has no global → apis)" in caught.value.what_went_wrong


def test_an_entry_with_its_own_tenant_uses_that_tenants_token_endpoint() -> None:
    from utils._auth import TokenProvider
    from utils._named_apis import api_config

    config = make_config("https://bc.example.com")
    config["global"].update(
        {
            "tenant-id": "home-tenant",
            "oauth-token-url": "https://idp.example.com/token",
            "apis": {
                "partner": {"api-base-url": "https://p.example.com", "tenant-id": "partner-tenant"},
                "same": {"api-base-url": "https://s.example.com", "oauth-token-url": None},
            },
        }
    )
    urls = {
        name: TokenProvider(api_config(config, name)).token_url
        for name in (None, "partner", "same")
    }
    assert urls == {
        None: "https://idp.example.com/token",
        "partner": "https://login.microsoftonline.com/partner-tenant/oauth2/v2.0/token",
        "same": "https://idp.example.com/token",
    }


def test_token_requests_of_a_named_api_pass_outside_its_rate_limiter(wiremock: WireMock) -> None:
    stub_token_per_scope(wiremock)
    config = two_api_config(wiremock)
    # one call every 5 s after the first: a token request that took a slot would stall 5 s
    config["script-behavior"]["rate-limiting"] = {
        "enabled": True,
        "calls-per-second": 0.2,
        "burst-size": 1,
    }
    run_stats.reset()
    started = time.monotonic()
    with create_rest_api(config, api="graph") as graph:
        graph.get("users")
    assert time.monotonic() - started < 2.5
    assert wiremock.count("POST", "/oauth/token") == 1
    assert run_stats.get(run_stats.API_CALLS) == 1  # the GET; the token request is not one


def test_the_manager_keeps_one_client_per_api(wiremock: WireMock) -> None:
    stub_token_per_scope(wiremock)
    with ApiManager(two_api_config(wiremock)) as manager:
        graph = manager.get_rest_api(api="graph")
        assert manager.get_rest_api(api="graph") is graph
        assert manager.get_rest_api() is not graph
        assert manager.get_rest_api(require_auth=False, api="graph") is not graph
        assert graph.base_url == f"{other_origin(wiremock)}/graph/v1.0"
    with pytest.raises(ApiOperationError, match="client was closed"):
        graph.get("users")


@pytest.mark.parametrize("name", ["graph", "business-central", "sp2"])
def test_a_named_apis_static_token_is_where_the_secrets_loader_puts_name_token(name: str) -> None:
    from utils._config_loader import secret_name
    from utils._named_apis import static_token_name

    assert static_token_name(name) == "_" + secret_name(f"{name}-token")


def test_query_parameters_reach_the_server_percent_encoded_per_rfc_3986(
    wiremock: WireMock, api: TxoRestAPI
) -> None:
    wiremock.stub(
        {"request": {"method": "GET", "urlPath": "/api/items"}, "response": json_response([])}
    )
    params = {
        "$filter": "status eq 'open' and amount gt 5",
        "$select": "id,name",
        "note": "a+b&c=d #1 é",
    }
    assert api.get("items", params=params) == []
    (seen,) = wiremock.requests()
    assert seen["url"] == (
        "/api/items?$filter=status%20eq%20'open'%20and%20amount%20gt%205"
        "&$select=id,name&note=a%2Bb%26c%3Dd%20%231%20%C3%A9"
    )
    decoded = {name: entry["values"] for name, entry in seen["queryParams"].items()}
    assert decoded == {name: [value] for name, value in params.items()}


# -- decoding: orjson where it agrees with the stdlib, the stdlib everywhere else ---------------
ODATA_JSON = "application/json; odata.metadata=minimal; odata.streaming=true; charset=utf-8"
DECODING_CASES: list[tuple[str, bytes, str | None]] = [
    (
        "plain OData page",
        b'{"value": [{"id": 1, "n": "caf\xc3\xa9 \xf0\x9f\x98\x80"}]}',
        ODATA_JSON,
    ),
    ("no charset", b'{"a": [1, 2.5, true, null, "x"]}', "application/json"),
    ("integer beyond 64 bits", b'{"id": 123456789012345678901234567890}', "application/json"),
    ("negative beyond 64 bits", b"[-9223372036854775809, 18446744073709551616]", ODATA_JSON),
    ("64-bit edges", b"[-9223372036854775808, 18446744073709551615]", ODATA_JSON),
    ("19-digit text", b'{"id": "1234567890123456789"}', ODATA_JSON),
    ("NaN and Infinity", b'{"a": NaN, "b": Infinity, "c": -Infinity}', "application/json"),
    ("beyond a double", b"[1e400, -1e400, 1e-400]", "application/json"),
    ("numbers", b"[-0, -0.0, 1.0, 1E2, 0.1000000000000000055511151231257827, 5e-324]", ODATA_JSON),
    ("byte-order mark", b'\xef\xbb\xbf{"a": 1}', "application/json"),
    ("byte-order mark, utf-8 declared", b'\xef\xbb\xbf{"a": 1}', ODATA_JSON),
    ("escaped lone surrogate", b'{"s": "\\ud800", "t": "\\udc00x"}', ODATA_JSON),
    ("escaped pair", b'{"s": "\\ud83d\\ude00\\u00e9"}', ODATA_JSON),
    ("raw lone surrogate", b'{"s": "\xed\xa0\x80"}', "application/json"),
    ("raw lone surrogate, utf-8 declared", b'{"s": "\xed\xa0\x80"}', ODATA_JSON),
    ("duplicate keys", b'{"a": 1, "b": 2, "a": 3}', ODATA_JSON),
    ("latin-1 declared", b'{"n": "caf\xe9"}', "application/json; charset=iso-8859-1"),
    ("cp1252 declared", b'{"n": "\x80 5"}', "application/json; charset=windows-1252"),
    ("utf-16 with its mark", '{"n": "é"}'.encode("utf-16"), "application/json"),
    ("utf-16-le without a mark", '{"n": "é"}'.encode("utf-16-le"), "application/json"),
    ("utf-16 declared", '{"n": "é"}'.encode("utf-16"), "application/json; charset=utf-16"),
    ("not utf-8, none declared", b'{"n": "caf\xe9"}', "application/json"),
    ("broken JSON", b'{"a": [1, 2}', ODATA_JSON),
    ("broken JSON, no content type", b'{"a": ', None),
    ("JSON, no content type", b'{"a": 12345678901234567890123}', None),
    ("vendor json type", b'{"data": {"id": "1"}}', "application/vnd.api+json"),
]


def _outcome(call: Any) -> str:
    """What a call gave, exactly: repr shows types, key order, -0.0, nan and every digit."""
    try:
        return f"returned {call()!r}"
    except ApiOperationError as err:
        return f"raised {type(err).__name__}: {err}"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [pytest.param(body, ct, id=name) for name, body, ct in DECODING_CASES],
)
def test_get_returns_exactly_what_the_stdlib_decoding_returns(
    wiremock: WireMock,
    api: TxoRestAPI,
    monkeypatch: pytest.MonkeyPatch,
    body: bytes,
    content_type: str | None,
) -> None:
    response: dict[str, Any] = {"status": 200, "base64Body": base64.b64encode(body).decode()}
    if content_type is not None:
        response["headers"] = {"Content-Type": content_type}
    wiremock.stub({"request": {"method": "GET", "urlPath": "/api/body"}, "response": response})
    fast = _outcome(lambda: api.get("body"))
    monkeypatch.setattr(http_body, "orjson", None)  # the stdlib path alone, as before orjson
    stdlib = _outcome(lambda: api.get("body"))
    assert fast == stdlib
    assert wiremock.count("GET", url_path="/api/body") == 2


@pytest.mark.parametrize(
    "body",
    [
        b"[12345678901234567890]",
        b'{"id": "1234567890123456789"}',
        b"[NaN]",
        b"[1e400]",
        b'\xef\xbb\xbf{"a": 1}',
        b'"\\ud800"',
        b'"\xed\xa0\x80"',
        b'{"n": "caf\xe9"}',
        b'{"a": ',
    ],
)
def test_fast_json_leaves_what_it_could_get_wrong_to_the_stdlib(body: bytes) -> None:
    assert http_body.fast_json(body) is http_body.REFUSED


def test_fast_json_decodes_an_ordinary_page_itself() -> None:
    body = b'{"value": [{"id": 922337203685477580, "x": 0.1, "s": "\xc3\xa9"}]}'
    assert http_body.fast_json(body) == {"value": [{"id": 922337203685477580, "x": 0.1, "s": "é"}]}


# ==== contract_http_flow: Contract tests of token refresh, 202 polling, the circuit breaker and the rate limiter.
#
# Written from DESIGN §3 (``utils.api_common``, ``utils.api_factory``) and §4 (Location is
# resolved like a browser resolves a link); every count is the server's journal.
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
        allowed = burst + rate * (window + SERVER_JITTER_MS / 1000)
        assert max_in_window(stamps, window * 1000) <= allowed, window
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
