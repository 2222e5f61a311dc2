"""Saving benchmarks: each format's save() against the plain library call, xlsx engines, and
the peak memory of streaming a million records.

save() does more than the plain call: it checks the data, writes a temporary file, fsyncs it
and renames it into place. Each format row gives two ratios side by side: against the plain
call (what a script that does not care about crashes would pay) and against the plain call
plus an fsync of its file (the same durability, so what is left is the toolkit's own work).
Where fsync dominates (a 10 MB text file is written in a few ms, its fsync takes as long) the
first ratio cannot reach 1.05×; the second shows whether the toolkit adds anything. A last
row measures save() on a tiny file against a hand-written temp file + fsync + rename, the
floor of an atomic write. Memory is measured in a fresh subprocess per case (VmHWM, the
process's peak resident set).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.common import Row, interleaved, interleaved_many, ratio_stats
from utils import path_helpers
from utils.load_n_save import TxoDataHandler

AREA = "Saving"
RATIO_GOAL = 1.05
REPEATS = 9
TINY_REPEATS = 41
ENGINE_REPEATS = 3
TABLE_ROWS = 100_000
JSON_ROWS = 20_000
XLSX_ROWS = 5_000
TEXT_MB = 10
STREAM_ROWS = 1_000_000
SMALL_STREAM_ROWS = 100_000
STREAM_PAGE = 1_000
MEMORY_GOAL_MB = 200
FLAT_TOLERANCE_MB = 25
MB = 1024 * 1024
MICROS = 1_000_000
REPO = Path(__file__).resolve().parent.parent


def _frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    start = pd.Timestamp("2024-01-01")
    return pd.DataFrame(
        {
            "id": np.arange(rows),
            "customer": [f"Customer {i % 997}" for i in range(rows)],
            "email": [f"user{i}@example.com" for i in range(rows)],
            "amount": rng.normal(100, 30, rows).round(2),
            "quantity": rng.integers(1, 50, rows),
            "active": rng.integers(0, 2, rows).astype(bool),
            "created": start + pd.to_timedelta(rng.integers(0, 10**6, rows), unit="s"),
            "country": rng.choice(["NL", "BE", "DE", "FR", "中国", "ישראל"], rows),
        }
    )


def _records(rows: int) -> list[dict[str, Any]]:
    base = dt.datetime(2024, 1, 1)
    return [
        {
            "id": i,
            "name": f"customer {i}",
            "amount": i * 1.25,
            "active": i % 2 == 0,
            "tags": ["a", "b"],
            "created": base + dt.timedelta(seconds=i),
        }
        for i in range(rows)
    ]


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _ratio_row(
    measure: str,
    toolkit: Callable[[], object],
    baseline: Callable[[], object],
    baseline_path: Path,
    notes: str,
) -> Row:
    def durable() -> None:
        baseline()
        _fsync(baseline_path)

    a, b, c = interleaved_many([toolkit, baseline, durable], REPEATS)
    median, lo, hi = ratio_stats(a, b)
    durable_median, durable_lo, durable_hi = ratio_stats(a, c)
    return Row(
        area=AREA,
        measure=measure,
        value=f"{median:.2f}× plain; {durable_median:.2f}× plain + fsync",
        goal=f"≤ {RATIO_GOAL:.2f}× plain",
        met=median <= RATIO_GOAL,
        spread=f"{lo:.2f}–{hi:.2f}×; {durable_lo:.2f}–{durable_hi:.2f}×",
        bound="the plain library call (1.00×); with its fsync, the same durability",
        notes=notes,
        extra={"ratio": median, "ratio_vs_durable": durable_median},
    )


def _atomic_floor_row(folder: Path) -> Row:
    """save() of a tiny text file against the bare protocol: temp, write, fsync, rename."""
    handler = TxoDataHandler()
    out = folder / "output"
    text = "x" * 1024

    def by_hand() -> None:
        tmp = out / ".floor.txt.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, out / "floor.txt")

    a, b = interleaved(lambda: handler.save(text, "output", "tiny.txt"), by_hand, TINY_REPEATS)
    median, lo, hi = ratio_stats(a, b)
    extra_us = (statistics.median(a) - statistics.median(b)) * MICROS
    return Row(
        AREA,
        "txt: save(1 KB str) ÷ hand-written temp file + fsync + rename",
        f"{median:.2f}×",
        spread=f"{lo:.2f}–{hi:.2f}×",
        bound="the atomic-write protocol itself (1.00×)",
        notes=f"the toolkit's fixed cost per file, about {extra_us:.0f} µs (median difference): "
        "name and type checks, an exclusive create of a random temporary name, the "
        "permissions of the file it replaces, the counter and the log record; no goal, "
        "it is the floor under the format rows",
    )


def _format_rows(folder: Path) -> list[Row]:
    handler = TxoDataHandler()
    frame = _frame(TABLE_ROWS)
    small = _frame(XLSX_ROWS)
    records = _records(JSON_ROWS)
    text = "line of text with ünïcödé 😀\n" * (TEXT_MB * MB // 32)
    out = folder / "output"
    atomic = "save() = temp file + fsync + rename"

    def plain_json() -> None:
        body = json.dumps(records, indent=2, ensure_ascii=False, default=str)
        (out / "plain.json").write_text(body, encoding="utf-8")

    def plain_jsonl() -> None:
        dump = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode
        with open(out / "plain.jsonl", "w", encoding="utf-8") as handle:
            handle.write("\n".join(dump(r) for r in records) + "\n")

    return [
        _ratio_row(
            f"csv: save(DataFrame {TABLE_ROWS:,}×8) ÷ DataFrame.to_csv",
            lambda: handler.save(frame, "output", "t.csv"),
            lambda: frame.to_csv(out / "plain.csv", index=False),
            out / "plain.csv",
            atomic,
        ),
        _ratio_row(
            f"parquet: save(DataFrame {TABLE_ROWS:,}×8) ÷ DataFrame.to_parquet",
            lambda: handler.save(frame, "output", "t.parquet"),
            lambda: frame.to_parquet(out / "plain.parquet"),
            out / "plain.parquet",
            atomic,
        ),
        _ratio_row(
            f"json: save({JSON_ROWS:,} dicts) ÷ json.dumps(indent=2, default=str)",
            lambda: handler.save(records, "output", "t.json"),
            plain_json,
            out / "plain.json",
            atomic + "; datetimes as ISO 8601 vs str()",
        ),
        _ratio_row(
            f"jsonl: save({JSON_ROWS:,} dicts) ÷ JSONEncoder per line",
            lambda: handler.save(records, "output", "t.jsonl"),
            plain_jsonl,
            out / "plain.jsonl",
            atomic,
        ),
        _ratio_row(
            f"xlsx: save(DataFrame {XLSX_ROWS:,}×8) ÷ DataFrame.to_excel (xlsxwriter)",
            lambda: handler.save(small, "output", "t.xlsx"),
            lambda: small.to_excel(out / "plain.xlsx", index=False, engine="xlsxwriter"),
            out / "plain.xlsx",
            atomic + "; plus bold frozen header, widths, autofilter, date formats",
        ),
        _ratio_row(
            f"txt: save({TEXT_MB} MB str) ÷ Path.write_text",
            lambda: handler.save(text, "output", "t.txt"),
            lambda: (out / "plain.txt").write_text(text, encoding="utf-8"),
            out / "plain.txt",
            atomic,
        ),
    ]


def _engine_rows(folder: Path) -> list[Row]:
    small = _frame(XLSX_ROWS)
    out = folder / "output"
    handler = TxoDataHandler()
    rows = []
    for measure, toolkit, baseline, notes in (
        (
            "xlsx engine: to_excel xlsxwriter ÷ openpyxl",
            lambda: small.to_excel(out / "x.xlsx", index=False, engine="xlsxwriter"),
            lambda: small.to_excel(out / "o.xlsx", index=False, engine="openpyxl"),
            "same DataFrame, pandas' writer; below 1 means xlsxwriter is faster",
        ),
        (
            "xlsx: save() (xlsxwriter, constant memory) ÷ to_excel openpyxl",
            lambda: handler.save(small, "output", "t.xlsx"),
            lambda: small.to_excel(out / "o.xlsx", index=False, engine="openpyxl"),
            "the engine choice: save() against the other engine",
        ),
    ):
        a, b = interleaved(toolkit, baseline, repeats=ENGINE_REPEATS)
        median, lo, hi = ratio_stats(a, b)
        rows.append(Row(AREA, measure, f"{median:.2f}×", spread=f"{lo:.2f}–{hi:.2f}×", notes=notes))
    return rows


MEMORY_PROBE = textwrap.dedent(
    """
    import re, sys
    from pathlib import Path
    from utils import path_helpers
    path_helpers.PROJECT_ROOT = Path(sys.argv[1])
    from utils.load_n_save import TxoDataHandler

    ext, rows, page = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

    def pages():
        for start in range(0, rows, page):
            yield [{"id": i, "name": f"customer {i}", "email": f"user{i}@example.com",
                    "amount": i * 1.5, "city": "Amsterdam", "note": "n" * 60,
                    "active": i % 2 == 0, "created": "2024-01-01T00:00:00Z"}
                   for i in range(start, min(start + page, rows))]

    TxoDataHandler().save(pages(), "output", "stream" + ext)
    status = Path("/proc/self/status").read_text()
    print(int(re.search(r"VmHWM:\\s*(\\d+) kB", status).group(1)) * 1024)
    """
)


def _peak_mb(folder: Path, ext: str, rows: int) -> float:
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(folder), ext, str(rows), str(STREAM_PAGE)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=True,
        timeout=600,
    )
    return int(result.stdout) / MB


def _memory_rows(folder: Path) -> list[Row]:
    if not Path("/proc/self/status").exists():
        return []
    rows = []
    for ext in (".parquet", ".csv"):
        empty = _peak_mb(folder, ext, 0)
        small = _peak_mb(folder, ext, SMALL_STREAM_ROWS)
        big = _peak_mb(folder, ext, STREAM_ROWS)
        flat = big - small <= FLAT_TOLERANCE_MB
        rows.append(
            Row(
                AREA,
                f"peak memory streaming {STREAM_ROWS:,} records to {ext}",
                f"{big:.0f} MB",
                goal=f"flat, < {MEMORY_GOAL_MB} MB",
                met=big < MEMORY_GOAL_MB and flat,
                spread=f"{SMALL_STREAM_ROWS:,} records: {small:.0f} MB",
                bound=f"{empty:.0f} MB for an empty stream (interpreter, pandas, pyarrow)",
                notes=f"peak RSS of the whole process; pages of {STREAM_PAGE:,} records; "
                f"{big - small:+.0f} MB for 10× the records",
            )
        )
    return rows


def run() -> list[Row]:
    """Run the saving benchmarks in a scratch project root; return the result rows."""
    original = path_helpers.PROJECT_ROOT
    (REPO / "tmp").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-save-", dir=REPO / "tmp") as scratch:
        folder = Path(scratch)
        (folder / "output").mkdir()
        path_helpers.PROJECT_ROOT = folder
        try:
            rows = _format_rows(folder)
            rows.append(_atomic_floor_row(folder))
            return rows + _engine_rows(folder) + _memory_rows(folder)
        finally:
            path_helpers.PROJECT_ROOT = original


if __name__ == "__main__":
    for row in run():
        print(f"{row.measure}: {row.value} ({row.spread}) goal {row.goal} met={row.met}")
        print(re.sub(r"\s+", " ", row.notes))
