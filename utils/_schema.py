"""The config JSON Schema, read once: the one source of the configuration's defaults.

Code that needs a key's default (the HTTP client's settings for a hand-built config, the
retry policy's fields, the token request's timeout) reads it from here, so no second copy
of a number can drift from the schema.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

SCHEMA_FILE = "org-env-config-schema.json"
# The schema that ships beside utils/ (not the project root a test may point elsewhere).
SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / SCHEMA_FILE


@functools.lru_cache(maxsize=1)
def shipped_schema() -> dict[str, Any]:
    """The config JSON Schema that ships with the toolkit, read once per process."""
    with open(SCHEMA_PATH, encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    return schema


def defaults_of(node: dict[str, Any]) -> dict[str, Any]:
    """The ``default`` values of an object schema's properties, nested objects walked.

    Example:
        >>> defaults_of({"properties": {"a": {"default": 1}, "b": {"properties": {
        ...     "c": {"default": True}}}, "d": {"type": "string"}}})
        {'a': 1, 'b': {'c': True}}
    """
    out: dict[str, Any] = {}
    for key, sub in node.get("properties", {}).items():
        if sub.get("properties"):
            out[key] = defaults_of(sub)
        elif "default" in sub:
            out[key] = sub["default"]
    return out


@functools.cache
def section_defaults(section: str) -> dict[str, Any]:
    """The defaults of one top-level section of the config (``"script-behavior"``).

    The same dict is returned on every call: treat it as read-only.
    """
    return defaults_of(shipped_schema()["properties"][section])
