"""Write-back: send many records to an API and account for every one of them (DESIGN §7).

``TxoRestAPI.write_many`` is the front door; this module holds what it returns
(:class:`WriteRequest`, :class:`WriteResult`, :class:`WriteReport`), the two ways of sending
(one request per record on the client's pool, or OData JSON ``$batch`` envelopes) and the
report's file form (:func:`load_write_report`).

Decisions where the contract is silent:

* ``items`` is read in full, and every item checked, before the first request: a bad item
  stops the call before anything is written, and the report always has one row per item.
* A record's ``key`` is kept as text (``str(key)``), so a report reads back the same from
  every format and a re-run can compare keys.
* Once the breaker opens, a token cannot be refreshed or the run is stopping, no further
  record is sent in this call (``not-sent``), even if the breaker would later let a trial
  through: a write-back that met a failing API stops and says so.
* ``attempts`` counts the requests of the record's own method (a 202's polls are not counted);
  in batch mode each envelope that carried the record counts once.
* In batch mode the envelopes of a round go out one at a time unless ``max_workers`` is given
  (a ``$batch`` is already many requests in one, and servers such as Business Central work
  through its items one after another); records to re-send go in the envelopes of the next
  round, after the longest wait any of them needs. A failure of the envelope itself (5xx,
  timeout, broken connection, an unreadable answer) is a failure of each record in it, judged
  by each record's own idempotency.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from utils import run_control, run_stats
from utils.exceptions import (
    ApiAuthenticationError,
    ApiOperationError,
    ApiTimeoutError,
    CircuitOpenError,
    HelpfulError,
    PartialWriteError,
    ValidationError,
)
from utils.http_body import JSON_CONTENT_TYPE, decode_body, encode_json
from utils.http_errors import message_in, safe_url, server_message, transport_error, url_with_params
from utils.rest_client import CallRecord
from utils.retry_policy import (
    RETRY_STATUSES_IDEMPOTENT,
    TransportFailure,
    Verdict,
    classify_exception,
    is_idempotent,
    retry_after_of,
)

if TYPE_CHECKING:
    from utils.api_factory import TxoRestAPI
    from utils.retry_policy import RetryPolicy

log = logging.getLogger(__name__)

OK = "ok"
FAILED = "failed"
NOT_SENT = "not-sent"
DRY_RUN = "dry-run"
STATUSES = (OK, FAILED, NOT_SENT, DRY_RUN)
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
"""The methods a dry run does not send, and those ``write_many`` takes."""
REPORT_COLUMNS = ("key", "method", "path", "status", "http_status", "attempts", "error")
BATCH_PATH = "$batch"
DEFAULT_BATCH_WORKERS = 1
PRECONDITION_FAILED = 412
CHANGED_SINCE_READ = "changed since it was read"
MAX_LOGGED_FAILURES = 20
"""Failed records logged one by one at the end of a call; the rest are in the report."""

BREAKER_OPEN = "the circuit breaker opened after repeated server failures"
TOKEN_REFUSED = "the API refused the access token and it could not be refreshed"
RUN_STOPPED = "the run was stopped (SIGTERM or Ctrl-C)"


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
        raise PartialWriteError(
            f"{first.method} write-back incomplete: {len(self.ok)} of {len(self.results)} "
            f"records written, {len(failed)} failed, {len(not_sent)} not sent. First: "
            f"{first.key}: {first.error}.{where}",
            "Do not re-run the whole job blindly: the records already written would be written "
            "again. Fix what the report's error column says, then re-run only the failed and "
            "not-sent keys (load_write_report reads the report back).",
            'previous = load_write_report("output", "writes.csv")\n'
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


# -- one call ---------------------------------------------------------------------------------
def log_dry_run(method: str, url: str, params: Mapping[str, Any] | None = None) -> None:
    """Log a write that a dry run does not send: ``DRY RUN: would PATCH <safe URL>``."""
    log.info("DRY RUN: would %s %s", method, safe_url(url_with_params(url, params)))


def _as_request(item: Any, position: int) -> WriteRequest:
    if isinstance(item, WriteRequest):
        return item
    if isinstance(item, (tuple, list)) and len(item) == 2:
        return WriteRequest(item[0], item[1])
    raise ValidationError(
        f"write_many item {position} is {type(item).__name__} {str(item)[:80]!r}, not a "
        "WriteRequest or a (path, body) pair.",
        "Pass WriteRequest(path, body, key=..., etag=...) objects, or (path, body) tuples.",
        '[WriteRequest("customers(42)", {"blocked": "Invoice"}, etag=c["@odata.etag"])]',
    )


def _http_failure(
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
    if status == PRECONDITION_FAILED:
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


def _stop_reason(err: BaseException) -> str:
    """Why a run-level condition stopped this call's sending."""
    if isinstance(err, CircuitOpenError):
        return BREAKER_OPEN
    if isinstance(err, ApiAuthenticationError):
        return TOKEN_REFUSED
    if run_control.stop_requested():
        return RUN_STOPPED
    text = err.what_went_wrong if isinstance(err, HelpfulError) else f"{type(err).__name__}"
    return text.rstrip(".")


class _Call:
    """The state of one ``write_many`` call, shared by its worker threads."""

    def __init__(self, api: TxoRestAPI, method: str, items: list[WriteRequest]):
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

    def result(self, index: int, status: str, **fields: Any) -> None:
        item = self.items[index]
        self.results[index] = WriteResult(
            key=str(item.key), method=self.method, path=item.path, status=status, **fields
        )

    def report(self, reason: str) -> WriteReport:
        """The report; a record without a result was never sent, for ``reason``."""
        for index, result in enumerate(self.results):
            if result is None:
                self.result(index, NOT_SENT, error=f"not sent: {self.stopped or reason}")
        return WriteReport(r for r in self.results if r is not None)


# -- one request per record -------------------------------------------------------------------
def _send_one(call: _Call, index: int) -> None:
    """Write record ``index`` with its retries; record what happened (never raises)."""
    reason = call.halted()
    if reason:
        call.result(index, NOT_SENT, error=f"not sent: {reason}")
        return
    item = call.items[index]
    headers = item.request_headers()
    record = CallRecord()
    transport = call.api.transport
    try:
        response = transport.request(
            call.method,
            call.api.url_for(item.path),
            json_body=item.body,
            headers=headers,
            call=record,
        )
    except ValidationError as err:  # the record's own body cannot be sent
        call.result(index, FAILED, attempts=record.attempts, error=err.what_went_wrong)
    except HelpfulError as err:
        _record_failure(call, index, headers, record, err)
    except Exception as err:  # one record's surprise must not stop the others
        log.debug("write_many: record %s raised", item.key, exc_info=err)
        call.result(index, FAILED, attempts=record.attempts, error=f"{type(err).__name__}: {err}")
    else:
        try:
            body = decode_body(response)
        except ApiOperationError:  # written, but the answer is not the JSON it claims
            body = response.text
        call.result(
            index, OK, http_status=response.status_code, attempts=record.attempts, response=body
        )


def _record_failure(
    call: _Call, index: int, headers: Mapping[str, str], record: CallRecord, err: HelpfulError
) -> None:
    run_level = isinstance(err, CircuitOpenError | ApiAuthenticationError) or (
        run_control.stop_requested() and getattr(err, "status_code", None) is None
    )
    if record.attempts == 0:
        reason = _stop_reason(err)
        call.result(index, NOT_SENT, error=f"not sent: {reason}")
        call.halt(reason)
        return
    response = record.response
    answered = response is not None and response.status_code >= requests.codes.bad_request
    status = response.status_code if answered and response is not None else None
    if status is not None and response is not None:
        _, text = _http_failure(
            call.policy,
            call.method,
            headers,
            status,
            server_message(response),
            retry_after=retry_after_of(status, response.headers, time.time()),
            attempts=record.attempts,
        )
    else:
        text = err.what_went_wrong
        if isinstance(err, ApiTimeoutError) and not is_idempotent(call.method, headers):
            text += " Not retried: the request may have been applied."
    if run_level:
        reason = _stop_reason(err)
        text = f"{text.rstrip('.')}; not retried: {reason}"
        call.halt(reason)
    call.result(index, FAILED, http_status=status, attempts=record.attempts, error=text)


def _write_each(call: _Call, max_workers: int | None) -> None:
    with closing(
        call.api.imap(lambda index: _send_one(call, index), range(len(call.items)), max_workers)
    ) as running:
        for _ in running:
            pass


# -- $batch envelopes -------------------------------------------------------------------------
@dataclass
class _Pending:
    """A record of a batched write between envelopes."""

    index: int
    entry: bytes  # the record's JSON entry in an envelope, body included, encoded once
    headers: dict[str, str]
    attempts: int = 0


class _Batches:
    """Sends records in OData JSON ``$batch`` envelopes, round after round (see the module)."""

    def __init__(self, call: _Call, size: int, max_workers: int | None):
        self.call = call
        self.size = size
        self.workers = max_workers or DEFAULT_BATCH_WORKERS
        self.url = f"{call.api.base_url}/{BATCH_PATH}"
        self.transport = call.api.transport

    def _pending(self, index: int) -> _Pending | None:
        call = self.call
        item = call.items[index]
        headers = call.policy.with_idempotency_key(call.method, item.request_headers())
        if item.body is not None and not any(n.lower() == "content-type" for n in headers):
            headers["Content-Type"] = JSON_CONTENT_TYPE
        # Ids are the record's position from 1: unique in the call, kept on a re-send.
        entry = {"id": str(index + 1), "method": call.method, "url": item.path}
        entry["headers"] = headers  # type: ignore[assignment]
        head = json.dumps(entry, ensure_ascii=False).encode("utf-8")
        if item.body is None:
            return _Pending(index, head, headers)
        try:
            body = encode_json(item.body)
        except ValidationError as err:
            call.result(index, FAILED, error=err.what_went_wrong)
            return None
        return _Pending(index, head[:-1] + b', "body": ' + body + b"}", headers)

    def run(self) -> None:
        pending = [p for p in map(self._pending, range(len(self.call.items))) if p is not None]
        while pending:
            again: list[tuple[_Pending, float]] = []
            envelopes = [pending[i : i + self.size] for i in range(0, len(pending), self.size)]
            with closing(
                self.call.api.imap(self._send_envelope, envelopes, self.workers, self.workers)
            ) as running:
                for resend in running:
                    again.extend(resend)
            if not again:
                return
            wait = max(delay for _, delay in again)
            pending = sorted((p for p, _ in again), key=lambda p: p.index)
            run_stats.increment(run_stats.RETRIES, len(pending))
            log.info(
                "write_many %s: re-sending %d record(s) in a later $batch after %.2fs",
                self.call.method,
                len(pending),
                wait,
            )
            try:
                self.transport.pause(wait)
            except ApiOperationError as err:  # the run is stopping
                for p in pending:
                    self._give_up(p, _stop_reason(err))
                self.call.halt(_stop_reason(err))
                return

    def _give_up(self, pending: _Pending, reason: str) -> None:
        """Record ``pending`` as never sent, or (sent before) as failed and not re-sent."""
        call = self.call
        if pending.attempts == 0:
            call.result(pending.index, NOT_SENT, error=f"not sent: {reason}")
            return
        earlier = call.results[pending.index]
        before = earlier.error.rstrip(".") if earlier and earlier.error else "not written"
        call.result(
            pending.index,
            FAILED,
            http_status=earlier.http_status if earlier else None,
            attempts=pending.attempts,
            error=f"{before}; not re-sent: {reason}",
        )

    def _send_envelope(self, batch: Sequence[_Pending]) -> list[tuple[_Pending, float]]:
        """Send one envelope; settle each record in it; return those to re-send, with the
        wait each needs."""
        call = self.call
        reason = call.halted()
        if reason:
            for p in batch:
                self._give_up(p, reason)
            return []
        body = b'{"requests": [' + b", ".join(p.entry for p in batch) + b"]}"
        headers = {"Content-Type": JSON_CONTENT_TYPE, "Accept": JSON_CONTENT_TYPE}
        record = CallRecord()
        try:
            response = self.transport.send("POST", self.url, headers, body=body, call=record)
        except requests.RequestException as err:
            return self._settle_all(batch, record, failure=err)
        except HelpfulError as err:
            reason = _stop_reason(err)
            if record.attempts:
                return self._settle_all(batch, record, error=err)
            for p in batch:
                self._give_up(p, reason)
            call.halt(reason)
            return []
        if response.status_code >= requests.codes.bad_request:
            return self._settle_all(batch, record, response=response)
        try:
            answers = _answers_by_id(response.json())
        except ValueError:
            answers = None
        if answers is None:
            return self._settle_all(batch, record, unreadable=True)
        again = []
        for p in batch:
            p.attempts += record.attempts
            answer = answers.get(str(p.index + 1))
            if answer is None:
                delay = self._settle_failure(p, "the $batch answer has no response for it")
            else:
                delay = self._settle_answer(p, *answer)
            if delay is not None:
                again.append((p, delay))
        return again

    def _settle_all(
        self,
        batch: Sequence[_Pending],
        record: CallRecord,
        *,
        response: requests.Response | None = None,
        failure: requests.RequestException | None = None,
        error: HelpfulError | None = None,
        unreadable: bool = False,
    ) -> list[tuple[_Pending, float]]:
        """The envelope itself failed: settle each record in it by that outcome."""
        again = []
        for p in batch:
            p.attempts += record.attempts
            delay: float | None = None
            if response is not None:
                body: Any = None
                try:
                    body = response.json()
                except ValueError:
                    body = response.text
                delay = self._settle_answer(p, response.status_code, response.headers, body)
            elif failure is not None:
                kind = classify_exception(failure)
                shown = transport_error(
                    failure,
                    "POST",
                    self.url,
                    self.transport.timeout,
                    1,
                    timed_out=kind is TransportFailure.TIMEOUT,
                )
                delay = self._settle_failure(p, shown.what_went_wrong, kind)
            elif error is not None:
                reason = _stop_reason(error)
                last = record.response
                self.call.result(
                    p.index,
                    FAILED,
                    http_status=last.status_code if last is not None else None,
                    attempts=p.attempts,
                    error=f"{error.what_went_wrong.rstrip('.')}; not re-sent: {reason}",
                )
                self.call.halt(reason)
            elif unreadable:
                delay = self._settle_failure(p, "the $batch answer could not be read")
            if delay is not None:
                again.append((p, delay))
        return again

    def _settle_answer(
        self, p: _Pending, status: int, headers: Mapping[str, str], body: Any
    ) -> float | None:
        """Settle a record by its own answer; return the wait before its re-send, or None."""
        call = self.call
        if status < requests.codes.bad_request:
            call.result(p.index, OK, http_status=status, attempts=p.attempts, response=body)
            return None
        retry_after = retry_after_of(status, headers, time.time())
        verdict, text = _http_failure(
            call.policy,
            call.method,
            p.headers,
            status,
            message_in(body),
            retry_after=retry_after,
            attempts=p.attempts,
        )
        # Written now, replaced when the record is settled: the best account so far.
        call.result(p.index, FAILED, http_status=status, attempts=p.attempts, error=text)
        if verdict is not Verdict.RETRY:
            return None
        if status == requests.codes.too_many_requests:
            run_stats.increment(run_stats.RATE_LIMITED)
        return call.policy.delay(p.attempts, retry_after)

    def _settle_failure(
        self, p: _Pending, what: str, kind: TransportFailure = TransportFailure.PROTOCOL
    ) -> float | None:
        """Settle a record that got no usable answer; return the wait before its re-send."""
        call = self.call
        verdict = call.policy.decide(call.method, kind, p.attempts, headers=p.headers)
        note = ""
        if verdict is Verdict.FINAL and kind is not TransportFailure.FATAL:
            note = " Not re-sent: the request may have been applied."
        elif verdict is Verdict.EXHAUSTED:
            note = f" Still failing after {p.attempts} attempts."
        call.result(
            p.index, FAILED, attempts=p.attempts, error=f"{what.rstrip('.')}.{note}".strip()
        )
        return call.policy.delay(p.attempts) if verdict is Verdict.RETRY else None


def _answers_by_id(body: Any) -> dict[str, tuple[int, Mapping[str, str], Any]] | None:
    """``{id: (status, headers, body)}`` from an OData JSON batch answer; None if it is not
    one. Answers may come in any order; an answer without a usable id or status is skipped."""
    if not isinstance(body, Mapping) or not isinstance(body.get("responses"), list):
        return None
    answers = {}
    for answer in body["responses"]:
        if not isinstance(answer, Mapping) or answer.get("id") is None:
            continue
        try:
            status = int(answer.get("status"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        headers = answer.get("headers")
        answers[str(answer["id"])] = (
            status,
            headers if isinstance(headers, Mapping) else {},
            answer.get("body"),
        )
    return answers


# -- the front --------------------------------------------------------------------------------
def write_many(
    api: TxoRestAPI,
    method: str,
    items: Iterable[Any],
    *,
    batch: bool = False,
    batch_size: int | None = None,
    max_workers: int | None = None,
    report: tuple[str, str] | None = None,
) -> WriteReport:
    """See :meth:`utils.api_factory.TxoRestAPI.write_many`."""
    verb = str(method).upper()
    if verb not in WRITE_METHODS:
        raise ValidationError(
            f"write_many cannot send {method!r}: it writes with {', '.join(WRITE_METHODS)}.",
            "Pass the HTTP method that writes the records; read them with get_many/iter_pages.",
            'api.write_many("PATCH", items)',
        )
    size = api.update_batch_size if batch_size is None else batch_size
    if batch and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ValidationError(
            f"write_many batch_size must be a whole number from 1, got {size!r}.",
            "Pass batch_size= (Graph takes at most 20 per $batch, Business Central 100), or "
            "leave it out to use script-behavior.batch-handling.update-batch-size.",
            'api.write_many("PATCH", items, batch=True, batch_size=20)',
        )
    requests_ = [_as_request(item, position) for position, item in enumerate(items)]
    call = _Call(api, verb, requests_)
    try:
        if api.dry_run:
            for index, item in enumerate(requests_):
                log_dry_run(verb, api.url_for(item.path))
                call.result(index, DRY_RUN)
        elif batch:
            _Batches(call, size, max_workers).run()
        else:
            _write_each(call, max_workers)
    except BaseException as err:  # saved however the call ends; the error goes on
        stopping = run_control.stop_requested() or isinstance(err, KeyboardInterrupt)
        outcome = call.report(RUN_STOPPED if stopping else f"write_many ended early ({err!r})")
        _finish(outcome, verb, report, quiet=True)
        raise
    outcome = call.report("write_many ended early")
    _finish(outcome, verb, report, quiet=False)
    return outcome


def _finish(
    outcome: WriteReport, method: str, report: tuple[str, str] | None, *, quiet: bool
) -> None:
    """Save the report (when asked) and log the outcome.

    With ``quiet`` (the call is ending with an error already), a failure to save is logged
    and the original error goes on.
    """
    if report is not None:
        directory, filename = report
        try:
            outcome.saved_to = save_write_report(outcome, directory, filename)
        except HelpfulError as err:
            if not quiet:
                raise
            log.error("The write report could not be saved: %s", err)
    counts = ", ".join(f"{outcome.counts[s]} {s}" for s in STATUSES if outcome.counts[s])
    where = f"; report {outcome.saved_to}" if outcome.saved_to else ""
    log.info("write_many %s: %d records: %s%s", method, len(outcome), counts or "none", where)
    failed = outcome.failed
    for result in failed[:MAX_LOGGED_FAILURES]:
        log.warning("%s %s failed: %s", method, result.key, result.error)
    if len(failed) > MAX_LOGGED_FAILURES:
        log.warning(
            "... and %d more failed records: see the report", len(failed) - MAX_LOGGED_FAILURES
        )


__all__ = [
    "DRY_RUN",
    "FAILED",
    "NOT_SENT",
    "OK",
    "WriteReport",
    "WriteRequest",
    "WriteResult",
    "load_write_report",
    "log_dry_run",
    "write_many",
]
