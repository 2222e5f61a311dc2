"""Run-wide state of one script run: its name, the dry-run mode, the stop signal, and the
work that must happen only when ``main()`` returned normally.

A signal only interrupts the main thread. Worker threads a script starts itself (or
``api.map``'s) learn of the stop here: once it is set, no further request leaves the process,
and the client's waits (api-delay, rate limiter, backoff, 202 polling) end at once.

``run_script`` calls :func:`run_success_hooks` after a normal return of ``main()`` and never
after an error, a signal or a dry run; the state store registers its commit there.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from utils.exceptions import ApiOperationError

STOP_CHECK_SECONDS = 0.25  # longest a waiting call takes to notice the stop
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]")

_stop = threading.Event()
_lock = threading.Lock()
_success_hooks: list[Callable[[], None]] = []
_dry_run = False
_script_override: str | None = None


def module_name() -> str:
    """The running script's module name: ``report`` for ``python -m src.report`` or ``report.py``.

    Characters other than letters, digits, ``_``, ``.`` and ``-`` become ``_``; ``python``
    when there is no script (an interactive session).
    """
    if _script_override:
        return _script_override
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    name = ""
    if spec is not None and spec.name:
        parts = [p for p in spec.name.split(".") if p != "__main__"]
        name = parts[-1] if parts else ""
    elif sys.argv and sys.argv[0] not in ("", "-c", "-"):
        name = Path(sys.argv[0]).stem
    return _UNSAFE_NAME_CHARS.sub("_", name).strip("._") or "python"


def script_name() -> str:
    """The script's settings name: its module name with ``_`` written ``-``.

    ``src/update_customers.py`` is ``update-customers``: the key of its section under
    ``scripts`` in the config, the name of its settings schema
    (``schemas/scripts/update-customers.json``), its state file and its metrics label.
    """
    return module_name().replace("_", "-")


def set_script_name(name: str | None) -> None:
    """Name the running script (module name, e.g. ``update_customers``) instead of reading
    it from ``__main__``; for tests that run a script's ``main()`` in-process. None undoes it."""
    global _script_override
    _script_override = name


def set_dry_run(enabled: bool) -> None:
    """Switch the run's dry-run mode (``--dry-run``): no write request leaves the process."""
    global _dry_run
    _dry_run = bool(enabled)


def is_dry_run() -> bool:
    """True when the run was started with ``--dry-run``."""
    return _dry_run


def on_success(hook: Callable[[], None]) -> None:
    """Run ``hook`` once ``main()`` returned normally (never after an error, a signal or a
    dry run). Hooks run in the order they were registered; an error in one fails the run."""
    with _lock:
        _success_hooks.append(hook)


def run_success_hooks() -> None:
    """Run and forget the registered success hooks (``run_script`` calls this)."""
    with _lock:
        hooks = list(_success_hooks)
        _success_hooks.clear()
    for hook in hooks:
        hook()


def request_stop() -> None:
    """Mark the run as stopping (called by ``run_script``'s signal handlers)."""
    _stop.set()


def stop_requested() -> bool:
    """True once the run is stopping."""
    return _stop.is_set()


def reset() -> None:
    """Clear the stop mark, the dry-run mode and the success hooks (start of a run, tests)."""
    _stop.clear()
    set_dry_run(False)
    with _lock:
        _success_hooks.clear()


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
