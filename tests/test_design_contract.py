"""DESIGN.md §2–§5 sentences that no other test module pins down.

Layout and import graph (read with ``ast``, not by importing), the fixed public names and
their documented defaults, ``manual_retry``'s schedule with its defaults, the ORG_ID /
ENV_TYPE names that must be accepted, a config that tries to carry the injected keys, and
``make run`` creating the environment on first use, and a few HTTP, runner and summary edges.
The rest of §2–§5 is proved by the module tests (``test_<module>.py``) and ``test_e2e_scripts.py``.
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.http_contract_support import (
    always,
    client,
    contract_config,
    gaps_ms,
    header,
    respond,
    sequence,
    stamps_ms,
)
from tests.support_scripts import ROOT, Project
from tools.wiremock_server import WireMock, free_port
from utils import api_common, api_factory, exceptions, load_n_save, logger, script_runner
from utils.api_common import CircuitBreaker, RateLimiter, manual_retry
from utils.api_factory import create_rest_api
from utils.exceptions import (
    ApiAuthenticationError,
    ApiOperationError,
    ApiRateLimitError,
    ConfigurationError,
    FileOperationError,
    ValidationError,
)

UTILS = ROOT / "utils"
MAKE_TIMEOUT = 30
NO_WAIT_SECONDS = 0.8
CLOCK_SLACK_MS = 15

# -- §2 layout ---------------------------------------------------------------------------------
TOP_LEVEL_FILES = [
    "Makefile",
    "Dockerfile",
    "docker-compose.yml",
    "tox.ini",
    "pyproject.toml",
    "README.md",
    ".ci/run",
]
TOP_LEVEL_FOLDERS = [
    "src",
    "utils",
    "tests",
    "schemas",
    "config",
    "data",
    "output",
    "logs",
    "mock-api",
    "deploy",
    "bench",
]
PUBLIC_MODULES = [
    "exceptions",
    "path_helpers",
    "logger",
    "script_runner",
    "api_common",
    "api_factory",
    "load_n_save",
]


@pytest.mark.parametrize("name", TOP_LEVEL_FILES)
def test_layout_top_level_file_exists(name: str) -> None:
    assert (ROOT / name).is_file()


def test_ci_entry_point_is_executable() -> None:
    assert (ROOT / ".ci" / "run").stat().st_mode & 0o111


@pytest.mark.parametrize("name", TOP_LEVEL_FOLDERS)
def test_layout_top_level_folder_exists(name: str) -> None:
    assert (ROOT / name).is_dir()


@pytest.mark.parametrize(
    "path", ["tmp/", "tmp/scratch.txt", "config/acme-prod-config-secrets.json"]
)
def test_tmp_and_secrets_are_git_ignored(path: str) -> None:
    done = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=ROOT, check=False)
    assert done.returncode == 0, f"{path} is not git-ignored"


def test_the_secrets_example_is_not_ignored() -> None:
    done = subprocess.run(
        ["git", "check-ignore", "-q", "--no-index", "config/org-env-config-secrets_example.json"],
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 1


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_utils_holds_each_public_module_flat(name: str) -> None:
    assert (UTILS / f"{name}.py").is_file()
    assert not any(p.is_dir() and p.name != "__pycache__" for p in UTILS.iterdir())


# -- §2 import graph ---------------------------------------------------------------------------
# Each module of utils/ and its layer: imports may only point to the same or a lower layer.
LAYERS: dict[str, int] = {
    "exceptions": 0,
    "run_stats": 0,
    "_run_control": 0,
    "path_helpers": 1,
    "_schema": 1,
    "_redaction_patterns": 2,
    "_redaction": 2,
    "_log_formatters": 2,
    "logger": 2,
    "_api_settings": 3,
    "_named_apis": 3,
    "_retry_policy": 3,
    "api_common": 3,
    "_auth": 4,
    "_json_encoding": 5,
    "_excel_layout": 5,
    "_excel_writer": 5,
    "_table_writers": 5,
    "_record_streams": 5,
    "_arrow_types": 5,
    "_save_formats": 5,
    "_atomic_write": 5,
    "_output_names": 5,
    "load_n_save": 5,
    "state": 5,
    "_http_errors": 6,
    "_http_body": 6,
    "_pagination": 6,
    "_rest_client": 6,
    "api_factory": 6,
    "_config_loader": 6,
    "_script_settings": 6,
    "_metrics": 5,  # the run's metrics push: logger and run_stats below, script_runner above
    "script_runner": 6,
    "_write_report": 6,
    "_write_batch": 6,
    "_write_back": 6,
}
# Modules of the api_common layer: pure decisions, no I/O of their own.
PURE_MODULES = ["api_common", "_api_settings", "_retry_policy"]
# http.HTTPStatus (names of statuses) is allowed; http.client and http.server do I/O.
IO_MODULES = {
    "socket",
    "subprocess",
    "os",
    "pathlib",
    "shutil",
    "io",
    "http.client",
    "http.server",
    "urllib3.request",
}
IO_CALLS = {"open", "print", "input"}
IO_ATTRIBUTES = {"Session", "request", "urlopen", "get", "post", "put", "patch", "delete"}


def _utils_imports(name: str) -> set[str]:
    """The utils modules ``utils/<name>.py`` imports (module level or inside functions)."""
    tree = ast.parse((UTILS / f"{name}.py").read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "utils":
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("utils."):
            found.add((node.module or "").removeprefix("utils."))
        elif isinstance(node, ast.Import):
            found |= {
                a.name.removeprefix("utils.") for a in node.names if a.name.startswith("utils.")
            }
    return found


def _graph() -> dict[str, set[str]]:
    return {p.stem: _utils_imports(p.stem) for p in UTILS.glob("*.py") if p.stem != "__init__"}


def _reaches(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for dep in graph[todo.pop()] - seen:
            seen.add(dep)
            todo.append(dep)
    return seen


def test_every_utils_module_has_a_layer() -> None:
    assert set(_graph()) == set(LAYERS)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_imports_point_down_the_layers(name: str) -> None:
    upward = {dep for dep in _utils_imports(name) if LAYERS[dep] > LAYERS[name]}
    assert not upward, f"utils/{name}.py imports {sorted(upward)} from a higher layer"


def test_the_import_graph_has_no_cycle() -> None:
    graph = _graph()
    cyclic = [name for name in graph if name in _reaches(graph, name)]
    assert cyclic == []


def test_api_factory_and_script_runner_do_not_import_each_other() -> None:
    graph = _graph()
    assert not {"script_runner", "_config_loader"} & _reaches(graph, "api_factory")
    assert "api_factory" not in _reaches(graph, "script_runner")


@pytest.mark.parametrize("name", ["script_runner", "api_factory"])
def test_token_acquisition_is_reached_from_both_entry_points(name: str) -> None:
    assert "_auth" in _reaches(_graph(), name)


def test_token_requests_are_built_in_one_place() -> None:
    holders = sorted(
        p.stem for p in UTILS.glob("*.py") if "client_credentials" in p.read_text(encoding="utf-8")
    )
    assert holders == ["_auth"]


@pytest.mark.parametrize("name", PURE_MODULES)
def test_api_common_layer_does_no_io(name: str) -> None:
    tree = ast.parse((UTILS / f"{name}.py").read_text(encoding="utf-8"))
    # _schema reads the JSON Schema's defaults once: the one source of defaults, not I/O of
    # the decisions themselves.
    allowed = {"_api_settings", "_retry_policy", "exceptions", "run_stats", "_schema"}
    assert _utils_imports(name) <= allowed
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not {a.name for a in node.names} & IO_MODULES
        elif isinstance(node, ast.ImportFrom):
            assert (node.module or "") not in IO_MODULES
            if node.module == "http":
                assert {a.name for a in node.names} <= {"HTTPStatus"}
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):
                assert func.id not in IO_CALLS, f"{name} calls {func.id}()"
            elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                assert not (func.value.id == "requests" and func.attr in IO_ATTRIBUTES)


# -- §3 public names and documented defaults ---------------------------------------------------
PUBLIC_NAMES = [
    (exceptions, "HelpfulError"),
    (exceptions, "ConfigurationError"),
    (exceptions, "ValidationError"),
    (exceptions, "FileOperationError"),
    (exceptions, "ApiAuthenticationError"),
    (exceptions, "ApiOperationError"),
    (exceptions, "ApiTimeoutError"),
    (exceptions, "ApiRateLimitError"),
    (exceptions, "CircuitOpenError"),
    (logger, "setup_logger"),
    (logger, "TxoLogger"),
    (script_runner, "parse_args_and_load_config"),
    (script_runner, "run_script"),
    (api_common, "RateLimiter"),
    (api_common, "CircuitBreaker"),
    (api_common, "apply_jitter"),
    (api_common, "manual_retry"),
    (api_factory, "create_rest_api"),
    (api_factory, "ApiManager"),
    (api_factory, "TxoRestAPI"),
    (load_n_save, "TxoDataHandler"),
    (load_n_save, "timestamped_filename"),
]


@pytest.mark.parametrize(("module", "name"), PUBLIC_NAMES, ids=[n for _, n in PUBLIC_NAMES])
def test_public_name_exists(module: Any, name: str) -> None:
    assert callable(getattr(module, name))


SIGNATURES: list[tuple[Any, dict[str, Any]]] = [
    (exceptions.HelpfulError, {"what_went_wrong": None, "how_to_fix": None, "example": None}),
    (RateLimiter, {"calls_per_second": 10, "burst_size": 1}),
    (CircuitBreaker, {"failure_threshold": 5, "timeout": 60}),
    (manual_retry, {"func": None, "max_retries": 3, "backoff": 2.0}),
    (api_common.apply_jitter, {"delay": None, "config": None}),
    (
        script_runner.parse_args_and_load_config,
        {"description": None, "require_token": True, "validate_config": True},
    ),
    (api_factory.create_rest_api, {"config": None, "require_auth": True}),
    (api_factory.ApiManager.get_rest_api, {"self": None, "require_auth": True}),
    (api_factory.TxoRestAPI.get, {"self": None, "path_or_url": None, "params": None}),
    (api_factory.TxoRestAPI.post, {"self": None, "path_or_url": None, "data": None}),
    (api_factory.TxoRestAPI.put, {"self": None, "path_or_url": None, "data": None}),
    (api_factory.TxoRestAPI.patch, {"self": None, "path_or_url": None, "data": None}),
    (api_factory.TxoRestAPI.delete, {"self": None, "path_or_url": None}),
    (api_factory.TxoRestAPI.iter_pages, {"self": None, "path": None, "params": None}),
    (load_n_save.timestamped_filename, {"config": None, "name": None, "ext": None}),
    (
        load_n_save.TxoDataHandler.save,
        {"self": None, "data": None, "directory": None, "filename": None},
    ),
    (logger.setup_logger, {"org_id": None}),
]


@pytest.mark.parametrize(
    ("func", "expected"), SIGNATURES, ids=[f.__qualname__ for f, _ in SIGNATURES]
)
def test_documented_parameters_in_order_with_their_defaults(
    func: Any, expected: dict[str, Any]
) -> None:
    """Positional order and defaults as DESIGN writes them (None: no default, or None)."""
    params = [
        p
        for p in inspect.signature(func).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    assert [p.name for p in params][: len(expected)] == list(expected)
    for param in params[: len(expected)]:
        default = None if param.default is param.empty else param.default
        assert default == expected[param.name], param.name


# -- §3 manual_retry ---------------------------------------------------------------------------
def test_manual_retry_with_its_defaults_sleeps_1_2_4_and_reraises_the_last_error() -> None:
    calls: list[int] = []
    sleeps: list[float] = []

    def fail() -> None:
        calls.append(len(calls) + 1)
        raise ApiOperationError(f"attempt {len(calls)}", "fix")

    with pytest.raises(ApiOperationError, match="attempt 4"):
        manual_retry(fail, sleep=sleeps.append)
    assert calls == [1, 2, 3, 4]
    assert sleeps == [1.0, 2.0, 4.0]


@pytest.mark.parametrize("error", [ConfigurationError, ValidationError, ApiAuthenticationError])
def test_manual_retry_never_retries_permanent_errors_even_with_a_budget(
    error: type[Exception],
) -> None:
    calls: list[int] = []
    sleeps: list[float] = []

    def fail() -> None:
        calls.append(1)
        raise error("permanent", "fix")

    with pytest.raises(error):
        manual_retry(fail, max_retries=5, backoff=1.5, sleep=sleeps.append)
    assert (len(calls), sleeps) == (1, [])


def test_manual_retry_retries_other_helpful_errors() -> None:
    outcomes: list[Any] = [FileOperationError("busy", "wait"), OSError("flaky"), "done"]
    sleeps: list[float] = []

    def work() -> Any:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    assert manual_retry(work, max_retries=2, backoff=3.0, sleep=sleeps.append) == "done"
    assert sleeps == [1.0, 3.0]


# -- §3 ORG_ID / ENV_TYPE and injection --------------------------------------------------------
@pytest.mark.parametrize(
    ("org", "env"), [("acme_2", "prod"), ("acme.eu", "test.1"), ("ACME", "Prod"), ("42", "e_2")]
)
def test_plain_names_with_letters_digits_underscores_and_dots_are_accepted(
    project: Project, org: str, env: str
) -> None:
    project.write_config({"global": {"api-base-url": "https://a.example.com"}}, org, env)
    run = project.run("probe", org, env, env={"PROBE_REQUIRE_TOKEN": "0"})
    assert run.code == 0, run
    config = run.report()["config"]
    assert (config["_org_id"], config["_env_type"], config["_token"]) == (org, env, None)


@pytest.mark.parametrize("key", ["_org_id", "_env_type", "_token", "_client_secret"])
def test_a_config_cannot_carry_an_injected_key(project: Project, key: str) -> None:
    """Validation runs on the file as written, before the runner injects its own keys."""
    project.write_config({"global": {"api-base-url": "https://a.example.com"}, key: "x"})
    run = project.run("probe", "acme", "test", env={"PROBE_REQUIRE_TOKEN": "0"})
    assert run.code == 2, run
    assert key in run.stderr
    assert "Traceback" not in run.stderr


def test_injected_values_replace_nothing_and_defaults_are_filled(project: Project) -> None:
    project.write_config({"global": {"api-base-url": "https://a.example.com"}})
    project.write_secrets({"client-secret": "s3cret-value-long", "az-token": "Bearer tok-12345"})
    run = project.run("probe", "acme", "test")
    assert run.code == 0, run
    config = run.report()["config"]
    assert config["_token"] == "tok-12345"
    assert config["_client_secret"] == "s3cret-value-long"
    assert config["script-behavior"]["retry-strategy"]["max-retries"] == 3
    assert config["script-behavior"]["retry-strategy"]["max-wait-seconds"] == 300
    assert "client-secret" not in config and "az-token" not in config


# -- §5 running --------------------------------------------------------------------------------
def test_make_run_creates_the_virtual_environment_on_first_use(tmp_path: Path) -> None:
    venv = tmp_path / "fresh-venv"
    done = subprocess.run(
        ["make", "-n", "run", "SCRIPT=report", "ORG=acme", "ENV=prod", f"VENV={venv}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=MAKE_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = [line.rstrip() for line in done.stdout.splitlines()]
    venv_line = lines.index(f"test -x {venv}/bin/python || python3 -m venv {venv}")
    run_line = lines.index(f"{venv}/bin/python -m src.report acme prod")
    assert venv_line < run_line


def test_make_run_uses_an_existing_environment_without_rebuilding_it() -> None:
    done = subprocess.run(
        ["make", "-n", "run", "SCRIPT=report", "ORG=acme", "ENV=prod"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=MAKE_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "-m venv" not in done.stdout
    assert ".venv/bin/python -m src.report acme prod" in [
        line.rstrip() for line in done.stdout.splitlines()
    ]


def test_the_seed_example_is_the_shipped_example_config() -> None:
    """``config/org-env-config_example.json`` holds at least every key of DESIGN §4's example."""
    shipped = json.loads((ROOT / "config" / "org-env-config_example.json").read_text())
    seed_keys = {
        "global": {"api-base-url", "api-version", "tenant-id", "client-id", "oauth-scope"},
        "script-behavior": {
            "api-delay-seconds",
            "api-timeouts",
            "retry-strategy",
            "jitter",
            "rate-limiting",
            "circuit-breaker",
            "batch-handling",
        },
    }
    for section, keys in seed_keys.items():
        assert keys <= set(shipped[section]), section


# -- §3 HTTP edges -----------------------------------------------------------------------------
@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_with_no_retry_left_fails_without_waiting(
    wiremock: WireMock, status: int
) -> None:
    """No budget left: waiting for the hint would only delay the same failure."""
    always(wiremock, "GET", "/api/r", respond(status, headers={"Retry-After": "1"}))
    started = time.monotonic()
    with (
        client(wiremock, {"retry-strategy": {"max-retries": 0}}) as api,
        pytest.raises(ApiOperationError) as caught,
    ):
        api.get("r")
    assert time.monotonic() - started < NO_WAIT_SECONDS
    assert wiremock.count("GET", "/api/r") == 1
    assert caught.value.status_code == status
    if status == 429:
        assert isinstance(caught.value, ApiRateLimitError)
        assert caught.value.retry_after == 1.0


def test_disabled_rate_limiting_does_not_pace_requests(wiremock: WireMock) -> None:
    always(wiremock, "GET", "/api/r", respond(200, {"ok": True}))
    behavior = {"rate-limiting": {"enabled": False, "calls-per-second": 1, "burst-size": 1}}
    started = time.monotonic()
    with client(wiremock, behavior) as api:
        for _ in range(4):
            api.get("r")
    assert time.monotonic() - started < NO_WAIT_SECONDS
    assert wiremock.count("GET", "/api/r") == 4


def test_enabled_rate_limiting_paces_requests_as_the_server_sees_them(wiremock: WireMock) -> None:
    always(wiremock, "GET", "/api/r", respond(200, {"ok": True}))
    behavior = {"rate-limiting": {"enabled": True, "calls-per-second": 10, "burst-size": 2}}
    with client(wiremock, behavior) as api:
        for _ in range(6):
            api.get("r")
    stamps = stamps_ms(wiremock, "GET", "/api/r")
    assert len(stamps) == 6
    # burst 2, then one every 100 ms: the last starts no earlier than 400 ms after the first
    assert stamps[-1] - stamps[0] >= 400 - CLOCK_SLACK_MS


def test_api_delay_applies_to_pages_and_polls(wiremock: WireMock) -> None:
    base = f"{wiremock.base_url}/api"
    always(
        wiremock, "GET", "/api/p1", respond(200, {"value": [1], "@odata.nextLink": f"{base}/p2"})
    )
    always(wiremock, "GET", "/api/p2", respond(200, {"value": [2]}))
    always(wiremock, "POST", "/api/job", respond(202, headers={"Location": "job/1"}))
    always(wiremock, "GET", "/api/job/1", respond(200, {"done": True}))
    with client(wiremock, {"api-delay-seconds": 0.2}) as api:
        assert api.get_all("p1") == [1, 2]
        assert api.post("job", {"x": 1}) == {"done": True}
    for path in ("/api/p1", "/api/p2", "/api/job", "/api/job/1"):
        assert wiremock.count("ANY", path) == 1
    gaps = gaps_ms(wiremock)
    assert len(gaps) == 3
    assert min(gaps) >= 200 - CLOCK_SLACK_MS


@pytest.mark.parametrize(("status", "body"), [(204, None), (200, ""), (200, "plain text")])
def test_empty_body_is_none_and_other_text_is_returned_as_text(
    wiremock: WireMock, status: int, body: str | None
) -> None:
    response = {"status": status, "headers": {"Content-Type": "text/plain"}}
    if body is not None:
        response["body"] = body
    always(wiremock, "DELETE", "/api/r", response)
    with client(wiremock) as api:
        assert api.delete("r") == (body or None)


def test_401_on_post_refreshes_once_and_resends_the_same_body(wiremock: WireMock) -> None:
    token_url = f"{wiremock.base_url}/idp/token"
    always(
        wiremock,
        "POST",
        "/idp/token",
        respond(200, {"access_token": "fresh-token-7c1d", "expires_in": 3600}),
    )
    sequence(wiremock, "POST", "/api/things", [respond(401), respond(201, {"id": 7})])
    config = contract_config(f"{wiremock.base_url}/api")
    config["global"].update(
        {"oauth-token-url": token_url, "client-id": "cid", "oauth-scope": "api/.default"}
    )
    config["_client_secret"] = "contract-secret-1234"
    with create_rest_api(config) as api:
        assert api.post("things", {"name": "ä"}) == {"id": 7}
    first, second = wiremock.find("POST", "/api/things")
    assert first["body"] == second["body"]
    assert json.loads(second["body"]) == {"name": "ä"}
    assert header(second, "Authorization") == "Bearer fresh-token-7c1d"
    assert wiremock.count("POST", "/idp/token") == 1


# -- §3 run summary on failure -----------------------------------------------------------------
def test_failed_run_still_logs_one_summary_with_the_real_counts(
    project: Project, wiremock: WireMock
) -> None:
    behavior = {
        "api-delay-seconds": 0,
        "retry-strategy": {"max-retries": 3, "backoff-factor": 0.01},
        "rate-limiting": {"enabled": False},
        "circuit-breaker": {"enabled": True, "failure-threshold": 2, "timeout-seconds": 60},
    }
    project.write_config(
        {"global": {"api-base-url": f"{wiremock.base_url}/api"}, "script-behavior": behavior}
    )
    project.write_secrets({"az-token": "Bearer summary-token-91ab"})
    always(wiremock, "GET", "/api/items", respond(500, {"error": "down"}))
    run = project.run("contract_script", "acme", "test", env={"CONTRACT_ACTION": "api"})
    assert run.code == 4, run
    assert wiremock.count("ANY") == 2
    summary = [line for line in run.stderr.splitlines() if "Run summary" in line]
    assert len(summary) == 1, run.stderr
    for part in ("exit 4", "API calls 2", "429s 0", "breaker opens 1", "files written 0"):
        assert part in summary[0], summary[0]
    assert "Traceback" not in run.stderr
    assert "summary-token-91ab" not in run.stderr + project.log_text()


LOAD_WITHOUT_VALIDATION = (
    "import json, sys\n"
    "from utils.script_runner import parse_args_and_load_config\n"
    "config = parse_args_and_load_config('x', require_token=False, validate_config=False,"
    " argv=sys.argv[1:])\n"
    "print(json.dumps(config))\n"  # config['_args'] is a Namespace that dumps as a dict
)


def test_validate_config_false_skips_the_schema_but_still_fills_defaults(
    project: Project,
) -> None:
    project.write_config(
        {
            "global": {"api-base-url": "https://a.example.com", "legacy_key": 1},
            "script-behavior": {"retry-strategy": {"max-retries": 7}},
        }
    )
    done = subprocess.run(
        [sys.executable, "-c", LOAD_WITHOUT_VALIDATION, "acme", "test"],
        cwd=project.root,
        env=project.environment(None),
        capture_output=True,
        text=True,
        timeout=MAKE_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    config = json.loads(done.stdout.strip().splitlines()[-1])
    assert config["global"]["legacy_key"] == 1
    assert config["script-behavior"]["retry-strategy"] == {
        "max-retries": 7,
        "backoff-factor": 2.0,
        "max-wait-seconds": 300,
        "idempotency-keys": False,
    }
    assert (config["_org_id"], config["_env_type"], config["_token"]) == ("acme", "test", None)


# -- §5 make demo ------------------------------------------------------------------------------
DEMO_TIMEOUT = 120
DEMO_FILES = ["Makefile", "pyproject.toml", "requirements.lock"]
DEMO_TREES = ["utils", "src", "schemas", "mock-api", "config"]


def test_make_demo_runs_the_report_against_the_demo_api_with_nothing_to_set_up(
    tmp_path: Path,
) -> None:
    """A fresh checkout (no secrets file, no output) on a free port, as the README describes."""
    tree = tmp_path / "checkout"
    skip = shutil.ignore_patterns("__pycache__", "*-config-secrets.json")
    for name in DEMO_TREES:
        shutil.copytree(ROOT / name, tree / name, ignore=skip)
    for name in DEMO_FILES:
        shutil.copy2(ROOT / name, tree / name)
    (tree / "tools").mkdir()
    (tree / "tools" / "__init__.py").touch()
    shutil.copy2(ROOT / "tools" / "wiremock_server.py", tree / "tools" / "wiremock_server.py")
    port = free_port()
    demo_config = tree / "config" / "demo-test-config.json"
    demo_config.write_text(demo_config.read_text().replace(":8089/", f":{port}/"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TXO_", "PYTHON"))}
    env["TXO_WIREMOCK_MODE"] = "jar"
    done = subprocess.run(
        ["make", "demo", f"VENV={ROOT / '.venv'}", f"DEMO_PORT={port}"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    outputs = sorted(p.name for p in (tree / "output").iterdir())
    assert sorted((name.split("_")[0], Path(name).suffix) for name in outputs) == [
        ("demo-test-report", ".xlsx"),
        ("demo-test-report-summary", ".json"),
    ]
    assert "Run summary: exit 0" in done.stderr
    with socket.socket() as probe:  # the demo API was stopped again
        assert probe.connect_ex(("127.0.0.1", port)) != 0
