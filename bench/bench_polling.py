"""202 polling latency: from the moment the server's job completes to the result in hand.

A client that polls every ``async-poll-interval`` seconds learns of completion at the next
poll, so the bound is one poll interval (plus one round trip). The toolkit's ``api.post``
(which polls transparently) runs side by side with a plain ``requests`` polling loop doing the
same; the job is completed through WireMock's admin API at a random moment mid-wait.
"""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import requests

from bench.common import Row
from tools.wiremock_server import WireMock
from utils.api_factory import create_rest_api

POLL_INTERVAL = 0.5
RUNS = 8
JOB_PATH = "/api/jobs/42"
SEED = 7


def _config(base_url: str) -> dict[str, Any]:
    return {
        "global": {"api-base-url": f"{base_url}/api"},
        "script-behavior": {
            "api-delay-seconds": 0,
            "api-timeouts": {
                "rest-timeout-seconds": 10,
                "async-poll-interval": POLL_INTERVAL,
                "async-max-wait": 60,
            },
            "rate-limiting": {"enabled": True, "calls-per-second": 100, "burst-size": 1},
        },
        "_token": "bench-token-0123456789",
    }


def _arm(wm: WireMock) -> None:
    """Fresh stubs: POST starts a job (202 + relative Location); the job answers 202 for now."""
    wm.reset()
    wm.stub(
        {
            "request": {"method": "POST", "urlPath": "/api/jobs"},
            "response": {"status": 202, "headers": {"Location": "jobs/42"}},
        }
    )
    wm.stub(
        {
            "priority": 5,
            "request": {"method": "GET", "urlPath": JOB_PATH},
            "response": {"status": 202, "headers": {"Location": "42"}},
        }
    )


def _complete_at(wm: WireMock, delay: float, done: dict[str, float]) -> threading.Thread:
    """After ``delay`` seconds make the job answer 200, and note when that took effect."""

    def work() -> None:
        time.sleep(delay)
        wm.stub(
            {
                "priority": 1,
                "request": {"method": "GET", "urlPath": JOB_PATH},
                "response": {"status": 200, "jsonBody": {"status": "done"}},
            }
        )
        done["at"] = time.perf_counter()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def _plain(base_url: str) -> Callable[[], Any]:
    def run() -> Any:
        with requests.Session() as s:
            r = s.post(f"{base_url}/api/jobs", json={}, timeout=10)
            url = requests.compat.urljoin(r.url, r.headers["Location"])
            while r.status_code == 202:
                time.sleep(POLL_INTERVAL)
                r = s.get(url, timeout=10)
            return r.json()

    return run


def _measure(wm: WireMock, fn: Callable[[], Any], delay: float) -> float:
    _arm(wm)
    done: dict[str, float] = {}
    thread = _complete_at(wm, delay, done)
    body = fn()
    finished = time.perf_counter()
    thread.join()
    assert body == {"status": "done"}, body
    return finished - done["at"]


def run() -> list[Row]:
    """Completion-to-result latency, toolkit vs a plain loop, over random completion moments."""
    rng = random.Random(SEED)
    with WireMock() as wm:
        api = create_rest_api(_config(wm.base_url))
        toolkit_fn = lambda: api.post("jobs", data={})  # noqa: E731
        plain_fn = _plain(wm.base_url)
        toolkit: list[float] = []
        plain: list[float] = []
        for i in range(RUNS):
            delay = rng.uniform(1.0, 1.0 + POLL_INTERVAL)
            order = [(toolkit_fn, toolkit), (plain_fn, plain)]
            for fn, sink in order if i % 2 == 0 else reversed(order):
                sink.append(_measure(wm, fn, delay))
        api.close()
    worst = max(toolkit)
    median = statistics.median(toolkit)
    return [
        Row(
            area="HTTP",
            measure=f"202 polling: job completion → result returned, ÷ poll interval "
            f"({POLL_INTERVAL:g} s)",
            value=f"{median / POLL_INTERVAL:.2f} (max {worst / POLL_INTERVAL:.2f})",
            goal="≤ 1.00 interval",
            met=worst <= POLL_INTERVAL * 1.05,
            spread=f"{min(toolkit) / POLL_INTERVAL:.2f}–{worst / POLL_INTERVAL:.2f} (min–max)",
            bound="one poll interval (completion is seen at the next poll) + one round trip",
            notes=f"{RUNS} runs, completion at a random moment; plain requests loop: median "
            f"{statistics.median(plain) / POLL_INTERVAL:.2f}, ratio toolkit ÷ plain "
            f"{median / statistics.median(plain):.2f}",
        )
    ]
