"""State-store benchmark: what the incremental state costs a run, for a 1 MB state.

One run's cost is ``load_state`` (take the lock, read and parse the file) plus one ``set`` and
the ``commit`` at the end (render, temporary file, fsync, rename). It is timed side by side
with the plain library doing the same reading and writing: ``json.load`` + ``json.dump`` over
the file, and that plus the fsync and rename the state needs to survive a crash (the same
durability). A second row gives the usual case, a state of a few watermarks (1 KB). Each
toolkit round uses a fresh org name, so every ``load_state`` really takes a new lock and reads
its file (a state is loaded once per process otherwise). Files are in the page cache, as for
a script run every few minutes; the fsync still goes to the disk.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.common import Row, interleaved_many, ratio_stats
from utils import _run_control as run_control, path_helpers
from utils.state import load_state

AREA = "State"
STATE_BYTES = 1024 * 1024
SMALL_BYTES = 1024  # a few watermarks: the usual state
GOAL_MS = 5.0
REPEATS = 21
MS = 1000.0
SCRIPT = "bench_state"


def _values(target_bytes: int) -> dict[str, Any]:
    """A realistic state: watermarks plus a map of record id → last modified time."""
    seen: dict[str, str] = {}
    size = 0
    n = 0
    while size < target_bytes:
        key = f"{n:08x}-5b7e-4c9d-a1f0-3e6b2d4c5a71"
        stamp = f"2025-06-{1 + n % 28:02d}T10:{n % 60:02d}:00.000Z"
        seen[key] = stamp
        size += len(key) + len(stamp) + 6
        n += 1
    return {"customers_watermark": "2025-06-09T10:45:00.000Z", "seen": seen}


def _plain(path: Path, durable: bool) -> Callable[[], None]:
    def once() -> None:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        data["customers_watermark"] = "2025-06-10T00:00:00.000Z"
        target = path.with_suffix(".tmp") if durable else path
        with open(target, "w", encoding="utf-8") as f:
            json.dump(data, f)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        if durable:
            os.replace(target, path)

    return once


def _measure(root: Path, text: str, tag: str) -> tuple[list[float], list[float], list[float]]:
    """Interleaved timings of one run's state work (toolkit, plain, plain + durability)."""
    folder = root / "state"
    folder.mkdir(exist_ok=True)
    rounds = 2 * REPEATS + 2
    for i in range(rounds):  # one state file per toolkit round, written beforehand
        (folder / f"{tag}{i}-prod-bench-state.json").write_text(text, encoding="utf-8")
    orgs: Iterator[int] = iter(range(rounds))

    def toolkit() -> None:
        state = load_state({"_org_id": f"{tag}{next(orgs)}", "_env_type": "prod"})
        state.set("customers_watermark", "2025-06-10T00:00:00.000Z")
        state.commit()

    plain_path = root / f"{tag}-plain.json"
    plain_path.write_text(text, encoding="utf-8")
    durable_path = root / f"{tag}-durable.json"
    durable_path.write_text(text, encoding="utf-8")
    a, b, c = interleaved_many(
        [toolkit, _plain(plain_path, False), _plain(durable_path, True)], REPEATS
    )
    return a, b, c


def _row(size_bytes: int, a: list[float], b: list[float], c: list[float], goal: bool) -> Row:
    median_ms = statistics.median(a) * MS
    ratio, lo, hi = ratio_stats(a, b)
    durable_ratio, dlo, dhi = ratio_stats(a, c)
    size = (
        f"{size_bytes / 1024 / 1024:.1f} MB"
        if size_bytes > 1024 * 1024
        else (f"{size_bytes / 1024:.1f} KB")
    )
    return Row(
        area=AREA,
        measure=f"load_state + set + commit, {size} state (one run)",
        value=(
            f"{median_ms:.2f} ms; plain {statistics.median(b) * MS:.2f} ms, "
            f"plain + fsync + rename {statistics.median(c) * MS:.2f} ms"
        ),
        goal=f"< {GOAL_MS:.0f} ms" if goal else "",
        met=median_ms < GOAL_MS if goal else None,
        spread=(f"{lo:.2f}–{hi:.2f}× plain; {dlo:.2f}–{dhi:.2f}× plain + fsync + rename"),
        bound="json.load + json.dump of the same file (1.00×); with fsync + rename",
        notes=(
            f"{ratio:.2f}× plain, {durable_ratio:.2f}× plain + fsync + rename; the toolkit "
            "also takes the lock, writes the lock file and checks every value set"
        ),
        extra={"ms": median_ms, "ratio": ratio, "ratio_vs_durable": durable_ratio},
    )


def run() -> list[Row]:
    """Time one run's state work against the plain library; return the result rows."""
    original_root = path_helpers.PROJECT_ROOT
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path_helpers.PROJECT_ROOT = Path(tmp)
        run_control.reset()
        run_control.set_script_name(SCRIPT)
        try:
            for tag, size, goal in (("big", STATE_BYTES, True), ("small", SMALL_BYTES, False)):
                text = json.dumps(_values(size))
                rows.append(_row(len(text), *_measure(Path(tmp), text, tag), goal=goal))
        finally:
            run_control.set_script_name(None)
            path_helpers.PROJECT_ROOT = original_root
    return rows
