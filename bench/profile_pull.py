"""Profile one big pull (``save(api.iter_pages(...))``) with pyinstrument and print the tree.

python -m bench.profile_pull parquet 200000                 # this tree
python -m bench.profile_pull parquet 200000 --tree /old/tree  # the toolkit of another checkout

The pull is the toolkit side of :mod:`bench.bench_pull`, against the same page server, run in a
fresh process; ``--tree`` profiles the ``utils/`` of another checkout (a before/after pair).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from bench.bench_pull import (
    PROBE_HEAD,
    PROBE_TAIL,
    REPO,
    SERVER_START_SECONDS,
    TOOLKIT,
    page_server,
)

PROFILE_WRAP = """
import pyinstrument
profiler = pyinstrument.Profiler(interval=0.0005)
profiler.start()
"""
PROFILE_END = """
profiler.stop()
print(profiler.output_text(unicode=True, color=False, show_all=False), file=sys.stderr)
"""


def main(argv: list[str]) -> int:
    """Start the page server, run the profiled pull, print pyinstrument's report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("format", choices=("parquet", "csv", "jsonl", "pages"))
    parser.add_argument("records", type=int)
    parser.add_argument("--tree", type=Path, default=REPO, help="checkout whose utils/ to use")
    args = parser.parse_args(argv)
    probe = (
        textwrap.dedent(PROBE_HEAD)
        + textwrap.dedent(PROFILE_WRAP)
        + textwrap.dedent(TOOLKIT)
        + textwrap.dedent(PROFILE_END)
        + textwrap.dedent(PROBE_TAIL)
    )
    with page_server(args.records) as (port, scratch):
        command = [sys.executable, "-c", probe, "toolkit", args.format, str(args.records)]
        done = subprocess.run(
            [*command, str(port), str(scratch)],
            cwd=args.tree,
            env={**os.environ, "PYTHONPATH": str(args.tree)},
            capture_output=True,
            text=True,
            check=False,
            timeout=SERVER_START_SECONDS * 5,
        )
    print(done.stderr)
    print(done.stdout)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
