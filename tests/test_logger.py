"""Logging, end to end: real subprocesses, their real stderr and their real log files.

Each test runs a small Python program (``CHILD``) that sets up the toolkit logger with its
project root in a temporary folder, logs, and exits; the test reads what the process wrote
to stderr and to ``logs/``. The secret corpus comes from ``tests/test_redaction.py``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.test_redaction import CORPUS, ORDINARY, REGISTERED
from utils.logger import LOG_FILES_KEPT
from utils.redaction import REDACTED

REPO = Path(__file__).resolve().parent.parent
CHILD_TIMEOUT = 60
LOG_NAME = re.compile(r"^acme-prod-txo_child_\d{4}-\d{2}-\d{2}T\d{6}Z_[0-9a-f]{8}\.log$")
LINE_START = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) "
)

CHILD = r"""
import json, logging, sys, threading, warnings
from pathlib import Path

import utils.path_helpers as path_helpers
path_helpers.PROJECT_ROOT = Path(sys.argv[1])
from utils import logger as txo_logger
from utils.redaction import register_secret

scenario = sys.argv[2]
data = json.loads(Path(sys.argv[3]).read_text()) if len(sys.argv) > 3 else {}
if data.get("basic_config"):
    logging.basicConfig(level=logging.INFO)
log = txo_logger.setup_logger()
if data.get("json"):
    txo_logger.configure_console("json")
if data.get("level"):
    txo_logger.configure_console(level=data["level"])
if scenario == "rename":
    log.info("before the context is known")
    first = txo_logger.get_log_file()
    print(json.dumps({"first": str(first), "existed": first.exists()}))
txo_logger.set_context("acme", "prod")
for value in data.get("registered", []):
    register_secret(value)

if scenario == "corpus":
    loggers = [log, logging.getLogger("src.report.child"),
               logging.getLogger("urllib3.connectionpool"), logging.getLogger("requests"),
               logging.getLogger()]
    for i, (case, text) in enumerate(data["cases"]):
        lg = loggers[i % len(loggers)]
        lg.warning("[%s] args %s", case, text)
        lg.info("[" + case + "] plain " + text)
        lg.info("[%(case)s] mapping %(text)s", {"case": case, "text": text})
        try:
            raise ValueError(f"[{case}] failed: {text}")
        except ValueError:
            lg.exception("[%s] exception", case)
        log.info("[%s] extra", case, extra={"payload": text, "password": "xpw-" + case})
        warnings.warn(f"[{case}] warning {text}")
        lg.debug("[%s] debug %s", case, text)
elif scenario == "basics":
    log.debug("debug-only-line %d", 7)
    log.info("count %d, ratio %.2f, name %s", 5, 0.25, "acme")
    log.info("%(n)d items for %(org)s", {"n": 3, "org": "acme"})
    for case, text in data.get("ordinary", []):
        log.info("[%s] %s", case, text)

    class Hostile:
        def __str__(self):
            raise RuntimeError("Hostile-Str-Secret")

    log.info("hostile %s", Hostile())
    log.info("bad %d format", "not-a-number-Sup3rSecret")
    log.warning("stack here", stack_info=True)
    warnings.warn("plain warning line")
elif scenario == "rename":
    log.info("after the context is known")
elif scenario == "json_fields":
    class Hostile:
        def __str__(self):
            raise RuntimeError("Hostile-Extra-Secret")

    log.info({"event": "token_refreshed", "access_token": "dict-msg-tok-1", "count": 2})
    log.info("extras", extra={"payload": {"nested": [{"client_secret": "nest-sec-2"}]},
                               "obj": Hostile(), "level": "shadow-msg-3",
                               "items": ["Bearer list-tok-4567", 5, None],
                               "ratio": float("nan")})
elif scenario == "threads":
    barrier = threading.Barrier(16)
    seen = []
    def grab():
        barrier.wait()
        seen.append(id(txo_logger.setup_logger()))
    threads = [threading.Thread(target=grab) for _ in range(16)]
    for t in threads: t.start()
    for t in threads: t.join()
    root = logging.getLogger()
    print(json.dumps({
        "ids": len(set(seen + [id(log)])),
        "console": sum(isinstance(h, txo_logger.ConsoleHandler) for h in root.handlers),
        "file": sum(isinstance(h, txo_logger.RunFileHandler) for h in root.handlers),
    }))
elif scenario == "uncaught":
    raise RuntimeError("uncaught with password=unc-pw-5 and " + data["registered"][0])
elif scenario == "thread_crash":
    def crash():
        raise ValueError("thread secret " + data["registered"][0])
    t = threading.Thread(target=crash, name="worker-1")
    t.start(); t.join()
    log.info("after thread")
elif scenario == "format":
    from utils.exceptions import ConfigurationError
    for kwargs in ({"log_format": "xml"}, {"level": "LOUD"}):
        try:
            txo_logger.configure_console(**kwargs)
        except ConfigurationError as err:
            print(type(err).__name__, err.what_went_wrong)
    log.info("still text")

log_file = txo_logger.get_log_file()
print(json.dumps({"log_file": str(log_file) if log_file else None,
                  "run_id": log.run_id}))
"""


class Run:
    """What a child process left behind."""

    def __init__(self, proc: subprocess.CompletedProcess[str], root: Path) -> None:
        self.returncode = proc.returncode
        self.stderr = proc.stderr
        self.stdout = proc.stdout
        self.root = root
        last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "{}"
        self.info: dict[str, Any] = json.loads(last) if last.startswith("{") else {}
        files = sorted((root / "logs").glob("*.log")) if (root / "logs").is_dir() else []
        self.files = files
        self.file_text = "".join(f.read_text(encoding="utf-8") for f in files)

    def json_lines(self) -> list[dict[str, Any]]:
        """Every stderr line parsed as JSON (fails the test if one is not JSON)."""
        return [json.loads(line) for line in self.stderr.splitlines()]


def run_child(
    tmp_path: Path,
    scenario: str,
    data: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    root: Path | None = None,
) -> Run:
    """Run ``CHILD`` for ``scenario`` with its project root in ``tmp_path / 'root'``."""
    project = root or tmp_path / "root"
    project.mkdir(exist_ok=True)
    script = tmp_path / "txo_child.py"
    script.write_text(CHILD, encoding="utf-8")
    args = [sys.executable, str(script), str(project), scenario]
    if data is not None:
        data_file = tmp_path / "data.json"
        data_file.write_text(json.dumps(data), encoding="utf-8")
        args.append(str(data_file))
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("TXO_LOG")}
    child_env.update(PYTHONPATH=str(REPO), PYTHONIOENCODING="utf-8", **(env or {}))
    proc = subprocess.run(
        args, capture_output=True, text=True, timeout=CHILD_TIMEOUT, env=child_env, cwd=tmp_path
    )
    return Run(proc, project)


def _corpus_data(json_mode: bool) -> dict[str, Any]:
    return {
        "json": json_mode,
        "registered": list(REGISTERED),
        "cases": [[case, text] for case, text, _ in CORPUS],
    }


@pytest.fixture(scope="module")
def corpus_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """The corpus logged three ways: text console, JSON by configure_console, JSON by env."""
    runs = {
        "text": run_child(tmp_path_factory.mktemp("text"), "corpus", _corpus_data(False)),
        "json": run_child(tmp_path_factory.mktemp("json"), "corpus", _corpus_data(True)),
        "env_json": run_child(
            tmp_path_factory.mktemp("envjson"),
            "corpus",
            _corpus_data(False),
            env={"TXO_LOG_FORMAT": "json"},
        ),
    }
    for name, run in runs.items():
        assert run.returncode == 0, f"{name}: {run.stderr[-2000:]}"
    return runs


def _text_record(output: str, marker: str) -> str:
    """The text-mode record whose first line holds ``marker``, with its continuation lines."""
    lines = output.splitlines()
    first = next(i for i, line in enumerate(lines) if marker in line)
    assert LINE_START.match(lines[first])
    end = next((i for i in range(first + 1, len(lines)) if LINE_START.match(lines[i])), len(lines))
    return "\n".join(lines[first:end])


def _forms(secret: str) -> set[str]:
    return {secret, json.dumps(secret)[1:-1]}


@pytest.mark.parametrize(("case", "text", "secrets"), CORPUS, ids=[c[0] for c in CORPUS])
@pytest.mark.parametrize("mode", ["text", "json", "env_json"])
def test_secret_absent_from_console_and_file(
    corpus_runs: dict[str, Run], mode: str, case: str, text: str, secrets: tuple[str, ...]
) -> None:
    run = corpus_runs[mode]
    for secret in secrets:
        for form in _forms(secret):
            assert form not in run.stderr, f"{case}: {form!r} on the {mode} console"
            assert form not in run.file_text, f"{case}: {form!r} in the {mode} log file"
    assert f"xpw-{case}" not in run.stderr + run.file_text
    if mode == "text":
        assert REDACTED in _text_record(run.stderr, f"[{case}] plain ")
    else:
        records = [r for r in run.json_lines() if r["message"].startswith(f"[{case}]")]
        kinds = {r["message"].split(" ")[1] for r in records}
        assert {"args", "plain", "mapping", "exception", "extra"} <= kinds
        for record in records:
            assert record["org"] == "acme" and record["env"] == "prod"
        extra = next(r for r in records if r["message"] == f"[{case}] extra")
        assert extra["password"] == REDACTED
        assert REDACTED in extra["payload"]


@pytest.mark.parametrize("mode", ["text", "json", "env_json"])
def test_every_path_reaches_console_and_file(corpus_runs: dict[str, Run], mode: str) -> None:
    run = corpus_runs[mode]
    case = CORPUS[0][0]
    for kind in ("args", "plain", "mapping", "exception", "warning", "debug"):
        assert f"[{case}] {kind}" in run.file_text
    assert "Traceback (most recent call last)" in run.file_text
    assert "[py.warnings]" in run.file_text
    assert f"[{case}] debug" not in run.stderr
    for name in ("[src.report.child]", "[urllib3.connectionpool]", "[requests]", "[root]"):
        assert name in run.file_text


@pytest.mark.parametrize("mode", ["json", "env_json"])
def test_json_console_is_one_object_per_line(corpus_runs: dict[str, Run], mode: str) -> None:
    records = corpus_runs[mode].json_lines()
    assert len(records) >= len(CORPUS) * 6
    for record in records:
        assert {"timestamp", "level", "logger", "message", "org", "env", "run_id"} <= set(record)
        assert record["timestamp"].endswith("Z")
    warnings_ = [r for r in records if r["logger"] == "py.warnings"]
    assert len(warnings_) == len(CORPUS)
    assert all(r["level"] == "WARNING" for r in warnings_)
    tracebacks = [r for r in records if "exc_info" in r]
    assert len(tracebacks) == len(CORPUS)
    assert all(r["exc_info"].startswith("Traceback") for r in tracebacks)
    assert len({r["run_id"] for r in records}) == 1
    assert records[0]["run_id"] == corpus_runs[mode].info["run_id"]


def test_file_is_text_named_for_org_env_script(corpus_runs: dict[str, Run]) -> None:
    run = corpus_runs["json"]
    assert len(run.files) == 1
    assert LOG_NAME.match(run.files[0].name), run.files[0].name
    assert run.info["log_file"] == str(run.files[0])
    assert run.info["run_id"] in run.files[0].name
    first = run.file_text.splitlines()[0]
    assert LINE_START.match(first)


@pytest.fixture(scope="module")
def basics(tmp_path_factory: pytest.TempPathFactory) -> Run:
    run = run_child(
        tmp_path_factory.mktemp("basics"),
        "basics",
        {"registered": ["Sup3rSecret"], "ordinary": [list(o) for o in ORDINARY]},
    )
    assert run.returncode == 0, run.stderr
    return run


def test_debug_goes_to_the_file_only(basics: Run) -> None:
    assert "debug-only-line 7" in basics.file_text
    assert "debug-only-line" not in basics.stderr


def test_percent_and_mapping_arguments_work(basics: Run) -> None:
    assert "count 5, ratio 0.25, name acme" in basics.stderr
    assert "3 items for acme" in basics.stderr


@pytest.mark.parametrize(("case", "text"), ORDINARY, ids=[c[0] for c in ORDINARY])
def test_ordinary_lines_come_through_unchanged(basics: Run, case: str, text: str) -> None:
    assert f"[{case}] {text}\n" in basics.stderr
    assert f"[{case}] {text}\n" in basics.file_text


def test_unformattable_arguments_never_leak(basics: Run) -> None:
    for out in (basics.stderr, basics.file_text):
        assert "Hostile-Str-Secret" not in out
        assert "Sup3rSecret" not in out
        assert "hostile %s [log arguments could not be formatted: RuntimeError]" in out
        assert "bad %d format [log arguments could not be formatted: TypeError]" in out
    assert "--- Logging error" not in basics.stderr


def test_stack_info_and_warnings_are_logged(basics: Run) -> None:
    assert "Stack (most recent call last)" in basics.file_text
    assert re.search(r"WARNING  \[py\.warnings\] .*UserWarning: plain warning line", basics.stderr)


def test_console_level_can_be_raised(tmp_path: Path) -> None:
    run = run_child(tmp_path, "basics", {"level": "WARNING", "ordinary": []})
    assert run.returncode == 0
    assert "count 5" not in run.stderr
    assert "count 5" in run.file_text
    assert "stack here" in run.stderr


def test_env_level_debug_shows_debug_on_console(tmp_path: Path) -> None:
    run = run_child(tmp_path, "basics", {"ordinary": []}, env={"TXO_LOG_LEVEL": "debug"})
    assert "debug-only-line 7" in run.stderr


def test_singleton_is_thread_safe(tmp_path: Path) -> None:
    run = run_child(tmp_path, "threads")
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[0] == json.dumps({"ids": 1, "console": 1, "file": 1})


def test_uncaught_exception_is_logged_redacted(tmp_path: Path) -> None:
    run = run_child(
        tmp_path, "uncaught", {"registered": ["Unc4ught-Reg"]}, {"TXO_LOG_FORMAT": "json"}
    )
    assert run.returncode == 1
    records = run.json_lines()
    assert records[-1]["level"] == "CRITICAL"
    assert "RuntimeError: uncaught with password=[REDACTED]" in records[-1]["exc_info"]
    for out in (run.stderr, run.file_text):
        assert "unc-pw-5" not in out and "Unc4ught-Reg" not in out


def test_thread_exception_is_logged_redacted(tmp_path: Path) -> None:
    run = run_child(tmp_path, "thread_crash", {"registered": ["Thr3ad-Reg"]})
    assert run.returncode == 0
    assert "Uncaught exception in thread worker-1" in run.stderr
    assert "ValueError: thread secret [REDACTED]" in run.stderr
    assert "Thr3ad-Reg" not in run.stderr + run.file_text


def test_basic_config_handler_is_replaced(tmp_path: Path) -> None:
    run = run_child(
        tmp_path, "basics", {"basic_config": True, "registered": ["Sup3rSecret"], "ordinary": []}
    )
    assert run.stderr.count("count 5, ratio 0.25") == 1
    assert "Sup3rSecret" not in run.stderr


def test_bad_format_and_level_are_configuration_errors(tmp_path: Path) -> None:
    run = run_child(tmp_path, "format", env={"TXO_LOG_FORMAT": "yaml"})
    assert run.returncode == 0, run.stderr
    assert "ConfigurationError Unknown log format 'xml'." in run.stdout
    assert "ConfigurationError Unknown log level 'LOUD'." in run.stdout
    assert "TXO_LOG_FORMAT='yaml' is not text or json: ignored, using the default." in run.stderr
    assert re.search(r"INFO     \[txo\] still text", run.stderr)


def test_unwritable_logs_folder_means_console_only(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "logs").write_text("not a folder")
    run = run_child(tmp_path, "basics", {"ordinary": []}, root=root)
    assert run.returncode == 0, run.stderr
    assert "Logging to the console only" in run.stderr
    assert "count 5" in run.stderr
    assert run.info["log_file"] is None


def test_retention_keeps_the_newest_files_per_script_org_env(tmp_path: Path) -> None:
    logs = tmp_path / "root" / "logs"
    logs.mkdir(parents=True)
    old = [
        logs / f"acme-prod-txo_child_2020-01-{d:02d}T000000Z_0000{d:04d}.log" for d in range(1, 36)
    ]
    crashed = [logs / f"txo_child_2020-02-{d:02d}T000000Z_1111{d:04d}.log" for d in range(1, 33)]
    other = [
        logs / f"acme-test-txo_child_2020-01-{d:02d}T000000Z_2222{d:04d}.log" for d in range(1, 36)
    ]
    foreign = logs / "keep-me.log"
    for path in [*old, *crashed, *other, foreign]:
        path.write_text("x")
    run = run_child(tmp_path, "basics", {"ordinary": []})
    assert run.returncode == 0, run.stderr
    mine = sorted(p for p in logs.iterdir() if p.name.startswith("acme-prod-"))
    assert len(mine) == LOG_FILES_KEPT
    assert mine[-1] == Path(run.info["log_file"])
    assert mine[:-1] == old[-(LOG_FILES_KEPT - 1) :]
    assert (
        sorted(p for p in logs.iterdir() if p.name.startswith("txo_child_"))
        == crashed[-(LOG_FILES_KEPT - 1) :]
    )
    assert all(p.exists() for p in other)
    assert foreign.exists()


def test_file_written_before_the_context_is_renamed_not_lost(tmp_path: Path) -> None:
    run = run_child(tmp_path, "rename")
    assert run.returncode == 0, run.stderr
    first = json.loads(run.stdout.splitlines()[0])
    assert first["existed"] is True
    assert Path(first["first"]).name.startswith("txo_child_")
    assert not Path(first["first"]).exists()
    assert [f.name for f in run.files] == [Path(run.info["log_file"]).name]
    lines = run.file_text.splitlines()
    assert "before the context is known" in lines[0]
    assert "after the context is known" in lines[-1]


def test_json_fields_are_redacted_and_never_raise(tmp_path: Path) -> None:
    run = run_child(tmp_path, "json_fields", {"json": True})
    assert run.returncode == 0, run.stderr
    records = run.json_lines()
    as_dict = next(r for r in records if r.get("event") == "token_refreshed")
    assert as_dict["access_token"] == REDACTED
    assert as_dict["count"] == 2
    extras = next(r for r in records if r["message"] == "extras")
    assert extras["payload"] == {"nested": [{"client_secret": REDACTED}]}
    assert extras["obj"] == "[REDACTION FAILED: log text withheld]"
    assert extras["level"] == "INFO"
    assert extras["extra.level"] == "shadow-msg-3"
    assert extras["items"] == ["Bearer [REDACTED]", 5, None]
    assert extras["ratio"] == "nan"
    for secret in ("dict-msg-tok-1", "nest-sec-2", "Hostile-Extra-Secret", "list-tok-4567"):
        assert secret not in run.stderr
        assert secret not in run.file_text


def test_an_unopenable_log_file_falls_back_to_the_console_without_raising(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from utils.logger import RunFileHandler

    # The folder does not exist, so opening the file fails as a read-only logs/ would.
    handler = RunFileHandler(tmp_path / "gone" / "run.log", encoding="utf-8", delay=True)
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom %s", ("arg",), None)
    with caplog.at_level(logging.WARNING, logger="utils.logger"):
        handler.emit(record)
        handler.emit(record)  # the second record is dropped quietly
    assert handler.failed
    warnings = [r.getMessage() for r in caplog.records if r.name == "utils.logger"]
    assert len(warnings) == 1
    assert warnings[0].startswith("Logging to the console only: cannot open the log file")
    assert not (tmp_path / "gone").exists()
    handler.close()
