"""When the HTTP client retries, and how long it waits: an immutable policy of pure decisions.

Nothing here does I/O or sleeps; :class:`RetryPolicy` answers "retry this?" and "wait how
long?" so the rules can be tested without a network, and the client's loop stays the one and
only retry layer (its ``HTTPAdapter`` runs with ``max_retries=0``). Every retrying caller asks
:meth:`RetryPolicy.decide`: single calls, each item of a write-back (batched or not), token
requests (:mod:`utils._auth`) and the generic :func:`utils.api_common.manual_retry`.

Idempotency is a property of the call, not only of its method: PUT, DELETE (and GET, HEAD,
OPTIONS) always are; a PATCH that carries ``If-Match`` is (a repeat of an applied change fails
the precondition instead of applying twice), and so is a POST that carries
``Idempotency-Key`` (the server recognises the repeat).
"""

from __future__ import annotations

import enum
import math
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any

import requests
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
    TimeoutError as Urllib3TimeoutError,
)

from utils._api_settings import DEFAULTS, behavior
from utils.exceptions import ApiAuthenticationError, ConfigurationError, ValidationError

IDEMPOTENT_METHODS = frozenset({"GET", "PUT", "DELETE", "HEAD", "OPTIONS"})
"""Methods that may be repeated after any transient failure."""
IDEMPOTENT_WITH_HEADER = {"PATCH": "if-match", "POST": "idempotency-key"}
"""Methods made idempotent by a request header (lower case): the call may then be repeated."""
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
RETRY_STATUSES_IDEMPOTENT = frozenset(
    {
        HTTPStatus.TOO_MANY_REQUESTS,
        HTTPStatus.INTERNAL_SERVER_ERROR,
        HTTPStatus.BAD_GATEWAY,
        HTTPStatus.SERVICE_UNAVAILABLE,
        HTTPStatus.GATEWAY_TIMEOUT,
    }
)
"""Statuses retried for :data:`IDEMPOTENT_METHODS`."""
RETRY_AFTER_STATUSES = frozenset({HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.SERVICE_UNAVAILABLE})
"""Statuses whose ``Retry-After`` header replaces the backoff."""
_STRATEGY, _JITTER = DEFAULTS["retry-strategy"], DEFAULTS["jitter"]
DEFAULT_MAX_WAIT_SECONDS = float(_STRATEGY["max-wait-seconds"])
NEVER_RETRIED = (ConfigurationError, ValidationError, ApiAuthenticationError)
"""Errors of work that is not an HTTP call that repeating cannot fix (method None)."""


class TransportFailure(enum.Enum):
    """What kind of failure a request exception is, for the retry decision."""

    CONNECT = "connect"
    """The connection could not be made: the request never left (safe to repeat for POST)."""
    TIMEOUT = "timeout"
    """The server did not answer in time; it may have acted on the request."""
    PROTOCOL = "protocol"
    """The connection broke mid-exchange or the response was malformed or truncated."""
    FATAL = "fatal"
    """Not transient (TLS failure, invalid URL ...): retrying cannot help."""


def classify_exception(exc: BaseException) -> TransportFailure:
    """Sort a ``requests`` exception into a :class:`TransportFailure` kind.

    Args:
        exc: The exception ``requests`` raised while sending or reading.

    Returns:
        The failure kind; anything unrecognised is ``FATAL``.
    """
    if isinstance(exc, requests.ConnectTimeout):
        return TransportFailure.CONNECT
    if isinstance(exc, requests.ReadTimeout | requests.Timeout):
        return TransportFailure.TIMEOUT
    if isinstance(exc, requests.exceptions.SSLError | requests.exceptions.ProxyError):
        return TransportFailure.FATAL
    if isinstance(exc, requests.ConnectionError):
        cause = exc.args[0] if exc.args else None
        reason = cause.reason if isinstance(cause, MaxRetryError) else cause
        if isinstance(reason, NewConnectionError | ConnectTimeoutError):
            return TransportFailure.CONNECT
        # requests reports a read timeout inside the body as a ConnectionError
        if isinstance(reason, Urllib3TimeoutError | TimeoutError):
            return TransportFailure.TIMEOUT
        return TransportFailure.PROTOCOL
    if isinstance(
        exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError
    ):
        return TransportFailure.PROTOCOL
    return TransportFailure.FATAL


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Turn a ``Retry-After`` header into seconds to wait.

    Args:
        value: The header: delta-seconds (``"120"``, fractions tolerated) or an HTTP-date
            (``"Wed, 21 Oct 2026 07:28:00 GMT"``); None when absent.
        now: The current time as a Unix timestamp (``time.time()``), for HTTP-dates.

    Returns:
        Seconds to wait, or None when there is no usable hint: absent, unparseable, zero or
        negative, or a date that is not in the future.

    Example:
        >>> parse_retry_after("2", now=0.0)
        2.0
        >>> parse_retry_after("Thu, 01 Jan 1970 00:00:10 GMT", now=4.0)
        6.0
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT; tolerate a missing zone
            from datetime import timezone

            when = when.replace(tzinfo=timezone.utc)
        seconds = when.timestamp() - now
    if not math.isfinite(seconds) or seconds <= 0:
        return None
    return seconds


Outcome = int | BaseException | TransportFailure
"""What an attempt produced: an HTTP status, a transport exception, or its kind."""


def is_idempotent(method: str, headers: Mapping[str, str] | None = None) -> bool:
    """Whether a call may be repeated after a failure that may have been applied.

    Args:
        method: HTTP method (any case).
        headers: The call's request headers (any case of names).

    Example:
        >>> is_idempotent("PUT"), is_idempotent("PATCH"), is_idempotent("PATCH", {"If-Match": "*"})
        (True, False, True)
    """
    verb = method.upper()
    if verb in IDEMPOTENT_METHODS:
        return True
    needed = IDEMPOTENT_WITH_HEADER.get(verb)
    return needed is not None and any(name.lower() == needed for name in headers or ())


def retry_after_of(status: int, headers: Mapping[str, str], now: float) -> float | None:
    """The ``Retry-After`` hint of an answer, in seconds; only 429 and 503 carry one.

    Args:
        status: The HTTP status.
        headers: The answer's headers (a case-insensitive mapping, or any case of
            ``Retry-After``).
        now: The current Unix time, for HTTP-dates.
    """
    if status not in RETRY_AFTER_STATUSES:
        return None
    value = headers.get("Retry-After")
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    return parse_retry_after(None if value is None else str(value), now)


class Verdict(enum.Enum):
    """What to do after a failed attempt (see :meth:`RetryPolicy.decide`)."""

    RETRY = "retry"
    """Send the call again, after :meth:`RetryPolicy.delay`."""
    FINAL = "final"
    """Not worth repeating for this call: the answer stands."""
    EXHAUSTED = "exhausted"
    """Worth repeating, but the call has used its ``max-retries``."""
    WAIT_TOO_LONG = "wait-too-long"
    """The server asks for a wait beyond ``max-wait-seconds``: give up at once."""


@dataclass(frozen=True)
class RetryPolicy:
    """The retry rules of one client, as an immutable value.

    Attributes:
        max_retries: Retries after the first attempt (at most ``1 + max_retries`` requests).
        backoff_factor: Delay before retry n is ``backoff_factor * backoff_base ** (n - 1)``
            seconds.
        max_wait_seconds: A ``Retry-After`` longer than this fails at once.
        jitter_min: Lower bound of the random factor applied to a delay.
        jitter_max: Upper bound of the random factor applied to a delay.
        idempotency_keys: Give every POST a fresh ``Idempotency-Key`` (config
            ``retry-strategy.idempotency-keys``), which makes it retryable.
        backoff_base: The growth of the backoff (2: doubling; not a config key).
    """

    # Each default is the config key's, from the JSON Schema (see utils._api_settings).
    max_retries: int = int(_STRATEGY["max-retries"])
    backoff_factor: float = float(_STRATEGY["backoff-factor"])
    max_wait_seconds: float = DEFAULT_MAX_WAIT_SECONDS
    jitter_min: float = float(_JITTER["min-factor"])
    jitter_max: float = float(_JITTER["max-factor"])
    idempotency_keys: bool = bool(_STRATEGY["idempotency-keys"])
    backoff_base: float = 2.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RetryPolicy:
        """Build the policy from a whole config dict (missing keys take their defaults).

        Args:
            config: The config; ``script-behavior.retry-strategy`` and ``.jitter`` are read.
        """
        settings = behavior(config)
        strategy = settings["retry-strategy"]
        jitter = settings["jitter"]
        return cls(
            max_retries=int(strategy["max-retries"]),
            backoff_factor=float(strategy["backoff-factor"]),
            max_wait_seconds=float(strategy["max-wait-seconds"]),
            jitter_min=float(jitter["min-factor"]),
            jitter_max=float(jitter["max-factor"]),
            idempotency_keys=bool(strategy["idempotency-keys"]),
        )

    def with_idempotency_key(self, method: str, headers: Mapping[str, str]) -> dict[str, str]:
        """``headers`` plus a fresh UUID ``Idempotency-Key`` when this call should carry one.

        Only for a POST, only with ``idempotency_keys`` on, and never over a key the caller
        set. Call it once per call (or write-back item): its retries reuse the same key.
        """
        out = dict(headers)
        if (
            self.idempotency_keys
            and method.upper() == "POST"
            and not any(name.lower() == IDEMPOTENCY_KEY_HEADER.lower() for name in out)
        ):
            out[IDEMPOTENCY_KEY_HEADER] = str(uuid.uuid4())
        return out

    def is_retryable(
        self,
        method: str | None,
        outcome: Outcome,
        *,
        retry_after: float | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> bool:
        """Whether this kind of outcome is worth repeating for the call (budget aside).

        Idempotent calls (:func:`is_idempotent`: GET, PUT, DELETE, HEAD, OPTIONS, a PATCH
        with ``If-Match``, a POST with ``Idempotency-Key``): 429, 500, 502, 503, 504,
        connection, protocol and timeout failures. Other POST and PATCH calls: only 429, 503
        with a usable ``Retry-After``, and failures to connect (the request never left).

        Work that is not an HTTP call (``method`` None): any exception but
        :data:`NEVER_RETRIED`.

        Args:
            method: HTTP method (any case); None for work that is not an HTTP call.
            outcome: The HTTP status, the exception raised, or its :class:`TransportFailure`.
            retry_after: The parsed ``Retry-After`` of the response (None when absent).
            headers: The call's request headers, which may make it idempotent.
            idempotent: Whether the call may be repeated, when the caller knows better than
                its method (a token request); None: :func:`is_idempotent` decides.
        """
        if method is None:
            return not isinstance(outcome, NEVER_RETRIED)
        if idempotent is None:
            idempotent = is_idempotent(method, headers)
        if isinstance(outcome, BaseException):
            outcome = classify_exception(outcome)
        if isinstance(outcome, TransportFailure):
            if outcome is TransportFailure.FATAL:
                return False
            return idempotent or outcome is TransportFailure.CONNECT
        if idempotent:
            return outcome in RETRY_STATUSES_IDEMPOTENT
        if outcome == HTTPStatus.TOO_MANY_REQUESTS:
            return True
        return outcome == HTTPStatus.SERVICE_UNAVAILABLE and retry_after is not None

    def should_retry(
        self,
        method: str,
        outcome: Outcome,
        attempt: int,
        *,
        retry_after: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> bool:
        """Whether to send attempt ``attempt + 1`` after ``outcome`` of attempt ``attempt``.

        Args:
            method: HTTP method (any case).
            outcome: The HTTP status, the exception raised, or its :class:`TransportFailure`.
            attempt: How many attempts were made so far (1 after the first request).
            retry_after: The parsed ``Retry-After`` of the response (None when absent).
            headers: The call's request headers, which may make it idempotent.

        Example:
            >>> p = RetryPolicy(max_retries=2)
            >>> [p.should_retry("GET", 503, n) for n in (1, 2, 3)]
            [True, True, False]
            >>> p.should_retry("POST", 500, 1)
            False
        """
        return (
            self.decide(method, outcome, attempt, retry_after=retry_after, headers=headers)
            is Verdict.RETRY
        )

    def decide(
        self,
        method: str | None,
        outcome: Outcome,
        attempt: int,
        *,
        retry_after: float | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> Verdict:
        """The one retry decision of the toolkit, after ``outcome`` of attempt ``attempt``.

        In order: an outcome not worth repeating for this call is ``FINAL``; a
        ``Retry-After`` beyond ``max_wait_seconds`` is ``WAIT_TOO_LONG``; a call that has
        made ``1 + max_retries`` attempts is ``EXHAUSTED``; else ``RETRY``.

        Args:
            method: HTTP method (any case); None for work that is not an HTTP call.
            outcome: The HTTP status, the exception raised, or its :class:`TransportFailure`.
            attempt: How many attempts were made so far (1 after the first request).
            retry_after: The parsed ``Retry-After`` of the response (None when absent).
            headers: The call's request headers, which may make it idempotent.
            idempotent: Overrides :func:`is_idempotent` (see :meth:`is_retryable`).

        Example:
            >>> RetryPolicy(max_retries=1).decide("PATCH", 500, 1, headers={"If-Match": "*"})
            <Verdict.RETRY: 'retry'>
            >>> RetryPolicy().decide("PATCH", 500, 1)
            <Verdict.FINAL: 'final'>
        """
        if not self.is_retryable(
            method, outcome, retry_after=retry_after, headers=headers, idempotent=idempotent
        ):
            return Verdict.FINAL
        if self.exceeds_max_wait(retry_after):
            return Verdict.WAIT_TOO_LONG
        if attempt > self.max_retries:
            return Verdict.EXHAUSTED
        return Verdict.RETRY

    def backoff(self, retry_number: int) -> float:
        """The un-jittered delay before retry ``retry_number`` (1-based), in seconds."""
        return self.backoff_factor * self.backoff_base ** (retry_number - 1)

    def delay(
        self,
        retry_number: int,
        retry_after: float | None = None,
        *,
        rand: Callable[[float, float], float] | None = None,
    ) -> float:
        """Seconds to wait before retry ``retry_number``.

        The backoff, or the server's ``Retry-After`` when given, multiplied by a random factor
        in ``jitter_min … jitter_max``; jitter may lengthen a ``Retry-After``, never shorten it.

        Args:
            retry_number: 1 for the first retry, 2 for the second ...
            retry_after: The server's hint in seconds, already parsed (None: use backoff).
            rand: ``random.uniform``-like source of the jitter factor (injectable for tests).
        """
        factor = (rand or random.uniform)(self.jitter_min, self.jitter_max)
        if retry_after is not None:
            return retry_after * max(1.0, factor)
        return max(0.0, self.backoff(retry_number) * factor)

    def exceeds_max_wait(self, retry_after: float | None) -> bool:
        """True when the server asks for a wait longer than ``max_wait_seconds``."""
        return retry_after is not None and retry_after > self.max_wait_seconds
