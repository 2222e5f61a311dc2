"""The run counter registry counts across threads without losing increments; a script's own
counters are kept apart from the built-in ones and must be snake_case."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from utils import run_stats
from utils.exceptions import ValidationError


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


def test_script_counters_are_kept_apart_from_the_built_in_ones() -> None:
    run_stats.reset()
    run_stats.increment(run_stats.API_CALLS, 2)
    run_stats.count("customers_updated")
    run_stats.count("customers_updated", 4)
    run_stats.count("rows_skipped", 0)
    assert run_stats.script_counters() == {"customers_updated": 5, "rows_skipped": 0}
    assert run_stats.snapshot() == {run_stats.API_CALLS: 2}
    run_stats.reset()
    assert run_stats.script_counters() == {}


def test_script_counters_count_from_many_threads() -> None:
    run_stats.reset()
    threads = [
        threading.Thread(target=lambda: [run_stats.count("seen") for _ in range(500)])
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert run_stats.script_counters() == {"seen": 4000}


@pytest.mark.parametrize(
    ("name", "amount", "words"),
    [
        ("CustomersUpdated", 1, "not snake_case"),
        ("customers-updated", 1, "not snake_case"),
        ("1st_pass", 1, "not snake_case"),
        ("", 1, "not snake_case"),
        ("x" * 65, 1, "not snake_case"),
        ("api_calls", 1, "the toolkit keeps itself"),
        ("rows", -1, "0 or more"),
        ("rows", 1.5, "whole number"),
        ("rows", True, "whole number"),
    ],
)
def test_bad_counter_names_and_amounts_are_validation_errors(
    name: str, amount: Any, words: str
) -> None:
    run_stats.reset()
    with pytest.raises(ValidationError) as caught:
        run_stats.count(name, amount)
    assert words in caught.value.what_went_wrong
    assert caught.value.example and "run_stats.count(" in caught.value.example
    assert run_stats.script_counters() == {}
