"""Container entry point: ``IMAGE SCRIPT ORG_ID ENV_TYPE [options]`` runs ``src/SCRIPT.py``.

``docker run IMAGE report acme prod --log-format json`` becomes
``python -m src.report acme prod --log-format json``. The entry point replaces itself with
the script (``os.execv``) instead of wrapping it, so the script is the process the container
runtime signals: SIGTERM reaches the toolkit's handler and the container's exit code is the
script's own (0, 2, 3, 4, 5, 130, 143: see the README). The same module runs outside a
container: ``python -m deploy.entrypoint report demo test`` from the project root.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from utils.exceptions import HelpfulError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SCRIPTS_DIR = PROJECT_ROOT / "src"
# A script is a module in src/: a plain Python identifier, never a path.
SCRIPT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
HELP_FLAGS = frozenset({"-h", "--help", "help"})
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


def build_command(
    argv: Sequence[str], scripts_dir: Path = SCRIPTS_DIR, python: str = sys.executable
) -> list[str]:
    """Return the command that runs the script ``argv`` names, with the remaining arguments.

    Args:
        argv: ``[SCRIPT, ORG_ID, ENV_TYPE, *options]``; everything after SCRIPT is passed on
            unchanged (the script itself validates ORG_ID and ENV_TYPE).
        scripts_dir: The folder holding the scripts.
        python: The interpreter to run the script with.

    Returns:
        ``[python, "-m", "src.SCRIPT", *argv[1:]]``.

    Raises:
        HelpfulError: No script named, a name that is not a plain identifier, or no such
            script in ``scripts_dir``.
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
