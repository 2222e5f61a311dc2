"""TxoRestAPI against a real WireMock: URLs, bodies, errors, auth, origins, threads, manager.

Its helpers, shared with the other ``test_api_*`` modules, are in ``tests/support_api.py``.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, quote

import pytest

from tests.http_contract_support import hang_guard, header, other_origin, sequence
from tests.support_api import TOKEN, json_response, make_config
from tools.wiremock_server import WireMock
from utils import run_stats
from utils.api_factory import ApiManager, TxoRestAPI, create_rest_api
from utils.exceptions import (
    ApiAuthenticationError,
    ApiOperationError,
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
    assert header(seen, "Authorization") == f"Bearer {TOKEN}"
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
        create_rest_api({"global": {}, "_token": TOKEN})


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
    from utils.auth import clear_token_providers

    clear_token_providers()
    wiremock.stub({"request": {"method": "GET", "urlPath": "/api/me"}, "response": {"status": 401}})
    config = make_config(f"{wiremock.base_url}/api", _az_token=TOKEN)
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
    from utils.auth import clear_token_providers

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
    from utils.auth import clear_token_providers

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
    assert header(moved, "Authorization") == f"Bearer {TOKEN}"
    assert header(landed, "Authorization") is None


def test_absolute_url_on_another_origin_gets_no_token(wiremock: WireMock, api: TxoRestAPI) -> None:
    wiremock.stub(
        {"request": {"method": "GET", "urlPath": "/foreign"}, "response": json_response([])}
    )
    api.get(f"{other_origin(wiremock)}/foreign")
    api.get(f"{wiremock.base_url}/foreign")
    foreign, own = wiremock.find("GET", "/foreign")
    assert header(foreign, "Authorization") is None
    assert header(own, "Authorization") == f"Bearer {TOKEN}"


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
    from utils.auth import clear_token_providers

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
    from utils._named_apis import api_config
    from utils.auth import TokenProvider

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
    from utils._named_apis import static_token_name
    from utils.config_loader import secret_name

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
