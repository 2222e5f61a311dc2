"""Write-back: send many records to an API and account for every one (DESIGN §7).

``TxoRestAPI.write_many`` calls :func:`write_many` here: one request per record on the
client's pool (below), or ``$batch`` envelopes (:mod:`utils._write_batch`); the account is
built in :mod:`utils._write_report`.

Decisions where the contract is silent:

* ``items`` is read in full, and every item checked, before the first request: a bad item
  stops the call before anything is written, and the report always has one row per item.
* Once the breaker opens, a token cannot be refreshed or the run is stopping, no further
  record is sent in this call (``not-sent``), even if the breaker would later let a trial
  through: a write-back that met a failing API stops and says so.
* ``attempts`` counts the requests of the record's own method (a 202's polls are not
  counted); in batch mode each envelope that carried the record counts once.
* A record whose body has no JSON form fails alone (``failed``, 0 attempts).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from contextlib import closing
from typing import Any

import requests

from utils import _run_control as run_control
from utils._http_body import decode_body
from utils._http_errors import safe_url, server_message, url_with_params
from utils._rest_client import CallRecord
from utils._retry_policy import is_idempotent, retry_after_of
from utils._write_batch import Batches
from utils._write_report import (
    DRY_RUN,
    FAILED,
    NOT_SENT,
    OK,
    RUN_STOPPED,
    STATUSES,
    Ledger,
    WriteClient,
    WriteReport,
    WriteRequest,
    check_report_target,
    http_failure,
    save_write_report,
    stop_reason,
)
from utils.exceptions import (
    ApiAuthenticationError,
    ApiOperationError,
    ApiTimeoutError,
    CircuitOpenError,
    HelpfulError,
    ValidationError,
)

log = logging.getLogger(__name__)

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
"""The methods a dry run does not send, and those ``write_many`` takes."""
MAX_LOGGED_FAILURES = 20
"""Failed records logged one by one at the end of a call; the rest are in the report."""


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


# -- one request per record -------------------------------------------------------------------
def _send_one(call: Ledger, index: int) -> None:
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
    call: Ledger, index: int, headers: Mapping[str, str], record: CallRecord, err: HelpfulError
) -> None:
    run_level = isinstance(err, CircuitOpenError | ApiAuthenticationError) or (
        run_control.stop_requested() and getattr(err, "status_code", None) is None
    )
    if record.attempts == 0:
        reason = stop_reason(err)
        call.result(index, NOT_SENT, error=f"not sent: {reason}")
        call.halt(reason)
        return
    response = record.response
    answered = response is not None and response.status_code >= requests.codes.bad_request
    status = response.status_code if answered and response is not None else None
    if status is not None and response is not None:
        _, text = http_failure(
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
        reason = stop_reason(err)
        text = f"{text.rstrip('.')}; not retried: {reason}"
        call.halt(reason)
    call.result(index, FAILED, http_status=status, attempts=record.attempts, error=text)


def _write_each(call: Ledger, max_workers: int | None) -> None:
    with closing(
        call.api.imap(lambda index: _send_one(call, index), range(len(call.items)), max_workers)
    ) as running:
        for _ in running:
            pass


def write_many(
    api: WriteClient,
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
    target = None if report is None else check_report_target(report)
    requests_ = [_as_request(item, position) for position, item in enumerate(items)]
    call = Ledger(api, verb, requests_)
    try:
        if api.dry_run:
            for index, item in enumerate(requests_):
                log_dry_run(verb, api.url_for(item.path))
                call.result(index, DRY_RUN)
        elif batch:
            Batches(call, size, max_workers).run()
        else:
            _write_each(call, max_workers)
    except BaseException as err:  # saved however the call ends; the error goes on
        stopping = run_control.stop_requested() or isinstance(err, KeyboardInterrupt)
        outcome = call.report(RUN_STOPPED if stopping else f"write_many ended early ({err!r})")
        _finish(outcome, verb, target, quiet=True)
        raise
    outcome = call.report("write_many ended early")
    _finish(outcome, verb, target, quiet=False)
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


__all__ = ["WRITE_METHODS", "log_dry_run", "write_many"]
