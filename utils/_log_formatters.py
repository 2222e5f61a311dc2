"""Redacting formatters and handlers behind :mod:`utils.logger` (text and JSON lines).

Redaction happens here, in the formatter stage, on the FINAL text of each part of a record:
the message after ``%``/mapping arguments are applied, the formatted traceback and the stack
information. The redacted parts are computed once per record and shared by every toolkit
handler (console and file), so a record is scanned once however many handlers it reaches.
In JSON mode every extra field is redacted too, and a field whose name marks a secret
(``extra={"password": ...}``) is hidden whole.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Callable
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from utils._redaction import REDACTED, REDACTION_FAILED, is_secret_key, redact

CONSOLE_FORMAT = "%(asctime)s %(levelname)-8s [%(name)s] %(message)s"
FILE_FORMAT = (
    "%(asctime)s %(levelname)-8s [%(name)s] %(threadName)s %(filename)s:%(lineno)d %(message)s"
)
# ISO 8601 in UTC with milliseconds: 2026-11-26T06:45:00.123Z
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
MSEC_FORMAT = "%s.%03dZ"
# Nesting deeper than this in a JSON extra field is replaced, not walked.
MAX_EXTRA_DEPTH = 8
# ``extra={FILE_ONLY: True}`` keeps a record off the console whatever its level (the
# traceback of a failure the console already showed as a message, for instance).
FILE_ONLY = "txo_file_only"
_CACHE_ATTR = "_txo_redacted"
_TIME_ATTR = "_txo_utc"
_PLAIN_TYPES = (int, float, bool, type(None))
_EXCEPTION_RENDERER = logging.Formatter()


def _message(record: logging.LogRecord) -> str:
    """Return ``record.getMessage()``; arguments that cannot be formatted give a note."""
    try:
        return record.getMessage()
    except Exception as err:  # a bad %-argument or a failing __str__ must not lose the record
        try:
            template = str(record.msg)
        except Exception:
            template = "<message that cannot be printed>"
        return f"{template} [log arguments could not be formatted: {type(err).__name__}]"


def redacted_parts(record: logging.LogRecord, formatted: str | None = None) -> tuple[str, str, str]:
    """Return the record's message, traceback and stack information, redacted.

    Computed once per record and cached on it, so every toolkit handler shares one scan.
    The redacted traceback also replaces ``record.exc_text`` (the standard library's own
    cache), so a formatter outside the toolkit that reuses it shows the redacted text.

    Args:
        record: The log record.
        formatted: ``record.getMessage()`` when the caller has it already (not formatted
            twice).

    Returns:
        ``(message, exception_text, stack_text)``; the last two are ``""`` when absent.
    """
    cached: tuple[str, str, str] | None = record.__dict__.get(_CACHE_ATTR)
    if cached is not None:
        return cached
    # py.warnings messages end in a newline; a log line should not.
    raw = formatted if formatted is not None else _message(record)
    message = redact(raw.rstrip("\n"))
    exc_text = ""
    if record.exc_info or record.exc_text:
        try:
            raw = record.exc_text or _EXCEPTION_RENDERER.formatException(record.exc_info)  # type: ignore[arg-type]
        except Exception:
            raw = "<traceback could not be formatted>"
        exc_text = redact(raw)
        record.exc_text = exc_text
    stack_text = redact(record.stack_info) if record.stack_info else ""
    parts = (message, exc_text, stack_text)
    record.__dict__[_CACHE_ATTR] = parts
    return parts


def format_utc(record: logging.LogRecord) -> str:
    """Return the record's creation time as ISO 8601 UTC with milliseconds (cached per
    record, so the console and the file share one conversion)."""
    stamp = record.__dict__.get(_TIME_ATTR)
    if stamp is None:
        seconds = time.strftime(TIME_FORMAT, time.gmtime(record.created))
        stamp = record.__dict__[_TIME_ATTR] = MSEC_FORMAT % (seconds, record.msecs)
    return str(stamp)


class RedactingTextFormatter(logging.Formatter):
    """Text lines (UTC timestamps); message, traceback and stack are redacted.

    Never raises: a record that cannot be formatted becomes a one-line placeholder.
    """

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """Return the record time as ISO 8601 UTC (``datefmt`` is ignored)."""
        return format_utc(record)

    def format(self, record: logging.LogRecord) -> str:
        """Format ``record`` as one text line (plus traceback lines), redacted."""
        try:
            message, exc_text, stack_text = redacted_parts(record)
            record.message = message
            record.asctime = format_utc(record)
            line = self.formatMessage(record)
            if exc_text:
                line = f"{line}\n{exc_text}"
            if stack_text:
                line = f"{line}\n{stack_text}"
            return line
        except Exception as err:
            return (
                f"{REDACTION_FAILED} ({type(err).__name__} formatting a {record.levelname} record)"
            )


class RedactingJsonFormatter(JsonFormatter):
    """One JSON object per line: timestamp, level, logger, message, org, env, run_id.

    ``exc_info`` and ``stack_info`` are added when present, then every extra field. Every
    string is redacted; a field whose name marks a secret is replaced whole; objects are
    rendered with ``str()`` and redacted (a failing ``__str__`` gives the placeholder).

    python-json-logger's template does the work: :meth:`add_fields` is the hook that decides
    what a record becomes, :meth:`jsonify_log_record` writes it with the plain encoder (every
    value is already plain JSON); ``format`` is only guarded so that it never raises.

    Args:
        context: Called per record; returns the ``org``, ``env`` and ``run_id`` fields.
    """

    def __init__(self, context: Callable[[], dict[str, str | None]]) -> None:
        super().__init__(json_ensure_ascii=True)
        self._context = context
        self._reserved = set(RESERVED_ATTRS) | {
            _CACHE_ATTR,
            _TIME_ATTR,
            FILE_ONLY,
            "message",
            "asctime",
            "taskName",
        }

    def format(self, record: logging.LogRecord) -> str:
        """Format ``record`` as one JSON line, redacted; never raises."""
        try:
            return super().format(record)
        except Exception:
            pass
        try:
            # The library formats the arguments itself: give it the message already made
            # safe (arguments that cannot be formatted carry a note instead).
            safe = logging.makeLogRecord(record.__dict__)
            safe.msg, safe.args = redacted_parts(record)[0], None
            return super().format(safe)
        except Exception as err:
            return json.dumps(
                {
                    "timestamp": format_utc(record),
                    "level": record.levelname,
                    "logger": record.name,
                    "message": f"{REDACTION_FAILED} ({type(err).__name__})",
                }
            )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        """Fill ``log_data`` with the toolkit's fields, every one redacted.

        ``message_dict`` (the library's copy of a dict message, with its unredacted
        traceback) is not used: the record's own parts are taken, redacted once.
        """
        # The library has just formatted the message into record.message: reuse it.
        formatted = None if isinstance(record.msg, dict) else record.__dict__.get("message")
        message, exc_text, stack_text = redacted_parts(record, formatted)
        record.message = message  # the library set the unredacted text there
        log_data.update(
            {
                "timestamp": format_utc(record),
                "level": record.levelname,
                "logger": record.name,
                "message": message,
                **self._context(),
            }
        )
        if isinstance(record.msg, dict):
            log_data["message"] = ""
            log_data.update(_clean_mapping(record.msg, log_data))
        if exc_text:
            log_data["exc_info"] = exc_text
        if stack_text:
            log_data["stack_info"] = stack_text
        extras = {k: v for k, v in record.__dict__.items() if k not in self._reserved}
        if extras:
            log_data.update(_clean_mapping(extras, log_data))

    def jsonify_log_record(self, log_data: dict[str, Any]) -> str:
        """Serialise ``log_data``, already made of plain JSON values by :meth:`add_fields`."""
        return json.dumps(log_data, ensure_ascii=True)


def _clean_mapping(mapping: dict[Any, Any], existing: dict[str, Any]) -> dict[str, Any]:
    """Redact a mapping of extra fields; never overwrite the standard fields."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        name = redact(str(key))
        if name in existing:
            name = f"extra.{name}"
        out[name] = _clean_value(name, value, 0)
    return out


def _clean_value(key: str, value: Any, depth: int) -> Any:
    """Return ``value`` safe to serialise: redacted strings, walked containers."""
    if is_secret_key(key) and not (
        value is None or isinstance(value, bool) or (isinstance(value, str) and not value)
    ):
        return REDACTED
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # NaN and infinities are not JSON
    if isinstance(value, _PLAIN_TYPES):
        return value
    if depth >= MAX_EXTRA_DEPTH:
        return "<nested too deep>"
    if isinstance(value, dict):
        return {redact(str(k)): _clean_value(str(k), v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_clean_value(key, item, depth + 1) for item in value]
    return redact(value)  # redact() renders with str() and never raises


class SafeHandlerMixin:
    """``handleError`` that never prints the record's arguments (they may hold a secret)."""

    def handleError(self, record: logging.LogRecord) -> None:
        """Report a failed emit on stderr with the error type and the record's origin only."""
        if not logging.raiseExceptions:
            return
        error = sys.exc_info()[1]
        try:
            sys.__stderr__.write(  # type: ignore[union-attr]
                f"--- Logging error: {type(error).__name__} while writing a record from "
                f"{record.name} ({record.pathname}:{record.lineno}) ---\n"
            )
        except Exception:  # stderr itself is gone: nothing left to tell
            return


def _not_file_only(record: logging.LogRecord) -> bool:
    return not getattr(record, FILE_ONLY, False)


class ConsoleHandler(SafeHandlerMixin, logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (so stderr captures see the lines).

    Records logged with ``extra={FILE_ONLY: True}`` are left to the file.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.addFilter(_not_file_only)

    def emit(self, record: logging.LogRecord) -> None:
        """Write ``record`` to the current ``sys.stderr``."""
        self.stream = sys.stderr
        super().emit(record)
