"""Start-up: wall time of ``python -m src.report --help`` against a bare interpreter start.

The goal (< 0.5 s) needs pandas and pyarrow imported only when a script really uses them.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import Row

ROOT = Path(__file__).resolve().parent.parent
REPEATS = 15
GOAL_SECONDS = 0.5


def _wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def run() -> list[Row]:
    """Time ``--help`` of the report script, interleaved with ``python -c 'import requests'``."""
    toolkit_cmd = [sys.executable, "-m", "src.report", "--help"]
    plain_cmd = [sys.executable, "-c", "import requests, argparse"]
    _wall(toolkit_cmd)
    _wall(plain_cmd)
    toolkit: list[float] = []
    plain: list[float] = []
    for _ in range(REPEATS):
        toolkit.append(_wall(toolkit_cmd))
        plain.append(_wall(plain_cmd))
    median = statistics.median(toolkit)
    ratio = median / statistics.median(plain)
    q = statistics.quantiles(toolkit, n=4)
    return [
        Row(
            area="Start-up",
            measure="`python -m src.report --help` wall time",
            value=f"{median:.3f} s ({ratio:.2f}× a bare `import requests`)",
            spread=f"{q[0]:.3f}–{q[2]:.3f} s",
            goal=f"< {GOAL_SECONDS} s",
            met=median < GOAL_SECONDS,
            bound="interpreter start + `import requests` (the plain script's floor)",
            notes=f"{REPEATS} runs each, interleaved",
        )
    ]
