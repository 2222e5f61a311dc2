"""Check that scripts in ``src/`` follow the toolkit's patterns, reading them with ``ast``.

Run ``python -m tools.check_patterns [PATH ...]`` (default ``src``; folders are searched for
``*.py``). Each finding is one line, ``file:line: rule: message — fix``; the exit code is 1
when there is any finding, else 0. The rules:

``path-comment``
    Line 1 is the path comment users copy scripts by: ``# src/<name>.py``.
``logger-first``
    ``setup_logger()`` is called at module level before any other code: the first statement
    after the docstring and the imports is ``logger = setup_logger()`` (more imports may
    follow it), so every later import and line logs through the redacting handlers.
``no-print``
    No ``print()``: output goes through the logger (console, log file, redaction).
``config-get``
    No ``.get()`` on the config: the schema fills in defaults, so ``config["key"]`` is right
    and a typo fails loudly. The config is any name bound from
    ``parse_args_and_load_config(...)`` plus the conventional names ``config`` and ``cfg``;
    ``.get`` on a subscript of it (``config["global"].get(...)``) counts too.
``hand-built-path``
    No hand-built paths to the project folders (config, data, output, logs, tmp, schemas,
    state): a string starting ``output/`` (f-strings included), or a bare folder name given
    to ``Path()``, ``os.path.join()``, ``open()`` or joined with ``/``. Use
    ``get_path("output", name)``, which cannot escape its folder.
``type-hints``
    Every parameter (``self``/``cls`` aside) and every return of every function is annotated.
``docstring``
    The module, every class and every function has a docstring.

``__init__.py`` files skip ``path-comment`` and ``logger-first`` (they are not scripts). A
line ending in ``# patterns: ignore[rule]`` (or ``ignore[rule-a,rule-b]``) is exempt from
those rules, for the rare justified exception.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

PROJECT_FOLDERS = ("config", "data", "output", "logs", "tmp", "schemas", "state")
CONFIG_NAMES = frozenset({"config", "cfg"})
CONFIG_LOADER = "parse_args_and_load_config"
LOGGER_FACTORY = "setup_logger"
PATH_CALLS = frozenset({"Path", "PurePath", "PosixPath", "WindowsPath", "join", "open"})
FOLDER_PREFIX = re.compile(r"^(?:\./)?(?:" + "|".join(PROJECT_FOLDERS) + r")[/\\]")
IGNORE_MARK = re.compile(r"#\s*patterns:\s*ignore\[([a-z\-,\s]+)\]")
SCRIPT_ROOT = "src"
EXIT_FINDINGS = 1

FIXES = {
    "path-comment": "make line 1 exactly '{expected}'",
    "logger-first": "put 'logger = setup_logger()' right after the imports",
    "no-print": "use logger.info(...) (or logger.debug) instead",
    "config-get": 'read config["key"]; the schema supplies defaults for optional keys',
    "hand-built-path": 'use get_path("{folder}", name) from utils.path_helpers',
    "type-hints": "annotate every parameter and the return type",
    "docstring": "add a Google-style docstring saying what it does",
}


@dataclass(frozen=True, order=True)
class Finding:
    """One rule broken at one place."""

    path: str
    line: int
    rule: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}: {self.message} — {self.fix}"


def expected_path_comment(path: Path) -> str:
    """Return the line-1 comment ``path`` should carry: ``# src/<path inside src>``."""
    parts = path.resolve().parts
    if SCRIPT_ROOT in parts[:-1]:
        index = len(parts) - 1 - parts[::-1].index(SCRIPT_ROOT)
        return "# " + "/".join(parts[index:])
    return f"# {SCRIPT_ROOT}/{path.name}"


def _is_docstring(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _is_import(node: ast.stmt) -> bool:
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return True
    # `if TYPE_CHECKING:` blocks hold imports only.
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _call_name(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _calls_setup_logger(node: ast.stmt) -> bool:
    value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign, ast.Expr)) else None
    return isinstance(value, ast.Call) and _call_name(value) == LOGGER_FACTORY


def _config_names(tree: ast.Module) -> set[str]:
    names = set(CONFIG_NAMES)
    for node in ast.walk(tree):
        if (
            isinstance(node, (ast.Assign, ast.AnnAssign))
            and isinstance(node.value, ast.Call)
            and _call_name(node.value) == CONFIG_LOADER
        ):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _folder_literal(node: ast.expr) -> str | None:
    """The project folder a literal names or starts with (``"output"``, ``"output/x"``)."""
    text: str | None = None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value
    elif isinstance(node, ast.JoinedStr) and node.values:
        first = node.values[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            text = first.value
    if text is None:
        return None
    stripped = text.removeprefix("./").rstrip("/\\")
    if stripped in PROJECT_FOLDERS:
        return stripped
    match = FOLDER_PREFIX.match(text)
    return match.group(0).removeprefix("./")[:-1] if match else None


class _Visitor(ast.NodeVisitor):
    """Walks one module and collects the findings of the node-level rules."""

    def __init__(self, path: str, config_names: set[str], docstrings: set[int]):
        self.path = path
        self.config_names = config_names
        self.docstrings = docstrings  # ids of docstring nodes: prose, not paths
        self.findings: list[Finding] = []
        self._reported_literals: set[int] = set()

    def add(self, node: ast.AST, rule: str, message: str, **fix_args: str) -> None:
        line = getattr(node, "lineno", 1)
        self.findings.append(
            Finding(self.path, line, rule, message, FIXES[rule].format(**fix_args))
        )

    def visit_Call(self, node: ast.Call) -> None:
        name = _call_name(node)
        if isinstance(node.func, ast.Name) and name == "print":
            self.add(node, "no-print", "print() bypasses the logger and its redaction")
        if isinstance(node.func, ast.Attribute) and name == "get":
            root = _root_name(node.func.value)
            if root in self.config_names:
                self.add(node, "config-get", f"{root}.get(...) hides a missing or misspelt key")
        if name in PATH_CALLS and node.args:
            folder = _folder_literal(node.args[0])
            if folder:
                self._path_finding(node.args[0], folder, f"{name}() builds a path to {folder}/")
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if isinstance(node.op, ast.Div):
            for side in (node.left, node.right):
                folder = _folder_literal(side)
                if folder:
                    self._path_finding(side, folder, f"'/ \"{folder}\"' builds a path by hand")
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        text = node.value
        if id(node) not in self.docstrings and isinstance(text, str) and FOLDER_PREFIX.match(text):
            folder = _folder_literal(node) or "output"
            self._path_finding(node, folder, f"string {text!r} is a hand-built path")

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        first = node.values[0] if node.values else None
        text = first.value if isinstance(first, ast.Constant) else None
        if isinstance(text, str) and FOLDER_PREFIX.match(text):
            folder = _folder_literal(node) or "output"
            self._path_finding(node, folder, f"f-string starting {text!r} is a path")
        self.generic_visit(node)

    def _path_finding(self, node: ast.expr, folder: str, message: str) -> None:
        if id(node) in self._reported_literals:
            return
        self._reported_literals.add(id(node))
        for child in ast.walk(node):
            self._reported_literals.add(id(child))
        self.add(node, "hand-built-path", message, folder=folder)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if ast.get_docstring(node) is None:
            self.add(node, "docstring", f"function {node.name}() has no docstring")
        args = node.args
        positional = [*args.posonlyargs, *args.args]
        if positional and positional[0].arg in {"self", "cls"}:
            positional = positional[1:]
        every = [*positional, *args.kwonlyargs]
        every += [a for a in (args.vararg, args.kwarg) if a is not None]
        missing = [a.arg for a in every if a.annotation is None]
        if missing:
            self.add(
                node,
                "type-hints",
                f"{node.name}() has unannotated parameters: {', '.join(missing)}",
            )
        if node.returns is None:
            self.add(node, "type-hints", f"{node.name}() has no return annotation")
        self.generic_visit(node)

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        if ast.get_docstring(node) is None:
            self.add(node, "docstring", f"class {node.name} has no docstring")
        self.generic_visit(node)


def _docstring_ids(tree: ast.Module) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and _is_docstring(first):
                ids.add(id(first.value))
    return ids


def _module_findings(path: str, file: Path, tree: ast.Module, lines: list[str]) -> list[Finding]:
    findings: list[Finding] = []
    is_script = file.name != "__init__.py"
    if ast.get_docstring(tree) is None:
        findings.append(
            Finding(path, 1, "docstring", "the module has no docstring", FIXES["docstring"])
        )
    if not is_script:
        return findings
    expected = expected_path_comment(file)
    first = lines[0].rstrip() if lines else ""
    if first != expected:
        findings.append(
            Finding(
                path,
                1,
                "path-comment",
                f"line 1 is {first!r}, not the path comment",
                FIXES["path-comment"].format(expected=expected),
            )
        )
    body = [n for n in tree.body if not _is_docstring(n) or n is not tree.body[0]]
    code = [n for n in body if not _is_import(n)]
    if not code or not _calls_setup_logger(code[0]):
        line = code[0].lineno if code else 1
        findings.append(
            Finding(
                path,
                line,
                "logger-first",
                "setup_logger() is not the first code to run",
                FIXES["logger-first"],
            )
        )
    return findings


def check_file(file: Path, display: str | None = None) -> list[Finding]:
    """Return every finding in one Python file, in line order.

    Args:
        file: The file to read.
        display: How to name the file in findings (default: as given).

    Returns:
        The findings, minus those on lines marked ``# patterns: ignore[rule]``.
    """
    path = display or str(file)
    source = file.read_text(encoding="utf-8")
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as err:
        return [Finding(path, err.lineno or 1, "syntax", err.msg, "fix the syntax error")]
    lines = source.splitlines()
    visitor = _Visitor(path, _config_names(tree), _docstring_ids(tree))
    visitor.visit(tree)
    findings = _module_findings(path, file, tree, lines) + visitor.findings
    return sorted(f for f in findings if not _ignored(f, lines))


def _ignored(finding: Finding, lines: list[str]) -> bool:
    if not 0 < finding.line <= len(lines):
        return False
    match = IGNORE_MARK.search(lines[finding.line - 1])
    if match is None:
        return False
    return finding.rule in {r.strip() for r in match.group(1).split(",")}


def python_files(paths: Iterable[str]) -> Iterator[Path]:
    """Yield the ``.py`` files named by ``paths`` (folders searched recursively), sorted."""
    for name in paths:
        path = Path(name)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*.py") if "__pycache__" not in p.parts)
        else:
            yield path


def main(argv: list[str] | None = None) -> int:
    """Check the files or folders in ``argv`` (default ``src``); print findings; 1 if any."""
    paths = argv if argv else [SCRIPT_ROOT]
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        sys.stderr.write(f"check_patterns: no such file or folder: {', '.join(missing)}\n")
        return 2
    files = list(python_files(paths))
    findings = [f for file in files for f in check_file(file)]
    for finding in findings:
        sys.stdout.write(f"{finding}\n")
    count = len(findings)
    plural = "" if count == 1 else "s"
    sys.stderr.write(f"check_patterns: {count} finding{plural} in {len(files)} file(s)\n")
    return EXIT_FINDINGS if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
