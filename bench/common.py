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


def interleaved(
    toolkit: Callable[[], object], baseline: Callable[[], object], repeats: int = 15
) -> tuple[list[float], list[float]]:
    """Time ``toolkit`` and ``baseline`` alternately ``repeats`` times each; return both lists."""
    a: list[float] = []
    b: list[float] = []
    toolkit()
    baseline()  # warm-up, not counted
    for i in range(repeats):
        order = (toolkit, baseline) if i % 2 == 0 else (baseline, toolkit)
        for fn in order:
            start = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - start
            (a if fn is toolkit else b).append(elapsed)
    return a, b


def ratio_stats(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """Median ratio a/b and the 25th/75th percentile of pairwise ratios."""
    ratios = sorted(x / y for x, y in zip(a, b, strict=True) if y > 0)
    q = statistics.quantiles(ratios, n=4) if len(ratios) >= 4 else [ratios[0], 0, ratios[-1]]
    return statistics.median(ratios), q[0], q[-1]
