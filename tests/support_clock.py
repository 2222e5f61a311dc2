"""A fake monotonic clock for unit tests of timing logic (limiter, breaker, token cache)."""

from __future__ import annotations

import threading


class FakeClock:
    """A clock that only moves when someone sleeps on it or a test moves it; thread-safe.

    Args:
        start: The first reading, in seconds.
    """

    def __init__(self, start: float = 1000.0):
        self.now = start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        """Record ``seconds`` and move the clock on by them."""
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds
