"""The run counter registry counts across threads without losing increments."""

from __future__ import annotations

import threading

from utils import run_stats


def test_counts_from_many_threads() -> None:
    run_stats.reset()

    def work() -> None:
        for _ in range(1000):
            run_stats.increment(run_stats.API_CALLS)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert run_stats.get(run_stats.API_CALLS) == 8000
    assert run_stats.snapshot() == {run_stats.API_CALLS: 8000}
    run_stats.reset()
    assert run_stats.get(run_stats.API_CALLS) == 0
