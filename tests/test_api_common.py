"""Rate limiter, circuit breaker, jitter and manual_retry, with an injected clock (no waiting)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from tests.http_contract_support import hang_guard
from tests.support_clock import FakeClock
from utils import run_stats
from utils.api_common import (
    DEFAULTS,
    CircuitBreaker,
    RateLimiter,
    apply_jitter,
    behavior,
    manual_retry,
)
from utils.exceptions import (
    ApiAuthenticationError,
    ApiOperationError,
    CircuitOpenError,
    ConfigurationError,
    ValidationError,
)

pytestmark = pytest.mark.usefixtures(hang_guard.__name__)

SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "org-env-config-schema.json"


def max_in_window(starts: list[float], window: float) -> int:
    """Most starts in any closed interval [s, s + window] (sliding over every start)."""
    ordered = sorted(starts)
    best, j = 0, 0
    for i, s in enumerate(ordered):
        while j < len(ordered) and ordered[j] <= s + window + 1e-9:
            j += 1
        best = max(best, j - i)
    return best


# -- RateLimiter -------------------------------------------------------------------------------
def test_limiter_spaces_calls_exactly_at_the_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(calls_per_second=10, burst_size=1, clock=clock, sleep=clock.sleep)
    starts = [limiter.acquire() for _ in range(5)]
    assert [round(s - 1000.0, 9) for s in starts] == [0.0, 0.1, 0.2, 0.3, 0.4]


def test_limiter_full_bucket_is_not_refilled_on_top() -> None:
    clock = FakeClock()
    limiter = RateLimiter(calls_per_second=10, burst_size=5, clock=clock, sleep=clock.sleep)
    clock.advance(60)  # a long idle period must not bank more than burst_size calls
    starts = [limiter.acquire() for _ in range(30)]
    first = starts[0]
    assert sum(1 for s in starts if s == first) == 5
    assert max_in_window(starts, 1.0) <= 5 + 10
    assert starts[-1] - first == pytest.approx((30 - 5) / 10)


@pytest.mark.parametrize("rate,burst", [(10, 1), (50, 1), (20, 4)])
def test_limiter_bound_holds_across_eight_threads(rate: float, burst: int) -> None:
    clock = FakeClock()
    limiter = RateLimiter(calls_per_second=rate, burst_size=burst, clock=clock, sleep=clock.sleep)
    per_thread = 25
    starts: list[float] = []
    done: dict[int, int] = {}
    lock = threading.Lock()

    def worker(n: int) -> None:
        for _ in range(per_thread):
            at = limiter.acquire()
            with lock:
                starts.append(at)
                done[n] = done.get(n, 0) + 1

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert done == dict.fromkeys(range(8), per_thread)
    for window in (0.05, 0.5, 1.0, 2.5):
        assert max_in_window(starts, window) <= burst + rate * window + 1e-6
    # exact, not merely safe: the last call starts as early as the bound allows
    assert max(starts) - min(starts) == pytest.approx((8 * per_thread - burst) / rate)


def test_limiter_serves_waiting_threads_in_arrival_order() -> None:
    clock = FakeClock()
    release = threading.Event()

    def gated_sleep(seconds: float) -> None:
        release.wait(5)
        clock.sleep(seconds)

    limiter = RateLimiter(calls_per_second=1, burst_size=1, clock=clock, sleep=gated_sleep)
    limiter.acquire()  # empties the bucket: the next caller must sleep
    order: list[int] = []
    threads = []
    for n in range(4):
        t = threading.Thread(target=lambda n=n: (limiter.acquire(), order.append(n)))
        t.start()
        threads.append(t)
        while limiter._next_ticket != n + 2:  # wait until thread n holds its ticket
            threading.Event().wait(0.001)
    release.set()
    for t in threads:
        t.join(timeout=5)
    assert order == [0, 1, 2, 3]


@pytest.mark.parametrize("rate,burst", [(0, 1), (-1, 1), (10, 0)])
def test_limiter_rejects_impossible_settings(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate, burst)


# -- CircuitBreaker ----------------------------------------------------------------------------
def test_breaker_opens_after_threshold_consecutive_failures() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=3, timeout=10, clock=clock)
    before = run_stats.get(run_stats.BREAKER_OPENS)
    for _ in range(2):
        breaker.before_call()
        breaker.record_failure()
    assert breaker.state == "closed"
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state == "open"
    assert run_stats.get(run_stats.BREAKER_OPENS) == before + 1
    with pytest.raises(CircuitOpenError) as caught:
        breaker.before_call("https://api.example.com/x", "GET")
    assert isinstance(caught.value, ApiOperationError)
    assert caught.value.url == "https://api.example.com/x"
    assert caught.value.method == "GET"


def test_breaker_success_resets_the_failure_count() -> None:
    breaker = CircuitBreaker(failure_threshold=2, timeout=10, clock=FakeClock())
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state == "closed"


def test_breaker_half_open_trial_success_closes() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, timeout=10, clock=clock)
    breaker.record_failure()
    clock.advance(9.9)
    assert breaker.state == "open"
    with pytest.raises(CircuitOpenError):
        breaker.before_call()
    clock.advance(0.1)
    assert breaker.state == "half-open"
    breaker.before_call()
    breaker.record_success()
    assert breaker.state == "closed"


def test_breaker_half_open_trial_failure_reopens_for_a_new_timeout() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, timeout=10, clock=clock)
    breaker.record_failure()
    clock.advance(10)
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state == "open"
    clock.advance(5)
    with pytest.raises(CircuitOpenError):
        breaker.before_call()


def test_breaker_lets_exactly_one_trial_through_under_threads() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, timeout=1, clock=clock)
    breaker.record_failure()
    clock.advance(1)
    barrier = threading.Barrier(8)
    passed: list[int] = []
    refused: list[int] = []

    def caller(n: int) -> None:
        barrier.wait()
        try:
            breaker.before_call()
            passed.append(n)
        except CircuitOpenError:
            refused.append(n)

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    assert len(passed) == 1
    assert len(refused) == 7
    assert breaker.state == "half-open"


def test_breaker_call_wrapper_counts_exceptions_as_failures() -> None:
    breaker = CircuitBreaker(failure_threshold=1, timeout=5, clock=FakeClock())

    def boom() -> None:
        raise OSError("down")

    with pytest.raises(OSError):
        breaker.call(boom)
    assert breaker.state == "open"
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: 1)


# -- jitter, manual_retry, defaults ------------------------------------------------------------
def test_apply_jitter_uses_the_configured_range() -> None:
    config = {"script-behavior": {"jitter": {"min-factor": 0.5, "max-factor": 1.5}}}
    seen: list[tuple[float, float]] = []

    def rand(lo: float, hi: float) -> float:
        seen.append((lo, hi))
        return hi

    assert apply_jitter(2.0, config, rand=rand) == 3.0
    assert seen == [(0.5, 1.5)]
    values = [apply_jitter(1.0, config) for _ in range(200)]
    assert all(0.5 <= v <= 1.5 for v in values)
    assert max(values) - min(values) > 0.5  # actually random, not a constant


def test_apply_jitter_defaults_when_config_has_no_jitter() -> None:
    values = [apply_jitter(10.0, {}) for _ in range(100)]
    assert all(8.0 <= v <= 12.0 for v in values)


def test_manual_retry_sleeps_backoff_powers_and_reraises_last() -> None:
    calls: list[int] = []
    sleeps: list[float] = []

    def failing() -> None:
        calls.append(1)
        raise OSError(f"try {len(calls)}")

    with pytest.raises(OSError, match="try 4"):
        manual_retry(failing, max_retries=3, backoff=2.0, sleep=sleeps.append)
    assert len(calls) == 4
    assert sleeps == [1.0, 2.0, 4.0]


def test_manual_retry_returns_first_success() -> None:
    outcomes = iter([ValueError("a"), ValueError("b"), "ok"])

    def flaky() -> str:
        value = next(outcomes)
        if isinstance(value, Exception):
            raise value
        return value

    sleeps: list[float] = []
    assert manual_retry(flaky, max_retries=3, backoff=3.0, sleep=sleeps.append) == "ok"
    assert sleeps == [1.0, 3.0]


@pytest.mark.parametrize(
    "error",
    [
        ConfigurationError("a", "b"),
        ValidationError("a", "b"),
        ApiAuthenticationError("a", "b"),
    ],
)
def test_manual_retry_never_retries_permanent_errors(error: Exception) -> None:
    calls: list[int] = []

    def fail() -> None:
        calls.append(1)
        raise error

    with pytest.raises(type(error)):
        manual_retry(fail, max_retries=5, sleep=lambda s: None)
    assert calls == [1]


def test_behavior_fills_missing_keys_without_touching_the_config() -> None:
    config = {"script-behavior": {"retry-strategy": {"max-retries": 0}}}
    filled = behavior(config)
    assert filled["retry-strategy"] == {
        "max-retries": 0,
        "backoff-factor": 2.0,
        "max-wait-seconds": 300,
        "idempotency-keys": False,
    }
    assert filled["rate-limiting"] == DEFAULTS["rate-limiting"]
    assert config == {"script-behavior": {"retry-strategy": {"max-retries": 0}}}


@pytest.mark.skipif(not SCHEMA.exists(), reason="schema not present")
def test_defaults_mirror_the_schema() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))

    def schema_defaults(node: dict) -> dict:
        out = {}
        for key, sub in node.get("properties", {}).items():
            if sub.get("properties"):
                out[key] = schema_defaults(sub)
            elif "default" in sub:
                out[key] = sub["default"]
        return out

    assert schema_defaults(schema["properties"]["script-behavior"]) == DEFAULTS


def test_limiter_waiter_interrupted_in_the_queue_does_not_block_the_others() -> None:
    clock = FakeClock()
    release = threading.Event()

    def gated_sleep(seconds: float) -> None:
        release.wait(5)
        clock.sleep(seconds)

    limiter = RateLimiter(calls_per_second=10, burst_size=1, clock=clock, sleep=gated_sleep)
    limiter.acquire()
    real_cond = limiter._cond

    class InterruptingCondition:
        """Raises in the thread named "interrupted" while it waits for its turn."""

        def __enter__(self) -> object:
            return real_cond.__enter__()

        def __exit__(self, *exc: object) -> None:
            real_cond.__exit__(*exc)

        def wait(self, timeout: float | None = None) -> bool:
            if threading.current_thread().name == "interrupted":
                raise KeyboardInterrupt
            return real_cond.wait(timeout)

        def notify_all(self) -> None:
            real_cond.notify_all()

    limiter._cond = InterruptingCondition()  # type: ignore[assignment]
    outcome: dict[str, str] = {}

    def run(name: str) -> None:
        try:
            limiter.acquire()
            outcome[name] = "started"
        except KeyboardInterrupt:
            outcome[name] = "interrupted"

    head = threading.Thread(target=run, args=("head",), name="head")
    head.start()
    while limiter._next_ticket != 2:
        threading.Event().wait(0.001)
    threads = [threading.Thread(target=run, args=(n,), name=n) for n in ("interrupted", "last")]
    for t in threads:
        t.start()
        t.join(timeout=0.05)
    release.set()
    for t in [head, *threads]:
        t.join(timeout=5)
    assert outcome == {"head": "started", "interrupted": "interrupted", "last": "started"}


def test_breaker_confirm_stops_a_call_admitted_before_it_opened() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, timeout=10, clock=clock)
    admitted = breaker.before_call()  # closed: an ordinary call, then it waits somewhere
    breaker.record_failure()  # meanwhile another call fails and opens the breaker
    with pytest.raises(CircuitOpenError):
        breaker.confirm(admitted)
    clock.advance(10)
    trial = breaker.before_call()
    assert trial is True
    breaker.confirm(trial)  # the trial itself always proceeds


def test_breaker_raise_if_open_looks_ahead_without_claiming_the_trial() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, timeout=10, clock=clock)
    breaker.raise_if_open(within=100)  # closed: never raises
    breaker.before_call()
    breaker.record_failure()
    with pytest.raises(CircuitOpenError):
        breaker.raise_if_open(within=9.9)  # still open when the wait would end
    breaker.raise_if_open(within=10)  # the trial would be due by then
    clock.advance(10)
    breaker.raise_if_open()
    assert breaker.before_call() is True  # the trial is still there to claim


def test_manual_retry_obeys_a_patched_time_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    from utils.api_common import manual_retry

    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    outcomes = iter([RuntimeError("1"), RuntimeError("2"), RuntimeError("3"), "done"])

    def work() -> str:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert manual_retry(work) == "done"
    assert slept == [1.0, 2.0, 4.0]


def test_jitter_obeys_a_patched_random_uniform(monkeypatch: pytest.MonkeyPatch) -> None:
    import random

    from utils.api_common import apply_jitter

    monkeypatch.setattr(random, "uniform", lambda low, high: high)
    config = {"script-behavior": {"jitter": {"min-factor": 0.5, "max-factor": 1.5}}}
    assert apply_jitter(10, config) == 15.0
