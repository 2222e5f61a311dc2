"""Write-back in OData JSON ``$batch`` envelopes: ``POST {api-base-url}/$batch``.

Each envelope is ``{"requests": [{"id", "method", "url", "headers", "body"}]}`` with the
record's path as ``url`` and its position from 1 as ``id`` (unique in the call, kept on a
re-send). Answers are matched by ``id``, in any order; the envelope's own 200 says nothing
about its records. Each record is judged by :meth:`utils._retry_policy.RetryPolicy.decide`, as
a single call is.

Decisions where the contract is silent: the envelopes of a round go out one at a time unless
``max_workers`` is given (a ``$batch`` is already many requests in one, and servers such as
Business Central work through its items one after another); records to re-send go in the
envelopes of the next round, after the longest wait any of them needs. A failure of the
envelope itself (5xx, 429, timeout, broken connection, an answer that is not a batch answer)
is a failure of each record in it, judged by each record's own idempotency. A record whose
answer is missing is treated like a broken connection. The breaker and the limiter see the
envelopes, not the records inside.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import requests

from utils import run_stats
from utils._http_body import JSON_CONTENT_TYPE, encode_json
from utils._http_errors import message_in, transport_error
from utils._rest_client import CallRecord
from utils._retry_policy import TransportFailure, Verdict, classify_exception, retry_after_of
from utils._write_report import FAILED, NOT_SENT, OK, Ledger, http_failure, stop_reason
from utils.exceptions import ApiOperationError, HelpfulError, ValidationError

log = logging.getLogger(__name__)

BATCH_PATH = "$batch"
DEFAULT_BATCH_WORKERS = 1


@dataclass
class _Pending:
    """A record of a batched write between envelopes."""

    index: int
    entry: bytes  # the record's JSON entry in an envelope, body included, encoded once
    headers: dict[str, str]
    attempts: int = 0


class Batches:
    """Sends records in OData JSON ``$batch`` envelopes, round after round (see the module)."""

    def __init__(self, call: Ledger, size: int, max_workers: int | None):
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
            pending = sorted((p for p, _ in again), key=lambda p: p.index)
            reason = self.call.halted()
            if reason:  # no point waiting for a re-send that will not happen
                for p in pending:
                    self._give_up(p, reason)
                return
            wait = max(delay for _, delay in again)
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
                    self._give_up(p, stop_reason(err))
                self.call.halt(stop_reason(err))
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
            reason = stop_reason(err)
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
        body: Any = None
        if response is not None:
            try:
                body = response.json()
            except ValueError:
                body = response.text
        for p in batch:
            p.attempts += record.attempts
            delay: float | None = None
            if response is not None:
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
                reason = stop_reason(error)
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
        verdict, text = http_failure(
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
