"""Run every benchmark module (``bench/bench_*.py``) and write bench/RESULTS.md.

make bench                     # all
python -m bench.run logging    # only bench_logging.py
"""

from __future__ import annotations

import contextlib
import importlib
import platform
import re
import sys
import traceback
from importlib import metadata
from pathlib import Path

from bench.common import Row

BENCH_DIR = Path(__file__).resolve().parent
LIBRARIES = (
    "requests",
    "urllib3",
    "pandas",
    "pyarrow",
    "openpyxl",
    "xlsxwriter",
    "python-json-logger",
    "jsonschema",
)


def _versions() -> str:
    parts = []
    for name in LIBRARIES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            parts.append(f"{name} {metadata.version(name)}")
    return ", ".join(parts)


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


READING = """\
## Reading the table

- **Bound** is the physical limit a figure is measured against: for rate-limited work the
  time is at least calls ÷ rate (the limiter may not beat it, and the fidelity rows show how
  close it comes: 1.00 is the limit itself); for parallel work the speed-up is at most the
  number of threads; for polling, a completed job is seen at the next poll, so the wait after
  completion is at most one poll interval plus one round trip.
- **Saving** rows give two ratios. `save()` writes a temporary file, fsyncs it and renames it
  into place, so a crash never leaves a partial file; the plain library call does none of
  that. Against the plain call plus the same fsync (same durability) the toolkit is at
  parity. Where a row misses 1.05× against the bare call, cProfile over `save()` shows the
  time in the library's own encoder plus the fsync and the rename on this machine's disk
  (`os.replace` of an existing file alone took ~27 ms per call in the JSON profile), not
  toolkit Python work: `utils._json_encoding.encode` is within 2% of `json.dumps` on the same
  records, and the toolkit's fixed per-file cost is the "1 KB" row. A large text file is the
  extreme case: writing 10 MB is cheap, forcing it to disk is not.
- **State** rows time one run's state work (`load_state`, one `set`, `commit`) against
  `json.load` + `json.dump` of the same file, and against that plus the fsync and rename a
  state needs to survive a crash. For a 1 MB state the plain library alone takes longer than
  the 5 ms goal on this machine: parsing and re-encoding 1 MB of JSON is the floor.
- Wall-time ratios on a shared 2-core machine move by ±10% between runs; the CPU-time rows
  of the HTTP client are the steadier measure of the client's own overhead.
"""


GENERATED_SECTIONS = ("## Reading the table", "## Benchmarks that failed to run")


def kept_sections(previous: str) -> str:
    """The hand-written ``## `` sections of a previous RESULTS.md (profiles, analyses), which
    a new run keeps after its own table and notes."""
    parts = re.split(r"(?m)^(?=## )", previous)
    kept = [p.rstrip() for p in parts[1:] if not p.startswith(GENERATED_SECTIONS)]
    return "\n\n".join(kept)


def render(rows: list[Row], errors: list[str], command: str) -> str:
    """Render the results table as Markdown."""
    out = [
        "# Benchmark results",
        "",
        f"- Command: `{command}`",
        f"- Machine: {_machine()}",
        f"- Python: {platform.python_version()} ({platform.python_implementation()})",
        f"- Libraries: {_versions()}",
        "",
        "Every ratio is toolkit ÷ plain library doing the same work, measured side by side "
        "(interleaved) in one run; the figure is the median and the spread the 25th–75th "
        "percentile over the repeats.",
        "",
        "| Area | Measure | Figure | Spread | Goal | Met | Bound | Notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        met = "" if r.met is None else ("yes" if r.met else "**NO**")
        out.append(
            f"| {r.area} | {r.measure} | {r.value} | {r.spread} | {r.goal} | {met} | "
            f"{r.bound} | {r.notes} |"
        )
    out += ["", READING.rstrip()]
    if errors:
        out += ["", "## Benchmarks that failed to run", ""] + [f"- {e}" for e in errors]
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    """Run the selected benchmark modules and write RESULTS.md."""
    wanted = set(argv)
    modules = sorted(p.stem for p in BENCH_DIR.glob("bench_*.py"))
    rows: list[Row] = []
    errors: list[str] = []
    for name in modules:
        if wanted and name.removeprefix("bench_") not in wanted:
            continue
        print(f"== {name}", flush=True)
        try:
            module = importlib.import_module(f"bench.{name}")
            new_rows = module.run()
        except Exception as err:  # a broken benchmark is reported, the others still run
            traceback.print_exc()
            errors.append(f"{name}: {type(err).__name__}: {err}")
            continue
        for r in new_rows:
            print(f"   {r.measure}: {r.value} ({r.goal})", flush=True)
        rows.extend(new_rows)
    if wanted:
        # A partial run must not replace the full table: print it instead.
        print(render(rows, errors, f"python -m bench.run {' '.join(argv)}"))
    else:
        results = BENCH_DIR / "RESULTS.md"
        kept = kept_sections(results.read_text(encoding="utf-8")) if results.exists() else ""
        text = render(rows, errors, "make bench") + (f"\n{kept}\n" if kept else "")
        results.write_text(text, encoding="utf-8")
        print(f"Wrote {BENCH_DIR / 'RESULTS.md'}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
