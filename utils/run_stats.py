"""Run counters: one thread-safe registry that any module counts into and run_script reads.

Counter names are module constants so a typo is an AttributeError, not a silent new counter.
"""

from __future__ import annotations

import threading
from collections import Counter

API_CALLS = "api_calls"
RETRIES = "retries"
RATE_LIMITED = "http_429"
BREAKER_OPENS = "breaker_opens"
FILES_WRITTEN = "files_written"
TOKENS_ACQUIRED = "tokens_acquired"

_lock = threading.Lock()
_counts: Counter[str] = Counter()


def increment(name: str, amount: int = 1) -> None:
    """Add ``amount`` to counter ``name``.

    Args:
        name: One of the module's counter constants (``API_CALLS``, ``RETRIES`` ...).
        amount: How much to add.
    """
    with _lock:
        _counts[name] += amount


def get(name: str) -> int:
    """Return the current value of counter ``name`` (0 when never counted)."""
    with _lock:
        return _counts[name]


def snapshot() -> dict[str, int]:
    """Return a copy of every counter, for the run summary."""
    with _lock:
        return dict(_counts)


def reset() -> None:
    """Set every counter back to zero (start of a run, and tests)."""
    with _lock:
        _counts.clear()
