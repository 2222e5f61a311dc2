"""Run one script for many org/env pairs: ``make run-all SCRIPT=report [ORGS=…] [ENVS=…]``.

Every ``config/{org}-{env}-config.json`` (examples and secrets files left out) is one pair;
``--orgs`` and ``--envs`` keep only the named ones. At most ``--parallel`` runs go at once,
each its own process (``python -m src.SCRIPT ORG ENV``) whose console goes to its own file
``logs/run-all/{org}-{env}-{script}_{UTC}.log`` (the run's DEBUG log is in ``logs/`` as
always). One line per run is printed as it ends: org, env, exit code, duration, log file.

Exit code: 0 when every run succeeded, 1 when any failed, 2 for a usage error (unknown
script, no config for a named org or env, nothing to run), 143/130 when stopped by
SIGTERM/SIGINT (SIGTERM is passed on to the runs still going; no further run starts).

    python -m tools.run_all report --orgs "acme globex" --envs prod --parallel 4
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType

from utils.exceptions import HelpfulError
from utils.script_runner import EXIT_MEANINGS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_FILE = re.compile(
    r"^(?P<org>[A-Za-z0-9_][A-Za-z0-9_.]*)-(?P<env>[A-Za-z0-9_][A-Za-z0-9_.]*)-config\.json$"
)
SCRIPT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
LOG_FOLDER = Path("logs") / "run-all"
STAMP_FORMAT = "%Y-%m-%dT%H%M%SZ"
DEFAULT_PARALLEL = 4
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
SIGNAL_EXIT = {signal.SIGTERM: 143, signal.SIGINT: 130}
STOP_WAIT_SECONDS = 60


@dataclass(frozen=True)
class Outcome:
    """How one run ended."""

    org: str
    env: str
    code: int
    seconds: float
    log: Path

    def line(self) -> str:
        """``acme   prod   exit 0 (success)   12.3s   logs/run-all/…`` for the console."""
        meaning = EXIT_MEANINGS.get(self.code, "error")
        return (
            f"{self.org:<16} {self.env:<10} exit {self.code:<3} ({meaning}) "
            f"{self.seconds:8.1f}s  {self.log}"
        )


def find_pairs(
    config_dir: Path, orgs: Sequence[str] = (), envs: Sequence[str] = ()
) -> list[tuple[str, str]]:
    """The ``(org, env)`` pairs with a config file, keeping only ``orgs``/``envs`` when named.

    Raises:
        HelpfulError: A named org or env has no config file, or nothing is left to run.
    """
    found = sorted(
        (m["org"], m["env"])
        for p in config_dir.glob("*-config.json")
        if (m := CONFIG_FILE.match(p.name))
    )
    for label, named, index in (("organisation", orgs, 0), ("environment", envs, 1)):
        missing = sorted(set(named) - {pair[index] for pair in found})
        if missing:
            raise HelpfulError(
                f"No config file for {label} {', '.join(missing)} in {config_dir.name}/.",
                "Name only organisations and environments that have a "
                "config/{org}-{env}-config.json, or create the file.",
                "make run-all SCRIPT=report ORGS=acme ENVS=prod",
            )
    pairs = [(o, e) for o, e in found if (not orgs or o in orgs) and (not envs or e in envs)]
    if not pairs:
        raise HelpfulError(
            f"Nothing to run: no config/{{org}}-{{env}}-config.json matches "
            f"orgs={' '.join(orgs) or 'any'} envs={' '.join(envs) or 'any'}.",
            "Create a config from config/org-env-config_example.json, or name other pairs.",
            "cp config/org-env-config_example.json config/acme-prod-config.json",
        )
    return pairs


class Runner:
    """Runs the pairs, at most ``parallel`` at once, and passes a stop signal on to them."""

    def __init__(self, root: Path, script: str, script_args: Sequence[str], parallel: int):
        self.root, self.script, self.script_args = root, script, list(script_args)
        self.parallel = parallel
        self.stopped_by: int | None = None
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[bytes]] = set()

    def stop(self, signum: int, frame: FrameType | None = None) -> None:
        """Signal handler: start no more runs; pass SIGTERM on to those going.

        Ctrl-C already reaches every run (the terminal signals the whole process group), so
        SIGINT is not sent a second time: a run would take it for a second Ctrl-C.
        """
        with self._lock:
            self.stopped_by = signum
            if signum == signal.SIGTERM:
                for proc in self._running:
                    proc.send_signal(signum)

    def run_one(self, org: str, env: str) -> Outcome | None:
        """Run the script for one pair; None when stopped before it started."""
        stamp = datetime.now(timezone.utc).strftime(STAMP_FORMAT)
        log = LOG_FOLDER / f"{org}-{env}-{self.script}_{stamp}.log"
        (self.root / LOG_FOLDER).mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", f"src.{self.script}", org, env, *self.script_args]
        started = time.monotonic()
        with open(self.root / log, "ab") as out:
            with self._lock:
                if self.stopped_by is not None:
                    return None
                proc = subprocess.Popen(
                    command,
                    cwd=self.root,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
                self._running.add(proc)
            code = proc.wait()
            with self._lock:
                self._running.discard(proc)
        return Outcome(org, env, code, time.monotonic() - started, log)

    def run(self, pairs: Sequence[tuple[str, str]]) -> list[Outcome]:
        """Run every pair; print each run's line as it ends; return the outcomes in order."""
        printed = threading.Lock()

        def task(pair: tuple[str, str]) -> Outcome | None:
            outcome = self.run_one(*pair)
            if outcome is not None:
                with printed:
                    print(outcome.line(), flush=True)
            return outcome

        with ThreadPoolExecutor(max_workers=self.parallel) as pool:
            results = list(pool.map(task, pairs))
        return [r for r in results if r is not None]


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    """The options, and the script's own options (everything after ``--``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    script_args: list[str] = []
    if "--" in args:
        at = args.index("--")
        args, script_args = args[:at], args[at + 1 :]
    parser = argparse.ArgumentParser(
        prog="make run-all",
        description="Run a script for every org/env that has a config (or those named).",
    )
    parser.add_argument("script", help="the script in src/, without .py (e.g. report)")
    parser.add_argument("--orgs", default="", help='organisations, space separated ("acme globex")')
    parser.add_argument("--envs", default="", help="environments, space separated (prod)")
    parser.add_argument(
        "--parallel", type=int, default=DEFAULT_PARALLEL, help="runs at once (default 4)"
    )
    parser.epilog = "Options after -- go to every run: run_all report -- --log-format json"
    return parser.parse_args(args), script_args


def main(argv: Sequence[str] | None = None, root: Path = PROJECT_ROOT) -> int:
    """Run the script for its pairs; return the exit code (see the module docstring)."""
    args, script_args = parse_args(argv)
    try:
        if not SCRIPT_NAME.match(args.script) or not (root / "src" / f"{args.script}.py").exists():
            scripts = sorted(
                p.stem for p in (root / "src").glob("*.py") if not p.stem.startswith("_")
            )
            raise HelpfulError(
                f"No script src/{args.script}.py.",
                f"Pick one of: {', '.join(scripts) or '(none)'}.",
                "make run-all SCRIPT=report",
            )
        if args.parallel < 1:
            raise HelpfulError(
                f"PARALLEL must be 1 or more, not {args.parallel}.",
                "Give the number of runs to have going at once.",
                "make run-all SCRIPT=report PARALLEL=4",
            )
        pairs = find_pairs(root / "config", args.orgs.split(), args.envs.split())
    except HelpfulError as err:
        print(err, file=sys.stderr)
        return EXIT_USAGE

    runner = Runner(root, args.script, script_args, args.parallel)
    for signum in SIGNAL_EXIT:
        signal.signal(signum, runner.stop)
    print(
        f"Running {args.script} for {len(pairs)} org/env pairs, {args.parallel} at once:",
        flush=True,
    )
    outcomes = runner.run(pairs)
    failed = [o for o in outcomes if o.code != EXIT_OK]
    runs = f"{len(outcomes)} run{'' if len(outcomes) == 1 else 's'}"
    stopped = f", {len(pairs) - len(outcomes)} not started (stopped)" if runner.stopped_by else ""
    print(f"{runs}: {len(outcomes) - len(failed)} succeeded, {len(failed)} failed{stopped}")
    if runner.stopped_by is not None:
        return SIGNAL_EXIT[signal.Signals(runner.stopped_by)]
    return EXIT_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
