"""Test script: write files atomically, slowly, so a test can signal it mid-write.

Writes ``output/first.txt`` whole, prints ``first written``, then starts
``output/second.txt`` through a temporary file, prints ``second started`` and keeps writing
slowly. A signal then must leave ``first.txt`` whole, ``second.txt`` absent and no
temporary file behind. A broad ``except Exception`` shows that it does not swallow SIGTERM.
"""

from __future__ import annotations

import os
import time

from utils.path_helpers import get_path
from utils.script_runner import parse_args_and_load_config, run_script

LINES = 200
LINE = "0123456789" * 10 + "\n"
SLOW_STEP_SECONDS = 0.05


def atomic_write(name: str, slow: bool, announce: str) -> None:
    """Write ``LINES`` lines to output/name through a temporary file and os.replace."""
    target = get_path("output", name)
    temp = target.with_name(f".{name}.tmp")
    try:
        with open(temp, "w", encoding="utf-8") as handle:
            for number in range(LINES):
                handle.write(LINE)
                if number == 0:
                    handle.flush()
                    print(announce, flush=True)
                if slow:
                    time.sleep(SLOW_STEP_SECONDS)
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


def main() -> None:
    """Write one file, then another slowly."""
    parse_args_and_load_config("Slow atomic writer", require_token=False)
    atomic_write("first.txt", slow=False, announce="first started")
    print("first written", flush=True)
    try:
        atomic_write("second.txt", slow=True, announce="second started")
    except Exception:  # must not catch ScriptTerminated / KeyboardInterrupt
        print("swallowed", flush=True)


if __name__ == "__main__":
    run_script(main)
