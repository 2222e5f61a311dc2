"""Run counters: one thread-safe registry that any module counts into and run_script reads.

Two kinds, kept apart: the toolkit's built-in counters (API calls, retries, files written …),
named by module constants so a typo is an AttributeError, not a silent new counter; and a
script's own counters, counted with :func:`count` and listed by :func:`script_counters`.
The run summary shows both; in JSON log format the script's are its ``counters`` object.

Example:
    >>> from utils import run_stats
    >>> run_stats.count("customers_updated")
    >>> run_stats.count("rows_skipped", 3)
"""

from __future__ import annotations

import re
import threading
from collections import Counter

from utils.exceptions import ValidationError

API_CALLS = "api_calls"
RETRIES = "retries"
RATE_LIMITED = "http_429"
BREAKER_OPENS = "breaker_opens"
FILES_WRITTEN = "files_written"
TOKENS_ACQUIRED = "tokens_acquired"
BUILT_IN = frozenset(
    {API_CALLS, RETRIES, RATE_LIMITED, BREAKER_OPENS, FILES_WRITTEN, TOKENS_ACQUIRED}
)
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
MAX_NAME_LENGTH = 64

_lock = threading.Lock()
_counts: Counter[str] = Counter()
_script_counts: Counter[str] = Counter()


def increment(name: str, amount: int = 1) -> None:
    """Add ``amount`` to counter ``name``.

    Args:
        name: One of the module's counter constants (``API_CALLS``, ``RETRIES`` ...).
        amount: How much to add.
    """
    with _lock:
        _counts[name] += amount


def count(name: str, n: int = 1) -> None:
    """Add ``n`` to the script's own counter ``name`` (created at 0 on first use).

    Every script counter appears in the run summary as ``name N`` and, in JSON log format,
    under ``counters``; with metrics on, as ``txo_run_counter{name="…"}``. Thread-safe.

    Args:
        name: snake_case (``customers_updated``), at most 64 characters, not a built-in
            counter's name.
        n: How much to add: a whole number, 0 or more.

    Raises:
        ValidationError: A name that is not snake_case or is a built-in counter's, or an
            ``n`` that is not a whole number of at least 0.

    Example:
        >>> count("customers_updated")      # doctest: +SKIP
        >>> count("rows_skipped", len(skipped))  # doctest: +SKIP
    """
    if not isinstance(name, str) or not SNAKE_CASE.match(name) or len(name) > MAX_NAME_LENGTH:
        raise ValidationError(
            f"run_stats.count: the counter name {name!r} is not snake_case.",
            "Name a counter with lowercase letters, digits and '_', starting with a letter "
            f"(at most {MAX_NAME_LENGTH} characters): it becomes a field and a metric label.",
            'run_stats.count("customers_updated")',
        )
    if name in BUILT_IN:
        raise ValidationError(
            f"run_stats.count: {name!r} is a counter the toolkit keeps itself.",
            "Give the script's counter a name of its own.",
            f'run_stats.count("{name}_seen")',
        )
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValidationError(
            f"run_stats.count({name!r}, {n!r}): the amount must be a whole number, 0 or more.",
            "Pass how many to add (a count only grows).",
            f'run_stats.count("{name}", len(rows))',
        )
    with _lock:
        _script_counts[name] += n


def script_counters() -> dict[str, int]:
    """The script's own counters (those of :func:`count`), sorted by name."""
    with _lock:
        return dict(sorted(_script_counts.items()))


def get(name: str) -> int:
    """Return the current value of counter ``name`` (0 when never counted)."""
    with _lock:
        return _counts[name]


def snapshot() -> dict[str, int]:
    """Return a copy of the built-in counters, for the run summary (see
    :func:`script_counters` for the script's own)."""
    with _lock:
        return dict(_counts)


def reset() -> None:
    """Set every counter back to zero (start of a run, and tests)."""
    with _lock:
        _counts.clear()
        _script_counts.clear()
