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
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.support_scripts import (
    CONTRACT_TOKEN_PATH as TOKEN_PATH,
    Project,
    client_config,
    make_project,
    stub_contract_token as stub_token,
)
from tests.test_redaction import CORPUS, ORDINARY, REGISTERED
from tools.wiremock_server import WireMock
from utils import _redaction as redaction
from utils._redaction import REDACTED, redact, register_secret
from utils.logger import LOG_FILES_KEPT

pytestmark = pytest.mark.integration

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
from utils._redaction import register_secret

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


# ==== contract_logging_config: Contract checks for logging and redaction, written from DESIGN.md §3 (``utils.logger``).
#
# A corpus of secret formats real systems produce is pushed through :func:`redact` and through
# a real script (``tests/scripts/contract_script.py``) run as a subprocess: every secret must be
# absent from its stderr, in text and in JSON mode, and from its DEBUG log file; ordinary text
# must come through unchanged; with ``--log-format json`` every console line is one JSON object.
# Values chosen so that each one could only be hidden by the rule under test.
S = "Zq8vN3kLmP2xR7tYwB"  # 18 characters of key material, no known prefix
PEM = "MHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5oOPLkc0oTz7ToAoGCCqGSM49"

# (name, text, fragments that must not survive)
SECRET_FORMATS: list[tuple[str, str, tuple[str, ...]]] = [
    (
        "azure_storage_conn",
        f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={S}==;EndpointSuffix=core.windows.net",
        (S,),
    ),
    (
        "azure_sas_sig",
        f"GET https://acct.blob.core.windows.net/c/b.csv?sv=2022-11-02&sr=b&sp=r&sig={S}%2B%3D",
        (S,),
    ),
    (
        "service_bus_conn",
        f"Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey={S}=",
        (S,),
    ),
    ("cosmos_conn", f"AccountEndpoint=https://x.documents.azure.com:443/;AccountKey={S}==;", (S,)),
    ("json_clientSecret_camel", f'{{"clientId": "abc", "clientSecret": "{S}"}}', (S,)),
    ("json_client_secret_compact", f'{{"client_secret":"{S}"}}', (S,)),
    ("json_refresh_token_compact", f'{{"refresh_token":"{S}","token_type":"Bearer"}}', (S,)),
    ("json_password_upper_spaced", f'{{ "PASSWORD"   :   "{S}" }}', (S,)),
    ("json_leading_underscore", f'{{"_client_secret": "{S}"}}', (S,)),
    ("json_nested_list", f'{{"users": [{{"name": "bob", "password": "{S}"}}]}}', (S,)),
    ("json_numeric_password", '{"password": 86421357}', ("86421357",)),
    ("json_apiKey_camel", f'{{"apiKey": "{S}"}}', (S,)),
    (
        "oauth_response_body",
        f'{{"token_type":"Bearer","expires_in":3599,"access_token":"{S}","refresh_token":"R{S}"}}',
        (S,),
    ),
    (
        "auth_header_token_scheme_ghp",
        "Authorization: token ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
        ("ghp_A1b2",),
    ),
    ("auth_header_token_scheme_plain", f"Authorization: token {S}", (S,)),
    ("auth_header_lowercase_bearer", f"authorization: bearer {S}", (S,)),
    ("x_api_key_header", f"X-API-KEY: {S}", (S,)),
    ("x_api_key_no_space", f"x-api-key:{S}", (S,)),
    ("api_key_header_azure", f"api-key: {S}", (S,)),
    ("subscription_key_header", f"Ocp-Apim-Subscription-Key: {S}", (S,)),
    ("functions_key_header", f"x-functions-key: {S}", (S,)),
    (
        "proxy_authorization_basic",
        "Proxy-Authorization: Basic dXNlcjpwYXNzd29yZDEyMw==",
        ("dXNlcjpw",),
    ),
    ("apikey_in_url", f"GET https://api.example.com/v1/items?page=2&apikey={S}&x=1", (S,)),
    ("api_key_first_in_query", f"GET /v1/items?api_key={S}", (S,)),
    ("key_parameter_in_query", f"GET https://maps.example.com/geocode?q=x&key={S}", (S,)),
    (
        "access_token_fragment",
        f"redirect to https://app/cb#access_token={S}&token_type=bearer",
        (S,),
    ),
    ("form_body", f"grant_type=client_credentials&client_id=abc&client_secret={S}&scope=x", (S,)),
    ("yaml_list_password", f"users:\n  - name: bob\n    password: {S}\n  - name: eve", (S,)),
    ("yaml_block_password", f"password: |\n  {S}\n  second-line-{S}\nnext: 1", (S,)),
    ("env_db_password", f"DB_PASSWORD={S}", (S,)),
    ("env_export_quoted", f"export AZURE_CLIENT_SECRET='{S}'", (S,)),
    ("cli_password_flag", f"running: mysqldump --password {S} --host db", (S,)),
    ("cli_password_equals", f"running: psql --password={S} -h db", (S,)),
    (
        "python_repr_headers",
        f"{{'User-Agent': 'python-requests/2.32.3', 'Authorization': 'Bearer {S}', 'Accept': '*/*'}}",
        (S,),
    ),
    ("python_repr_kwargs", f"connect(host='db', user='sa', password='{S}')", (S,)),
    (
        "jwt_alone",
        "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJhcHAiLCJhdWQiOiJhcGkifQ.c2lnbmF0dXJlLXZhbHVlLWhlcmU",
        ("eyJzdWIiOiJhcHAi", "c2lnbmF0dXJl"),
    ),
    (
        "aws_secret_ini",
        f"aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCY{S}",
        ("wJalrXUtnFEMI",),
    ),
    ("aws_key_id_alone", "using AKIAZ7Q3MPL4XR2TW9VB for the upload", ("AKIAZ7Q3MPL4XR2TW9VB",)),
    (
        "aws_secret_alone",
        "secret is wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8vN3kLmP2x in prose",
        ("wJalrXUtnFEMI",),
    ),
    ("stripe_live", "charging with sk_live_51HxQ2eKz8Lm3Nq4Pr5St6Uv7Wx", ("sk_live_51HxQ",)),
    ("stripe_restricted", "rk_live_51HxQ2eKz8Lm3Nq4Pr5St6Uv7Wx used", ("rk_live_51HxQ",)),
    ("slack_bot", "xoxb-2048-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", ("AbCdEfGhIjKl",)),
    ("gitlab_pat", "cloning with glpat-Ab3De6Gh9Jk2Mn5Pq8St", ("glpat-Ab3De",)),
    ("google_api_key", "maps key AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI ok", ("AIzaSyDdI0h",)),
    ("openai_style", "sk-proj-Ab3De6Gh9Jk2Mn5Pq8St1Vw4Yz7", ("sk-proj-Ab3De6",)),
    (
        "github_fine_grained",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv",
        ("github_pat_11",),
    ),
    ("pem_ec", f"-----BEGIN EC PRIVATE KEY-----\n{PEM}\n-----END EC PRIVATE KEY-----", (PEM[:20],)),
    (
        "pem_rsa",
        f"-----BEGIN RSA PRIVATE KEY-----\n{PEM}\n{PEM}\n-----END RSA PRIVATE KEY-----",
        (PEM[:20],),
    ),
    (
        "pem_openssh",
        f"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1r{PEM}\n-----END OPENSSH PRIVATE KEY-----",
        (PEM[:20],),
    ),
    (
        "pem_in_json_string",
        f'{{"private_key": "-----BEGIN PRIVATE KEY-----\\n{PEM}\\n-----END PRIVATE KEY-----\\n"}}',
        (PEM[:20],),
    ),
    ("url_userinfo_postgres", f"postgres://admin:{S}@db.example.com:5432/app", (S,)),
    ("url_userinfo_redis_no_user", f"redis://:{S}@cache:6379/0", (S,)),
    (
        "url_token_as_user",
        "https://A1b2C3d4E5f6G7h8I9j0K1l2@github.com/org/repo.git",
        ("A1b2C3d4E5",),
    ),
    (
        "sql_conn_password",
        f"Server=tcp:db,1433;Database=x;User Id=sa;Password={S};Encrypt=true",
        (S,),
    ),
    ("odbc_pwd", f"Driver={{ODBC Driver 18}};Server=db;UID=sa;PWD={S};", (S,)),
    ("xml_password", f"<Credentials><Password>{S}</Password></Credentials>", (S,)),
    ("cookie_header", f"Cookie: session={S}; theme=dark", (S,)),
    ("set_cookie_header", f"Set-Cookie: sid={S}; Path=/; HttpOnly", (S,)),
    ("npmrc_auth_token", f"//registry.npmjs.org/:_authToken={S}", (S,)),
    ("shared_key_json", f'{{"sharedKey": "{S}"}}', (S,)),
    (
        "opaque_base64_88",
        "blob key 3q2+7w8Jk1LmN0pQrStUvWxYz4A5B6C7D8E9F0G1H2I3J4K5L6M7N8O9P0Q1R2S3T4U5V6W7X8Y9Z0a1b2c3d4== end",
        ("3q2+7w8Jk1LmN0",),
    ),
    (
        "opaque_hex_64",
        "digest-key 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        ("9f86d081884c7d65",),
    ),
    (
        "azure_ad_client_secret",
        "secret value Xk8Q~vN3.mP2_R7tYwBzq8vN3kLmP2xR7tYwBc4Hj0Fs",
        ("Xk8Q~vN3",),
    ),
    (
        "slack_webhook",
        "posting to https://hooks.slack.com/services/T0A1B2C3D/B4E5F6G7H/AbCdEf0123456789GhIjKlMn",
        ("AbCdEf0123456789",),
    ),
    ("escaped_json_in_string", f'"body": "{{\\"client_secret\\": \\"{S}\\"}}"', (S,)),
    ("bytes_repr_header", f"{{b'Authorization': b'Bearer {S}'}}", (S,)),
    ("json_list_of_secrets", f'{{"secrets_v": 1, "secret": ["{S}", "x{S}"]}}', (S,)),
    ("os_environ_assignment", f"os.environ['API_KEY'] = '{S}'", (S,)),
    ("requests_auth_tuple", f"{{'auth': ('svc-user', '{S}'), 'timeout': 5}}", (S,)),
    ("repr_of_escaped_json", repr(f'"body": "{{\\"client_secret\\": \\"{S}\\"}}"'), (S,)),
    (
        "http_client_debug_dump",
        f"send: b'GET /x HTTP/1.1\\r\\nHost: api\\r\\nAuthorization: Bearer {S}\\r\\n'",
        (S,),
    ),
]

# Values registered as secrets, that no pattern would find on their own.
REGISTERED_VALUES = ("lowercaseonlysecret", "p@ss w/rd+&=", "Ünïcödé-sëcret")
REGISTERED_FORMS: list[tuple[str, str, tuple[str, ...]]] = [
    ("registered_embedded_in_word", "prefixlowercaseonlysecretsuffix", ("lowercaseonlysecret",)),
    ("registered_url_encoded", f"GET /x?q={quote('p@ss w/rd+&=', safe='')}", ("p%40ss%20w%2Frd",)),
    ("registered_plus_encoded", "GET /x?q=p%40ss+w%2Frd%2B%26%3D", ("p%40ss+w%2Frd",)),
    ("registered_json_escaped", json.dumps({"v": "Ünïcödé-sëcret"}), ("\\u00dcn\\u00efc",)),
    (
        "registered_in_traceback_lines",
        'File "x.py", line 3\n    call("lowercaseonlysecret")\nValueError: lowercaseonlysecret',
        ("lowercaseonlysecret",),
    ),
]

# Ordinary log lines that must come through redaction unchanged.
ORDINARY_LINES = [
    "Fetched 42 customers from /api/v2.0/companies(8f2d1c3a-5b7e-4c9d-a1f0-3e6b2d4c5a71)/customers in 1.23s",
    "Saved output/acme-prod-customers_2026-11-26T0715Z.xlsx (3 sheets, 12.4 KiB)",
    "GET https://api.example.com/v2/customers?$top=100&$skip=200 -> 200",
    "Retry 2 of 3 after 0.40s (HTTP 503)",
    "Token acquired; expires in 3599 s",
    "The token endpoint refused the request (400 invalid_client)",
    "password policy updated for 3 users",
    "Bearer tokens are cached for the run",
    "Circuit breaker opened after 5 consecutive failures",
    "user bob@example.com logged in from 10.0.0.1",
    "Sending the report to https://sharepoint.example.com/sites/finance/reports",
    "primary key: customer_id, sort key = created_at",
    "GET https://api.example.com/search?monkey=1&keyword=invoice",
    "tokens_acquired: 1, token_count=5",
    "client_secret: null",
    "Run summary: exit 0 (success) in 1.02s · API calls 3 · retries 0 · 429s 0 · breaker opens 0 · files written 1",
    "Customer 'Contoso Ltd.' has 12 open invoices totalling 1,234.56 EUR",
    "x-ms-request-id: 8f2d1c3a-5b7e-4c9d-a1f0-3e6b2d4c5a71",
    "Line with ünïcödé and emoji ✅ stays",
    "tenant-id: contoso.onmicrosoft.com; client-id: 11111111-2222-3333-4444-555555555555",
    "oauth-scope: https://api.businesscentral.dynamics.com/.default",
    "class CustomerSynchronizationServiceFactory2026 loaded",
    "/home/runner/work/txo-toolkit/txo-toolkit/tests/test_contract_logging_config.py:42",
    'Secret key "client-secret" in config/acme-prod-config-secrets.json: "…" is the placeholder',
]


@pytest.fixture(autouse=True)
def registered() -> Iterator[None]:
    redaction.clear_registered_secrets()
    for value in REGISTERED_VALUES:
        register_secret(value)
    yield
    redaction.clear_registered_secrets()


def test_the_corpus_is_wide() -> None:
    assert len(SECRET_FORMATS) + len(REGISTERED_FORMS) >= 60
    names = [name for name, _, _ in SECRET_FORMATS + REGISTERED_FORMS]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize(
    ("name", "text", "fragments"),
    SECRET_FORMATS + REGISTERED_FORMS,
    ids=[case[0] for case in SECRET_FORMATS + REGISTERED_FORMS],
)
def test_secret_format_is_redacted(name: str, text: str, fragments: tuple[str, ...]) -> None:
    out = redact(text)
    for fragment in fragments:
        assert fragment not in out, f"{name}: {fragment!r} survived in {out!r}"
    assert REDACTED in out


@pytest.mark.parametrize("text", ORDINARY_LINES)
def test_ordinary_text_is_not_mangled(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"clientSecret": "x1y2z3"}', '{"clientSecret": "[REDACTED]"}'),
        ("X-API-KEY: k1", "X-API-KEY: [REDACTED]"),
        ("DB_PASSWORD=pw1 next", "DB_PASSWORD=[REDACTED]"),
        ("?a=1&apikey=k1&b=2", "?a=1&apikey=[REDACTED]&b=2"),
        ("Authorization: token t0k3n", "Authorization: token [REDACTED]"),
        ("password: |\n  line1\n  line2\nuser: bob", "password: [REDACTED]\nuser: bob"),
    ],
)
def test_the_key_stays_readable(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_redaction_is_idempotent() -> None:
    for _, text, _ in SECRET_FORMATS:
        once = redact(text)
        assert redact(once) == once


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError(f"cannot print {S}")


def test_redact_never_raises_and_never_returns_the_raw_text() -> None:
    out = redact(_Unprintable())  # type: ignore[arg-type]
    assert S not in out
    assert out != ""


# -- real subprocesses -------------------------------------------------------------------------
SCRIPT_SECRET = "Scr1pt-Client-S3cret/+&"
EXTRA_SECRET = "db-pass-lowercase-only"
RUN_TOKEN = "plainlowercasetokenvalue"


@pytest.fixture(scope="module")
def leak_runs(
    tmp_path_factory: pytest.TempPathFactory, wiremock_server: WireMock
) -> dict[str, tuple[Project, Any]]:
    """The leak script run twice (text, JSON console) against a real token endpoint."""
    wiremock_server.reset()
    stub_token(wiremock_server, RUN_TOKEN)
    corpus = [text for _, text, _ in SECRET_FORMATS + REGISTERED_FORMS]
    runs = {}
    for mode in ("text", "json"):
        project = make_project(tmp_path_factory.mktemp(f"leak-{mode}"))
        project.write_config(client_config(wiremock_server.base_url + TOKEN_PATH))
        project.write_secrets(
            {
                "client-secret": SCRIPT_SECRET,
                "db-password": EXTRA_SECRET,
                "extra-one": REGISTERED_VALUES[0],
                "extra-two": REGISTERED_VALUES[1],
                "extra-three": REGISTERED_VALUES[2],
            }
        )
        corpus_file = project.root / "tmp" / "corpus.json"
        corpus_file.parent.mkdir(exist_ok=True)
        corpus_file.write_text(json.dumps(corpus), encoding="utf-8")
        args = ["acme", "test", "--log-level", "DEBUG"]
        if mode == "json":
            args += ["--log-format", "json"]
        run = project.run(
            "contract_script",
            *args,
            env={"CONTRACT_ACTION": "leak", "CONTRACT_CORPUS": str(corpus_file)},
        )
        runs[mode] = (project, run)
    return runs


def _all_fragments() -> list[tuple[str, str]]:
    found = [
        (name, f) for name, _, fragments in SECRET_FORMATS + REGISTERED_FORMS for f in fragments
    ]
    for value in (SCRIPT_SECRET, EXTRA_SECRET, RUN_TOKEN, *REGISTERED_VALUES):
        found += [("registered", value), ("registered-url", quote(value, safe=""))]
    return found


@pytest.mark.parametrize("mode", ["text", "json"])
def test_no_secret_reaches_stderr_or_the_log_file(
    leak_runs: dict[str, tuple[Project, Any]], mode: str
) -> None:
    project, run = leak_runs[mode]
    assert run.code == 0, run
    log_text = project.log_text()
    assert log_text, "the DEBUG log file is missing"
    leaks = [
        (name, fragment, where)
        for name, fragment in _all_fragments()
        for where, text in (("stderr", run.stderr), ("log file", log_text), ("stdout", run.stdout))
        if fragment in text
    ]
    assert leaks == []


@pytest.mark.parametrize("mode", ["text", "json"])
def test_every_logging_path_reached_the_console(
    leak_runs: dict[str, tuple[Project, Any]], mode: str
) -> None:
    project, run = leak_runs[mode]
    for marker in (
        "script: ",
        "script debug: ",
        "child: ",
        "root: ",
        "warned: ",
        "library refused a value",
        "request failed",
        "Retrying after",
        "Uncaught exception in thread worker",
        "finaliser failed with",
    ):
        assert marker in run.stderr, marker
        assert marker in project.log_text(), marker
    assert "with extra" in run.stderr


def test_json_console_lines_are_all_json(leak_runs: dict[str, tuple[Project, Any]]) -> None:
    _, run = leak_runs["json"]
    lines = run.stderr.splitlines()
    assert len(lines) > len(SECRET_FORMATS) * 5
    records = [json.loads(line) for line in lines]
    assert {"timestamp", "level", "logger", "message", "org", "env"} <= set(records[0])
    assert {r["org"] for r in records} == {"acme"}
    assert {r["env"] for r in records} == {"test"}
    levels = {r["level"] for r in records}
    assert {"DEBUG", "INFO", "WARNING", "ERROR"} <= levels
    assert any(r["logger"] == "py.warnings" for r in records)
    extras = [r for r in records if r["message"] == "with extra"]
    assert extras and all(S not in json.dumps(r) for r in extras)


def test_the_log_file_holds_debug_in_text(leak_runs: dict[str, tuple[Project, Any]]) -> None:
    project, _ = leak_runs["json"]
    text = project.log_text()
    assert " DEBUG " in text
    assert not text.lstrip().startswith("{")


@pytest.fixture
def plain_project(tmp_path: Path) -> Project:
    project = make_project(tmp_path)
    project.write_config({"global": {"api-base-url": "https://api.example.com"}})
    return project


def test_ordinary_lines_reach_the_console_unchanged(plain_project: Project) -> None:
    corpus_file = plain_project.root / "corpus.json"
    corpus_file.write_text(json.dumps(ORDINARY_LINES), encoding="utf-8")
    run = plain_project.run(
        "contract_script",
        "acme",
        "test",
        env={
            "CONTRACT_ACTION": "leak",
            "CONTRACT_CORPUS": str(corpus_file),
            "CONTRACT_REQUIRE_TOKEN": "0",
        },
    )
    assert run.code == 0, run
    for line in ORDINARY_LINES:
        assert f"script: {line}" in run.stderr


@pytest.mark.parametrize(
    ("args", "env", "debug_on_console"),
    [
        ([], {}, False),
        (["--log-level", "DEBUG"], {}, True),
        (["--log-level", "debug"], {}, True),
        ([], {"TXO_LOG_LEVEL": "DEBUG"}, True),
        (["--log-level", "WARNING"], {"TXO_LOG_LEVEL": "DEBUG"}, False),
    ],
)
def test_console_level_and_the_file_always_debug(
    plain_project: Project, args: list[str], env: dict[str, str], debug_on_console: bool
) -> None:
    run = plain_project.run(
        "contract_script", "acme", "test", *args, env={"CONTRACT_REQUIRE_TOKEN": "0", **env}
    )
    assert run.code == 0, run
    assert ("DEBUG" in run.stderr) is debug_on_console
    assert " DEBUG " in plain_project.log_text()


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["acme", "test", "--log-format", "json"], {}),
        (["acme", "test"], {"TXO_LOG_FORMAT": "json"}),
        (["acme", "test", "--log-format=json", "--log-level", "DEBUG"], {}),
        (["acme", "test", "--log-format", "JSON"], {}),
        (["acme", "--log-format", "json"], {}),  # usage error: ENV_TYPE missing
        (["a/b", "test", "--log-format", "json"], {}),  # usage error: ORG_ID not plain
        (["acme", "test", "surplus", "--log-format", "json"], {}),
        (["acme", "test", "--log-format", "json", "--log-level", "LOUD"], {}),
        (["nope", "test", "--log-format", "json"], {}),  # config missing
    ],
)
def test_json_mode_makes_every_console_line_json(
    plain_project: Project, args: list[str], env: dict[str, str]
) -> None:
    plain_project.write_secrets({"client-secret": "x" * 8}, mode=0o644)  # a warning, too
    run = plain_project.run(
        "contract_script",
        *args,
        env={"CONTRACT_ACTION": "raise:ApiOperationError", "CONTRACT_REQUIRE_TOKEN": "0", **env},
    )
    assert run.code in (2, 4), run
    lines = run.stderr.splitlines()
    assert lines
    records = [json.loads(line) for line in lines]
    messages = " ".join(r["message"] for r in records)
    assert "❌ Problem:" in messages
    assert "Run summary" in records[-1]["message"]
    assert "Traceback" not in run.stderr


def test_percent_arguments_and_levels_in_library_loggers(plain_project: Project) -> None:
    corpus_file = plain_project.root / "corpus.json"
    corpus_file.write_text(json.dumps(["100% of %s done"]), encoding="utf-8")
    run = plain_project.run(
        "contract_script",
        "acme",
        "test",
        env={
            "CONTRACT_ACTION": "leak",
            "CONTRACT_CORPUS": str(corpus_file),
            "CONTRACT_REQUIRE_TOKEN": "0",
        },
    )
    assert run.code == 0, run
    assert "script: 100% of %s done" in run.stderr


def test_a_registered_value_is_also_hidden_stripped() -> None:
    register_secret("  padded-Secret-77 \n")
    assert redact("sent padded-Secret-77 now") == f"sent {REDACTED} now"


def test_values_shorter_than_four_characters_are_not_registered() -> None:
    register_secret("abc")
    register_secret("  ab  ")
    assert redact("abc ab cabbage") == "abc ab cabbage"


# ==== the JSON console format, in process: what python-json-logger's add_fields hook yields
JSON_SECRET = "Jz7-registered-json-secret"


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError(JSON_SECRET)


@pytest.fixture
def json_formatter() -> Iterator[Any]:
    from utils._log_formatters import RedactingJsonFormatter

    register_secret(JSON_SECRET)
    yield RedactingJsonFormatter(lambda: {"org": "acme", "env": "prod", "run_id": None})
    redaction.clear_registered_secrets()


def json_record(msg: Any, args: Any = None, exc_info: Any = None, **extra: Any) -> Any:
    import logging

    record = logging.LogRecord("txo.test", logging.INFO, __file__, 7, msg, args, exc_info)
    record.created, record.msecs = 1.0, 0.0
    record.__dict__.update(extra)
    return record


def test_json_fields_come_in_their_order(json_formatter: Any) -> None:
    line = json_formatter.format(json_record("hello %s", ("world",)))
    assert json.loads(line) == {
        "timestamp": "1970-01-01T00:00:01.000Z",
        "level": "INFO",
        "logger": "txo.test",
        "message": "hello world",
        "org": "acme",
        "env": "prod",
        "run_id": None,
    }
    assert list(json.loads(line)) == [
        "timestamp", "level", "logger", "message", "org", "env", "run_id",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("msg", "args", "message"),
    [
        ("bad %d format", ("x",), "bad %d format [log arguments could not be formatted: TypeError]"),
        ("hostile %s", (Unprintable(),), "hostile %s [log arguments could not be formatted: RuntimeError]"),
        (f"token {JSON_SECRET} here", None, f"token {REDACTED} here"),
    ],
)  # fmt: skip
def test_json_message_is_redacted_and_never_raises(
    json_formatter: Any, msg: str, args: Any, message: str
) -> None:
    record = json_record(msg, args)
    data = json.loads(json_formatter.format(record))
    assert data["message"] == message
    assert JSON_SECRET not in json_formatter.format(record)
    assert getattr(record, "message", message) == message  # never the unredacted text


def test_json_dict_message_becomes_fields_and_is_not_changed(json_formatter: Any) -> None:
    given = {"rows": 3, "password": "pw-1", "message": "m", "note": f"see {JSON_SECRET}"}
    data = json.loads(json_formatter.format(json_record(given)))
    assert data["message"] == ""
    assert data["rows"] == 3
    assert data["password"] == REDACTED
    assert data["extra.message"] == "m"
    assert data["note"] == f"see {REDACTED}"
    assert given == {"rows": 3, "password": "pw-1", "message": "m", "note": f"see {JSON_SECRET}"}


def test_json_extras_are_cleaned(json_formatter: Any) -> None:
    deep: Any = "bottom"
    for _ in range(10):
        deep = [deep]
    record = json_record(
        "x",
        api_key="k-1",
        level="lv",
        shape={"n": [1, float("nan"), Unprintable(), None, True]},
        deep=deep,
    )
    data = json.loads(json_formatter.format(record))
    assert data["api_key"] == REDACTED
    assert data["extra.level"] == "lv"
    assert data["shape"] == {"n": [1, "nan", "[REDACTION FAILED: log text withheld]", None, True]}
    assert "<nested too deep>" in json.dumps(data["deep"])


def test_json_traceback_and_stack_are_redacted(json_formatter: Any) -> None:
    try:
        raise ValueError(f"boom {JSON_SECRET}")
    except ValueError:
        record = json_record("failed", exc_info=sys.exc_info(), stack_info=f"Stack {JSON_SECRET}")
    data = json.loads(json_formatter.format(record))
    assert data["exc_info"].startswith("Traceback (most recent call last):")
    assert f"ValueError: boom {REDACTED}" in data["exc_info"]
    assert data["stack_info"] == f"Stack {REDACTED}"


def test_json_formatter_failure_gives_a_placeholder(json_formatter: Any) -> None:
    def broken() -> dict[str, str | None]:
        raise KeyError("context")

    json_formatter._context = broken
    data = json.loads(json_formatter.format(json_record("x")))
    assert data == {
        "timestamp": "1970-01-01T00:00:01.000Z",
        "level": "INFO",
        "logger": "txo.test",
        "message": "[REDACTION FAILED: log text withheld] (KeyError)",
    }
