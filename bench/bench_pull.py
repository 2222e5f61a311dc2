"""Big pulls: ``api.iter_pages`` + ``save()`` against a hand-written loop, time and peak memory.

A fast local OData server (:mod:`bench.page_server`, its own process) serves pages of 1,000
records of 12 flat fields. Each run is a fresh Python process, so that its peak resident set
(VmHWM) is its own: the toolkit side (``save(api.iter_pages(...))``, logger set up as in a
script) and the hand-written loop (``requests`` + ``json`` + the format's usual writer:
``pyarrow.ParquetWriter``, ``csv.DictWriter``, ``json.dumps`` per line), run alternately in
the same virtual environment. A run's time starts before its first import and ends when the
file is closed, so what each side imports counts. ``BENCH_PULL_REPEATS`` sets the repeats
(default 3).

python -m bench.bench_pull                              # every row, as ``make bench`` runs them
python -m bench.bench_pull csv 1000000 --tree OLD       # this tree, OLD's utils/ and the loop

``--tree`` (repeatable) alternates the toolkit of this checkout, of each checkout named, and
the loop, in fresh processes against one server, and prints each one's median time, CPU time
and peak memory: a change measured side by side with the tree before it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import Row, ratio_stats
from tools.wiremock_server import free_port

AREA = "Big pull"
REPO = Path(__file__).resolve().parent.parent
BIG = 1_000_000
SMALL = 200_000
PAGE = 1_000
FORMATS = ("parquet", "csv", "jsonl")
TIME_GOAL = 0.80
MEMORY_GOAL = 1.10
FLAT_MB = 10
PAGES_GOAL = 1.2
MB = 1024 * 1024
REPEATS = int(os.environ.get("BENCH_PULL_REPEATS", "3"))
SERVER_START_SECONDS = 120
RUN_TIMEOUT = 900

PROBE_HEAD = """
import json, re, sys, time
from pathlib import Path
started, started_cpu = time.perf_counter(), time.process_time()
side, fmt, records, port, folder = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5])
url = f"http://127.0.0.1:{port}/api/orders?records={records}"
token = "bench-token-0123456789abcdef"
"""

PROBE_TAIL = """
finished, finished_cpu = time.perf_counter(), time.process_time()
status = Path("/proc/self/status").read_text()
peak = int(re.search(r"VmHWM:\\s*(\\d+) kB", status).group(1)) * 1024
print(json.dumps({"seconds": finished - started, "work": finished - working, "cpu": finished_cpu - started_cpu, "work_cpu": finished_cpu - working_cpu, "peak": peak, "rows": rows}))
"""

TOOLKIT = """
from utils import path_helpers
path_helpers.PROJECT_ROOT = folder
from utils.logger import setup_logger
setup_logger()
from utils.api_factory import create_rest_api
from utils.load_n_save import TxoDataHandler
config = {
    "global": {"api-base-url": f"http://127.0.0.1:{port}/api"},
    "script-behavior": {
        "api-delay-seconds": 0,
        "rate-limiting": {"enabled": False, "calls-per-second": 10, "burst-size": 1},
    },
    "_token": token,
}
working, working_cpu = time.perf_counter(), time.process_time()
rows = 0
with create_rest_api(config) as api:
    if fmt == "pages":
        for page in api.iter_pages("orders", {"records": records}):
            rows += len(page)
    else:
        TxoDataHandler().save(api.iter_pages("orders", {"records": records}), "output", "pull." + fmt)
        rows = records
"""

LOOP = """
import requests
session = requests.Session()
headers = {"Authorization": f"Bearer {token}"}
path = folder / "output" / ("loop." + fmt)

def pages():
    next_url = url
    while next_url:
        response = session.get(next_url, headers=headers, timeout=60)
        response.raise_for_status()
        body = response.json()
        yield body["value"]
        next_url = body.get("@odata.nextLink")

working, working_cpu = time.perf_counter(), time.process_time()
rows = 0
if fmt == "pages":
    for page in pages():
        rows += len(page)
elif fmt == "parquet":
    import pyarrow as pa
    import pyarrow.parquet as pq
    writer = None
    for page in pages():
        table = pa.Table.from_pylist(page)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
        rows += len(page)
    writer.close()
elif fmt == "csv":
    import csv
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = None
        for page in pages():
            if writer is None:
                writer = csv.DictWriter(handle, fieldnames=list(page[0]))
                writer.writeheader()
            writer.writerows(page)
            rows += len(page)
elif fmt == "jsonl":
    with open(path, "w", encoding="utf-8") as handle:
        for page in pages():
            for record in page:
                handle.write(json.dumps(record) + "\\n")
            rows += len(page)
"""


def _probe(side: str) -> str:
    body = TOOLKIT if side == "toolkit" else LOOP
    return textwrap.dedent(PROBE_HEAD) + textwrap.dedent(body) + textwrap.dedent(PROBE_TAIL)


def _run(
    side: str, fmt: str, records: int, port: int, folder: Path, tree: Path = REPO
) -> dict[str, Any]:
    """One pull in a fresh process; ``tree`` is the checkout whose ``utils/`` the toolkit uses."""
    done = subprocess.run(
        [sys.executable, "-c", _probe(side), side, fmt, str(records), str(port), str(folder)],
        capture_output=True,
        text=True,
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        check=False,
        timeout=RUN_TIMEOUT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{side} {fmt} {records}: exit {done.returncode}\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if result["rows"] != records:
        raise RuntimeError(f"{side} {fmt}: {result['rows']} rows, expected {records}")
    return result


Side = tuple[str, str, Path]
"""``(name, "toolkit" or "loop", checkout)`` of one contender."""


def _alternate(
    sides: list[Side], fmt: str, records: int, port: int, folder: Path, repeats: int
) -> dict[str, list[dict[str, Any]]]:
    """Run every side ``repeats`` times, the order reversed every repeat; one warm-up each."""
    for _, side, tree in sides:
        _run(side, fmt, min(records, SMALL), port, folder, tree)  # page cache, .pyc files
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in sides}
    for i in range(repeats):
        for name, side, tree in sides if i % 2 == 0 else sides[::-1]:
            runs[name].append(_run(side, fmt, records, port, folder, tree))
    return runs


def _side_by_side(
    fmt: str, records: int, port: int, folder: Path, repeats: int
) -> dict[str, list[dict[str, Any]]]:
    """Alternate toolkit and loop runs of this checkout (order swapped every repeat)."""
    sides = [("toolkit", "toolkit", REPO), ("loop", "loop", REPO)]
    return _alternate(sides, fmt, records, port, folder, repeats)


def _spread(lo: float, hi: float) -> str:
    return f"{lo:.2f}–{hi:.2f}×"


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _ratios(
    a: list[dict[str, Any]], b: list[dict[str, Any]], key: str
) -> tuple[float, float, float]:
    return ratio_stats([r[key] for r in a], [r[key] for r in b])


def _format_rows(fmt: str, port: int, folder: Path) -> list[Row]:
    big = _side_by_side(fmt, BIG, port, folder, REPEATS)
    small = _side_by_side(fmt, SMALL, port, folder, REPEATS)
    times = _ratios(big["toolkit"], big["loop"], "seconds")
    cpu = _ratios(big["toolkit"], big["loop"], "cpu")
    peaks = _ratios(big["toolkit"], big["loop"], "peak")
    tk_big, loop_big = _median(big["toolkit"], "peak") / MB, _median(big["loop"], "peak") / MB
    tk_small = _median(small["toolkit"], "peak") / MB
    loop_small = _median(small["loop"], "peak") / MB
    growth = tk_big - tk_small
    tk_seconds = _median(big["toolkit"], "seconds")
    writer = {
        "parquet": "pyarrow.ParquetWriter",
        "csv": "csv.DictWriter",
        "jsonl": "json.dumps per line",
    }
    baseline = f"requests + json + {writer[fmt]} loop, same venv"
    runs = f"{REPEATS} runs each, alternated, fresh process per run, imports included"
    return [
        Row(
            AREA,
            f"pull + save of {BIG:,} records to .{fmt}: time, toolkit ÷ hand-written loop",
            f"{times[0]:.2f}×",
            f"≤ {TIME_GOAL:.2f}×",
            times[0] <= TIME_GOAL,
            _spread(times[1], times[2]),
            baseline,
            f"{runs}; wall time; loop ≈{_median(big['loop'], 'seconds'):.1f} s, toolkit "
            f"≈{tk_seconds:.1f} s ({BIG / tk_seconds:,.0f} records/s)",
        ),
        Row(
            AREA,
            f"pull + save of {BIG:,} records to .{fmt}: client CPU time, toolkit ÷ loop",
            f"{cpu[0]:.2f}×",
            f"≤ {TIME_GOAL:.2f}×",
            cpu[0] <= TIME_GOAL,
            _spread(cpu[1], cpu[2]),
            baseline,
            f"{runs}; process time of the client (not the server's, nor waits for a core); "
            f"loop ≈{_median(big['loop'], 'cpu'):.1f} s, toolkit "
            f"≈{_median(big['toolkit'], 'cpu'):.1f} s",
        ),
        Row(
            AREA,
            f"pull + save of {BIG:,} records to .{fmt}: peak memory, toolkit ÷ loop; "
            f"growth {SMALL:,} → {BIG:,}",
            f"{peaks[0]:.2f}× ({tk_big:.0f} MB); {growth:+.0f} MB",
            f"≤ {MEMORY_GOAL:.2f}×; growth ≤ {FLAT_MB} MB",
            peaks[0] <= MEMORY_GOAL and growth <= FLAT_MB,
            _spread(peaks[1], peaks[2]),
            f"loop {loop_big:.0f} MB at {BIG:,}, {loop_small:.0f} MB at {SMALL:,} "
            f"({loop_big - loop_small:+.0f} MB)",
            f"peak RSS (VmHWM) of the whole process, median; toolkit {tk_small:.0f} MB at "
            f"{SMALL:,}",
        ),
    ]


def _pages_rows(port: int, folder: Path) -> list[Row]:
    runs = _side_by_side("pages", BIG, port, folder, REPEATS)
    # pages/s ratio = loop time ÷ toolkit time, on the pull itself (imports excluded)
    speed = _ratios(runs["loop"], runs["toolkit"], "work")
    cpu = _ratios(runs["loop"], runs["toolkit"], "work_cpu")
    pages = BIG // PAGE
    measure = (
        f"pages/s through iter_pages (rate limiting off) ÷ a plain requests + json loop, "
        f"{pages:,} pages of {PAGE:,} records"
    )
    bound = "the same loop as the big-pull rows, without writing"
    return [
        Row(
            "HTTP",
            measure + " (time)",
            f"{speed[0]:.2f}×",
            f"≥ {PAGES_GOAL:.1f}×",
            speed[0] >= PAGES_GOAL,
            _spread(speed[1], speed[2]),
            bound,
            f"{REPEATS} runs each, alternated; wall time; toolkit "
            f"≈{pages / _median(runs['toolkit'], 'work'):.0f} pages/s, loop "
            f"≈{pages / _median(runs['loop'], 'work'):.0f} pages/s",
        ),
        Row(
            "HTTP",
            measure + " (client CPU time)",
            f"{cpu[0]:.2f}×",
            f"≥ {PAGES_GOAL:.1f}×",
            cpu[0] >= PAGES_GOAL,
            _spread(cpu[1], cpu[2]),
            bound,
            f"{REPEATS} runs each; process time of the client: toolkit "
            f"≈{pages / _median(runs['toolkit'], 'work_cpu'):.0f} pages per CPU second, loop "
            f"≈{pages / _median(runs['loop'], 'work_cpu'):.0f}",
        ),
    ]


@contextmanager
def page_server(records: int) -> Iterator[tuple[int, Path]]:
    """Start :mod:`bench.page_server` for ``records`` records; yield its port and a scratch
    folder (with ``output/``) under ``tmp/``; stop the server at the end."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.page_server", "--port", str(port), "--records", str(records)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    (REPO / "tmp").mkdir(exist_ok=True)
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        assert server.stdout is not None
        while server.stdout.readline().strip() != "ready":
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the page server did not start")
        with tempfile.TemporaryDirectory(prefix="bench-pull-", dir=REPO / "tmp") as scratch:
            folder = Path(scratch)
            (folder / "output").mkdir()
            yield port, folder
    finally:
        server.terminate()
        server.wait(timeout=30)


def run() -> list[Row]:
    """Start the page server, run every side-by-side pull, stop it."""
    with page_server(BIG) as (port, folder):
        rows = _pages_rows(port, folder)
        for fmt in FORMATS:
            rows += _format_rows(fmt, port, folder)
        return rows


def compare(fmt: str, records: int, trees: list[Path], repeats: int) -> dict[str, dict[str, float]]:
    """Median seconds, CPU seconds and peak MB of this tree's toolkit, each tree's, and the
    loop, alternated (the order reversed every repeat) after one warm-up each."""
    sides: list[Side] = [("this tree", "toolkit", REPO)]
    sides += [(str(t), "toolkit", t) for t in trees] + [("loop", "loop", REPO)]
    with page_server(records) as (port, folder):
        runs = _alternate(sides, fmt, records, port, folder, repeats)
    return {
        name: {
            "seconds": _median(results, "seconds"),
            "cpu": _median(results, "cpu"),
            "peak_mb": _median(results, "peak") / MB,
        }
        for name, results in runs.items()
    }


def main(argv: list[str]) -> int:
    """Print every row, or (``--tree``) a side-by-side comparison of checkouts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, action="append", help="another checkout to compare")
    parser.add_argument("format", nargs="?", default="csv", choices=(*FORMATS, "pages"))
    parser.add_argument("records", nargs="?", type=int, default=BIG)
    parser.add_argument("--repeats", type=int, default=REPEATS)
    args = parser.parse_args(argv)
    if args.tree:
        for name, figures in compare(args.format, args.records, args.tree, args.repeats).items():
            print(
                f"{name}: {figures['seconds']:.2f} s, CPU {figures['cpu']:.2f} s, "
                f"peak {figures['peak_mb']:.1f} MB"
            )
        return 0
    for row in run():
        print(
            f"{row.measure}: {row.value} ({row.spread}) goal {row.goal} met={row.met}; "
            f"{row.bound}; {row.notes}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
