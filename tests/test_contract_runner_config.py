"""Contract checks for config, secrets, tokens and the script runner (DESIGN.md §3-§4).

Every case runs a real script (``tests/scripts/contract_script.py``) as a subprocess in a
scratch copy of the project, with a real WireMock as the token endpoint and the API: exit
codes, what the console shows (no traceback, the key, line or file named, no secret), what
the server saw (journal counts and the exact form body) and what was written to disk.
"""

from __future__ import annotations

import copy
import json
import signal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from tests.support_clock import FakeClock
from tests.support_scripts import ERROR_EXIT_CODES, ROOT, SIGNAL_WAIT, Project, Run, wait_for_line
from tools.wiremock_server import WireMock, free_port
from utils import auth, config_loader, redaction
from utils.config_loader import read_json_file
from utils.exceptions import ApiAuthenticationError, ConfigurationError

pytestmark = pytest.mark.integration

TOKEN_PATH = "/tenant-x/oauth2/v2.0/token"
SECRET = "C0ntract-Client-S3cret~value"
TOKEN = "eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiJhcGkifQ.c2lnLXZhbHVl"
SHORT_TIMEOUT_SECONDS = 0.3
REDACTED_MARK = "[REDACTED]"

# DESIGN §4's example, verbatim.
SEED_EXAMPLE: dict[str, Any] = {
    "global": {
        "api-base-url": "https://api.example.com",
        "api-version": "v2",
        "tenant-id": "azure-tenant-guid",
        "client-id": "oauth-client-id",
        "oauth-scope": "https://api/.default",
    },
    "script-behavior": {
        "api-delay-seconds": 1,
        "api-timeouts": {
            "rest-timeout-seconds": 60,
            "async-max-wait": 300,
            "async-poll-interval": 5,
        },
        "retry-strategy": {"max-retries": 3, "backoff-factor": 2.0},
        "jitter": {"min-factor": 0.8, "max-factor": 1.2},
        "rate-limiting": {"enabled": True, "calls-per-second": 10, "burst-size": 1},
        "circuit-breaker": {"enabled": True, "failure-threshold": 5, "timeout-seconds": 60},
        "batch-handling": {"read-batch-size": 100, "update-batch-size": 50},
    },
}


def client_config(
    token_url: str | None, api_url: str = "https://api.example.com"
) -> dict[str, Any]:
    """A small config with client credentials and fast settings."""
    config: dict[str, Any] = {
        "global": {
            "api-base-url": api_url,
            "tenant-id": "tenant-x",
            "client-id": "client-42",
            "oauth-scope": "https://api.example.com/.default",
        },
        "script-behavior": {
            "api-delay-seconds": 0,
            "api-timeouts": {"rest-timeout-seconds": 1},
            "retry-strategy": {"max-retries": 2, "backoff-factor": 0.01},
            "jitter": {"min-factor": 1.0, "max-factor": 1.0},
        },
    }
    if token_url:
        config["global"]["oauth-token-url"] = token_url
    return config


def stub_token(wm: WireMock, token: str, expires_in: Any = 3599, **extra: Any) -> None:
    wm.stub(
        {
            "request": {"method": "POST", "urlPath": TOKEN_PATH},
            "response": {
                "status": 200,
                "headers": {"Content-Type": "application/json"},
                "jsonBody": {
                    "token_type": "Bearer",
                    "expires_in": expires_in,
                    "access_token": token,
                },
            },
            **extra,
        }
    )


def assert_clean_exit(run: Run, code: int, *named: str) -> None:
    """Exit ``code``, the rendered error and the summary on stderr, no traceback, no secret."""
    assert run.code == code, run
    console = run.stderr
    if console.startswith("{"):  # JSON lines: read the messages
        console = "\n".join(json.loads(line)["message"] for line in console.splitlines())
    assert "Traceback" not in console
    assert "❌ Problem:" in console
    assert "✅ Solution:" in console
    assert f"Run summary: exit {code}" in console
    assert SECRET not in console
    for text in named:
        assert text in console, f"{text!r} not named in\n{console}"


NO_TOKEN = {"CONTRACT_REQUIRE_TOKEN": "0"}


# -- the contract's own examples validate -------------------------------------------------------
def small_variant() -> dict[str, Any]:
    config = copy.deepcopy(SEED_EXAMPLE)
    config["global"]["oauth-token-url"] = "https://login.example.com/t/oauth2/v2.0/token"
    behaviour = config["script-behavior"]
    behaviour["api-delay-seconds"] = 0
    behaviour["retry-strategy"]["backoff-factor"] = 0.05
    behaviour["api-timeouts"]["async-poll-interval"] = 1
    behaviour["api-timeouts"]["rest-timeout-seconds"] = 1
    return config


@pytest.mark.parametrize(
    "config",
    [
        SEED_EXAMPLE,
        small_variant(),
        {"global": {"api-base-url": "https://api.example.com"}},
        {"global": {"api-base-url": "http://127.0.0.1:8089/api/v2.0/companies(1)"}},
        {
            "global": {"api-base-url": "https://a.example.com"},
            "script-behavior": {
                "api-delay-seconds": 0.25,
                "retry-strategy": {"max-retries": 0, "backoff-factor": 0},
                "api-timeouts": {"rest-timeout-seconds": 0.5, "async-poll-interval": 0.1},
                "rate-limiting": {"calls-per-second": 0.5},
            },
        },
    ],
    ids=["seed", "seed-small-numbers", "minimal", "local-url", "fractions-and-zeros"],
)
def test_valid_configs_load_with_defaults(project: Project, config: dict[str, Any]) -> None:
    project.write_config(config)
    run = project.run("probe", "acme", "test", env={"PROBE_REQUIRE_TOKEN": "0"})
    assert run.code == 0, run
    loaded = json.loads(run.stdout.strip().splitlines()[-1])["config"]
    behaviour = loaded["script-behavior"]
    assert behaviour["retry-strategy"]["max-retries"] == config.get("script-behavior", {}).get(
        "retry-strategy", {}
    ).get("max-retries", 3)
    assert behaviour["retry-strategy"]["max-wait-seconds"] == 300
    assert behaviour["rate-limiting"]["enabled"] is True
    assert behaviour["circuit-breaker"]["failure-threshold"] == 5
    assert behaviour["batch-handling"] == config.get("script-behavior", {}).get(
        "batch-handling", {"read-batch-size": 100, "update-batch-size": 50}
    )
    assert loaded["_org_id"] == "acme" and loaded["_env_type"] == "test"
    assert loaded["_token"] is None


def test_a_byte_order_mark_is_accepted(project: Project) -> None:
    """Windows editors save UTF-8 with a BOM; the file is still UTF-8 JSON."""
    project.write_config(b"\xef\xbb\xbf" + json.dumps(SEED_EXAMPLE).encode())
    project.write_secrets("\ufeff" + json.dumps({"client-secret": SECRET}))
    run = project.run("probe", "acme", "test", env={"PROBE_REQUIRE_TOKEN": "0"})
    assert run.code == 0, run
    assert json.loads(run.stdout.strip().splitlines()[-1])["config"]["_client_secret"] == SECRET


def test_the_shipped_examples_validate() -> None:
    example = json.loads((ROOT / "config" / "org-env-config_example.json").read_text())
    config_loader.validate_config(example, "example")
    secrets = json.loads((ROOT / "config" / "org-env-config-secrets_example.json").read_text())
    assert set(secrets) >= {"client-secret", "az-token"}


def test_the_schema_describes_every_key_and_closes_every_object() -> None:
    schema = json.loads((ROOT / "schemas" / "org-env-config-schema.json").read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"

    def walk(node: dict[str, Any], path: str) -> None:
        assert node.get("additionalProperties") is False, path
        for key, sub in node["properties"].items():
            assert key == key.lower() and "_" not in key, f"{path}{key} is not kebab-case"
            assert sub.get("description"), f"{path}{key} has no description"
            assert "default" in sub or key in node.get("required", []), f"{path}{key}"
            if "propertyNames" in sub:  # a map of named entries (apis, scripts)
                entry = sub["additionalProperties"]
                if "properties" in entry:
                    walk(entry, f"{path}{key} → * → ")
            elif sub.get("type") == "object":
                walk(sub, f"{path}{key} → ")

    walk(schema, "")


# -- bad configs: exit 2, no traceback, the problem named, nothing done -------------------------
BASE = '{"global": {"api-base-url": "https://a.example.com"}'
BAD_CONFIGS: list[tuple[str, Any, tuple[str, ...]]] = [
    ("top_level_list", "[1, 2]", ("array", "not an object")),
    ("top_level_string", '"config"', ("string", "not an object")),
    ("top_level_null", "null", ("null",)),
    ("empty_file", "", ("is empty",)),
    ("whitespace_only", "  \n\t ", ("is empty",)),
    (
        "trailing_comma",
        '{"global": {"api-base-url": "https://a.example.com",}}',
        ("line 1", "column"),
    ),
    (
        "trailing_comma_multiline",
        '{\n  "global": {\n    "api-base-url": "https://a.b",\n  }\n}',
        ("line 4",),
    ),
    ("comment", '{"global": {"api-base-url": "https://a.b"} // note\n}', ("line 1",)),
    ("single_quotes", "{'global': {}}", ("line 1",)),
    ("not_utf8", b'{"global": {"api-base-url": "https://a.b\xff"}}', ("UTF-8",)),
    ("nan", BASE + ', "script-behavior": {"api-delay-seconds": NaN}}', ("NaN",)),
    (
        "infinity",
        BASE + ', "script-behavior": {"api-timeouts": {"rest-timeout-seconds": Infinity}}}',
        ("Infinity",),
    ),
    ("overflow", BASE + ', "script-behavior": {"api-delay-seconds": 1e999}}', ("1e999",)),
    ("deeply_nested", "[" * 50_000 + "]" * 50_000, ("nested too deeply",)),
    (
        "duplicate_key",
        '{"global": {"api-base-url": "https://a.b", "api-base-url": "https://c.d"}}',
        ("api-base-url", "twice"),
    ),
    ("no_global", "{}", ("global",)),
    ("global_is_list", '{"global": []}', ("global",)),
    ("no_base_url", '{"global": {"client-id": "x"}}', ("api-base-url",)),
    ("base_url_number", '{"global": {"api-base-url": 42}}', ("api-base-url",)),
    (
        "base_url_not_http",
        '{"global": {"api-base-url": "ftp://files.example.com"}}',
        ("api-base-url",),
    ),
    ("base_url_empty", '{"global": {"api-base-url": ""}}', ("api-base-url",)),
    (
        "token_url_not_url",
        '{"global": {"api-base-url": "https://a.b", "oauth-token-url": "login/token"}}',
        ("oauth-token-url",),
    ),
    (
        "tenant_number",
        '{"global": {"api-base-url": "https://a.b", "tenant-id": 7}}',
        ("tenant-id",),
    ),
    ("unknown_top", BASE + ', "extras": {}}', ("extras",)),
    (
        "unknown_global",
        '{"global": {"api-base-url": "https://a.b", "base-url": "x"}}',
        ("base-url",),
    ),
    (
        "unknown_camel_global",
        '{"global": {"api-base-url": "https://a.b", "clientId": "x"}}',
        ("clientId", "client-id"),
    ),
    ("unknown_behaviour", BASE + ', "script-behavior": {"delay": 1}}', ("delay",)),
    (
        "unknown_nested",
        BASE + ', "script-behavior": {"retry-strategy": {"retries": 1}}}',
        ("retries",),
    ),
    (
        "unknown_breaker",
        BASE + ', "script-behavior": {"circuit-breaker": {"enabled": true, "reset": 5}}}',
        ("reset",),
    ),
    (
        "secret_in_config",
        '{"global": {"api-base-url": "https://a.b", "client-secret": "' + SECRET + '"}}',
        ("client-secret", "secrets"),
    ),
    (
        "auth_in_config",
        '{"global": {"api-base-url": "https://a.b", "auth": "' + SECRET + '"}}',
        ("auth", "secrets"),
    ),
    (
        "token_url_typo",
        '{"global": {"api-base-url": "https://a.b", "token-url": "https://login/x"}}',
        ("token-url", "oauth-token-url"),
    ),
    (
        "password_in_config",
        '{"global": {"api-base-url": "https://a.b", "password": "' + SECRET + '"}}',
        ("password", "secrets"),
    ),
    ("behaviour_list", BASE + ', "script-behavior": []}', ("script-behavior",)),
    ("behaviour_null", BASE + ', "script-behavior": null}', ("script-behavior",)),
    ("timeouts_string", BASE + ', "script-behavior": {"api-timeouts": "60"}}', ("api-timeouts",)),
    (
        "delay_negative",
        BASE + ', "script-behavior": {"api-delay-seconds": -1}}',
        ("api-delay-seconds",),
    ),
    (
        "delay_string",
        BASE + ', "script-behavior": {"api-delay-seconds": "1"}}',
        ("api-delay-seconds",),
    ),
    (
        "delay_bool",
        BASE + ', "script-behavior": {"api-delay-seconds": true}}',
        ("api-delay-seconds",),
    ),
    (
        "rest_timeout_zero",
        BASE + ', "script-behavior": {"api-timeouts": {"rest-timeout-seconds": 0}}}',
        ("rest-timeout-seconds",),
    ),
    (
        "async_max_wait_zero",
        BASE + ', "script-behavior": {"api-timeouts": {"async-max-wait": 0}}}',
        ("async-max-wait",),
    ),
    (
        "poll_interval_zero",
        BASE + ', "script-behavior": {"api-timeouts": {"async-poll-interval": 0}}}',
        ("async-poll-interval",),
    ),
    (
        "poll_interval_negative",
        BASE + ', "script-behavior": {"api-timeouts": {"async-poll-interval": -0.5}}}',
        ("async-poll-interval",),
    ),
    (
        "retries_negative",
        BASE + ', "script-behavior": {"retry-strategy": {"max-retries": -1}}}',
        ("max-retries",),
    ),
    (
        "retries_fraction",
        BASE + ', "script-behavior": {"retry-strategy": {"max-retries": 1.5}}}',
        ("max-retries",),
    ),
    (
        "retries_string",
        BASE + ', "script-behavior": {"retry-strategy": {"max-retries": "3"}}}',
        ("max-retries",),
    ),
    (
        "backoff_negative",
        BASE + ', "script-behavior": {"retry-strategy": {"backoff-factor": -2}}}',
        ("backoff-factor",),
    ),
    (
        "max_wait_negative",
        BASE + ', "script-behavior": {"retry-strategy": {"max-wait-seconds": -1}}}',
        ("max-wait-seconds",),
    ),
    (
        "jitter_negative",
        BASE + ', "script-behavior": {"jitter": {"min-factor": -0.1}}}',
        ("min-factor",),
    ),
    (
        "jitter_inverted",
        BASE + ', "script-behavior": {"jitter": {"min-factor": 1.5, "max-factor": 1.2}}}',
        ("min-factor", "max-factor"),
    ),
    (
        "rate_zero",
        BASE + ', "script-behavior": {"rate-limiting": {"calls-per-second": 0}}}',
        ("calls-per-second",),
    ),
    (
        "burst_zero",
        BASE + ', "script-behavior": {"rate-limiting": {"burst-size": 0}}}',
        ("burst-size",),
    ),
    (
        "burst_fraction",
        BASE + ', "script-behavior": {"rate-limiting": {"burst-size": 2.5}}}',
        ("burst-size",),
    ),
    (
        "enabled_string",
        BASE + ', "script-behavior": {"rate-limiting": {"enabled": "true"}}}',
        ("enabled",),
    ),
    (
        "threshold_zero",
        BASE + ', "script-behavior": {"circuit-breaker": {"failure-threshold": 0}}}',
        ("failure-threshold",),
    ),
    (
        "breaker_timeout_zero",
        BASE + ', "script-behavior": {"circuit-breaker": {"timeout-seconds": 0}}}',
        ("timeout-seconds",),
    ),
    (
        "batch_zero",
        BASE + ', "script-behavior": {"batch-handling": {"read-batch-size": 0}}}',
        ("read-batch-size",),
    ),
    (
        "batch_string",
        BASE + ', "script-behavior": {"batch-handling": {"update-batch-size": "50"}}}',
        ("update-batch-size",),
    ),
]


@pytest.mark.parametrize(("case", "content", "named"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_exits_two_naming_the_problem(
    project: Project, wiremock: WireMock, case: str, content: Any, named: tuple[str, ...]
) -> None:
    project.write_config(content)
    project.write_secrets({"client-secret": SECRET})
    stub_token(wiremock, TOKEN)
    run = project.run("contract_script", "acme", "test", env={"CONTRACT_ACTION": "api"})
    assert_clean_exit(run, 2, "config/acme-test-config.json", *named)
    assert REDACTED_MARK not in run.stderr, "the message itself was mangled by redaction"
    assert SECRET not in project.log_text()
    assert "done" not in run.stdout
    assert project.outputs() == []
    assert wiremock.count("ANY") == 0


def test_every_schema_problem_is_listed_at_once(project: Project) -> None:
    project.write_config(
        BASE + ', "script-behavior": {"api-delay-seconds": -1, "jitter": {"max-factor": "x"},'
        ' "surprise": 1}}'
    )
    run = project.run("probe", "acme", "test", env={"PROBE_REQUIRE_TOKEN": "0"})
    assert_clean_exit(run, 2, "3 problems", "api-delay-seconds", "max-factor", "surprise")


def test_missing_config_names_the_file_and_the_copy_command(project: Project) -> None:
    run = project.run("probe", "acme", "test", env={"PROBE_REQUIRE_TOKEN": "0"})
    assert_clean_exit(
        run, 2, "config/acme-test-config.json", "cp config/org-env-config_example.json"
    )


# -- bad secrets ------------------------------------------------------------------------------
BAD_SECRETS: list[tuple[str, Any, tuple[str, ...]]] = [
    ("list", f'["{SECRET}"]', ("array", "not an object")),
    ("string", f'"{SECRET}"', ("string",)),
    ("number_value", {"client-secret": 12345678}, ("client-secret", "number")),
    ("object_value", {"client-secret": {"value": SECRET}}, ("client-secret", "object")),
    ("null_value", {"client-secret": None}, ("client-secret", "null")),
    ("bool_value", {"client-secret": SECRET, "enabled": True}, ("enabled", "boolean")),
    ("empty_file", "", ("is empty",)),
    ("trailing_comma", f'{{"client-secret": "{SECRET}",}}', ("line 1", "column")),
    (
        "duplicate_key",
        f'{{"client-secret": "{SECRET}", "client-secret": "{SECRET}2"}}',
        ("client-secret", "twice"),
    ),
    ("collides_with_org_id", {"org-id": SECRET}, ("org-id", "_org_id")),
    ("collides_with_env_type", {"envType": SECRET}, ("envType", "_env_type")),
    ("collides_with_token", {"token": SECRET}, ("token", "_token")),
    ("collides_underscored", {"_token": SECRET}, ("_token",)),
    (
        "two_keys_one_name",
        {"client-secret": SECRET, "client_secret": SECRET + "2"},
        ("_client_secret",),
    ),
    ("unnamable_key", {"%%%": SECRET}, ("%%%",)),
    ("nan_value", '{"client-secret": NaN}', ("NaN",)),
]


@pytest.mark.parametrize(("case", "content", "named"), BAD_SECRETS, ids=[c[0] for c in BAD_SECRETS])
def test_bad_secrets_exit_two_naming_the_file_not_the_value(
    project: Project, wiremock: WireMock, case: str, content: Any, named: tuple[str, ...]
) -> None:
    project.write_config(client_config(wiremock.base_url + TOKEN_PATH))
    project.write_secrets(content)
    stub_token(wiremock, TOKEN)
    run = project.run("contract_script", "acme", "test", env={"CONTRACT_ACTION": "api"})
    assert_clean_exit(run, 2, "config/acme-test-config-secrets.json", *named)
    assert REDACTED_MARK not in run.stderr, "the message itself was mangled by redaction"
    assert SECRET not in project.log_text()
    assert project.outputs() == []
    assert wiremock.count("ANY") == 0


def test_missing_secrets_file_when_a_token_is_needed(project: Project, wiremock: WireMock) -> None:
    project.write_config(client_config(wiremock.base_url + TOKEN_PATH))
    run = project.run("probe", "acme", "test")
    assert_clean_exit(run, 2, "config/acme-test-config-secrets.json", "not found")
    assert REDACTED_MARK not in run.stderr
    assert wiremock.count("ANY") == 0


@pytest.mark.parametrize(
    ("remove", "named"),
    [
        (("tenant-id",), ("tenant-id",)),
        (("client-id",), ("client-id",)),
        (("oauth-scope",), ("oauth-scope",)),
        (("tenant-id", "client-id", "oauth-scope"), ("tenant-id", "client-id", "oauth-scope")),
    ],
)
def test_missing_client_credential_keys_are_named(
    project: Project, wiremock: WireMock, remove: tuple[str, ...], named: tuple[str, ...]
) -> None:
    config = client_config(None)
    for key in remove:
        del config["global"][key]
    project.write_config(config)
    project.write_secrets({"client-secret": SECRET})
    run = project.run("probe", "acme", "test")
    assert_clean_exit(run, 2, *named)
    assert REDACTED_MARK not in run.stderr


def test_missing_client_secret_is_named(project: Project, wiremock: WireMock) -> None:
    project.write_config(client_config(wiremock.base_url + TOKEN_PATH))
    project.write_secrets({"other": "value-1234"})
    run = project.run("probe", "acme", "test")
    assert_clean_exit(run, 2, "client-secret")
    assert wiremock.count("ANY") == 0


def test_tenant_id_is_not_needed_with_a_token_url(project: Project, wiremock: WireMock) -> None:
    config = client_config(wiremock.base_url + TOKEN_PATH)
    del config["global"]["tenant-id"]
    project.write_config(config)
    project.write_secrets({"client-secret": SECRET})
    stub_token(wiremock, TOKEN)
    run = project.run("probe", "acme", "test")
    assert run.code == 0, run
    assert wiremock.count("POST", TOKEN_PATH) == 1


def test_credentials_are_not_needed_without_a_token(project: Project) -> None:
    project.write_config({"global": {"api-base-url": "https://a.example.com"}})
    run = project.run("probe", "acme", "test", env={"PROBE_REQUIRE_TOKEN": "0"})
    assert run.code == 0, run


# -- org / env names --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("org", "env"),
    [
        ("a/b", "test"),
        ("..", "test"),
        ("acme", "../etc"),
        ("acme corp", "test"),
        ("acmé", "test"),
        ("", "test"),
        ("acme", ""),
        ("acme-x", "test"),
        (".hidden", "test"),
        ("acme", "a\\b"),
        ("acme", "x" * 200),
    ],
)
def test_org_and_env_must_be_plain_names(project: Project, org: str, env: str) -> None:
    run = project.run("probe", org, env, env={"PROBE_REQUIRE_TOKEN": "0"})
    assert_clean_exit(run, 2)
    assert "plain name" in run.stderr or "Bad command line" in run.stderr
    assert REDACTED_MARK not in run.stderr


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["acme"],
        ["acme", "test", "extra"],
        ["acme", "test", "--log-format", "xml"],
        ["acme", "test", "--log-level", "LOUD"],
        ["acme", "test", "--bogus"],
    ],
)
def test_bad_command_lines_exit_two(project: Project, args: list[str]) -> None:
    project.write_config({"global": {"api-base-url": "https://a.example.com"}})
    run = project.run("probe", *args, env={"PROBE_REQUIRE_TOKEN": "0"})
    assert_clean_exit(run, 2, "ORG_ID ENV_TYPE")


# -- injection ----------------------------------------------------------------------------------
def test_secrets_are_injected_as_underscore_snake_case(
    project: Project, wiremock: WireMock
) -> None:
    project.write_config(client_config(wiremock.base_url + TOKEN_PATH))
    project.write_secrets(
        {
            "client-secret": SECRET,
            "az-token": "",
            "sftp-password": "pw-value-1",
            "apiKey": "api-key-value-2",
            "SHAREPOINT_TOKEN": "sp-token-value-3",
        }
    )
    stub_token(wiremock, TOKEN)
    run = project.run("probe", "acme", "test")
    assert run.code == 0, run
    config = json.loads(run.stdout.strip().splitlines()[-1])["config"]
    injected = {k: v for k, v in config.items() if k.startswith("_")}
    assert injected == {
        "_client_secret": SECRET,
        "_az_token": "",
        "_sftp_password": "pw-value-1",
        "_api_key": "api-key-value-2",
        "_sharepoint_token": "sp-token-value-3",
        "_org_id": "acme",
        "_env_type": "test",
        "_token": TOKEN,
        "_dry_run": False,
        "_full_refresh": False,
        "_args": {
            "org_id": "acme",
            "env_type": "test",
            "log_format": None,
            "log_level": None,
            "dry_run": False,
            "full_refresh": False,
        },
    }
    for value in ("pw-value-1", "api-key-value-2", "sp-token-value-3", SECRET, TOKEN):
        assert value not in run.stderr and value not in project.log_text()


@pytest.mark.parametrize(
    "az_token", ["aztok-Value-123", "Bearer aztok-Value-123", "bearer  aztok-Value-123 "]
)
def test_az_token_is_used_raw_without_a_token_request(
    project: Project, wiremock: WireMock, az_token: str
) -> None:
    project.write_config(client_config(wiremock.base_url + TOKEN_PATH))
    project.write_secrets({"client-secret": SECRET, "az-token": az_token})
    run = project.run("probe", "acme", "test")
    assert run.code == 0, run
    assert json.loads(run.stdout.strip().splitlines()[-1])["config"]["_token"] == "aztok-Value-123"
    assert wiremock.count("ANY") == 0
    assert "aztok-Value-123" not in run.stderr and "aztok-Value-123" not in project.log_text()


# -- the token request as the server saw it ------------------------------------------------------
def test_token_request_is_the_exact_client_credentials_form(
    project: Project, wiremock: WireMock
) -> None:
    project.write_config(client_config(wiremock.base_url + TOKEN_PATH))
    project.write_secrets({"client-secret": SECRET})
    stub_token(wiremock, TOKEN)
    run = project.run("probe", "acme", "test", env={"PROBE_TOKEN_CALLS": "5"})
    assert run.code == 0, run
    seen = wiremock.find("POST", TOKEN_PATH)
    assert len(seen) == 1 and wiremock.count("ANY") == 1
    request = seen[0]
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert "authorization" not in headers
    assert parse_qs(request["body"], keep_blank_values=True) == {
        "grant_type": ["client_credentials"],
        "client_id": ["client-42"],
        "client_secret": [SECRET],
        "scope": ["https://api.example.com/.default"],
    }
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["config"]["_token"] == TOKEN
    assert report["tokens"] == [TOKEN] * 5


def test_default_token_url_is_azure_ad_for_the_tenant() -> None:
    provider = auth.TokenProvider(client_config(None) | {"_client_secret": SECRET})
    assert provider.token_url == "https://login.microsoftonline.com/tenant-x/oauth2/v2.0/token"
    assert provider.can_refresh


@pytest.mark.parametrize(("expires_in", "fresh_until"), [(3600, 3300.0), (600, 300.0), (100, 50.0)])
def test_token_is_cached_until_its_safety_margin(
    wiremock: WireMock, expires_in: int, fresh_until: float
) -> None:
    stub_token(wiremock, TOKEN, expires_in=expires_in)
    clock = FakeClock()
    config = client_config(wiremock.base_url + TOKEN_PATH) | {"_client_secret": SECRET}
    provider = auth.TokenProvider(config, clock=clock)
    try:
        assert provider.get_token() == TOKEN
        clock.now += fresh_until - 0.01
        assert provider.get_token() == TOKEN
        assert wiremock.count("POST", TOKEN_PATH) == 1
        clock.now += 0.02
        assert provider.get_token() == TOKEN
        assert wiremock.count("POST", TOKEN_PATH) == 2
        assert provider.refresh() == TOKEN
        assert wiremock.count("POST", TOKEN_PATH) == 3
    finally:
        redaction.clear_registered_secrets()


def test_providers_are_shared_per_credential_set(wiremock: WireMock) -> None:
    stub_token(wiremock, TOKEN)
    config = client_config(wiremock.base_url + TOKEN_PATH) | {"_client_secret": SECRET}
    auth.clear_token_providers()
    try:
        first = auth.get_token_provider(config)
        same = auth.get_token_provider(copy.deepcopy(config) | {"_token": TOKEN})
        other = auth.get_token_provider(config | {"_client_secret": SECRET + "-other"})
        assert first is same and first is not other
        first.get_token()
        same.get_token()
        assert wiremock.count("POST", TOKEN_PATH) == 1
    finally:
        auth.clear_token_providers()
        redaction.clear_registered_secrets()


def test_refresh_without_client_credentials_is_an_auth_error() -> None:
    provider = auth.TokenProvider(
        {"global": {"api-base-url": "https://a"}, "_az_token": "tok-1234"}
    )
    assert provider.get_token() == "tok-1234"
    assert not provider.can_refresh
    with pytest.raises(ApiAuthenticationError):
        provider.refresh()
    with pytest.raises(ConfigurationError, match="client-id"):
        auth.TokenProvider({"global": {}, "_client_secret": "s-1234"}).get_token()
    redaction.clear_registered_secrets()


# -- token endpoint failures: exit 3, no secret anywhere ----------------------------------------
TOKEN_FAILURES: list[tuple[str, dict[str, Any], int]] = [
    (
        "invalid_client_echoing_the_secret",
        {
            "status": 401,
            "jsonBody": {
                "error": "invalid_client",
                "error_description": f"AADSTS7000215: Invalid client secret provided: {SECRET}",
            },
        },
        1,
    ),
    ("invalid_scope", {"status": 400, "jsonBody": {"error": "invalid_scope"}}, 1),
    ("server_error_every_time", {"status": 500, "body": "oops"}, 3),
    ("throttled_every_time", {"status": 429, "headers": {"Retry-After": "0"}}, 3),
    (
        "html_instead_of_json",
        {"status": 200, "body": "<html>login</html>", "headers": {"Content-Type": "text/html"}},
        1,
    ),
    ("json_without_access_token", {"status": 200, "jsonBody": {"token_type": "Bearer"}}, 1),
    ("redirect_elsewhere", {"status": 302, "headers": {"Location": "http://127.0.0.1:9/steal"}}, 1),
    (
        "too_slow",
        {
            "status": 200,
            "fixedDelayMilliseconds": 800,
            "jsonBody": {"access_token": TOKEN, "expires_in": 3600},
        },
        3,
    ),
    ("reset_connection", {"fault": "CONNECTION_RESET_BY_PEER"}, 3),
]


@pytest.mark.parametrize(
    ("case", "response", "requests_seen"), TOKEN_FAILURES, ids=[c[0] for c in TOKEN_FAILURES]
)
def test_token_endpoint_failure_exits_three_without_the_secret(
    project: Project, wiremock: WireMock, case: str, response: dict[str, Any], requests_seen: int
) -> None:
    config = client_config(wiremock.base_url + TOKEN_PATH)
    config["script-behavior"]["api-timeouts"]["rest-timeout-seconds"] = SHORT_TIMEOUT_SECONDS
    project.write_config(config)
    project.write_secrets({"client-secret": SECRET})
    wiremock.stub({"request": {"method": "POST", "urlPath": TOKEN_PATH}, "response": response})
    run = project.run("contract_script", "acme", "test", env={"CONTRACT_ACTION": "api"})
    assert_clean_exit(run, 3, "token")
    assert SECRET not in project.log_text()
    assert TOKEN not in run.stderr and TOKEN not in project.log_text()
    assert wiremock.count("POST", TOKEN_PATH) == requests_seen
    assert wiremock.count("ANY") == requests_seen
    assert project.outputs() == []


def test_unreachable_token_endpoint_exits_three(project: Project) -> None:
    project.write_config(client_config(f"http://127.0.0.1:{free_port()}/token"))
    project.write_secrets({"client-secret": SECRET})
    run = project.run("probe", "acme", "test")
    assert_clean_exit(run, 3, "token endpoint")


# -- exit codes, summary, signals ---------------------------------------------------------------
@pytest.mark.parametrize(("raised", "code"), ERROR_EXIT_CODES)
def test_each_error_class_has_its_exit_code(project: Project, raised: str, code: int) -> None:
    project.write_config({"global": {"api-base-url": "https://a.example.com"}})
    run = project.run(
        "contract_script", "acme", "test", env={"CONTRACT_ACTION": f"raise:{raised}", **NO_TOKEN}
    )
    assert_clean_exit(run, code, "contract failure", "contract fix", "📝 Example: contract example")
    assert "Traceback" in project.log_text()


def test_unexpected_error_exits_one_with_the_traceback_in_the_file_only(project: Project) -> None:
    project.write_config({"global": {"api-base-url": "https://a.example.com"}})
    run = project.run(
        "contract_script", "acme", "test", env={"CONTRACT_ACTION": "raise:RuntimeError", **NO_TOKEN}
    )
    assert run.code == 1, run
    assert "Traceback" not in run.stderr
    assert "unexpected failure in the script" in run.stderr
    assert "Run summary: exit 1" in run.stderr
    assert "Traceback" in project.log_text()


def test_keyboard_interrupt_in_main_exits_130(project: Project) -> None:
    project.write_config({"global": {"api-base-url": "https://a.example.com"}})
    run = project.run(
        "contract_script",
        "acme",
        "test",
        env={"CONTRACT_ACTION": "raise:KeyboardInterrupt", **NO_TOKEN},
    )
    assert run.code == 130, run
    assert "Traceback" not in run.stderr
    assert "Run summary: exit 130" in run.stderr


def test_success_summary_has_the_real_counts(project: Project, wiremock: WireMock) -> None:
    project.write_config(client_config(wiremock.base_url + TOKEN_PATH, wiremock.base_url + "/api"))
    project.write_secrets({"client-secret": SECRET})
    stub_token(wiremock, TOKEN)
    scenario = "items"
    wiremock.stub(
        {
            "scenarioName": scenario,
            "requiredScenarioState": "Started",
            "newScenarioState": "throttled",
            "request": {"method": "GET", "urlPath": "/api/items"},
            "response": {"status": 429, "headers": {"Retry-After": "0"}},
        }
    )
    wiremock.stub(
        {
            "scenarioName": scenario,
            "requiredScenarioState": "throttled",
            "request": {"method": "GET", "urlPath": "/api/items"},
            "response": {"status": 200, "jsonBody": {"value": [{"id": 1}, {"id": 2}]}},
        }
    )
    run = project.run("contract_script", "acme", "test", env={"CONTRACT_ACTION": "api"})
    assert run.code == 0, run
    assert wiremock.count("GET", "/api/items") == 2
    summary = [line for line in run.stderr.splitlines() if "Run summary" in line]
    assert len(summary) == 1
    line = summary[0]
    for part in (
        "exit 0",
        "API calls 2",
        "retries 1",
        "429s 1",
        "breaker opens 0",
        "files written 1",
    ):
        assert part in line, line
    assert project.outputs() and project.outputs()[0].startswith("items")
    items = wiremock.find("GET", "/api/items")
    assert all(r["headers"].get("Authorization") == f"Bearer {TOKEN}" for r in items)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_mid_save_keeps_the_previous_file_and_no_temporary(
    project: Project, signum: int, code: int
) -> None:
    project.write_config({"global": {"api-base-url": "https://a.example.com"}})
    proc = project.start(
        "contract_script", "acme", "test", env={"CONTRACT_ACTION": "slow_save", **NO_TOKEN}
    )
    wait_for_line(proc, "first saved")
    before = (project.root / "output" / "data.jsonl").read_bytes()
    wait_for_line(proc, "second started")
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=SIGNAL_WAIT)
    assert proc.returncode == code, stderr
    assert "done" not in stdout
    assert "Traceback" not in stderr
    assert f"Run summary: exit {code}" in stderr
    assert project.outputs() == ["data.jsonl"]
    assert (project.root / "output" / "data.jsonl").read_bytes() == before
    assert len(before.splitlines()) == 50


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_debug_console_still_shows_no_traceback_for_a_helpful_error(
    project: Project, log_format: str
) -> None:
    project.write_config({"global": {"api-base-url": "https://a.example.com"}})
    run = project.run(
        "contract_script",
        "acme",
        "test",
        "--log-level",
        "DEBUG",
        "--log-format",
        log_format,
        env={"CONTRACT_ACTION": "raise:ApiOperationError", **NO_TOKEN},
    )
    assert_clean_exit(run, 4, "contract failure")
    assert "DEBUG" in run.stderr
    assert "Traceback" in project.log_text()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"a": NaN}', "holds NaN, which is not a JSON number"),
        ('{"a": -Infinity}', "holds -Infinity, which is not a JSON number"),
        ('{"a": 1e400}', "holds the number 1e400, which is too large"),
        ('{"a": 1, "a": 2}', "has the key 'a' twice in one object"),
        ("[" * 100_000 + "]" * 100_000, "is nested too deeply"),
        ("", "is empty"),
        ('{"a": 1,}', "is not valid JSON: Expecting property name"),
    ],
)
def test_read_json_file_is_strict(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "x-config.json"
    path.write_text(text)
    with pytest.raises(ConfigurationError) as caught:
        read_json_file(path, what="config file", show_line=True, example="e.json")
    assert problem in caught.value.what_went_wrong
    assert str(path) in caught.value.what_went_wrong


def test_read_json_file_accepts_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "x-config.json"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1.5}')
    assert read_json_file(path, what="config file", show_line=True, example="e.json") == {"a": 1.5}


def test_a_401_refresh_shares_the_first_tokens_provider(
    project: Project, wiremock: WireMock
) -> None:
    """script_runner's first token and the client's refresh after a 401 use one provider:
    exactly one token request each, and the retried call carries the new token."""
    project.write_config(client_config(wiremock.base_url + TOKEN_PATH, wiremock.base_url + "/api"))
    project.write_secrets({"client-secret": SECRET})
    for state, next_state, token in (
        ("Started", "second", TOKEN),
        ("second", "third", "tok-2-Zx9"),
    ):
        wiremock.stub(
            {
                "scenarioName": "tokens",
                "requiredScenarioState": state,
                "newScenarioState": next_state,
                "request": {"method": "POST", "urlPath": TOKEN_PATH},
                "response": {
                    "status": 200,
                    "jsonBody": {"access_token": token, "expires_in": 3600},
                },
            }
        )
    wiremock.stub(
        {
            "request": {
                "method": "GET",
                "urlPath": "/api/items",
                "headers": {"Authorization": {"equalTo": f"Bearer {TOKEN}"}},
            },
            "response": {"status": 401},
        }
    )
    wiremock.stub(
        {
            "request": {
                "method": "GET",
                "urlPath": "/api/items",
                "headers": {"Authorization": {"equalTo": "Bearer tok-2-Zx9"}},
            },
            "response": {"status": 200, "jsonBody": {"value": [{"id": 1}]}},
        }
    )
    run = project.run("contract_script", "acme", "test", env={"CONTRACT_ACTION": "api"})
    assert run.code == 0, run
    assert wiremock.count("POST", TOKEN_PATH) == 2
    assert wiremock.count("GET", "/api/items") == 2
    assert "tok-2-Zx9" not in run.stderr and "tok-2-Zx9" not in project.log_text()
