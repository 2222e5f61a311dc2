"""Incremental-pull state: what a script saw last time, moved forward only past saved work.

``load_state(config)`` gives the running script its state for this org/env, kept in
``state/{org}-{env}-{script}.json``, and holds the run-wide lock that lets one run at a time
work on it. ``run_script`` commits the pending state when ``main()`` returns normally, and
never after an error, a signal or a dry run; ``state.commit()`` checkpoints a long pull
earlier.

Example:
    >>> state = load_state(config)                                   # doctest: +SKIP
    >>> since = state.get("customers_watermark", "1970-01-01T00:00:00Z")
    >>> ... pull what changed since then, save it ...
    >>> state.set("customers_watermark", newest_seen)   # committed when main() returns
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Mapping
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from utils import _run_control as run_control
from utils._atomic_write import write_atomically
from utils.exceptions import ConfigurationError, StateLockedError, ValidationError
from utils.path_helpers import get_path

log = logging.getLogger(__name__)

STATE_CATEGORY = "state"
STATE_SUFFIX = ".json"
LOCK_SUFFIX = ".lock"
LOCK_INFO_WAIT_SECONDS = 0.5
"""How long a refused run waits for the holder to finish writing its pid into the lock file."""
LOCK_INFO_POLL_SECONDS = 0.02
MAX_SHOWN_CHARS = 60

_held: dict[Path, RunState] = {}
_lock_fds: dict[Path, int] = {}
_held_lock = threading.Lock()


class RunState:
    """The state of one script for one org/env: JSON values under string keys.

    Get one with :func:`load_state`, not by hand: that takes the lock and registers the
    commit with ``run_script``.

    Args:
        path: The state file.
        values: The committed values (as read from the file).
        dirty: Whether there is something to commit even before any :meth:`set` (a full
            refresh: the empty state replaces the old file on success).
    """

    def __init__(self, path: Path, values: dict[str, Any], *, dirty: bool = False):
        self.path = path
        self._values = values
        self._dirty = dirty
        self._lock = threading.Lock()

    def get(self, key: str, default: Any = None) -> Any:
        """The value under ``key`` (as the next run will read it), else ``default``.

        Dates and datetimes come back as the ISO 8601 strings they were stored as;
        ``datetime.fromisoformat(value)`` turns one back (the same instant for an aware one).
        Lists and objects are copies: change them through :meth:`set`.
        """
        with self._lock:
            if key not in self._values:
                return default
            value = self._values[key]
        return copy.deepcopy(value) if isinstance(value, list | dict) else value

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key``, to be committed with the run (or by :meth:`commit`).

        Args:
            key: Any string.
            value: A JSON value (None, bool, int, finite float, str, list/tuple, dict with
                string keys), possibly nested; a ``date`` or ``datetime`` anywhere in it is
                stored as its ISO 8601 string (an aware datetime keeps its offset).

        Raises:
            ValidationError: ``key`` is not a string, or ``value`` holds something JSON
                cannot carry (a ``Decimal``, a set, an object, NaN ...).
        """
        if not isinstance(key, str):
            raise ValidationError(
                f"State keys are strings; got {type(key).__name__} {key!r:.{MAX_SHOWN_CHARS}}.",
                "Name each state entry with a string.",
                'state.set("customers_watermark", newest)',
            )
        encoded = _to_json_value(value, key)
        with self._lock:
            self._values[key] = encoded
            self._dirty = True

    def commit(self) -> None:
        """Write the state to its file now, atomically: a checkpoint in a long pull.

        Call it only after the work the state speaks of is saved. Does nothing in a dry run
        (a dry run never moves the state forward) or when nothing changed.

        Raises:
            FileOperationError: The state file could not be written (the previous one stays).
        """
        if run_control.is_dry_run():
            log.info("DRY RUN: state not committed to %s", self.path)
            return
        with self._lock:
            if not self._dirty:
                return
            data = _render(self._values).encode("utf-8")

            def write(tmp: Path) -> None:
                tmp.write_bytes(data)

            write_atomically(self.path, write)
            self._dirty = False
        log.debug("State committed to %s", self.path)

    def __repr__(self) -> str:
        return f"RunState({str(self.path)!r}, keys={sorted(self._values)!r})"


def _render(values: Mapping[str, Any]) -> str:
    """The file's text: one top-level key a line, readable in a diff; compact within."""
    if not values:
        return "{}\n"
    lines = (
        f"  {json.dumps(k, ensure_ascii=False)}: {json.dumps(v, ensure_ascii=False)}"
        for k, v in values.items()
    )
    return "{\n" + ",\n".join(lines) + "\n}\n"


def _to_json_value(value: Any, key: str) -> Any:
    """``value`` as stored: dates as ISO strings, tuples as lists; anything else refused."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
    elif isinstance(value, datetime | date):
        return value.isoformat()
    elif isinstance(value, list | tuple):
        return [_to_json_value(item, key) for item in value]
    elif isinstance(value, Mapping) and all(isinstance(k, str) for k in value):
        return {k: _to_json_value(v, key) for k, v in value.items()}
    raise ValidationError(
        f"State entry {key!r} holds a value JSON cannot store: {type(value).__name__} "
        f"{value!r:.{MAX_SHOWN_CHARS}}.",
        "Store JSON values only (strings, numbers, booleans, None, lists, objects with "
        "string keys) and dates/datetimes: convert the rest, e.g. a Decimal with str().",
        f'state.set("{key}", str(amount))',
    )


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _lock_info(fd: int) -> dict[str, Any]:
    """What the holder wrote into the lock file ({} while it has not written yet)."""
    deadline = time.monotonic() + LOCK_INFO_WAIT_SECONDS
    while True:
        os.lseek(fd, 0, os.SEEK_SET)
        raw = os.read(fd, 4096)
        with contextlib.suppress(ValueError):
            info = json.loads(raw.decode("utf-8"))
            if isinstance(info, dict) and info.get("pid"):
                return info
        if time.monotonic() >= deadline:
            return {}
        time.sleep(LOCK_INFO_POLL_SECONDS)


def _locked_error(lock_path: Path, state_path: Path, info: Mapping[str, Any]) -> StateLockedError:
    holder = (
        f"process {info.get('pid')} on {info.get('host', 'an unknown host')}, running since "
        f"{info.get('started', 'an unknown time')}"
        if info
        else "another process (it has not written its pid yet)"
    )
    return StateLockedError(
        f"Another run of this script for this org/env holds its state {state_path}: {holder}.",
        "Let that run finish and try again later (exit code 75 means exactly this; cron and "
        f"schedulers may simply retry). The lock is {lock_path}; it frees itself when its "
        "process ends, so never delete it by hand.",
        f"ps -p {info.get('pid', '<pid>')}",
    )


def _acquire(lock_path: Path, state_path: Path) -> int:
    """Take the exclusive lock of ``lock_path`` for the rest of the process; return its fd.

    ``flock`` belongs to the open file: the kernel frees it when the process ends however it
    ends, so the pid text a dead holder left behind never blocks anyone (it is overwritten).

    Raises:
        StateLockedError: A live process holds it.
        ConfigurationError: The lock file cannot be opened.
    """
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise _unreadable(lock_path, err) from err
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        info = _lock_info(fd)
        os.close(fd)
        raise _locked_error(lock_path, state_path, info) from None
    except OSError as err:
        os.close(fd)
        raise _unreadable(lock_path, err) from err
    info = {
        "pid": os.getpid(),
        "started": _now_iso(),
        "host": socket.gethostname(),
        "script": run_control.script_name(),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(info) + "\n").encode("utf-8"), 0)
    return fd


def _unreadable(path: Path, err: OSError) -> ConfigurationError:
    return ConfigurationError(
        f"Cannot open the state file {path}: {err.strerror or err}.",
        "Make the state/ folder and its files readable and writable by this user, or start "
        "afresh with --full-refresh (the old state is replaced when that run succeeds).",
        _full_refresh_example(path),
    )


def _full_refresh_example(path: Path) -> str:
    """``make run`` of the running script for the state's org/env, with ``--full-refresh``."""
    org, env = path.stem.split("-")[:2]
    return f"make run SCRIPT={run_control.module_name()} ORG={org} ENV={env} ARGS=--full-refresh"


def _corrupt(path: Path, reason: str) -> ConfigurationError:
    return ConfigurationError(
        f"The state file {path} is corrupt: {reason}.",
        "Run the script once with --full-refresh: it starts from an empty state and replaces "
        "the file when it succeeds (or restore the file from a backup).",
        _full_refresh_example(path),
    )


def _read(path: Path) -> dict[str, Any]:
    """The committed values in ``path``; {} when there is no file yet."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as err:
        raise _unreadable(path, err) from err
    try:
        values = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise _corrupt(path, "it is not UTF-8 text") from None
    except json.JSONDecodeError as err:
        where = f"line {err.lineno}, column {err.colno}"
        raise _corrupt(path, f"not valid JSON ({where}: {err.msg})") from None
    if not isinstance(values, dict):
        raise _corrupt(path, f"it holds a JSON {type(values).__name__}, not an object")
    return values


def _state_path(config: Mapping[str, Any]) -> Path:
    """``state/{org}-{env}-{script}.json`` of the running script (``script`` as in
    ``run_control.script_name()``)."""
    org, env = config.get("_org_id"), config.get("_env_type")
    if not org or not env:
        raise ConfigurationError(
            "load_state needs the config of a run (its _org_id and _env_type are missing).",
            "Pass the config parse_args_and_load_config returned.",
            "config = parse_args_and_load_config(...)\nstate = load_state(config)",
        )
    return get_path(STATE_CATEGORY, f"{org}-{env}-{run_control.script_name()}{STATE_SUFFIX}")


def load_state(config: Mapping[str, Any]) -> RunState:
    """This script's state for this org/env, locked for this process until it ends.

    Empty when there is none yet, or with ``--full-refresh`` (``config["_full_refresh"]``):
    the old file is then not read, and is replaced when the run succeeds. The pending state
    is committed by ``run_script`` when ``main()`` returns normally (never after an error, a
    signal or a dry run). Calling it again in the same process returns the same object.

    Args:
        config: The loaded config (``_org_id``, ``_env_type``, ``_full_refresh``).

    Returns:
        The :class:`RunState`.

    Raises:
        StateLockedError: Another live run of this script for this org/env holds the state
            (exit code 75); the message names its pid, host and start time (UTC).
        ConfigurationError: The state file is corrupt or unreadable (exit code 2): fix it
            or run with ``--full-refresh``.
    """
    path = _state_path(config)
    with _held_lock:
        state = _held.get(path)
        if state is None:
            fd = _acquire(path.with_suffix(LOCK_SUFFIX), path)
            full_refresh = bool(config.get("_full_refresh"))
            try:
                values: dict[str, Any] = {} if full_refresh else _read(path)
            except BaseException:
                os.close(fd)  # nothing was loaded: let the lock go with the error
                raise
            if full_refresh:
                log.info("Full refresh: starting from an empty state (%s is replaced)", path)
            if run_control.is_dry_run():
                log.info("DRY RUN: the state is read, never committed (%s)", path)
            state = RunState(path, values, dirty=full_refresh)
            _held[path] = state
            _lock_fds[path] = fd  # open until the process ends: that is the lock
    run_control.on_success(state.commit)
    return state


__all__ = ["RunState", "load_state"]
