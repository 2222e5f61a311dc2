"""Defaults of the HTTP client's ``script-behavior`` settings, and reading them from a config.

The config loader fills the JSON Schema's defaults in, but the HTTP client must also work with
a minimal dict (tests, notebooks), so missing keys are taken from :data:`DEFAULTS`, which mirror
the numbers of the design contract (§4) and the schema.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

DEFAULTS: Mapping[str, Any] = {
    "api-delay-seconds": 1,
    "api-timeouts": {
        "rest-timeout-seconds": 60,
        "async-max-wait": 300,
        "async-poll-interval": 5,
    },
    "retry-strategy": {
        "max-retries": 3,
        "backoff-factor": 2.0,
        "max-wait-seconds": 300,
        "idempotency-keys": False,
    },
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
        ...     "retry-strategy"]["max-retries"]
        1
    """
    given = config.get("script-behavior") or {}
    return _merged(DEFAULTS, given)
