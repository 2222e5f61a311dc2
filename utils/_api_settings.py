"""Defaults of the HTTP client's ``script-behavior`` settings, and reading them from a config.

The config loader fills the JSON Schema's defaults in, but the HTTP client must also work with
a minimal dict (tests, notebooks), so missing keys are taken from :data:`DEFAULTS`: the
schema's own ``default`` values, read once (:mod:`utils._schema`), never a second copy.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from utils._schema import section_defaults

DEFAULTS: Mapping[str, Any] = section_defaults("script-behavior")
"""Default ``script-behavior`` values, as the JSON Schema states them (read-only)."""


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
