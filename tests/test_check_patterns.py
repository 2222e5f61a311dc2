"""The pattern checker: each rule caught on a bad script, a good script and src/ pass clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tools.check_patterns import PROJECT_FOLDERS, check_file, expected_path_comment

PROJECT_ROOT = Path(__file__).resolve().parent.parent

GOOD = '''# src/job.py
"""A job that follows every pattern."""

from __future__ import annotations

from utils.logger import setup_logger

logger = setup_logger()

from utils.path_helpers import get_path  # noqa: E402
from utils.script_runner import parse_args_and_load_config, run_script  # noqa: E402

LIMIT = 3


class Totals:
    """Running totals."""

    def add(self, value: int, *rest: int, scale: float = 1.0, **extra: str) -> float:
        """Add values."""
        return (value + sum(rest)) * scale


def main() -> None:
    """Run the job."""
    settings = parse_args_and_load_config("A job")
    url = settings["global"]["api-base-url"]
    target = get_path("output", "report.csv")
    logger.info("Calling %s, writing %s (api/data/x and 'output' in text are fine)", url, target)
    values = {"a": 1}.get("a")
    logger.info("%s %s", values, Totals().add(1))


if __name__ == "__main__":
    run_script(main)
'''


def write(folder: Path, source: str, name: str = "job.py") -> Path:
    """Write ``source`` as ``folder/src/name`` and return the path."""
    path = folder / "src" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source, encoding="utf-8")
    return path


def rules(path: Path) -> list[tuple[int, str]]:
    """The (line, rule) of every finding in ``path``."""
    return [(f.line, f.rule) for f in check_file(path)]


def test_good_script_has_no_findings(tmp_path: Path) -> None:
    assert check_file(write(tmp_path, GOOD)) == []


def line_of(source: str, anchor: str) -> int:
    """The 1-based number of the first line of ``source`` containing ``anchor``."""
    return next(n for n, line in enumerate(source.splitlines(), 1) if anchor in line)


# (text of the good script, bad replacement, rule, text on the line the finding names)
BAD_EXAMPLES = [
    ("# src/job.py", "# src/other.py", "path-comment", "# src/other.py"),
    ("# src/job.py\n", "", "path-comment", "A job that follows"),
    (
        "logger = setup_logger()\n",
        "LIMIT0 = 1\nlogger = setup_logger()\n",
        "logger-first",
        "LIMIT0",
    ),
    ("logger = setup_logger()\n", "", "logger-first", "LIMIT = 3"),
    ('logger.info("%s %s", values', 'print("%s %s", values', "no-print", "print("),
    (
        'url = settings["global"]["api-base-url"]',
        'url = settings.get("global")',
        "config-get",
        "url =",
    ),
    (
        'url = settings["global"]["api-base-url"]',
        'url = settings["global"].get("api-base-url")',
        "config-get",
        "url =",
    ),
    ('url = settings["global"]["api-base-url"]', 'url = cfg.get("x")', "config-get", "url ="),
    ('get_path("output", "report.csv")', '"output/report.csv"', "hand-built-path", "target ="),
    ('get_path("output", "report.csv")', 'f"output/{url}.csv"', "hand-built-path", "target ="),
    ('get_path("output", "report.csv")', 'Path("logs") / "x.log"', "hand-built-path", "target ="),
    ('get_path("output", "report.csv")', 'Path.cwd() / "data"', "hand-built-path", "target ="),
    (
        'get_path("output", "report.csv")',
        'os.path.join("data", "x")',
        "hand-built-path",
        "target =",
    ),
    ('get_path("output", "report.csv")', 'open("./config/a.json")', "hand-built-path", "target ="),
    ("def main() -> None:", "def main():", "type-hints", "def main"),
    ("value: int, *rest: int", "value, *rest: int", "type-hints", "def add"),
    ("*rest: int, scale", "*rest, scale", "type-hints", "def add"),
    ("**extra: str", "**extra", "type-hints", "def add"),
    ('        """Add values."""\n', "", "docstring", "def add"),
    ('    """Running totals."""\n', "    LIMIT = 1\n", "docstring", "class Totals"),
    ('"""A job that follows every pattern."""\n', "", "docstring", "# src/job.py"),
]


@pytest.mark.parametrize(("old", "new", "rule", "anchor"), BAD_EXAMPLES)
def test_each_rule_is_caught(tmp_path: Path, old: str, new: str, rule: str, anchor: str) -> None:
    assert old in GOOD
    bad = GOOD.replace(old, new, 1)
    assert rules(write(tmp_path, bad)) == [(line_of(bad, anchor), rule)]


def test_every_project_folder_counts_as_hand_built(tmp_path: Path) -> None:
    lines = "\n".join(f'    p{i} = "{folder}/x"' for i, folder in enumerate(PROJECT_FOLDERS))
    bad = GOOD.replace('    """Run the job."""\n', f'    """Run the job."""\n{lines}\n')
    found = [f for f in check_file(write(tmp_path, bad)) if f.rule == "hand-built-path"]
    first = line_of(bad, "p0 = ")
    assert [f.line for f in found] == list(range(first, first + len(PROJECT_FOLDERS)))
    assert [f.fix for f in found] == [
        f'use get_path("{folder}", name) from utils.path_helpers' for folder in PROJECT_FOLDERS
    ]


def test_config_bound_from_the_loader_under_any_name(tmp_path: Path) -> None:
    bad = GOOD.replace(
        'settings["global"]["api-base-url"]', 'settings["global"]["api-base-url"]\n    settings.get'
    ).replace("settings.get\n", 'settings.get("x")\n')
    assert rules(write(tmp_path, bad)) == [(line_of(bad, "settings.get"), "config-get")]


def test_finding_line_format(tmp_path: Path) -> None:
    bad = GOOD.replace('logger.info("%s %s", values', 'print("%s %s", values')
    path = write(tmp_path, bad)
    (finding,) = check_file(path)
    assert str(finding) == (
        f"{path}:{line_of(bad, 'print(')}: no-print: print() bypasses the logger and its redaction"
        " — use logger.info(...) (or logger.debug) instead"
    )


def test_ignore_marker_exempts_one_line_and_one_rule(tmp_path: Path) -> None:
    marked = GOOD.replace(
        'logger.info("%s %s", values, Totals().add(1))',
        'print(values)  # patterns: ignore[no-print]\n    print("still caught")',
    )
    assert rules(write(tmp_path, marked)) == [(line_of(marked, "still caught"), "no-print")]
    wrong_rule = GOOD.replace(
        'logger.info("%s %s", values, Totals().add(1))',
        "print(values)  # patterns: ignore[config-get]",
    )
    assert rules(write(tmp_path, wrong_rule)) == [(line_of(wrong_rule, "print("), "no-print")]


def test_init_files_are_not_scripts(tmp_path: Path) -> None:
    path = write(tmp_path, '"""Scripts."""\n', name="__init__.py")
    assert check_file(path) == []


def test_syntax_error_is_a_finding(tmp_path: Path) -> None:
    bad = GOOD + "def broken(:\n"
    assert rules(write(tmp_path, bad)) == [(line_of(bad, "def broken"), "syntax")]


def test_path_comment_follows_sub_folders(tmp_path: Path) -> None:
    assert expected_path_comment(tmp_path / "src" / "jobs" / "x.py") == "# src/jobs/x.py"
    assert expected_path_comment(tmp_path / "elsewhere.py") == "# src/elsewhere.py"


def run_checker(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the checker the way make check-patterns does."""
    return subprocess.run(
        [sys.executable, "-m", "tools.check_patterns", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_exit_1_with_one_line_per_finding(tmp_path: Path) -> None:
    bad = GOOD.replace("# src/job.py\n", "").replace("def main() -> None:", "def main():")
    path = write(tmp_path, bad)
    done = run_checker(str(tmp_path))
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        f'{path}:1: path-comment: line 1 is \'"""A job that follows every pattern."""\', '
        "not the path comment — make line 1 exactly '# src/job.py'",
        f"{path}:{line_of(bad, 'def main')}: type-hints: main() has no return annotation"
        " — annotate every parameter and the return type",
    ]
    assert "2 findings in 1 file(s)" in done.stderr


def test_cli_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    done = run_checker(str(tmp_path / "nope"))
    assert done.returncode == 2
    assert "no such file or folder" in done.stderr


def test_src_passes_clean() -> None:
    assert (PROJECT_ROOT / "src" / "report.py").is_file()
    done = run_checker("src")
    assert done.returncode == 0, done.stdout
    assert done.stdout == ""
