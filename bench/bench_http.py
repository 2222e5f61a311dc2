"""HTTP client benchmarks against a real WireMock: overhead, rate fidelity, parallelism, 202, pages.

Every figure compares the toolkit client with a plain ``requests.Session`` doing the same work
on the same endpoint, or with the configured value it should match (rate, poll interval).
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable
from typing import Any

import requests

from bench.common import Row, interleaved, ratio_stats
from tools.wiremock_server import WireMock
from utils.api_factory import TxoRestAPI, create_rest_api

AREA = "HTTP"
OVERHEAD_CALLS = 100
OVERHEAD_REPEATS = 25
OVERHEAD_GOAL = 1.10
RATE = 50.0
RATE_CALLS = 151  # 150 intervals: 3 s at 50/s
RATE_REPEATS = 3
RATE_TOLERANCE = 0.03
PARALLEL_CALLS = 200
PARALLEL_LATENCY_MS = 50
PARALLEL_WORKERS = 8
PARALLEL_GOAL = 6.0
POLL_INTERVAL = 0.2
POLLS = 5
POLL_GOAL = 1.10
PAGES = 40
PAGE_SIZE = 100
PAGES_GOAL = 1.10
PAGES_REPEATS = 15
WINDOW_MS = 1000


def _config(base_url: str, **behavior: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "api-delay-seconds": 0,
        "api-timeouts": {"rest-timeout-seconds": 10, "async-poll-interval": POLL_INTERVAL},
        "retry-strategy": {"max-retries": 0, "backoff-factor": 0.01},
        # Limiter and breaker run on every request, but the limit is far above what we send.
        "rate-limiting": {"enabled": True, "calls-per-second": 1_000_000, "burst-size": 1},
        "circuit-breaker": {"enabled": True, "failure-threshold": 5, "timeout-seconds": 60},
    }
    settings.update(behavior)
    return {
        "global": {"api-base-url": f"{base_url}/api"},
        "script-behavior": settings,
        "_token": "bench-token-0123456789",
    }


def _json(body: Any, **extra: Any) -> dict[str, Any]:
    return {
        "status": 200,
        "jsonBody": body,
        "headers": {"Content-Type": "application/json"},
        **extra,
    }


def _spread(lo: float, hi: float, unit: str = "×") -> str:
    return f"{lo:.2f}–{hi:.2f}{unit}"


def _with_cpu(fn: Callable[[], object], store: list[float]) -> Callable[[], None]:
    """``fn`` that also records its process (CPU) time: the client's own work, free of the
    server's and the machine's noise, which hit both sides' wall time alike."""

    def measured() -> None:
        start = time.process_time()
        fn()
        store.append(time.process_time() - start)

    return measured


def _side_by_side(
    toolkit: Callable[[], object], baseline: Callable[[], object], repeats: int
) -> tuple[tuple[float, float, float], tuple[float, float, float], list[float]]:
    """Interleaved wall-time and CPU-time ratio stats, and the toolkit's wall times."""
    cpu_a: list[float] = []
    cpu_b: list[float] = []
    a, b = interleaved(_with_cpu(toolkit, cpu_a), _with_cpu(baseline, cpu_b), repeats=repeats)
    # interleaved() runs one uncounted warm-up of each side first
    return ratio_stats(a, b), ratio_stats(cpu_a[1:], cpu_b[1:]), a


def _max_in_window(stamps: list[int], window: int = WINDOW_MS) -> int:
    return max(sum(1 for t in stamps if s <= t <= s + window) for s in stamps)


def bench_overhead(wm: WireMock) -> list[Row]:
    wm.stub(
        {
            "request": {"method": "GET", "urlPath": "/api/ping"},
            "response": _json({"ok": True, "n": 1}),
        }
    )
    api = create_rest_api(_config(wm.base_url))
    plain = requests.Session()
    url = f"{wm.base_url}/api/ping"
    headers = {"Authorization": "Bearer bench-token-0123456789"}

    def toolkit() -> None:
        for _ in range(OVERHEAD_CALLS):
            api.get("ping")

    def baseline() -> None:
        for _ in range(OVERHEAD_CALLS):
            plain.get(url, headers=headers, timeout=10).json()

    for _ in range(3):  # let the JVM behind WireMock warm up before measuring
        toolkit()
        baseline()
    (median, lo, hi), (cpu, cpu_lo, cpu_hi), _ = _side_by_side(toolkit, baseline, OVERHEAD_REPEATS)
    api.close()
    plain.close()
    notes = f"{OVERHEAD_CALLS} calls per repeat, {OVERHEAD_REPEATS} repeats; limiter + breaker on"
    return [
        Row(
            AREA,
            "Per-request time, client ÷ plain requests.Session (GET, JSON, local WireMock)",
            f"{median:.3f}×",
            f"≤ {OVERHEAD_GOAL:.2f}×",
            median <= OVERHEAD_GOAL,
            _spread(lo, hi),
            "1.00× (same socket work)",
            notes + "; wall time, includes the server's noise",
        ),
        Row(
            AREA,
            "Per-request client CPU time, client ÷ plain requests.Session (same run)",
            f"{cpu:.3f}×",
            f"≤ {OVERHEAD_GOAL:.2f}×",
            cpu <= OVERHEAD_GOAL,
            _spread(cpu_lo, cpu_hi),
            "1.00×",
            notes + "; process time of the Python side only",
        ),
    ]


def _rate_run(wm: WireMock, workers: int) -> tuple[float, int]:
    wm.reset_journal()
    api = create_rest_api(
        _config(
            wm.base_url,
            **{"rate-limiting": {"enabled": True, "calls-per-second": RATE, "burst-size": 1}},
        )
    )
    with api:
        api.map(api.get, [f"r/{n}" for n in range(RATE_CALLS)], max_workers=workers)
    stamps = sorted(r["loggedDate"] for r in wm.requests())
    achieved = (len(stamps) - 1) / ((stamps[-1] - stamps[0]) / 1000)
    return achieved / RATE, _max_in_window(stamps)


def bench_rate(wm: WireMock) -> list[Row]:
    wm.stub(
        {"request": {"method": "GET", "urlPathPattern": "/api/r/.*"}, "response": _json({"ok": 1})}
    )
    rows = []
    for workers in (1, 8):
        runs = [_rate_run(wm, workers) for _ in range(RATE_REPEATS)]
        ratios = sorted(r for r, _ in runs)
        worst_window = max(w for _, w in runs)
        median = statistics.median(ratios)
        met = (
            all(1 - RATE_TOLERANCE <= r <= 1.0 + 0.005 for r in ratios) and worst_window <= RATE + 1
        )
        rows.append(
            Row(
                AREA,
                f"Rate-limit fidelity at {RATE:g} calls/s, {workers} thread(s): achieved ÷ configured",
                f"{median:.3f}",
                f"{1 - RATE_TOLERANCE:.2f}–1.00, max {RATE + 1:g} in any 1 s",
                met,
                _spread(ratios[0], ratios[-1], ""),
                "1.00 (limit); burst 1",
                f"{RATE_CALLS} calls × {RATE_REPEATS} runs, server journal timestamps (ms); "
                f"most requests in any 1 s window: {worst_window}",
            )
        )
    return rows


def bench_parallel(wm: WireMock) -> Row:
    wm.stub(
        {
            "request": {"method": "GET", "urlPathPattern": "/api/slow/.*"},
            "response": _json({"ok": 1}, fixedDelayMilliseconds=PARALLEL_LATENCY_MS),
        }
    )
    api = create_rest_api(_config(wm.base_url))
    paths = [f"slow/{n}" for n in range(PARALLEL_CALLS)]

    def timed(fn: Callable[[], object]) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    with api:
        api.map(api.get, paths[:16], max_workers=PARALLEL_WORKERS)  # warm-up
        sequential = timed(lambda: [api.get(p) for p in paths])
        parallel = sorted(
            timed(lambda: api.map(api.get, paths, max_workers=PARALLEL_WORKERS)) for _ in range(3)
        )
    speedups = sorted(sequential / p for p in parallel)
    median = statistics.median(speedups)
    return Row(
        AREA,
        f"Parallel speed-up, {PARALLEL_CALLS} GETs with {PARALLEL_LATENCY_MS} ms latency, "
        f"api.map at {PARALLEL_WORKERS} threads ÷ one by one",
        f"{median:.2f}×",
        f"≥ {PARALLEL_GOAL:g}×",
        median >= PARALLEL_GOAL,
        _spread(speedups[0], speedups[-1]),
        f"{PARALLEL_WORKERS}× (threads)",
        "one sequential run, three parallel runs; same client, limiter + breaker on",
    )


def bench_polling(wm: WireMock) -> Row:
    wm.reset_journal()
    wm.stub(
        {
            "request": {"method": "POST", "urlPath": "/api/jobs"},
            "response": {"status": 202, "headers": {"Location": "jobs/1"}},
        }
    )
    for i in range(POLLS):
        mapping: dict[str, Any] = {
            "scenarioName": "job",
            "requiredScenarioState": "Started" if i == 0 else f"s{i}",
            "request": {"method": "GET", "urlPath": "/api/jobs/1"},
            "response": {"status": 202} if i < POLLS - 1 else _json({"done": True}),
        }
        if i < POLLS - 1:
            mapping["newScenarioState"] = f"s{i + 1}"
        wm.stub(mapping)
    with create_rest_api(_config(wm.base_url)) as api:
        api.post("jobs", {})
    stamps = [r["loggedDate"] for r in wm.requests()]
    ratios = sorted((b - a) / 1000 / POLL_INTERVAL for a, b in itertools.pairwise(stamps))
    median = statistics.median(ratios)
    return Row(
        AREA,
        f"202 polling: gap between polls ÷ async-poll-interval ({POLL_INTERVAL:g} s)",
        f"{median:.3f}×",
        f"1.00–{POLL_GOAL:.2f}×",
        ratios[0] >= 1.0 and median <= POLL_GOAL,
        _spread(ratios[0], ratios[-1]),
        "1.00× (the interval)",
        f"{POLLS} polls, server journal timestamps",
    )


def bench_pages(wm: WireMock) -> list[Row]:
    base = f"{wm.base_url}/api/pages"
    for n in range(PAGES):
        body: dict[str, Any] = {
            "value": [{"id": n * PAGE_SIZE + k, "name": f"record {k}"} for k in range(PAGE_SIZE)]
        }
        if n < PAGES - 1:
            body["@odata.nextLink"] = f"{base}?page={n + 1}"
        query = {"page": {"equalTo": str(n)}} if n else {"page": {"absent": True}}
        wm.stub(
            {
                "request": {"method": "GET", "urlPath": "/api/pages", "queryParameters": query},
                "response": _json(body),
            }
        )
    api: TxoRestAPI = create_rest_api(_config(wm.base_url))
    plain = requests.Session()
    headers = {"Authorization": "Bearer bench-token-0123456789"}

    def toolkit() -> None:
        assert sum(len(p) for p in api.iter_pages("pages")) == PAGES * PAGE_SIZE

    def baseline() -> None:
        url: str | None = base
        count = 0
        while url:
            body = plain.get(url, headers=headers, timeout=10).json()
            count += len(body["value"])
            url = body.get("@odata.nextLink")
        assert count == PAGES * PAGE_SIZE

    (median, lo, hi), (cpu, cpu_lo, cpu_hi), a = _side_by_side(toolkit, baseline, PAGES_REPEATS)
    api.close()
    plain.close()
    pages_per_s = PAGES / statistics.median(a)
    notes = f"{PAGES} pages × {PAGE_SIZE} records, {PAGES_REPEATS} repeats"
    return [
        Row(
            AREA,
            "Pages through iter_pages ÷ a plain requests next-link loop (time)",
            f"{median:.3f}×",
            f"≤ {PAGES_GOAL:.2f}×",
            median <= PAGES_GOAL,
            _spread(lo, hi),
            "1.00×",
            notes + f"; wall time; client ≈{pages_per_s:.0f} pages/s",
        ),
        Row(
            AREA,
            "Pages through iter_pages ÷ a plain requests next-link loop (client CPU time)",
            f"{cpu:.3f}×",
            f"≤ {PAGES_GOAL:.2f}×",
            cpu <= PAGES_GOAL,
            _spread(cpu_lo, cpu_hi),
            "1.00×",
            notes + "; process time of the Python side only",
        ),
    ]


def run() -> list[Row]:
    """Start WireMock, run every HTTP benchmark, stop it."""
    with WireMock() as wm:
        rows = bench_overhead(wm)
        rows += bench_rate(wm)
        rows.append(bench_parallel(wm))
        rows.append(bench_polling(wm))
        rows += bench_pages(wm)
    return rows


if __name__ == "__main__":
    for row in run():
        print(
            f"{row.measure}: {row.value} (goal {row.goal}, met {row.met}) spread {row.spread} — {row.notes}"
        )
