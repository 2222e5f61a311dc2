"""Benchmark helpers: side-by-side timing, medians and spreads, and the result row format.

Every figure is a ratio of the toolkit against the plain library doing the same work, measured
in one run, interleaved, so that the noise of a shared machine hits both sides alike.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Row:
    """One line of bench/RESULTS.md.

    Attributes:
        area: ``HTTP``, ``Saving``, ``Logging``, ``Start-up`` ...
        measure: What was measured, in words.
        value: The figure (a ratio, a rate, a count), already formatted.
        goal: The goal, in words (``≤ 1.10×``).
        met: Whether the goal was met (None when the row has no goal).
        spread: Spread of the figure over the repeats (``p25–p75``), formatted.
        bound: The physical bound the figure is measured against, in words.
        notes: Anything a reader needs to trust the figure.
    """

    area: str
    measure: str
    value: str
    goal: str = ""
    met: bool | None = None
    spread: str = ""
    bound: str = ""
    notes: str = ""
    extra: dict[str, float] = field(default_factory=dict)


def interleaved_many(fns: list[Callable[[], object]], repeats: int) -> list[list[float]]:
    """Time each of ``fns`` ``repeats`` times, rotating the order every round (for two: one
    first, then the other first); one uncounted warm-up of each first. One list per function."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for i in range(repeats):
        for k in [(i + j) % len(fns) for j in range(len(fns))]:
            start = time.perf_counter()
            fns[k]()
            times[k].append(time.perf_counter() - start)
    return times


def interleaved(
    toolkit: Callable[[], object], baseline: Callable[[], object], repeats: int = 15
) -> tuple[list[float], list[float]]:
    """Time ``toolkit`` and ``baseline`` alternately ``repeats`` times each; return both lists."""
    a, b = interleaved_many([toolkit, baseline], repeats)
    return a, b


def ratio_stats(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """Median ratio a/b and the 25th/75th percentile of pairwise ratios."""
    ratios = sorted(x / y for x, y in zip(a, b, strict=True) if y > 0)
    q = statistics.quantiles(ratios, n=4) if len(ratios) >= 4 else [ratios[0], 0, ratios[-1]]
    return statistics.median(ratios), q[0], q[-1]
