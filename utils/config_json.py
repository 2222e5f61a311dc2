"""Read one JSON file of ``config/`` strictly, turning every failure into a helpful error.

Stricter than :func:`json.loads` where a config needs it: a key given twice in one object,
``NaN``, ``Infinity`` and numbers too large for a float are errors. A UTF-8 byte-order mark
(as Windows editors write it) is accepted. Used by :mod:`utils.config_loader`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from utils import path_helpers
from utils.exceptions import ConfigurationError

MAX_VALUE_CHARS = 60
MAX_LINE_CHARS = 120


def display_path(path: Path) -> str:
    """``path`` relative to the project root when inside it (for messages)."""
    try:
        return str(path.relative_to(path_helpers.PROJECT_ROOT))
    except ValueError:
        return str(path)


class _JsonProblem(ValueError):
    """A problem found while parsing that the JSON module lets through; carries its fix."""

    def __init__(self, problem: str, fix: str):
        super().__init__(problem)
        self.fix = fix


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            # Worded so that no secret-looking "key: value" appears (redaction would eat it).
            raise _JsonProblem(
                f"has the key {key!r} twice in one object",
                "Keep one of them; JSON readers disagree on which one wins.",
            )
        result[key] = value
    return result


def _reject_constant(name: str) -> float:
    """``NaN``, ``Infinity`` and ``-Infinity`` are not JSON, though Python's reader takes them."""
    raise _JsonProblem(
        f"holds {name}, which is not a JSON number",
        "Write a finite number (seconds may be fractional, e.g. 0.5).",
    )


def _finite_float(text: str) -> float:
    """Parse a JSON number; one too large for a float (``1e400``) is an error, not infinity."""
    value = float(text)
    if not math.isfinite(value):
        raise _JsonProblem(
            f"holds the number {text[:MAX_VALUE_CHARS]}, which is too large",
            "Write a finite number of a sensible size.",
        )
    return value


def read_json_file(
    path: Path, *, what: str, show_line: bool, example: str | None, empty_fix: str | None = None
) -> Any:
    """Parse the JSON file ``path``; a :class:`ConfigurationError` naming it on any failure.

    Args:
        path: The file.
        what: What it is, for messages (``"config file"``).
        show_line: Quote the offending line of a syntax error (never for a secrets file).
        example: The example file in ``config/`` that the "empty file" fix copies.
        empty_fix: The fix for an empty file instead of copying ``example``.

    Returns:
        The parsed JSON value.

    Raises:
        ConfigurationError: Unreadable, not UTF-8, empty, not valid JSON (line and column),
            nested too deeply, a key given twice, or a number JSON does not allow.
    """
    shown = display_path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise ConfigurationError(
            f"The {what} {shown} is not UTF-8 text (byte {err.start}).",
            "Save the file as UTF-8.",
        ) from err
    except OSError as err:
        raise ConfigurationError(
            f"The {what} {shown} cannot be read: {err.strerror or type(err).__name__}.",
            "Check that it is a regular file readable by the user running the script.",
            f"ls -l {shown}",
        ) from err
    if not text.strip():
        raise ConfigurationError(
            f"The {what} {shown} is empty.",
            empty_fix or "Write a JSON object into it; see the example file.",
            f"cp config/{example} {shown}" if example else None,
        )
    try:
        return json.loads(
            text,
            object_pairs_hook=_reject_duplicates,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
        )
    except RecursionError as err:
        raise ConfigurationError(
            f"The {what} {shown} is nested too deeply to be a config.",
            "Write a JSON object like the example file; a config is at most a few levels deep.",
        ) from err
    except json.JSONDecodeError as err:
        line = text.splitlines()[err.lineno - 1] if err.lineno <= len(text.splitlines()) else ""
        raise ConfigurationError(
            f"The {what} {shown} is not valid JSON: {err.msg} at line {err.lineno}, "
            f"column {err.colno}.",
            "Fix the JSON at that spot (a trailing comma, a missing comma or quote, or a "
            "comment are the usual causes; JSON allows none of them).",
            f"line {err.lineno}: {line.strip()[:MAX_LINE_CHARS]}" if show_line else None,
        ) from err
    except _JsonProblem as err:  # a duplicate key or a number JSON does not allow
        raise ConfigurationError(f"The {what} {shown} {err}.", err.fix) from err
