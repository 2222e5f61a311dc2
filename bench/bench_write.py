"""Write-back benchmarks against a real WireMock: write_many's overhead, and what $batch saves.

2,000 PATCHes to an endpoint that answers after 20 ms: ``write_many`` at 8 threads against a
plain ``ThreadPoolExecutor`` of 8 over one ``requests.Session`` doing the same requests, side
by side; then the same 2,000 records as ``$batch`` envelopes of 100 (the endpoint also takes
20 ms per envelope), with the requests each way sent as the server counted them.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from bench.common import Row, interleaved, interleaved_many, ratio_stats
from tools.wiremock_server import WireMock
from utils.api_factory import WriteRequest, create_rest_api

AREA = "Write-back"
RECORDS = 2000
WORKERS = 8
LATENCY_MS = 20
BATCH_SIZE = 100
REPEATS = 5
OVERHEAD_GOAL = 1.10
TOKEN = "bench-token-0123456789"
ETAG = 'W/"JzE7Jw=="'
BATCH_ANSWER = (
    '{"responses": [{{#each (jsonPath request.body \'$.requests\') as |r|}}'
    '{{#unless @first}}, {{/unless}}{"id": "{{r.id}}", "status": 200, '
    '"body": {"ring": "stable"}}{{/each}}]}'
)


def _config(base_url: str) -> dict[str, Any]:
    return {
        "global": {"api-base-url": f"{base_url}/api"},
        "script-behavior": {
            "api-delay-seconds": 0,
            "api-timeouts": {"rest-timeout-seconds": 10},
            # Limiter and breaker run on every request, but the limit is far above what we send.
            "rate-limiting": {"enabled": True, "calls-per-second": 1_000_000, "burst-size": 1},
            "circuit-breaker": {"enabled": True, "failure-threshold": 5, "timeout-seconds": 60},
        },
        "_token": TOKEN,
    }


def _stub(wm: WireMock) -> None:
    wm.stub(
        {
            "request": {"method": "PATCH", "urlPathPattern": "/api/devices/[0-9]+"},
            "response": {
                "status": 200,
                "jsonBody": {"ring": "stable"},
                "headers": {"Content-Type": "application/json"},
                "fixedDelayMilliseconds": LATENCY_MS,
            },
        }
    )
    wm.stub(
        {
            "request": {"method": "POST", "urlPath": "/api/$batch"},
            "response": {
                "status": 200,
                "body": BATCH_ANSWER,
                "headers": {"Content-Type": "application/json"},
                "fixedDelayMilliseconds": LATENCY_MS,
                "transformers": ["response-template"],
            },
        }
    )


def _spread(lo: float, hi: float) -> str:
    return f"{lo:.2f}–{hi:.2f}×"


def _count(wm: WireMock, fn: Callable[[], object]) -> int:
    """Run ``fn`` once and return the requests the server saw for it."""
    wm.reset_journal()
    fn()
    return wm.count()


def run() -> list[Row]:
    """Start WireMock, run the write-back benchmarks, stop it."""
    items = [
        WriteRequest(f"devices/{n}", {"ring": "stable"}, key=f"D{n:04d}", etag=ETAG)
        for n in range(RECORDS)
    ]
    with WireMock() as wm:
        _stub(wm)
        api = create_rest_api(_config(wm.base_url))
        plain = requests.Session()
        plain.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=WORKERS))
        headers = {"Authorization": f"Bearer {TOKEN}", "If-Match": ETAG}
        urls = [f"{wm.base_url}/api/{item.path}" for item in items]

        def toolkit() -> None:
            report = api.write_many("PATCH", items, max_workers=WORKERS)
            assert len(report.ok) == RECORDS

        def baseline() -> None:
            def patch(url: str) -> Any:
                response = plain.patch(url, json={"ring": "stable"}, headers=headers, timeout=10)
                response.raise_for_status()
                return response.json()

            with ThreadPoolExecutor(max_workers=WORKERS) as pool:
                assert len(list(pool.map(patch, urls))) == RECORDS

        def batched() -> None:
            report = api.write_many("PATCH", items, batch=True, batch_size=BATCH_SIZE)
            assert len(report.ok) == RECORDS

        each_sent = _count(wm, toolkit)
        batch_sent = _count(wm, batched)
        a, b = interleaved(toolkit, baseline, repeats=REPEATS)
        (c,) = interleaved_many([batched], REPEATS)
        api.close()
        plain.close()
    median, lo, hi = ratio_stats(a, b)
    each_s, plain_s, batch_s = statistics.median(a), statistics.median(b), statistics.median(c)
    bound = RECORDS / WORKERS * LATENCY_MS / 1000
    return [
        Row(
            AREA,
            f"write_many of {RECORDS:,} PATCHes at {WORKERS} threads, {LATENCY_MS} ms latency, "
            "÷ a plain ThreadPoolExecutor over requests",
            f"{median:.3f}×",
            f"≤ {OVERHEAD_GOAL:.2f}×",
            median <= OVERHEAD_GOAL,
            _spread(lo, hi),
            f"1.00× (same requests); time ≥ {bound:.1f} s ({RECORDS:,} ÷ {WORKERS} × "
            f"{LATENCY_MS} ms)",
            f"{REPEATS} repeats, interleaved; medians {each_s:.2f} s vs {plain_s:.2f} s; "
            f"{each_sent:,} requests; limiter + breaker on, one WriteResult per record",
        ),
        Row(
            AREA,
            f"write_many of the same {RECORDS:,} as $batch envelopes of {BATCH_SIZE}, "
            "÷ one request per record (time)",
            f"{batch_s / each_s:.3f}×",
            "",
            None,
            f"{batch_s:.2f} s vs {each_s:.2f} s",
            f"{RECORDS // BATCH_SIZE} envelopes one at a time, each ≥ {LATENCY_MS} ms",
            f"requests sent: {batch_sent:,} vs {each_sent:,} (server journal); "
            f"{REPEATS} repeats, medians",
        ),
    ]


if __name__ == "__main__":
    for row in run():
        print(f"{row.measure}: {row.value} ({row.goal}) {row.spread} — {row.notes}")
