"""Run-wide stop signal: ``run_script`` sets it on SIGTERM/SIGINT, the HTTP client obeys it.

A signal only interrupts the main thread. Worker threads a script starts itself (or
``api.map``'s) learn of the stop here: once it is set, no further request leaves the process,
and the client's waits (api-delay, rate limiter, backoff, 202 polling) end at once.
"""

from __future__ import annotations

import threading
import time

from utils.exceptions import ApiOperationError

STOP_CHECK_SECONDS = 0.25  # longest a waiting call takes to notice the stop

_stop = threading.Event()


def request_stop() -> None:
    """Mark the run as stopping (called by ``run_script``'s signal handlers)."""
    _stop.set()


def stop_requested() -> bool:
    """True once the run is stopping."""
    return _stop.is_set()


def reset() -> None:
    """Clear the stop mark (start of a run, and tests)."""
    _stop.clear()


def stopping_error(method: str = "", url: str = "") -> ApiOperationError:
    """The error a request meets when the run is stopping: it was not sent."""
    return ApiOperationError(
        f"{method} request not sent: the run is stopping (SIGTERM or Ctrl-C).".lstrip(),
        "Nothing to fix here: the job was asked to stop. Run it again to finish the work.",
        method=method,
        url=url,
    )


def interruptible_sleep(seconds: float) -> None:
    """Sleep ``seconds``, or raise within :data:`STOP_CHECK_SECONDS` once the run must stop.

    Sleeps with ``time.sleep`` (looked up at each call, so a test that patches it is obeyed),
    in slices of at most :data:`STOP_CHECK_SECONDS`, checking the stop between them.

    Raises:
        ApiOperationError: The run is stopping (see :func:`stopping_error`).
    """
    remaining = max(0.0, seconds)
    while True:
        if _stop.is_set():
            raise stopping_error()
        if remaining <= 0:
            return
        step = min(remaining, STOP_CHECK_SECONDS)
        time.sleep(step)
        remaining -= step
