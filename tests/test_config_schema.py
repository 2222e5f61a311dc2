"""The config JSON Schema: its own rules, the configs it must accept or refuse, the defaults it
fills in, and the messages its violations produce."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from utils import _config_loader as config_loader
from utils._redaction import redact
from utils.exceptions import ValidationError

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "schemas" / "org-env-config-schema.json").read_text())
KEBAB = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
KEBAB_NAME = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$"

# DESIGN §4, verbatim: it must validate unchanged.
SEED_EXAMPLE = json.loads("""
{
  "global": {
    "api-base-url": "https://api.example.com",
    "api-version": "v2",
    "tenant-id": "azure-tenant-guid",
    "client-id": "oauth-client-id",
    "oauth-scope": "https://api/.default"
  },
  "script-behavior": {
    "api-delay-seconds": 1,
    "api-timeouts": {"rest-timeout-seconds": 60, "async-max-wait": 300, "async-poll-interval": 5},
    "retry-strategy": {"max-retries": 3, "backoff-factor": 2.0},
    "jitter": {"min-factor": 0.8, "max-factor": 1.2},
    "rate-limiting": {"enabled": true, "calls-per-second": 10, "burst-size": 1},
    "circuit-breaker": {"enabled": true, "failure-threshold": 5, "timeout-seconds": 60},
    "batch-handling": {"read-batch-size": 100, "update-batch-size": 50}
  }
}
""")


def seed_with_small_numbers() -> dict[str, Any]:
    config = copy.deepcopy(SEED_EXAMPLE)
    config["global"]["oauth-token-url"] = "http://127.0.0.1:8089/oauth2/token"
    behavior = config["script-behavior"]
    behavior["api-delay-seconds"] = 0
    behavior["retry-strategy"]["backoff-factor"] = 0.05
    behavior["api-timeouts"]["async-poll-interval"] = 1
    behavior["api-timeouts"]["rest-timeout-seconds"] = 1
    return config


def walk(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path or "(root)", schema
    for key, sub in schema.get("properties", {}).items():
        yield from walk(sub, f"{path}/{key}")
    if isinstance(schema.get("additionalProperties"), dict):  # the entries of a map (apis)
        yield from walk(schema["additionalProperties"], f"{path}/*")


# Objects keyed by names the user chooses: their keys follow a pattern, their entries a schema.
MAPS = {"/global/apis", "/scripts"}


def errors_of(config: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        config_loader.validate_config(config, "config/acme-prod-config.json")
    return str(caught.value).splitlines()


def with_value(path: str, value: Any) -> dict[str, Any]:
    config = copy.deepcopy(SEED_EXAMPLE)
    *parents, leaf = path.split("/")
    node = config
    for key in parents:
        node = node[key]
    node[leaf] = value
    return config


def test_schema_is_valid_draft_2020_12() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_every_object_refuses_unknown_keys() -> None:
    objects = [p for p, s in walk(SCHEMA) if s.get("type") == "object"]
    assert len(objects) == 13
    for path, sub in walk(SCHEMA):
        if path in MAPS:
            assert sub["propertyNames"]["pattern"] == KEBAB_NAME, path
            assert sub["additionalProperties"]["type"] == "object", path
        elif path == "/scripts/*":  # checked against schemas/scripts/{name}.json instead
            assert sub == {"type": "object"}
        elif sub.get("type") == "object":
            assert sub.get("additionalProperties") is False, path


def test_every_key_is_kebab_case_described_and_defaulted_or_required() -> None:
    for path, sub in walk(SCHEMA):
        for key, prop in sub.get("properties", {}).items():
            assert KEBAB.match(key), f"{path}/{key}"
            assert prop.get("description"), f"{path}/{key}"
            assert "default" in prop or key in sub.get("required", []), f"{path}/{key}"


def test_api_base_url_is_the_only_required_leaf() -> None:
    required = [f"{p}/{k}" for p, s in walk(SCHEMA) for k in s.get("required", [])]
    # and the base URL of each named API, in an entry the user adds
    assert required == ["(root)/global", "/global/api-base-url", "/global/apis/*/api-base-url"]
    config_loader.validate_config({"global": {"api-base-url": "https://x"}}, "c.json")


@pytest.mark.parametrize(
    "config",
    [SEED_EXAMPLE, seed_with_small_numbers()],
    ids=["seed-unchanged", "seed-small-numbers"],
)
def test_seed_examples_validate(config: dict[str, Any]) -> None:
    config_loader.validate_config(copy.deepcopy(config), "c.json")


def test_shipped_examples_are_valid() -> None:
    example = json.loads((ROOT / "config" / "org-env-config_example.json").read_text())
    config_loader.validate_config(example, "example")
    secrets = json.loads((ROOT / "config" / "org-env-config-secrets_example.json").read_text())
    assert secrets and all(isinstance(v, str) for v in secrets.values())
    assert {"client-secret", "az-token"} <= set(secrets)


@pytest.mark.parametrize(
    "path",
    [
        "script-behavior/api-delay-seconds",
        "script-behavior/retry-strategy/max-retries",
        "script-behavior/retry-strategy/backoff-factor",
    ],
)
def test_zero_is_allowed(path: str) -> None:
    config_loader.validate_config(with_value(path, 0), "c.json")


@pytest.mark.parametrize(
    "path",
    [
        "script-behavior/api-timeouts/rest-timeout-seconds",
        "script-behavior/api-timeouts/async-max-wait",
        "script-behavior/api-timeouts/async-poll-interval",
        "script-behavior/rate-limiting/calls-per-second",
        "script-behavior/rate-limiting/burst-size",
        "script-behavior/circuit-breaker/failure-threshold",
        "script-behavior/circuit-breaker/timeout-seconds",
    ],
)
def test_zero_is_refused_where_it_must_be_positive(path: str) -> None:
    where = path.replace("/", " → ")
    assert f"  - {where}: 0 must be greater than 0" in errors_of(with_value(path, 0))


@pytest.mark.parametrize(
    "path",
    [
        "script-behavior/api-timeouts/rest-timeout-seconds",
        "script-behavior/api-timeouts/async-poll-interval",
        "script-behavior/rate-limiting/calls-per-second",
        "script-behavior/circuit-breaker/timeout-seconds",
        "script-behavior/api-delay-seconds",
    ],
)
def test_seconds_may_be_fractional(path: str) -> None:
    config_loader.validate_config(with_value(path, 0.25), "c.json")


def test_negative_values_are_refused() -> None:
    lines = errors_of(with_value("script-behavior/retry-strategy/max-retries", -1))
    assert "  - script-behavior → retry-strategy → max-retries: -1 must be at least 0" in lines


def test_wrong_type_names_the_path() -> None:
    lines = errors_of(with_value("script-behavior/rate-limiting/calls-per-second", "ten"))
    assert (
        "  - script-behavior → rate-limiting → calls-per-second: 'ten' is not of type 'number'"
        in lines
    )


def test_every_violation_is_reported_at_once() -> None:
    config = copy.deepcopy(SEED_EXAMPLE)
    config["script-behavior"]["rate-limiting"]["calls-per-second"] = "ten"
    config["script-behavior"]["retry-strategy"]["max-retry"] = 2
    config["script-behavior"]["circuit-breaker"]["enabled"] = "yes"
    del config["global"]["api-base-url"]
    lines = errors_of(config)
    assert lines[0] == (
        "❌ Problem: Config file config/acme-prod-config.json does not match the schema "
        "(4 problems):"
    )
    assert lines[1:5] == [
        "  - global → api-base-url: required key is missing",
        "  - script-behavior → circuit-breaker → enabled: 'yes' is not of type 'boolean'",
        "  - script-behavior → rate-limiting → calls-per-second: 'ten' is not of type 'number'",
        "  - script-behavior → retry-strategy → max-retry: unknown key "
        "(did you mean 'max-retries'?)",
    ]


@pytest.mark.parametrize(
    ("path", "value", "example"),
    [
        (
            "script-behavior/rate-limiting/calls-per-second",
            "ten",
            '📝 Example: "rate-limiting": {"enabled": true, "calls-per-second": 10, "burst-size": 1}'
            " (the defaults)",
        ),
        (
            "script-behavior/retry-strategy/max-retry",
            1,
            '📝 Example: "retry-strategy": {"max-retries": 3, "backoff-factor": 2.0, '
            '"max-wait-seconds": 300, "idempotency-keys": false} (the defaults)',
        ),
        (
            "global/api-base-url",
            5,
            '📝 Example: "global": {"api-base-url": "https://api.example.com"}',
        ),
    ],
)
def test_example_shows_the_defaults_of_the_first_problem(
    path: str, value: Any, example: str
) -> None:
    assert errors_of(with_value(path, value))[-1] == example


def test_snake_case_key_gets_a_kebab_suggestion() -> None:
    lines = errors_of(with_value("script-behavior/rate_limiting", {}))
    assert (
        "  - script-behavior → rate_limiting: unknown key (did you mean 'rate-limiting'?)" in lines
    )


def test_secret_in_the_config_is_pointed_to_the_secrets_file() -> None:
    lines = errors_of(with_value("global/client-secret", "hunter2-value"))
    expected = "global → client-secret looks like a secret, and secrets do not belong in the config"
    assert any(expected in ln for ln in lines)
    assert not any("hunter2-value" in ln for ln in lines)
    # The line survives redaction unchanged: no "client-secret: …" for it to hide.
    assert all(redact(ln) == ln for ln in lines)


def test_base_url_must_be_http() -> None:
    lines = errors_of(with_value("global/api-base-url", "api.example.com"))
    assert "  - global → api-base-url: 'api.example.com' is not an http:// or https:// URL" in lines


@pytest.mark.parametrize(
    ("jitter", "bad"),
    [
        ({"min-factor": 1.5, "max-factor": 1.2}, True),
        ({"min-factor": 1.5}, True),
        ({"min-factor": 1.0, "max-factor": 1.0}, False),
    ],
)
def test_jitter_min_must_not_exceed_max(jitter: dict[str, float], bad: bool) -> None:
    config = with_value("script-behavior/jitter", jitter)
    if not bad:
        config_loader.validate_config(config, "c.json")
        return
    lines = errors_of(config)
    assert any(
        "script-behavior → jitter: min-factor (1.5) must not exceed max-factor (1.2)" in ln
        for ln in lines
    )


def test_defaults_fill_every_level_even_below_absent_objects() -> None:
    config = config_loader.fill_defaults({"global": {"api-base-url": "https://x"}})
    assert config["script-behavior"]["rate-limiting"]["enabled"] is True
    assert config["script-behavior"]["retry-strategy"]["max-wait-seconds"] == 300
    assert config["global"]["oauth-token-url"] is None
    assert config["global"]["tenant-id"] is None


def test_defaults_keep_given_values_and_fill_siblings() -> None:
    config = config_loader.fill_defaults(
        {
            "global": {"api-base-url": "https://x"},
            "script-behavior": {"retry-strategy": {"max-retries": 0}},
        }
    )
    assert config["script-behavior"]["retry-strategy"] == {
        "max-retries": 0,
        "backoff-factor": 2.0,
        "max-wait-seconds": 300,
        "idempotency-keys": False,
    }


def test_filled_defaults_match_the_http_clients_defaults() -> None:
    from utils import _api_settings as api_settings

    config = config_loader.fill_defaults({"global": {"api-base-url": "https://x"}})
    assert config["script-behavior"] == api_settings.behavior({})


def test_whole_number_floats_become_ints_for_integer_keys() -> None:
    config = with_value("script-behavior/retry-strategy/max-retries", 3.0)
    config_loader.validate_config(config, "c.json")
    config_loader.fill_defaults(config)
    assert type(config["script-behavior"]["retry-strategy"]["max-retries"]) is int


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("client-secret", "client_secret"),
        ("az-token", "az_token"),
        ("apiKey", "api_key"),
        ("ClientSecret", "client_secret"),
        ("HTTPToken", "http_token"),
        ("db_password", "db_password"),
        ("smtp.password", "smtp_password"),
    ],
)
def test_secret_names_are_snake_case(key: str, name: str) -> None:
    assert config_loader.secret_name(key) == name


# -- global.apis ------------------------------------------------------------------------------
def with_apis(apis: Any) -> dict[str, Any]:
    config = copy.deepcopy(SEED_EXAMPLE)
    config["global"]["apis"] = apis
    return config


def test_named_apis_validate_and_their_entries_get_null_defaults() -> None:
    config = with_apis({"graph": {"api-base-url": "https://graph.microsoft.com/v1.0"}})
    config_loader.validate_config(copy.deepcopy(config), "c.json")
    config_loader.fill_defaults(config)
    assert config["global"]["apis"]["graph"] == {
        "api-base-url": "https://graph.microsoft.com/v1.0",
        "oauth-scope": None,
        "oauth-token-url": None,
        "tenant-id": None,
        "client-id": None,
    }
    assert config_loader.fill_defaults({"global": {"api-base-url": "https://x"}})["global"][
        "apis"
    ] == {}


@pytest.mark.parametrize(
    ("apis", "expected"),
    [
        ({"graph": {}}, "global → apis → graph → api-base-url: required key is missing"),
        (
            {"graph": {"api-base-url": "https://g", "oauth-scop": "x"}},
            "global → apis → graph → oauth-scop: unknown key (did you mean 'oauth-scope'?)",
        ),
        (
            {"graph": {"api-base-url": "graph.microsoft.com"}},
            "global → apis → graph → api-base-url: 'graph.microsoft.com' is not an http://",
        ),
        (
            {"Graph_API": {"api-base-url": "https://g"}},
            "global → apis: 'Graph_API' is not a valid name (kebab-case",
        ),
        ({"graph": "https://g"}, "global → apis → graph: 'https://g' is not of type 'object'"),
        (
            {"graph": {"api-base-url": "https://g", "client-secret": "x"}},
            "global → apis → graph → client-secret looks like a secret",
        ),
    ],
    ids=["no-base-url", "misspelt", "not-a-url", "bad-name", "not-object", "secret"],
)
def test_bad_api_entries_name_the_key(apis: Any, expected: str) -> None:
    assert any(expected in line for line in errors_of(with_apis(apis))), errors_of(with_apis(apis))


# -- defaults: the schema is their one source ---------------------------------------------------
def test_defaults_of_walks_nested_objects_and_skips_keys_without_one() -> None:
    from utils._schema import defaults_of

    node = {
        "properties": {
            "a": {"default": 1},
            "b": {"properties": {"c": {"default": True}, "d": {"type": "string"}}},
            "e": {"type": "object", "properties": {}},
        }
    }
    assert defaults_of(node) == {"a": 1, "b": {"c": True}}


def test_every_code_default_is_read_from_the_schema() -> None:
    from utils import _api_settings as api_settings
    from utils._retry_policy import RetryPolicy
    from utils._schema import section_defaults
    from utils.api_common import CircuitBreaker, RateLimiter

    behavior = section_defaults("script-behavior")
    assert api_settings.DEFAULTS is behavior
    policy = RetryPolicy()
    strategy, jitter = behavior["retry-strategy"], behavior["jitter"]
    assert (policy.max_retries, policy.backoff_factor, policy.max_wait_seconds) == (
        strategy["max-retries"],
        strategy["backoff-factor"],
        strategy["max-wait-seconds"],
    )
    assert (policy.jitter_min, policy.jitter_max) == (jitter["min-factor"], jitter["max-factor"])
    assert policy.idempotency_keys is strategy["idempotency-keys"]
    limiter = RateLimiter()
    assert (limiter.calls_per_second, limiter.burst_size) == (
        behavior["rate-limiting"]["calls-per-second"],
        behavior["rate-limiting"]["burst-size"],
    )
    breaker = CircuitBreaker()
    assert breaker.failure_threshold == behavior["circuit-breaker"]["failure-threshold"]
    assert breaker.timeout == behavior["circuit-breaker"]["timeout-seconds"]
