"""Resilience building blocks of the HTTP client: rate limiter, circuit breaker, jitter, retry.

Pure policy and coordination, no I/O of its own: every class takes an injectable clock (and the
limiter a sleep) so its timing logic can be tested in milliseconds. The retry rules live in
:mod:`utils._retry_policy` and the config defaults in :mod:`utils._api_settings`; both are
re-exported here.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from utils import run_stats
from utils._api_settings import DEFAULTS, behavior
from utils._retry_policy import (
    NEVER_RETRIED,
    RetryPolicy,
    TransportFailure,
    Verdict,
    classify_exception,
    parse_retry_after,
)
from utils.exceptions import CircuitOpenError

__all__ = [
    "DEFAULTS",
    "NEVER_RETRIED",
    "CircuitBreaker",
    "RateLimiter",
    "RetryPolicy",
    "TransportFailure",
    "apply_jitter",
    "behavior",
    "classify_exception",
    "manual_retry",
    "parse_retry_after",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half-open"
MANUAL_RETRY_MAX_RETRIES = 3
"""Default retries of :func:`manual_retry` (its own, documented in DESIGN §3; not a config key)."""
MANUAL_RETRY_BACKOFF = 2.0
"""Default base of :func:`manual_retry`'s exponential delay."""


def _monotonic() -> float:
    # Looked up at each call, so a test that patches time.monotonic is obeyed.
    return time.monotonic()


def _sleep(seconds: float) -> None:
    # Looked up at each call, so a test that patches time.sleep is obeyed.
    time.sleep(seconds)


class RateLimiter:
    """Token bucket shared by threads: ``acquire()`` blocks until a call may start.

    In any interval of length t at most ``burst_size + calls_per_second * t`` calls start,
    across all threads. The bucket starts full (``burst_size`` calls may start at once) and is
    implemented as the equivalent "theoretical arrival time" schedule (GCRA), so a full bucket
    is never refilled on top (the classic bug that lets twice the rate through). Waiting threads
    are served first come, first served: each takes a ticket and only the head of the queue
    checks the clock, so no thread starves and the check uses the real start time.

    Args:
        calls_per_second: Sustained rate (> 0).
        burst_size: Calls that may start back to back after an idle period (>= 1).
        clock: Monotonic clock in seconds (injectable for tests).
        sleep: Sleep function (injectable for tests).

    Example:
        >>> limiter = RateLimiter(calls_per_second=5, burst_size=1)
        >>> start = limiter.acquire()  # at once; the next call waits 0.2 s
    """

    def __init__(
        self,
        calls_per_second: float = DEFAULTS["rate-limiting"]["calls-per-second"],
        burst_size: int = DEFAULTS["rate-limiting"]["burst-size"],
        *,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
    ):
        if calls_per_second <= 0 or burst_size < 1:
            raise ValueError("calls_per_second must be > 0 and burst_size >= 1")
        self.calls_per_second = float(calls_per_second)
        self.burst_size = int(burst_size)
        self._interval = 1.0 / self.calls_per_second
        self._tolerance = (self.burst_size - 1) * self._interval
        self._clock = clock or _monotonic
        self._sleep = sleep or _sleep
        self._cond = threading.Condition()
        self._next_ticket = 0
        self._serving = 0
        self._abandoned: set[int] = set()
        self._tat: float | None = None  # theoretical arrival time of the next call

    def acquire(self) -> float:
        """Block until this call may start (first come, first served across threads).

        Returns:
            The clock reading at which the call was admitted (its start time).
        """
        with self._cond:
            ticket = self._next_ticket
            self._next_ticket += 1
            try:
                while ticket != self._serving:
                    self._cond.wait()
            except BaseException:  # interrupted while queued: give the turn up, never block
                if ticket == self._serving:
                    self._advance()
                else:
                    self._abandoned.add(ticket)
                raise
        try:
            while True:
                # Only the head of the queue gets here, so _tat has a single writer.
                now = self._clock()
                tat = now if self._tat is None else max(self._tat, now)
                wait = tat - self._tolerance - now
                if wait <= 0:
                    self._tat = tat + self._interval
                    return now
                self._sleep(wait)
        finally:
            with self._cond:
                self._advance()

    def _advance(self) -> None:
        """Pass the turn to the next ticket still waiting (caller holds ``_cond``)."""
        self._serving += 1
        while self._serving in self._abandoned:
            self._abandoned.discard(self._serving)
            self._serving += 1
        self._cond.notify_all()


class CircuitBreaker:
    """Stop calling a failing server for a while; thread-safe.

    ``closed``: calls pass; ``failure_threshold`` consecutive failures open it. ``open``:
    :meth:`before_call` raises :class:`CircuitOpenError` at once, without reaching the server.
    After ``timeout`` seconds the next call is the one trial of ``half-open``: every other call
    fails fast until the trial reports; success closes the breaker, failure re-opens it.

    Use it as ``breaker.before_call()`` then exactly one of ``record_success()`` /
    ``record_failure()``, or wrap a callable with :meth:`call`. A caller that waits between
    the two (for a rate limiter) calls :meth:`confirm` right before sending.

    Args:
        failure_threshold: Consecutive failed attempts that open the breaker (>= 1).
        timeout: Seconds the breaker stays open before the half-open trial.
        clock: Monotonic clock in seconds (injectable for tests).
    """

    def __init__(
        self,
        failure_threshold: int = DEFAULTS["circuit-breaker"]["failure-threshold"],
        timeout: float = DEFAULTS["circuit-breaker"]["timeout-seconds"],
        *,
        clock: Callable[[], float] | None = None,
    ):
        if failure_threshold < 1 or timeout <= 0:
            raise ValueError("failure_threshold must be >= 1 and timeout > 0")
        self.failure_threshold = int(failure_threshold)
        self.timeout = float(timeout)
        self._clock = clock or _monotonic
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_running = False

    @property
    def state(self) -> str:
        """``"closed"``, ``"open"`` or ``"half-open"`` (open turns half-open once timed out)."""
        with self._lock:
            if self._state == OPEN and self._clock() - self._opened_at >= self.timeout:
                return HALF_OPEN
            return self._state

    def _open_error(self, url: str, method: str) -> CircuitOpenError:
        remaining = max(0.0, self.timeout - (self._clock() - self._opened_at))
        return CircuitOpenError(
            f"The circuit breaker is open after {self.failure_threshold} consecutive failures; "
            f"the request was not sent (next trial in {remaining:.1f}s).",
            "The API is failing: check its status and your network, then run the script "
            "again; raise script-behavior.circuit-breaker.failure-threshold only if the API "
            "is known to fail in bursts.",
            '"circuit-breaker": {"enabled": true, "failure-threshold": 5, "timeout-seconds": 60}',
            url=url,
            method=method,
        )

    def before_call(self, url: str = "", method: str = "") -> bool:
        """Let a call through or raise :class:`CircuitOpenError`.

        Args:
            url: The (secret-free) URL, for the error.
            method: The HTTP method, for the error.

        Returns:
            True when this call is the half-open trial, False for an ordinary call.

        Raises:
            CircuitOpenError: Open, or half-open with the trial call already running.
        """
        with self._lock:
            if self._state == CLOSED:
                return False
            if self._state == OPEN:
                if self._clock() - self._opened_at < self.timeout:
                    raise self._open_error(url, method)
                self._state = HALF_OPEN
                self._trial_running = False
            if self._trial_running:
                raise self._open_error(url, method)
            self._trial_running = True
            log.info("Circuit breaker half-open: letting one trial call through")
            return True

    def confirm(self, is_trial: bool, url: str = "", method: str = "") -> None:
        """Re-check a call admitted earlier, just before it is sent (after a rate-limit wait).

        A call admitted while closed must not reach the server if the breaker opened while it
        waited; the trial call itself always proceeds.

        Args:
            is_trial: What :meth:`before_call` returned for this call.
            url: The (secret-free) URL, for the error.
            method: The HTTP method, for the error.

        Raises:
            CircuitOpenError: The breaker is no longer closed and this call is not the trial.
        """
        with self._lock:
            if not is_trial and self._state != CLOSED:
                raise self._open_error(url, method)

    def raise_if_open(self, url: str = "", method: str = "", *, within: float = 0.0) -> None:
        """Raise :class:`CircuitOpenError` when the breaker is open and stays so ``within`` s.

        Lets a caller skip a wait (a retry backoff) whose end the breaker would refuse anyway;
        it never claims the half-open trial.

        Args:
            url: The (secret-free) URL, for the error.
            method: The HTTP method, for the error.
            within: Seconds from now at which the call would be made.

        Raises:
            CircuitOpenError: Open now and still open ``within`` seconds from now.
        """
        with self._lock:
            if self._state == OPEN and self._clock() + within - self._opened_at < self.timeout:
                raise self._open_error(url, method)

    def record_success(self) -> None:
        """Report a call that got an answer below 500: resets the count, closes when half-open."""
        with self._lock:
            if self._state != CLOSED:
                log.info("Circuit breaker closed: the trial call succeeded")
            self._state = CLOSED
            self._failures = 0
            self._trial_running = False

    def record_failure(self) -> None:
        """Report a failed attempt (5xx, connection failure, timeout)."""
        with self._lock:
            self._failures += 1
            if self._state == HALF_OPEN or (
                self._state == CLOSED and self._failures >= self.failure_threshold
            ):
                self._state = OPEN
                self._opened_at = self._clock()
                self._trial_running = False
                run_stats.increment(run_stats.BREAKER_OPENS)
                log.warning(
                    "Circuit breaker opened after %d consecutive failures; calls fail fast "
                    "for %.0fs",
                    self._failures,
                    self.timeout,
                )

    def call(self, func: Callable[[], T], is_failure: Callable[[T], bool] | None = None) -> T:
        """Run ``func`` through the breaker; an exception counts as a failure.

        Args:
            func: The call to protect.
            is_failure: Decides whether a returned value is a failure (default: never).
        """
        self.before_call()
        try:
            result = func()
        except BaseException:
            self.record_failure()
            raise
        if is_failure is not None and is_failure(result):
            self.record_failure()
        else:
            self.record_success()
        return result


def apply_jitter(
    delay: float,
    config: Mapping[str, Any],
    *,
    rand: Callable[[float, float], float] | None = None,
) -> float:
    """Multiply ``delay`` by a uniform factor in ``script-behavior.jitter`` min…max.

    Args:
        delay: Seconds.
        config: The whole config dict (missing jitter keys take their defaults, 0.8–1.2).
        rand: ``random.uniform``-like source (injectable for tests).

    Returns:
        The jittered delay, never negative.
    """
    jitter = behavior(config)["jitter"]
    uniform = rand or random.uniform  # looked up now, so a patched random.uniform is obeyed
    return max(0.0, delay * uniform(float(jitter["min-factor"]), float(jitter["max-factor"])))


def manual_retry(
    func: Callable[[], T],
    max_retries: int = MANUAL_RETRY_MAX_RETRIES,
    backoff: float = MANUAL_RETRY_BACKOFF,
    *,
    sleep: Callable[[float], None] | None = None,
) -> T:
    """Call ``func()`` up to ``1 + max_retries`` times, for work that is not an HTTP request.

    Sleeps ``backoff ** (n - 1)`` seconds before retry n and re-raises the last error.
    ``ConfigurationError``, ``ValidationError`` and ``ApiAuthenticationError`` are raised at
    once: repeating cannot fix them. The decision is :meth:`RetryPolicy.decide`'s, for work
    that is not an HTTP call (method None), without jitter. Do not wrap client calls in it —
    the HTTP client already retries, and nesting would multiply the requests.

    Args:
        func: The work, taking no arguments.
        max_retries: Retries after the first attempt.
        backoff: Base of the exponential delay.
        sleep: Sleep function (injectable for tests).

    Returns:
        What ``func`` returned.

    Example:
        >>> manual_retry(lambda: 42, max_retries=1)
        42
    """
    policy = RetryPolicy(
        max_retries=max_retries,
        backoff_factor=1.0,
        backoff_base=backoff,
        jitter_min=1.0,
        jitter_max=1.0,
    )
    attempt = 0
    while True:
        attempt += 1
        try:
            return func()
        except Exception as err:
            if policy.decide(None, err, attempt) is not Verdict.RETRY:
                raise
            wait = policy.backoff(attempt)
            log.debug("Retry %d of %d in %.2fs after %s", attempt, max_retries, wait, err)
            (sleep or _sleep)(wait)
