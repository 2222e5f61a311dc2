"""The account of a write-back: its records, its report, and the report's file form.

:class:`WriteRequest` is one record to write, :class:`WriteResult` what happened to it and
:class:`WriteReport` the whole call's account (``TxoRestAPI.write_many`` returns it).
:class:`Ledger` builds that account while the call runs, and :func:`http_failure` words a
record's failure the same way in both ways of sending. ``save_write_report`` and
:func:`load_write_report` move a report to and from any format ``save()`` writes.

A record's ``key`` is kept as text (``str(key)``), so a report reads back the same from every
format and a re-run can compare keys.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from utils import _redaction as redaction, _run_control as run_control
from utils._http_errors import safe_url
from utils._retry_policy import RETRY_STATUSES_IDEMPOTENT, Verdict
from utils.exceptions import (
    ApiAuthenticationError,
    CircuitOpenError,
    HelpfulError,
    PartialWriteError,
    ValidationError,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Generator

    from utils._rest_client import RestTransport
    from utils._retry_policy import RetryPolicy

log = logging.getLogger(__name__)

OK = "ok"
FAILED = "failed"
NOT_SENT = "not-sent"
DRY_RUN = "dry-run"
STATUSES = (OK, FAILED, NOT_SENT, DRY_RUN)
REPORT_COLUMNS = ("key", "method", "path", "status", "http_status", "attempts", "error")
REPORT_FORMATS = (".csv", ".xlsx", ".json", ".jsonl", ".parquet")
CHANGED_SINCE_READ = "changed since it was read"
BREAKER_OPEN = "the circuit breaker opened after repeated server failures"
TOKEN_REFUSED = "the API refused the access token and it could not be refreshed"
RUN_STOPPED = "the run was stopped (SIGTERM or Ctrl-C)"


class WriteClient(Protocol):
    """What a write-back needs of its client (``TxoRestAPI``, which imports this module)."""

    transport: RestTransport
    update_batch_size: int

    @property
    def base_url(self) -> str: ...

    @property
    def dry_run(self) -> bool: ...

    def url_for(self, path_or_url: str) -> str: ...

    def imap(
        self,
        fn: Callable[[Any], Any],
        items: Iterable[Any],
        max_workers: int | None = None,
        window: int | None = None,
    ) -> Generator[Any, None, None]: ...


# -- the records ------------------------------------------------------------------------------
@dataclass(frozen=True)
class WriteRequest:
    """One record to write: where, what, and how to recognise it in the report.

    Args:
        path: Path relative to ``api-base-url`` (or an absolute URL), e.g. ``customers(42)``.
        body: The JSON body (None: no body, as for DELETE).
        key: Names the record in the report (default: ``path``); kept as text.
        etag: Sent as ``If-Match``: the write applies only to the version that was read (412
            otherwise), and a PATCH that carries it may be retried like a PUT.
        headers: Extra request headers for this record.

    Example:
        >>> WriteRequest("customers(42)", {"blocked": "Invoice"}, key="C10420").key
        'C10420'
    """

    path: str
    body: Any = None
    key: str | None = None
    etag: str | None = None
    headers: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path.strip():
            raise ValidationError(
                f"A WriteRequest needs a path, got {self.path!r}.",
                "Give the record's path relative to api-base-url (or a full URL).",
                'WriteRequest("customers(42)", {"blocked": "Invoice"}, key="C10420")',
            )
        object.__setattr__(self, "key", self.path if self.key is None else str(self.key))

    def request_headers(self) -> dict[str, str]:
        """The record's own headers, with ``If-Match`` when it carries an ETag."""
        headers = {str(k): str(v) for k, v in (self.headers or {}).items()}
        if self.etag is not None:
            for name in [n for n in headers if n.lower() == "if-match"]:
                del headers[name]
            headers["If-Match"] = str(self.etag)
        return headers


@dataclass
class WriteResult:
    """What happened to one record.

    Attributes:
        key: The record's key (its path unless one was given).
        method: The HTTP method.
        path: The path as given.
        status: ``ok``, ``failed``, ``not-sent`` or ``dry-run``.
        http_status: The status of the record's last answer (None when none came).
        attempts: Requests actually sent for the record.
        error: Why it failed or was not sent, with the server's own message (None if ok).
        response: The parsed body of an ``ok`` answer (None once read back from a file).
    """

    key: str
    method: str
    path: str
    status: str
    http_status: int | None = None
    attempts: int = 0
    error: str | None = None
    response: Any = field(default=None, repr=False)

    def to_record(self) -> dict[str, Any]:
        """The report row: every field but ``response``."""
        return {name: getattr(self, name) for name in REPORT_COLUMNS}


class WriteReport:
    """The account of one ``write_many`` call: one :class:`WriteResult` per item, in order.

    Attributes:
        results: Every item's result, in input order.
        saved_to: Where the report was saved (``report=``), or read from; else None.

    Example::

        report = api.write_many("PATCH", items, report=("output", "writes.csv"))
        report.counts                # Counter({'ok': 41, 'failed': 1})
        report.raise_for_failures()  # PartialWriteError (exit 6): not every record was written
    """

    def __init__(self, results: Iterable[WriteResult], *, saved_to: Path | None = None):
        self.results: list[WriteResult] = list(results)
        self.saved_to = saved_to

    def _with(self, status: str) -> list[WriteResult]:
        return [r for r in self.results if r.status == status]

    @property
    def ok(self) -> list[WriteResult]:
        """The records written."""
        return self._with(OK)

    @property
    def failed(self) -> list[WriteResult]:
        """The records sent but not written (the error says why)."""
        return self._with(FAILED)

    @property
    def not_sent(self) -> list[WriteResult]:
        """The records never sent: the breaker opened, the token failed, the run stopped."""
        return self._with(NOT_SENT)

    @property
    def counts(self) -> Counter[str]:
        """Status → number of records (a ``Counter``: a status that did not occur is 0)."""
        return Counter(r.status for r in self.results)

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per record (``key``, ``method``, ``path``, ``status``, ``http_status``,
        ``attempts``, ``error``), ready for ``save()``."""
        return [r.to_record() for r in self.results]

    def raise_for_failures(self) -> None:
        """Raise :class:`PartialWriteError` (exit code 6) when a record failed or was not sent.

        Raises:
            PartialWriteError: Some records were not written; ``.report`` is this report.
        """
        failed, not_sent = self.failed, self.not_sent
        if not failed and not not_sent:
            return
        first = (failed or not_sent)[0]
        last_answered = next((r for r in reversed(failed) if r.http_status is not None), None)
        where = f" The report is {self.saved_to}." if self.saved_to else ""
        name = self.saved_to.name if self.saved_to else "writes.csv"
        raise PartialWriteError(
            f"{first.method} write-back incomplete: {len(self.ok)} of {len(self.results)} "
            f"records written, {len(failed)} failed, {len(not_sent)} not sent. First: "
            f"{first.key}: {str(first.error).rstrip('.')}.{where}",
            "Do not re-run the whole job blindly: the records already written would be written "
            "again. Fix what the report's error column says, then re-run only the failed and "
            "not-sent keys (load_write_report reads the report back).",
            f'previous = load_write_report("output", "{name}")\n'
            "retry = {r.key for r in previous.failed + previous.not_sent}",
            report=self,
            status_code=last_answered.http_status if last_answered else None,
            url=safe_url(first.path),
            method=first.method,
        )

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[WriteResult]:
        return iter(self.results)

    def __repr__(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in self.counts.items())
        return f"WriteReport({len(self.results)} records: {counts or 'none'})"


# -- the report's file form -------------------------------------------------------------------
def _report_data(report: WriteReport, filename: str) -> Any:
    """``report`` as ``save()`` takes it: rows for JSON, a typed table for the others (so a
    missing HTTP status is an empty cell, never ``412.0``)."""
    if Path(filename).suffix.lower() in (".json", ".jsonl"):
        return report.to_records()
    import pandas as pd

    frame = pd.DataFrame(report.to_records(), columns=list(REPORT_COLUMNS))
    frame["http_status"] = frame["http_status"].astype("Int64")
    frame["attempts"] = frame["attempts"].astype("int64")
    return frame


def check_report_target(target: Any) -> tuple[str, str]:
    """Check ``report=(directory, filename)`` before anything is sent, so that a name that
    cannot be saved never costs the account of records already written.

    Raises:
        ValidationError: Not a pair, or not one of :data:`REPORT_FORMATS`.
        FileOperationError: An unknown directory category, or a name escaping it.
    """
    from utils.path_helpers import check_path

    example = 'report=("output", timestamped_filename(config, "writes", "csv"))'
    if not (isinstance(target, (tuple, list)) and len(target) == 2):
        raise ValidationError(
            f"write_many report= must be a (directory, filename) pair, got {target!r}.",
            "Name the get_path category and the file; the extension picks the format.",
            example,
        )
    directory, filename = target
    check_path(directory, filename)
    if Path(str(filename)).suffix.lower() not in REPORT_FORMATS:
        raise ValidationError(
            f"write_many cannot save its report as {filename!r}.",
            f"End the name with one of {', '.join(REPORT_FORMATS)}.",
            example,
        )
    return str(directory), str(filename)


def save_write_report(report: WriteReport, directory: str, filename: str) -> Path:
    """Save ``report`` through ``save()`` (atomic; format from the extension)."""
    from utils.load_n_save import TxoDataHandler

    return TxoDataHandler().save(_report_data(report, filename), directory, filename)


def _missing(value: Any) -> bool:
    if value is None or (isinstance(value, str) and not value.strip()):
        return True
    try:
        return bool(value != value)  # NaN, pandas NA
    except (TypeError, ValueError):
        return False


def _text(value: Any) -> str | None:
    return None if _missing(value) else str(value)


def _whole(value: Any) -> int | None:
    return None if _missing(value) else int(float(value))


def load_write_report(directory: str, filename: str) -> WriteReport:
    """Read back a report that ``write_many(report=...)`` saved, in any of its formats.

    Args:
        directory: The ``get_path`` category it was saved in (``output``).
        filename: Its name (``.json``, ``.jsonl``, ``.csv``, ``.xlsx`` or ``.parquet``).

    Returns:
        The report; each result's ``response`` is None (bodies are not saved).

    Raises:
        FileOperationError: The file is missing or unreadable.
        ValidationError: The file is not a write report (columns missing) or cannot be parsed.

    Example:
        >>> previous = load_write_report("output", "writes.csv")           # doctest: +SKIP
        >>> retry = {r.key for r in previous.failed + previous.not_sent}   # doctest: +SKIP
    """
    from utils.load_n_save import TxoDataHandler

    handler = TxoDataHandler()
    ext = Path(filename).suffix.lower()
    rows: list[Mapping[str, Any]]
    if ext in (".json", ".jsonl"):
        loaded = handler.load_json(directory, filename)
        rows = loaded if isinstance(loaded, list) else []
        if not isinstance(loaded, list) or not all(isinstance(r, Mapping) for r in rows):
            raise _not_a_report(filename, "it does not hold a list of rows")
    else:
        if ext == ".csv":
            frame = handler.load_csv(directory, filename, dtype=str, keep_default_na=False)
        elif ext == ".xlsx":
            frame = handler.load_excel(directory, filename, dtype=str, keep_default_na=False)
        elif ext == ".parquet":
            frame = handler.load_parquet(directory, filename)
        else:
            raise _not_a_report(filename, f"{ext or 'no extension'} is not a report format")
        if frame.empty and not len(frame.columns):
            frame = frame.reindex(columns=list(REPORT_COLUMNS))
        rows = frame.to_dict("records")
        missing = [c for c in REPORT_COLUMNS if c not in frame.columns]
        if missing:
            raise _not_a_report(filename, f"it has no column {', '.join(missing)}")
    results = []
    for row in rows:
        missing = [c for c in REPORT_COLUMNS if c not in row]
        if missing:
            raise _not_a_report(filename, f"a row has no {', '.join(missing)}")
        results.append(
            WriteResult(
                key=str(_text(row["key"]) or ""),
                method=str(_text(row["method"]) or ""),
                path=str(_text(row["path"]) or ""),
                status=str(_text(row["status"]) or ""),
                http_status=_whole(row["http_status"]),
                attempts=_whole(row["attempts"]) or 0,
                error=_text(row["error"]),
            )
        )
    from utils.path_helpers import get_path

    return WriteReport(results, saved_to=get_path(directory, filename))


def _not_a_report(filename: str, why: str) -> ValidationError:
    return ValidationError(
        f"{filename} is not a write report: {why}.",
        "Pass the file that write_many(report=(directory, filename)) saved; its columns are "
        f"{', '.join(REPORT_COLUMNS)}.",
        'previous = load_write_report("output", "writes.csv")',
    )


# -- while a call runs -----------------------------------------------------------------------
def http_failure(
    policy: RetryPolicy,
    method: str,
    headers: Mapping[str, str],
    status: int,
    message: str,
    *,
    retry_after: float | None,
    attempts: int,
) -> tuple[Verdict, str]:
    """The retry verdict on a record whose last answer was ``status``, and the report's
    error text for it (for ``RETRY``: the text that stands if it is never re-sent)."""
    verdict = policy.decide(method, status, attempts, retry_after=retry_after, headers=headers)
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    said = f" The server said: {message}" if message else ""
    head = f"HTTP {status} {phrase}".rstrip()
    if status == HTTPStatus.PRECONDITION_FAILED:
        earlier = (
            " (an earlier attempt of this record may have been applied)" if attempts > 1 else ""
        )
        return verdict, (
            f"{head}: the record {CHANGED_SINCE_READ} (its ETag no longer matches){earlier}; "
            f"read it again and re-run this key.{said}"
        )
    if verdict is Verdict.WAIT_TOO_LONG and retry_after is not None:
        return verdict, (
            f"{head}: the API asks to wait {retry_after:.0f}s (Retry-After), longer than "
            f"retry-strategy.max-wait-seconds ({policy.max_wait_seconds:g}s).{said}"
        )
    if verdict is Verdict.EXHAUSTED:
        return verdict, f"{head}: still failing after {attempts} attempts.{said}"
    if verdict is Verdict.FINAL and status in RETRY_STATUSES_IDEMPOTENT:
        return verdict, (
            f"{head}: not retried, the request may have been applied (an ETag or an "
            f"Idempotency-Key makes it retryable).{said}"
        )
    return verdict, f"{head}.{said}"


def stop_reason(err: BaseException) -> str:
    """Why a run-level condition stopped this call's sending."""
    if isinstance(err, CircuitOpenError):
        return BREAKER_OPEN
    if isinstance(err, ApiAuthenticationError):
        return TOKEN_REFUSED
    if run_control.stop_requested():
        return RUN_STOPPED
    text = err.what_went_wrong if isinstance(err, HelpfulError) else f"{type(err).__name__}"
    return text.rstrip(".")


class Ledger:
    """The account of one ``write_many`` call as it runs, shared by its worker threads: the
    result of each record so far, and whether sending must stop (and why)."""

    def __init__(self, api: WriteClient, method: str, items: list[WriteRequest]):
        self.api = api
        self.method = method
        self.items = items
        self.policy = api.transport.policy
        self.results: list[WriteResult | None] = [None] * len(items)
        self.stopped: str | None = None
        self._lock = threading.Lock()

    def halt(self, reason: str) -> None:
        """Send nothing more in this call (the first reason is kept)."""
        with self._lock:
            if self.stopped is None:
                self.stopped = reason
                log.warning("write_many %s: sending no further records: %s", self.method, reason)

    def halted(self) -> str | None:
        """Why nothing more may be sent, or None."""
        if self.stopped is None and run_control.stop_requested():
            self.halt(RUN_STOPPED)
        return self.stopped

    def result(self, index: int, status: str, error: str | None = None, **fields: Any) -> None:
        """Record (or replace) what happened to record ``index``; the error text is redacted
        here, as the report is a file people read and share."""
        item = self.items[index]
        self.results[index] = WriteResult(
            key=str(item.key),
            method=self.method,
            path=item.path,
            status=status,
            error=None if error is None else redaction.redact(error),
            **fields,
        )

    def report(self, reason: str) -> WriteReport:
        """The report; a record without a result was never sent, for ``reason``."""
        for index, result in enumerate(self.results):
            if result is None:
                self.result(index, NOT_SENT, error=f"not sent: {self.stopped or reason}")
        return WriteReport(r for r in self.results if r is not None)
