"""Secret-safe logging for every script: redacted console (text or JSON) and a per-run file.

``setup_logger()`` installs two handlers on the ROOT logger, so records from the toolkit, a
script, any child logger, urllib3, requests and the root logger itself all pass through them:

- console, on ``sys.stderr``, INFO and up (``configure_console`` or ``TXO_LOG_LEVEL`` change
  the level), as text or, with ``--log-format json`` / ``TXO_LOG_FORMAT=json``, as one JSON
  object per line (python-json-logger) with ``timestamp``, ``level``, ``logger``,
  ``message``, ``org``, ``env`` and ``run_id``;
- file, ``logs/{script}_{YYYY-MM-DDTHHMMSSZ}_{run_id}.log``, always DEBUG and up, in text.
  Once :func:`set_context` learns the organisation and environment the file is renamed to
  ``logs/{org}-{env}-{script}_{...}.log`` (the handler closes, renames and reopens it, so
  this works on every platform). Only the newest :data:`LOG_FILES_KEPT` files of each
  script/org/env are kept; older ones are deleted when a run starts or its context is set.

Timestamps are UTC. Python warnings (``logging.captureWarnings``), uncaught exceptions
(main thread and other threads) and the errors Python can only report ("Exception ignored
in ...", ``sys.unraisablehook``) go through the same handlers. Redaction is applied in the
formatter stage to the final message (after ``%`` arguments), traceback, stack text and, in
JSON, every extra field (see :mod:`utils._log_formatters`); only the parts the toolkit writes
itself (timestamp, level, logger and thread names) are not scanned. Handlers that other
code adds to the root logger are not redacted; a plain ``StreamHandler`` to stderr/stdout
left by ``logging.basicConfig`` is removed at setup, since it would print every line twice,
the second time unredacted.

Toolkit modules simply use ``log = logging.getLogger(__name__)``. Scripts call
``logger = setup_logger()`` at import and log with ``%``-style arguments. That import-time
call is what "runs at import" means: importing ``utils`` itself installs nothing (a library
or test process that imports the toolkit keeps its own logging and hooks), and
``run_script`` / ``parse_args_and_load_config`` call it again (a no-op) before anything else.

Example:
    >>> logger = setup_logger()
    >>> logger.info("Fetched %d customers", 42)
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import types
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from utils import _run_control as run_control, path_helpers
from utils._log_formatters import (
    CONSOLE_FORMAT,
    FILE_FORMAT,
    ConsoleHandler,
    RedactingJsonFormatter,
    RedactingTextFormatter,
    SafeHandlerMixin,
)

# A secret the toolkit cannot know of (one a script builds) is registered through here.
from utils._redaction import register_secret as register_secret
from utils.exceptions import ConfigurationError, FileOperationError

LOG_FORMATS = ("text", "json")
DEFAULT_CONSOLE_LEVEL = "INFO"
ENV_LOG_FORMAT = "TXO_LOG_FORMAT"
ENV_LOG_LEVEL = "TXO_LOG_LEVEL"
TOOLKIT_LOGGER = "txo"
# Per script/org/env, the newest this many per-run log files are kept.
LOG_FILES_KEPT = 30
RUN_ID_LENGTH = 8
FILE_TIME_FORMAT = "%Y-%m-%dT%H%M%SZ"
_FILE_NAME = re.compile(
    rf"^(?P<key>.+)_\d{{4}}-\d{{2}}-\d{{2}}T\d{{6}}Z_[0-9a-f]{{{RUN_ID_LENGTH}}}\.log$"
)
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")

if TYPE_CHECKING:
    _AdapterBase = logging.LoggerAdapter[logging.Logger]
else:
    _AdapterBase = logging.LoggerAdapter

log = logging.getLogger(__name__)


class TxoLogger(_AdapterBase):
    """The script's logger: a thin ``logging.LoggerAdapter`` over the ``txo`` logger.

    It offers ``debug``/``info``/``warning``/``error``/``exception``/``critical`` with
    ``%``-style arguments and ``extra=`` exactly like ``logging.Logger`` (an adapter, not a
    subclass, so the process-wide logger class is left alone); records report the caller's
    file and line. Properties :attr:`log_file` and :attr:`run_id` help scripts say where
    their log went.
    """

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        """Pass ``msg`` and ``kwargs`` through unchanged (keeps the caller's ``extra``)."""
        return msg, kwargs

    @property
    def log_file(self) -> Path | None:
        """The current per-run log file, or None when file logging is unavailable."""
        return get_log_file()

    @property
    def run_id(self) -> str:
        """The run id that appears in JSON lines and in the log file name."""
        return _state.run_id


class RunFileHandler(SafeHandlerMixin, logging.FileHandler):
    """The per-run DEBUG file; opened on the first record, renamed when the context is set.

    When the file cannot be opened (``logs/`` read-only, disk full), the run goes on with the
    console only and says so once: losing the log file must not fail a batch job.
    """

    failed = False

    def emit(self, record: logging.LogRecord) -> None:
        """Write ``record``; on the first failure to open the file, fall back to the console."""
        if self.failed:
            return
        if self.stream is None:
            try:
                self.stream = self._open()
            except OSError as err:
                self.failed = True
                log.warning(
                    "Logging to the console only: cannot open the log file %s (%s).",
                    self.baseFilename,
                    err.strerror,
                )
                return
        super().emit(record)

    def rename(self, target: Path) -> None:
        """Move the file to ``target`` and keep writing there."""
        self.acquire()
        try:
            if self.stream is not None:
                self.stream.close()
                self.stream = None
            if os.path.exists(self.baseFilename):
                os.replace(self.baseFilename, target)
            self.baseFilename = os.fspath(target)
        finally:
            self.release()


class _State:
    """Everything the singleton owns, behind one lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.logger: TxoLogger | None = None
        self.console: ConsoleHandler | None = None
        self.file: RunFileHandler | None = None
        self.org: str | None = None
        self.env: str | None = None
        self.run_id = uuid.uuid4().hex[:RUN_ID_LENGTH]
        self.script = "python"
        self.started = datetime.now(timezone.utc)

    def context(self) -> dict[str, str | None]:
        return {"org": self.org, "env": self.env, "run_id": self.run_id}


_state = _State()


def _script_name() -> str:
    """Name of the running script: ``report`` for ``python -m src.report`` or ``report.py``."""
    return run_control.module_name()


def _file_key() -> str:
    """The file-name prefix for the current context: ``[org-][env-]script``."""
    parts = [p for p in (_state.org, _state.env) if p]
    return _UNSAFE_NAME_CHARS.sub("_", "-".join([*parts, _state.script]))


def _file_name() -> str:
    stamp = _state.started.strftime(FILE_TIME_FORMAT)
    return f"{_file_key()}_{stamp}_{_state.run_id}.log"


def _prune_old_files(folder: Path, key: str, current: Path) -> None:
    """Delete all but the newest :data:`LOG_FILES_KEPT` log files named for ``key``."""
    try:
        mine = sorted(
            p
            for p in folder.iterdir()
            if p != current and (m := _FILE_NAME.match(p.name)) and m.group("key") == key
        )
        for old in mine[: max(0, len(mine) - (LOG_FILES_KEPT - 1))]:
            old.unlink(missing_ok=True)
    except OSError as err:
        log.debug("Could not prune old log files in %s: %s", folder, err.strerror)


def _open_file_handler() -> RunFileHandler | None:
    try:
        path = path_helpers.get_path("logs", _file_name())
    except FileOperationError as err:
        log.warning("Logging to the console only: %s", err.what_went_wrong)
        return None
    handler = RunFileHandler(path, encoding="utf-8", delay=True)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(RedactingTextFormatter(FILE_FORMAT))
    _prune_old_files(path.parent, _file_key(), path)
    return handler


def _parse_format(value: str) -> str:
    fmt = value.strip().lower()
    if fmt not in LOG_FORMATS:
        raise ConfigurationError(
            f"Unknown log format {value!r}.",
            f"Use one of: {', '.join(LOG_FORMATS)}.",
            "--log-format json   (or TXO_LOG_FORMAT=json)",
        )
    return fmt


def _parse_level(value: str) -> int:
    level = logging.getLevelName(value.strip().upper())
    if not isinstance(level, int):
        raise ConfigurationError(
            f"Unknown log level {value!r}.",
            "Use one of: DEBUG, INFO, WARNING, ERROR, CRITICAL.",
            "--log-level DEBUG",
        )
    return level


def _console_formatter(fmt: str) -> logging.Formatter:
    if fmt == "json":
        return RedactingJsonFormatter(_state.context)
    return RedactingTextFormatter(CONSOLE_FORMAT)


def _log_uncaught(
    exc_type: type[BaseException],
    exc: BaseException,
    tb: types.TracebackType | None,
) -> None:
    """``sys.excepthook``: uncaught exceptions are logged (redacted), not printed raw."""
    logging.getLogger(TOOLKIT_LOGGER).critical("Uncaught exception", exc_info=(exc_type, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    """``threading.excepthook``: the same for other threads."""
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger(TOOLKIT_LOGGER).critical(
        "Uncaught exception in thread %s",
        name,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),  # type: ignore[arg-type]
    )


def _log_unraisable(unraisable: Any) -> None:
    """``sys.unraisablehook``: errors Python can only report ("Exception ignored in ...", a
    failing ``__del__``) are logged (redacted, JSON in JSON mode), not printed raw."""
    where = getattr(unraisable, "err_msg", None) or "Exception ignored in"
    obj = getattr(unraisable, "object", None)
    exc = unraisable.exc_value
    exc_info = (unraisable.exc_type, exc, unraisable.exc_traceback) if exc is not None else None
    logging.getLogger(TOOLKIT_LOGGER).warning("%s: %s", where, _safe_repr(obj), exc_info=exc_info)


def _safe_repr(obj: Any) -> str:
    try:
        return repr(obj)
    except Exception:  # a broken __repr__ must not hide the report
        return f"<{type(obj).__name__} object>"


def _install() -> None:
    """Install the console and file handlers on the root logger (once)."""
    _state.script = _script_name()
    _state.started = datetime.now(timezone.utc)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if type(handler) is logging.StreamHandler and handler.stream in (
            sys.stderr,
            sys.stdout,
        ):
            root.removeHandler(handler)
    root.setLevel(logging.DEBUG)

    problems = []
    fmt = "text"
    level = logging.getLevelName(DEFAULT_CONSOLE_LEVEL)
    try:
        fmt = _parse_format(os.environ.get(ENV_LOG_FORMAT) or "text")
    except ConfigurationError:
        problems.append(f"{ENV_LOG_FORMAT}={os.environ.get(ENV_LOG_FORMAT)!r} is not text or json")
    try:
        level = _parse_level(os.environ.get(ENV_LOG_LEVEL) or DEFAULT_CONSOLE_LEVEL)
    except ConfigurationError:
        problems.append(f"{ENV_LOG_LEVEL}={os.environ.get(ENV_LOG_LEVEL)!r} is not a level")

    console = ConsoleHandler()
    console.setLevel(level)
    console.setFormatter(_console_formatter(fmt))
    root.addHandler(console)
    _state.console = console

    _state.file = _open_file_handler()
    if _state.file is not None:
        root.addHandler(_state.file)

    logging.captureWarnings(True)
    if sys.excepthook is sys.__excepthook__:
        sys.excepthook = _log_uncaught
    if threading.excepthook is threading.__excepthook__:
        threading.excepthook = _log_uncaught_in_thread
    if sys.unraisablehook is sys.__unraisablehook__:
        sys.unraisablehook = _log_unraisable
    for problem in problems:
        log.warning("%s: ignored, using the default.", problem)


def setup_logger(org_id: str | None = None) -> TxoLogger:
    """Set up logging for this process (once) and return the script's logger.

    Thread-safe: every call, from any thread, returns the same :class:`TxoLogger`; the
    handlers are installed by the first call only.

    Args:
        org_id: The organisation, when already known (also settable via :func:`set_context`).

    Returns:
        The process-wide :class:`TxoLogger`.
    """
    with _state.lock:
        if _state.logger is None:
            _install()
            _state.logger = TxoLogger(logging.getLogger(TOOLKIT_LOGGER), {})
        logger = _state.logger
    if org_id is not None:
        set_context(org_id=org_id)
    return logger


def configure_console(log_format: str | None = None, level: str | None = None) -> None:
    """Change the console handler's format and/or level (the file keeps DEBUG, in text).

    Args:
        log_format: ``"text"`` or ``"json"``; None keeps the current format.
        level: A level name (``DEBUG``, ``INFO``, ``WARNING``, ``ERROR``, ``CRITICAL``, any
            case); None keeps the current level.

    Raises:
        ConfigurationError: Unknown format or level (a usage error, exit code 2).
    """
    setup_logger()
    fmt = _parse_format(log_format) if log_format is not None else None
    number = _parse_level(level) if level is not None else None
    with _state.lock:
        console = _state.console
        if console is None:
            return
        if fmt is not None:
            console.setFormatter(_console_formatter(fmt))
        if number is not None:
            console.setLevel(number)


def set_context(org_id: str | None = None, env_type: str | None = None) -> None:
    """Record the organisation and environment of this run.

    They appear in every JSON line from now on, and the log file is renamed to
    ``{org}-{env}-{script}_{timestamp}_{run_id}.log``. None leaves a value unchanged.

    Args:
        org_id: Organisation id, e.g. ``acme``.
        env_type: Environment, e.g. ``prod``.
    """
    setup_logger()
    with _state.lock:
        if org_id is not None:
            _state.org = org_id
        if env_type is not None:
            _state.env = env_type
        handler = _state.file
        if handler is None:
            return
        current = Path(handler.baseFilename)
        target = current.with_name(_file_name())
        if target == current:
            return
        try:
            handler.rename(target)
        except OSError as err:
            log.warning("Could not rename the log file to %s: %s", target.name, err.strerror)
            return
        _prune_old_files(target.parent, _file_key(), target)


def run_context() -> dict[str, str | None]:
    """The run's ``org``, ``env`` (None until :func:`set_context` names them) and ``run_id``:
    the fields every JSON log record carries, for other run reports (metrics) to share."""
    return _state.context()


def get_log_file() -> Path | None:
    """Return the current per-run log file (it exists once a record was written).

    Returns:
        The path, or None before :func:`setup_logger` or when ``logs/`` is not writable.
    """
    with _state.lock:
        if _state.file is None or _state.file.failed:
            return None
        return Path(_state.file.baseFilename)
