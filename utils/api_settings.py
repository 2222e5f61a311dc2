"""Defaults of the HTTP client's ``script-behavior`` settings, and reading them from a config;
the config as one named API of ``global.apis`` sees it (:func:`api_config`).

The config loader fills the JSON Schema's defaults in, but the HTTP client must also work with
a minimal dict (tests, notebooks), so missing keys are taken from :data:`DEFAULTS`, which mirror
the numbers of the design contract (§4) and the schema.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping
from typing import Any

from utils.config_loader import secret_name
from utils.exceptions import ConfigurationError

API_SECTION = "apis"
STATIC_TOKEN_SUFFIX = "-token"
DEFAULTS: Mapping[str, Any] = {
    "api-delay-seconds": 1,
    "api-timeouts": {
        "rest-timeout-seconds": 60,
        "async-max-wait": 300,
        "async-poll-interval": 5,
    },
    "retry-strategy": {"max-retries": 3, "backoff-factor": 2.0, "max-wait-seconds": 300},
    "jitter": {"min-factor": 0.8, "max-factor": 1.2},
    "rate-limiting": {"enabled": True, "calls-per-second": 10, "burst-size": 1},
    "circuit-breaker": {"enabled": True, "failure-threshold": 5, "timeout-seconds": 60},
    "batch-handling": {"read-batch-size": 100, "update-batch-size": 50},
}
"""Default ``script-behavior`` values (seconds may be fractional)."""


def _merged(defaults: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = copy.deepcopy(dict(defaults))
    for key, value in given.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


def behavior(config: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``config["script-behavior"]`` with every missing key filled from :data:`DEFAULTS`.

    Args:
        config: The whole config dict (``script-behavior`` may be absent or partial).

    Returns:
        A new nested dict; the config itself is not changed.

    Example:
        >>> behavior({"script-behavior": {"retry-strategy": {"max-retries": 1}}})[
        ...     "retry-strategy"]
        {'max-retries': 1, 'backoff-factor': 2.0, 'max-wait-seconds': 300}
    """
    given = config.get("script-behavior") or {}
    return _merged(DEFAULTS, given)


def api_config(config: Mapping[str, Any], api: str | None) -> Mapping[str, Any]:
    """The config as the client of one API sees it: ``global`` merged with its entry.

    ``api=None`` is the default API (``global.api-base-url``, ``az-token``): ``config`` as
    it is. A name picks an entry of ``global.apis``; the keys it sets (not null) replace
    those of ``global``, the rest come from ``global``. An entry that sets ``tenant-id`` but
    no ``oauth-token-url`` gets the Azure AD endpoint of its own tenant, not global's URL.
    Its static token is the secret ``{name}-token`` (injected as ``_{name}_token``), never
    ``az-token``, and the default API's ``_token`` is not carried over.

    Args:
        config: The loaded config (or a hand-built one).
        api: A name of ``global.apis``, or None.

    Returns:
        A new shallow copy for a named API (``config`` itself for None); the view carries
        ``_api`` (the name) for the token provider's messages.

    Raises:
        ConfigurationError: ``api`` is not a name of ``global.apis`` (the known ones listed).

    Example:
        >>> view = api_config({"global": {"api-base-url": "https://bc.example/v2",
        ...     "client-id": "app", "apis": {"graph": {"api-base-url": "https://g.example/v1",
        ...     "oauth-scope": "https://g.example/.default"}}}}, "graph")
        >>> view["global"]["api-base-url"], view["global"]["client-id"]
        ('https://g.example/v1', 'app')
    """
    if api is None:
        return config
    glob = config.get("global") or {}
    apis = glob.get("apis") or {}
    entry = apis.get(api) if isinstance(apis, Mapping) and isinstance(api, str) else None
    if not isinstance(entry, Mapping):
        raise _unknown_api(api, sorted(apis) if isinstance(apis, Mapping) else [])
    merged = {key: value for key, value in glob.items() if key != API_SECTION}
    merged.update({key: value for key, value in entry.items() if value is not None})
    if entry.get("tenant-id") is not None and entry.get("oauth-token-url") is None:
        merged["oauth-token-url"] = None
    view = dict(config)
    view["global"] = merged
    view["_api"] = api
    view["_token"] = None
    view["_az_token"] = config.get(static_token_name(api))
    return view


def static_token_name(api: str) -> str:
    """The config key of API ``api``'s static token: secret ``graph-token`` → ``_graph_token``."""
    return "_" + secret_name(f"{api}{STATIC_TOKEN_SUFFIX}")


def _unknown_api(api: object, known: list[str]) -> ConfigurationError:
    guess = difflib.get_close_matches(str(api), known, n=1, cutoff=0.6)
    hint = f" Did you mean '{guess[0]}'?" if guess else ""
    listed = ", ".join(known) if known else "none (the config has no global → apis)"
    return ConfigurationError(
        f"No API named {api!r} in the config: global → apis names {listed}.{hint}",
        "Pass a name of global → apis (or api=None for global → api-base-url), or add the "
        "API to global → apis in the config.",
        '"global": {"apis": {"graph": {"api-base-url": "https://graph.microsoft.com/v1.0", '
        '"oauth-scope": "https://graph.microsoft.com/.default"}}}',
    )
