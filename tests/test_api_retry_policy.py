"""RetryPolicy decisions and Retry-After parsing: pure functions, tested as tables."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from email.utils import format_datetime

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError

from utils._retry_policy import (
    RetryPolicy,
    TransportFailure,
    Verdict,
    classify_exception,
    is_idempotent,
    parse_retry_after,
    retry_after_of,
)

NOW = 1_800_000_000.0  # a fixed Unix time


def http_date(offset: float) -> str:
    return format_datetime(datetime.fromtimestamp(NOW + offset, tz=timezone.utc), usegmt=True)


@pytest.mark.parametrize(
    "value,expected",
    [
        ("5", 5.0),
        (" 1.5 ", 1.5),
        ("0", None),
        ("-3", None),
        ("", None),
        (None, None),
        ("soon", None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_parse_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_parse_retry_after_http_date_in_the_future() -> None:
    assert parse_retry_after(http_date(7), NOW) == pytest.approx(7.0)


@pytest.mark.parametrize("offset", [0, -30])
def test_parse_retry_after_http_date_now_or_past_is_no_hint(offset: float) -> None:
    assert parse_retry_after(http_date(offset), NOW) is None


def test_parse_retry_after_rfc850_and_asctime_dates() -> None:
    assert parse_retry_after("Friday, 15-Jan-2027 08:00:10 GMT", NOW) is not None
    assert parse_retry_after("Fri Jan 15 08:00:10 2027", NOW) is not None


IDEMPOTENT = ["GET", "PUT", "DELETE", "HEAD", "OPTIONS", "get"]


@pytest.mark.parametrize("method", IDEMPOTENT)
@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_idempotent_methods_retry_transient_statuses(method: str, status: int) -> None:
    assert RetryPolicy().should_retry(method, status, 1)


@pytest.mark.parametrize("method", [*IDEMPOTENT, "POST", "PATCH"])
@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 501])
def test_client_errors_are_never_retried(method: str, status: int) -> None:
    assert not RetryPolicy().should_retry(method, status, 1)


@pytest.mark.parametrize("method", ["POST", "PATCH", "post"])
@pytest.mark.parametrize(
    "status,retry_after,expected",
    [
        (429, None, True),
        (429, 2.0, True),
        (503, 2.0, True),
        (503, None, False),
        (500, None, False),
        (500, 2.0, False),
        (502, None, False),
        (504, None, False),
    ],
)
def test_post_and_patch_retry_only_when_safe(
    method: str, status: int, retry_after: float | None, expected: bool
) -> None:
    assert RetryPolicy().should_retry(method, status, 1, retry_after=retry_after) is expected


@pytest.mark.parametrize(
    "failure,get_retried,post_retried",
    [
        (TransportFailure.CONNECT, True, True),
        (TransportFailure.TIMEOUT, True, False),
        (TransportFailure.PROTOCOL, True, False),
        (TransportFailure.FATAL, False, False),
    ],
)
def test_transport_failures(
    failure: TransportFailure, get_retried: bool, post_retried: bool
) -> None:
    policy = RetryPolicy()
    assert policy.should_retry("GET", failure, 1) is get_retried
    assert policy.should_retry("POST", failure, 1) is post_retried


def test_budget_is_max_retries_after_the_first_attempt() -> None:
    policy = RetryPolicy(max_retries=2)
    assert [policy.should_retry("GET", 503, n) for n in (1, 2, 3, 4)] == [True, True, False, False]
    assert not RetryPolicy(max_retries=0).should_retry("GET", 503, 1)


@pytest.mark.parametrize(
    "exc,kind",
    [
        (requests.ConnectTimeout(), TransportFailure.CONNECT),
        (
            requests.ConnectionError(MaxRetryError(None, "/", NewConnectionError(None, "refused"))),
            TransportFailure.CONNECT,
        ),
        (requests.ReadTimeout(), TransportFailure.TIMEOUT),
        (requests.ConnectionError(ProtocolError("Connection aborted.")), TransportFailure.PROTOCOL),
        (requests.exceptions.ChunkedEncodingError(), TransportFailure.PROTOCOL),
        (requests.exceptions.SSLError(), TransportFailure.FATAL),
        (requests.exceptions.InvalidURL(), TransportFailure.FATAL),
    ],
)
def test_classify_exception(exc: Exception, kind: TransportFailure) -> None:
    assert classify_exception(exc) is kind
    assert RetryPolicy().should_retry("POST", exc, 1) is (kind is TransportFailure.CONNECT)


def test_delay_doubles_from_the_backoff_factor() -> None:
    policy = RetryPolicy(backoff_factor=0.5)
    no_jitter = lambda lo, hi: 1.0  # noqa: E731
    assert [policy.delay(n, rand=no_jitter) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]


def test_delay_is_jittered_within_the_factors() -> None:
    policy = RetryPolicy(backoff_factor=1.0, jitter_min=0.8, jitter_max=1.2)
    assert policy.delay(1, rand=lambda lo, hi: lo) == pytest.approx(0.8)
    assert policy.delay(1, rand=lambda lo, hi: hi) == pytest.approx(1.2)


def test_retry_after_replaces_backoff_and_jitter_never_shortens_it() -> None:
    policy = RetryPolicy(backoff_factor=100.0, jitter_min=0.5, jitter_max=1.5)
    assert policy.delay(3, 2.0, rand=lambda lo, hi: lo) == 2.0
    assert policy.delay(3, 2.0, rand=lambda lo, hi: hi) == 3.0
    assert all(policy.delay(1, 2.0) >= 2.0 for _ in range(100))


def test_max_wait() -> None:
    policy = RetryPolicy(max_wait_seconds=10)
    assert policy.exceeds_max_wait(10.5)
    assert not policy.exceeds_max_wait(10)
    assert not policy.exceeds_max_wait(None)


def test_policy_from_config_and_defaults() -> None:
    config = {
        "script-behavior": {
            "retry-strategy": {"max-retries": 1, "backoff-factor": 0.05},
            "jitter": {"min-factor": 1.0, "max-factor": 1.0},
        }
    }
    policy = RetryPolicy.from_config(config)
    assert policy == RetryPolicy(
        max_retries=1, backoff_factor=0.05, max_wait_seconds=300, jitter_min=1.0, jitter_max=1.0
    )
    assert RetryPolicy.from_config({}) == RetryPolicy()


def test_policy_is_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        RetryPolicy().max_retries = 9  # type: ignore[misc]


@pytest.mark.parametrize(
    ("method", "headers", "idempotent"),
    [
        ("GET", None, True),
        ("put", None, True),
        ("DELETE", {}, True),
        ("PATCH", None, False),
        ("PATCH", {"If-Match": 'W/"1"'}, True),
        ("patch", {"if-match": "*"}, True),
        ("PATCH", {"Idempotency-Key": "k"}, False),
        ("POST", None, False),
        ("POST", {"Idempotency-Key": "k"}, True),
        ("POST", {"IDEMPOTENCY-KEY": "k"}, True),
        ("POST", {"If-Match": "*"}, False),
    ],
)
def test_idempotency_comes_from_the_method_or_a_header(
    method: str, headers: dict[str, str] | None, idempotent: bool
) -> None:
    assert is_idempotent(method, headers) is idempotent
    # and an idempotent call is retried after a 500 or a timeout, like a GET
    policy = RetryPolicy()
    assert policy.should_retry(method, 500, 1, headers=headers) is idempotent
    assert policy.should_retry(method, TransportFailure.TIMEOUT, 1, headers=headers) is idempotent


@pytest.mark.parametrize(
    ("method", "outcome", "attempt", "retry_after", "verdict"),
    [
        ("GET", 503, 1, None, Verdict.RETRY),
        ("GET", 503, 3, None, Verdict.EXHAUSTED),  # max-retries 2: the third attempt was the last
        ("GET", 404, 1, None, Verdict.FINAL),
        ("POST", 500, 1, None, Verdict.FINAL),
        ("POST", 429, 1, 600.0, Verdict.WAIT_TOO_LONG),
        ("POST", 429, 3, 600.0, Verdict.WAIT_TOO_LONG),  # too long wins over the budget
        ("PATCH", 503, 1, 2.0, Verdict.RETRY),
        ("PATCH", TransportFailure.CONNECT, 1, None, Verdict.RETRY),
        ("PATCH", TransportFailure.PROTOCOL, 1, None, Verdict.FINAL),
        ("GET", TransportFailure.FATAL, 1, None, Verdict.FINAL),
    ],
)
def test_decide_is_the_one_retry_decision(
    method: str,
    outcome: int | TransportFailure,
    attempt: int,
    retry_after: float | None,
    verdict: Verdict,
) -> None:
    policy = RetryPolicy(max_retries=2, max_wait_seconds=300)
    assert policy.decide(method, outcome, attempt, retry_after=retry_after) is verdict


def test_idempotency_keys_go_on_posts_only_once_and_never_over_the_callers() -> None:
    on = RetryPolicy(idempotency_keys=True)
    first = on.with_idempotency_key("post", {"X": "1"})
    second = on.with_idempotency_key("POST", {})
    assert (
        set(first) == {"X", "Idempotency-Key"}
        and first["Idempotency-Key"] != second["Idempotency-Key"]
    )
    assert on.with_idempotency_key("POST", {"idempotency-key": "mine"}) == {
        "idempotency-key": "mine"
    }
    assert on.with_idempotency_key("PATCH", {}) == {}
    assert RetryPolicy().with_idempotency_key("POST", {}) == {}
    assert RetryPolicy.from_config(
        {"script-behavior": {"retry-strategy": {"idempotency-keys": True}}}
    ).idempotency_keys


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (429, {"Retry-After": "3"}, 3.0),
        (503, {"retry-after": "2"}, 2.0),
        (500, {"Retry-After": "3"}, None),  # only 429 and 503 carry the hint
        (429, {}, None),
    ],
)
def test_retry_after_of_an_answer(
    status: int, headers: dict[str, str], expected: float | None
) -> None:
    assert retry_after_of(status, headers, NOW) == expected
