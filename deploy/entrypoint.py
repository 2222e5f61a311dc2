"""Container entry point: ``IMAGE SCRIPT ORG_ID ENV_TYPE [options]`` runs ``src/SCRIPT.py``.

``docker run IMAGE report acme prod --log-format json`` becomes
``python -m src.report acme prod --log-format json``. The entry point replaces itself with
the script (``os.execv``) instead of wrapping it, so the script is the process the container
runtime signals: SIGTERM reaches the toolkit's handler and the container's exit code is the
script's own (0, 2, 3, 4, 5, 130, 143: see the README). The same module runs outside a
container: ``python -m deploy.entrypoint report demo test`` from the project root.

In a Kubernetes Indexed Job (``deploy/schedules.yaml``, ``tools/render_k8s.py``) the pod
gets only the script: ``$TXO_RUNS`` lists the schedule's ``org/env`` pairs, space separated,
and ``$JOB_COMPLETION_INDEX`` (set by Kubernetes) says which one this pod runs, so
``IMAGE report`` with index 1 of ``acme/prod globex/test`` runs ``report globex test``. A
missing or out-of-range index is a usage error (exit 2: the Job fails that index at once).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from utils.exceptions import HelpfulError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SCRIPTS_DIR = PROJECT_ROOT / "src"
# A script is a module in src/: a plain Python identifier, never a path.
SCRIPT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
HELP_FLAGS = frozenset({"-h", "--help", "help"})
ENV_RUNS = "TXO_RUNS"
ENV_INDEX = "JOB_COMPLETION_INDEX"
PAIR = re.compile(r"^(?P<org>[A-Za-z0-9_][A-Za-z0-9_.]*)/(?P<env>[A-Za-z0-9_][A-Za-z0-9_.]*)$")
EXIT_OK = 0
EXIT_USAGE = 2
USAGE = "usage: IMAGE SCRIPT ORG_ID ENV_TYPE [--log-format text|json] [--log-level LEVEL]"


def available_scripts(scripts_dir: Path = SCRIPTS_DIR) -> list[str]:
    """Return the runnable scripts in ``scripts_dir``, sorted (``report`` for ``report.py``)."""
    return sorted(
        p.stem
        for p in scripts_dir.glob("*.py")
        if SCRIPT_NAME.match(p.stem) and not p.stem.startswith("_")
    )


def indexed_pair(environ: Mapping[str, str]) -> tuple[str, str] | None:
    """The ``(org, env)`` this pod of an Indexed Job runs, or None outside one.

    Args:
        environ: The environment: ``TXO_RUNS`` and ``JOB_COMPLETION_INDEX``.

    Raises:
        HelpfulError: ``TXO_RUNS`` is set but the index is missing, not a number, or past
            its end, or the chosen entry is not ``org/env``.
    """
    runs = environ.get(ENV_RUNS, "").split()
    if not runs:
        return None
    index = environ.get(ENV_INDEX, "")
    if not index.isdigit() or int(index) >= len(runs):
        raise HelpfulError(
            f"{ENV_INDEX}={index or '(unset)'} does not pick one of the {len(runs)} runs in "
            f"{ENV_RUNS} ({' '.join(runs)}).",
            f"Run the image as an Indexed Job with completions equal to the number of runs "
            f"(make k8s renders it so), or unset {ENV_RUNS} and name ORG_ID ENV_TYPE.",
            f"{ENV_RUNS}='acme/prod globex/test' {ENV_INDEX}=1 → report globex test",
        )
    match = PAIR.match(runs[int(index)])
    if match is None:
        raise HelpfulError(
            f"Run {runs[int(index)]!r} in {ENV_RUNS} is not ORG/ENV.",
            "Write each run as the organisation, '/', the environment (deploy/schedules.yaml).",
            "acme/prod",
        )
    return match["org"], match["env"]


def build_command(
    argv: Sequence[str],
    scripts_dir: Path = SCRIPTS_DIR,
    python: str = sys.executable,
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """Return the command that runs the script ``argv`` names, with the remaining arguments.

    Args:
        argv: ``[SCRIPT, ORG_ID, ENV_TYPE, *options]``; everything after SCRIPT is passed on
            unchanged (the script itself validates ORG_ID and ENV_TYPE).
        scripts_dir: The folder holding the scripts.
        python: The interpreter to run the script with.
        environ: The environment (``os.environ`` when None); with ``TXO_RUNS`` set, argv is
            ``[SCRIPT, *options]`` and the org and env come from :func:`indexed_pair`.

    Returns:
        ``[python, "-m", "src.SCRIPT", *argv[1:]]`` (ORG_ID ENV_TYPE inserted after SCRIPT
        in an Indexed Job).

    Raises:
        HelpfulError: No script named, a name that is not a plain identifier, no such
            script in ``scripts_dir``, or an index that picks no run.
    """
    scripts = available_scripts(scripts_dir)
    listing = ", ".join(scripts) or "(none found)"
    if not argv:
        raise HelpfulError(
            "No script named.",
            f"Name a script in src/ (without .py), then the organisation and environment. "
            f"Scripts: {listing}.",
            "docker compose run --rm toolkit report demo test",
        )
    name = argv[0]
    if not SCRIPT_NAME.match(name) or name not in scripts:
        raise HelpfulError(
            f"No script {name!r} in src/.",
            f"Pick one of: {listing}.",
            f"docker compose run --rm toolkit {scripts[0] if scripts else 'report'} demo test",
        )
    pair = indexed_pair(os.environ if environ is None else environ)
    if pair is not None:
        print(f"{ENV_INDEX} picks {pair[0]}/{pair[1]} for {name}", file=sys.stderr)
        return [python, "-m", f"src.{name}", *pair, *argv[1:]]
    return [python, "-m", f"src.{name}", *argv[1:]]


def main(argv: Sequence[str] | None = None) -> int:
    """Replace this process with the script ``argv`` names; return only on a usage error.

    Args:
        argv: The arguments after the entry point; ``sys.argv[1:]`` when None.

    Returns:
        0 after printing help, 2 (usage error) after printing what is wrong. On success the
        function does not return: the script runs in this process's place.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in HELP_FLAGS:
        print(USAGE)
        print(f"scripts: {', '.join(available_scripts()) or '(none found)'}")
        return EXIT_OK
    try:
        command = build_command(args)
    except HelpfulError as err:
        print(USAGE, file=sys.stderr)
        print(err, file=sys.stderr)
        return EXIT_USAGE
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)
    return EXIT_USAGE  # not reached: execv either replaces the process or raises OSError


if __name__ == "__main__":
    sys.exit(main())
