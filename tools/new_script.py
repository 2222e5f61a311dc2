"""Write a new script from the templates: ``make new-script NAME=update_customers``.

Creates, from ``tools/templates/``:

* ``src/{name}.py`` — the script, following every pattern ``make check-patterns`` checks;
* ``schemas/scripts/{settings}.json`` — the schema of its settings (``scripts → {settings}``
  in the config, ``settings`` being the name with ``_`` written ``-``);
* ``tests/test_{name}.py`` — tests of it that pass as written.

Decisions:

* NAME is a snake_case Python identifier (``update_customers``): it is the module name
  (``python -m src.update_customers``), and its ``-`` form names the settings.
* Nothing is ever overwritten: when any of the three files exists, none is written and the
  exit code is 2, as for a bad NAME. A file half-written by a crash is removed.
"""

from __future__ import annotations

import argparse
import keyword
import re
import sys
from pathlib import Path

from utils.exceptions import HelpfulError, ValidationError
from utils.path_helpers import PROJECT_ROOT

TEMPLATES = Path(__file__).resolve().parent / "templates"
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
MAX_NAME_LENGTH = 60
EXIT_OK = 0
EXIT_USAGE = 2
EXAMPLE = "make new-script NAME=update_customers"
# What is written (relative to the project root) from which template.
FILES = (
    ("src/{module}.py", "script.py.tmpl", "the script"),
    (
        "schemas/scripts/{name}.json",
        "settings.json.tmpl",
        "its settings: config → scripts → {name}",
    ),
    ("tests/test_{module}.py", "test_script.py.tmpl", "its tests"),
)


def check_name(module: str) -> None:
    """Refuse a NAME that cannot be a script's module name.

    Raises:
        ValidationError: Not snake_case, a Python keyword, or too long.
    """
    if not SNAKE_CASE.match(module) or keyword.iskeyword(module) or len(module) > MAX_NAME_LENGTH:
        raise ValidationError(
            f"NAME {module!r} is not a snake_case name a script can have.",
            "Use lowercase letters, digits and single '_' between words, starting with a "
            f"letter, at most {MAX_NAME_LENGTH} characters, not a Python keyword: it becomes "
            "the module name (python -m src.NAME).",
            EXAMPLE,
        )


def render(text: str, module: str) -> str:
    """Fill the placeholders ``{{module}}``, ``{{name}}`` and ``{{title}}`` of a template."""
    values = {
        "module": module,
        "name": module.replace("_", "-"),
        "title": module.replace("_", " ").capitalize(),
    }
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def targets(module: str, root: Path) -> list[tuple[Path, str, str]]:
    """The files to write for ``module``: (path, template file, what it is)."""
    name = module.replace("_", "-")
    return [
        (root / pattern.format(module=module, name=name), template, what.format(name=name))
        for pattern, template, what in FILES
    ]


def create(module: str, root: Path = PROJECT_ROOT) -> list[tuple[Path, str]]:
    """Write the script, its settings schema and its tests for ``module`` under ``root``.

    Returns:
        (path, what it is) of each file written.

    Raises:
        ValidationError: A bad name, or one of the files exists already (nothing written).
    """
    check_name(module)
    planned = targets(module, root)
    existing = [path for path, _, _ in planned if path.exists()]
    if existing:
        shown = ", ".join(str(path.relative_to(root)) for path in existing)
        verb = "exists" if len(existing) == 1 else "exist"
        raise ValidationError(
            f"Not creating the script {module!r}: {shown} {verb} already, and new-script "
            "never overwrites a file.",
            "Pick another NAME, or remove or rename the existing file(s) first.",
            f"make new-script NAME={module}_v2",
        )
    written: list[tuple[Path, str]] = []
    try:
        for path, template, what in planned:
            text = render((TEMPLATES / template).read_text(encoding="utf-8"), module)
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "x", encoding="utf-8") as handle:  # "x": fail if it appeared
                written.append((path, what))
                handle.write(text)
    except BaseException:
        for path, _ in written:
            path.unlink(missing_ok=True)
        raise
    return written


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m tools.new_script NAME``; exit 0, or 2 with the problem."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("name", metavar="NAME", help="snake_case name, e.g. update_customers")
    args = parser.parse_args(argv)
    try:
        written = create(args.name)
    except HelpfulError as err:
        print(err, file=sys.stderr)
        return EXIT_USAGE
    except FileExistsError as err:
        print(
            f"❌ Problem: {err.filename} appeared while writing; nothing was kept.", file=sys.stderr
        )
        return EXIT_USAGE
    width = max(len(str(path.relative_to(PROJECT_ROOT))) for path, _ in written)
    print("Created:")
    for path, what in written:
        print(f"  {path.relative_to(PROJECT_ROOT)!s:<{width}}  {what}")
    print(
        f"Next: make run SCRIPT={args.name} ORG=demo ENV=test  (start the demo API first: "
        "make mock-api-up)\n"
        f"      .venv/bin/python -m pytest tests/test_{args.name}.py"
    )
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
