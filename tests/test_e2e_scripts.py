"""End to end: real batch scripts written as the README shows, run as real subprocesses.

Each script in ``tests/e2e_scripts/`` is copied into ``src/`` of a scratch copy of the project
(``make_project``), so the real ``src/`` and ``config/`` are untouched, and run as
``python -m src.<name> acme test`` against a real WireMock that serves both the API (under
``/api``) and the OAuth2 token endpoint (``global.oauth-token-url``), with the client secret
in the secrets file. The assertions are on what crosses module boundaries: what the server
saw (journal), the files as they load back, the exit code, stderr and the run summary.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.support_scripts import Project, make_project
from tools.wiremock_server import WireMock, free_port

SCRIPTS = Path(__file__).resolve().parent / "e2e_scripts"
RUN_TIMEOUT = 60
SIGNAL_WAIT = 30
ORG, ENV = "acme", "test"
CLIENT_ID = "e2e-client-id"
CLIENT_SECRET = "e2e-Client-Secret-q8Zr2"
TOKEN_A = "e2e-token-A-7hK3mP9x"
TOKEN_B = "e2e-token-B-4nW8vT2y"
TOKEN_PATH = "/oauth/token"
CALLS_PER_SECOND = 20
BURST = 2
FAST_BEHAVIOR: dict[str, Any] = {
    "api-delay-seconds": 0,
    "api-timeouts": {"rest-timeout-seconds": 2, "async-max-wait": 5, "async-poll-interval": 0.05},
    "retry-strategy": {"max-retries": 2, "backoff-factor": 0.01, "max-wait-seconds": 5},
    "jitter": {"min-factor": 1.0, "max-factor": 1.0},
    "rate-limiting": {"enabled": True, "calls-per-second": 100, "burst-size": 5},
    "circuit-breaker": {"enabled": True, "failure-threshold": 5, "timeout-seconds": 30},
    "batch-handling": {"read-batch-size": 20, "update-batch-size": 10},
}
SUMMARY = re.compile(
    r"Run summary: exit (?P<exit>\d+) .*? · API calls (?P<calls>\d+) · retries (?P<retries>\d+)"
    r" · 429s (?P<r429>\d+) · breaker opens (?P<opens>\d+) · files written (?P<files>\d+)"
)


# -- the project, the config, the run ------------------------------------------------------
class E2EProject(Project):
    """A scratch project whose ``src/`` holds the e2e scripts, run as ``python -m src.X``."""

    def command(self, script: str, *args: str) -> list[str]:
        return [sys.executable, "-m", f"src.{script}", *args]

    def run_script(self, script: str, *args: str) -> E2ERun:
        """Run ``src.<script> acme test *args`` to its end."""
        done = subprocess.run(
            self.command(script, ORG, ENV, *args),
            cwd=self.root,
            env=self.environment(None),
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
        return E2ERun(done.returncode, done.stdout, done.stderr, self)

    def output_files(self) -> list[Path]:
        folder = self.root / "output"
        return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


class E2ERun:
    """Outcome of one script run, with its run summary parsed."""

    def __init__(self, code: int, stdout: str, stderr: str, project: E2EProject):
        self.code, self.stdout, self.stderr, self.project = code, stdout, stderr, project

    def summary(self) -> dict[str, int]:
        messages = []
        for line in self.stderr.splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                entry = line
            messages.append(entry["message"] if isinstance(entry, dict) else line)
        found = [m for m in map(SUMMARY.search, messages) if m]
        assert len(found) == 1, f"expected one run summary:\n{self.stderr}"
        return {k: int(v) for k, v in found[0].groupdict().items()}

    def __repr__(self) -> str:
        return f"E2ERun(code={self.code}, stderr=\n{self.stderr})"


@pytest.fixture
def proj(tmp_path: Path) -> E2EProject:
    """A scratch copy of the toolkit with the e2e scripts in ``src/``."""
    base = make_project(tmp_path / "proj")
    (base.root / "src").mkdir()
    (base.root / "src" / "__init__.py").touch()
    for script in SCRIPTS.glob("*.py"):
        shutil.copy(script, base.root / "src" / script.name)
    return E2EProject(base.root)


def write_config(
    proj: E2EProject,
    wiremock: WireMock,
    behavior: dict[str, Any] | None = None,
    api_base: str | None = None,
) -> None:
    """Config for ``{wiremock}/api`` with the token endpoint on WireMock; secrets file too."""
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in FAST_BEHAVIOR.items()}
    for key, value in (behavior or {}).items():
        merged[key] = {**merged[key], **value} if isinstance(value, dict) else value
    proj.write_config(
        {
            "global": {
                "api-base-url": api_base or f"{wiremock.base_url}/api",
                "client-id": CLIENT_ID,
                "oauth-scope": "https://graph.example.com/.default",
                "oauth-token-url": f"{wiremock.base_url}{TOKEN_PATH}",
            },
            "script-behavior": merged,
        },
        ORG,
        ENV,
    )
    proj.write_secrets({"client-secret": CLIENT_SECRET}, ORG, ENV)


def json_response(body: Any, status: int = 200, **headers: str) -> dict[str, Any]:
    return {
        "status": status,
        "jsonBody": body,
        "headers": {"Content-Type": "application/json", **headers},
    }


def stub_token(wiremock: WireMock, *tokens: str) -> None:
    """The token endpoint: hands out ``tokens`` in order (the last one from then on)."""
    for index, token in enumerate(tokens):
        mapping: dict[str, Any] = {
            "request": {
                "method": "POST",
                "urlPath": TOKEN_PATH,
                "bodyPatterns": [
                    {"contains": "grant_type=client_credentials"},
                    {"contains": f"client_secret={CLIENT_SECRET}"},
                ],
            },
            "response": json_response(
                {"access_token": token, "token_type": "Bearer", "expires_in": 3600}
            ),
        }
        if len(tokens) > 1:
            mapping["scenarioName"] = "token"
            mapping["requiredScenarioState"] = "Started" if index == 0 else f"t{index}"
            if index + 1 < len(tokens):
                mapping["newScenarioState"] = f"t{index + 1}"
        wiremock.stub(mapping)


def bearer(token: str = TOKEN_A) -> dict[str, Any]:
    return {"Authorization": {"equalTo": f"Bearer {token}"}}


def api_requests(wiremock: WireMock) -> list[dict[str, Any]]:
    """The journal's requests to the API (not the token endpoint), oldest first."""
    return [r for r in wiremock.requests() if r["url"].startswith("/api/")]


def assert_clean_stderr(run: E2ERun) -> None:
    """A failure is the three-part message, never a traceback, on the console."""
    assert "Traceback" not in run.stderr, run.stderr
    assert "❌ Problem:" in run.stderr and "✅ Solution:" in run.stderr, run.stderr


def leftovers(proj: E2EProject) -> list[str]:
    """Temporary files left in output/ (hidden ``.tmp`` files, or anything hidden)."""
    return [p.name for p in proj.output_files() if p.name.startswith(".") or ".tmp" in p.name]


# -- 0. the scripts follow the README's patterns -------------------------------------------
def start_script(proj: E2EProject, script: str) -> subprocess.Popen[str]:
    """Start ``src/<script>.py`` for ORG/ENV in the project, stdout and stderr piped."""
    return subprocess.Popen(
        proj.command(script, ORG, ENV),
        cwd=proj.root,
        env=proj.environment(None),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def sigterm_after_requests(
    proj: E2EProject, wiremock: WireMock, script: str, method: str, count: int
) -> tuple[int, str, float]:
    """Run ``script``, SIGTERM it once the server saw ``count`` ``method`` requests.

    Returns:
        The exit code, stderr, and the seconds from the signal to the exit.
    """
    proc = start_script(proj, script)
    deadline = time.monotonic() + SIGNAL_WAIT
    while wiremock.count(method) < count and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    signalled = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=SIGNAL_WAIT)
    return proc.returncode, stderr, time.monotonic() - signalled


def test_scripts_pass_the_pattern_check() -> None:
    """The e2e scripts are written the way the README asks (``make check-patterns`` rules)."""
    done = subprocess.run(
        [sys.executable, "-m", "tools.check_patterns", str(SCRIPTS)],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# -- 1. Graph-style sync -------------------------------------------------------------------
USERS = 55
PAGE_CAP = 20
DEPARTMENTS = ["Sales", " sales ", "FINANCE", "Ops", "Research & Development", "ops"]


def user(number: int) -> dict[str, Any]:
    return {
        "id": f"u{number:03d}",
        "displayName": "=1+2" if number == 7 else f"Ünïcode Üser {number}",
        "createdDateTime": f"2025-0{1 + number % 9}-1{number % 10}T0{number % 10}:30:00Z",
        "department": DEPARTMENTS[number % len(DEPARTMENTS)],
        "score": number * 1.5,
        "active": number % 2 == 0,
    }


def stub_users(wiremock: WireMock, count: int = USERS, cap: int = PAGE_CAP) -> list[dict]:
    """``/api/users`` with ``@odata.nextLink`` pages of at most ``cap`` whatever $top asks."""
    records = [user(n) for n in range(count)]
    pages = [records[i : i + cap] for i in range(0, count, cap)]
    for index, page in enumerate(pages):
        body: dict[str, Any] = {"value": page}
        if index + 1 < len(pages):
            body["@odata.nextLink"] = (
                f"{wiremock.base_url}/api/users?$top={cap}&$skiptoken=p{index + 1}"
            )
        query = (
            {"$skiptoken": {"equalTo": f"p{index}"}}
            if index
            else {"$skiptoken": {"absent": True}, "$top": {"equalTo": "100"}}
        )
        wiremock.stub(
            {
                "request": {
                    "method": "GET",
                    "urlPath": "/api/users",
                    "queryParameters": query,
                    "headers": bearer(),
                },
                "response": json_response(body),
            }
        )
    return records


def test_graph_sync_pages_saves_and_patches_each_changed_record_once(
    proj: E2EProject, wiremock: WireMock
) -> None:
    write_config(proj, wiremock)
    stub_token(wiremock, TOKEN_A)
    records = stub_users(wiremock)
    wiremock.stub(
        {
            "request": {"method": "PATCH", "urlPathPattern": "/api/users/u[0-9]+"},
            "response": {"status": 204},
        }
    )
    # one record is throttled once: 429 then the 204 above
    throttled = next(r["id"] for r in records if r["department"] != r["department"].strip())
    wiremock.stub(
        {
            "priority": 1,
            "scenarioName": "throttle",
            "requiredScenarioState": "Started",
            "newScenarioState": "done",
            "request": {"method": "PATCH", "urlPath": f"/api/users/{throttled}"},
            "response": {"status": 429},
        }
    )

    run = proj.run_script("graph_sync")

    assert run.code == 0, run
    expected = pd.DataFrame(records)
    expected["department"] = expected["department"].str.strip().str.title()
    changed = expected[expected["department"] != pd.DataFrame(records)["department"]]
    assert 0 < len(changed) < USERS
    # the server: every page once, every changed record patched once (twice for the 429 one)
    pages = math.ceil(USERS / PAGE_CAP)
    assert wiremock.count("GET", "/api/users") == pages
    patches = wiremock.find("PATCH")
    per_id = Counter(p["url"].rsplit("/", 1)[1] for p in patches)
    assert set(per_id) == set(changed["id"])
    assert per_id == Counter({**dict.fromkeys(changed["id"], 1), throttled: 2})
    for patch in patches:
        uid = patch["url"].rsplit("/", 1)[1]
        assert json.loads(patch["body"]) == {
            "department": changed.set_index("id").loc[uid, "department"]
        }
        assert patch["headers"]["Authorization"] == f"Bearer {TOKEN_A}"
    assert wiremock.count("POST", TOKEN_PATH) == 1
    # the files: four reports and the summary, whole, each loading back to the same data
    names = sorted(p.name for p in proj.output_files())
    stamp = re.compile(rf"^{ORG}-{ENV}-users_\d{{4}}-\d\d-\d\dT\d{{4}}Z\.(csv|xlsx|parquet|json)$")
    reports = [n for n in names if stamp.match(n)]
    assert len(reports) == 4, names
    assert len(names) == 5 and not leftovers(proj), names
    out = proj.root / "output"
    expected["changed"] = expected["id"].isin(changed["id"])
    loaded = {
        "csv": pd.read_csv(next(out.glob("*users_*.csv"))),
        "xlsx": pd.read_excel(next(out.glob("*users_*.xlsx"))),
        "parquet": pd.read_parquet(next(out.glob("*users_*.parquet"))),
        "json": pd.DataFrame(json.loads(next(out.glob("*users_*.json")).read_text())),
    }
    expected["createdDateTime"] = pd.to_datetime(expected["createdDateTime"], utc=True)
    for ext, frame in loaded.items():
        created = pd.to_datetime(frame["createdDateTime"], utc=True)  # xlsx: naive UTC
        frame = frame.assign(createdDateTime=created.dt.as_unit("ns"))
        pd.testing.assert_frame_equal(
            frame.reset_index(drop=True),
            expected.assign(createdDateTime=expected["createdDateTime"].dt.as_unit("ns")),
            check_dtype=False,
            obj=ext,
        )
    assert loaded["xlsx"].loc[7, "displayName"] == "=1+2"  # text, never a formula
    summary_file = next(out.glob("*sync-summary_*.json"))
    assert json.loads(summary_file.read_text()) == {"read": USERS, "patched": len(changed)}
    # the run summary agrees with the journal
    summary = run.summary()
    assert summary["calls"] == len(api_requests(wiremock)) == pages + len(changed) + 1
    assert (summary["retries"], summary["r429"], summary["opens"]) == (1, 1, 0)
    assert summary["files"] == 5
    logs = [p.name for p in (proj.root / "logs").glob("*.log")]
    assert len(logs) == 1 and logs[0].startswith(f"{ORG}-{ENV}-graph_sync_"), logs


# -- 2. push job: 429, 503, 202, expired token; no secret anywhere --------------------------
def stub_push_job(wiremock: WireMock) -> None:
    """status (401 with token A), orders (429 then 201), inventory (503 ×2), exports (202)."""
    stub_token(wiremock, TOKEN_A, TOKEN_B)
    wiremock.stub(
        {
            "request": {"method": "GET", "urlPath": "/api/status", "headers": bearer(TOKEN_A)},
            "response": json_response(
                {"error": {"code": "InvalidAuthenticationToken", "message": "token expired"}},
                status=401,
            ),
        }
    )
    wiremock.stub(
        {
            "request": {"method": "GET", "urlPath": "/api/status", "headers": bearer(TOKEN_B)},
            "response": json_response({"ok": True}),
        }
    )
    sequence = [
        ("POST", "/api/orders", "orders", [{"status": 429, "headers": {"Retry-After": "1"}}]),
        ("PUT", "/api/inventory/A-1", "stock", [{"status": 503}, {"status": 503}]),
    ]
    finals = {
        "/api/orders": json_response({"orderId": 1001}, status=201),
        "/api/inventory/A-1": json_response({"level": 17}),
    }
    for method, path, scenario, failures in sequence:
        for index, failure in enumerate(failures):
            wiremock.stub(
                {
                    "scenarioName": scenario,
                    "requiredScenarioState": "Started" if index == 0 else f"s{index}",
                    "newScenarioState": f"s{index + 1}",
                    "request": {"method": method, "urlPath": path, "headers": bearer(TOKEN_B)},
                    "response": failure,
                }
            )
        wiremock.stub(
            {
                "scenarioName": scenario,
                "requiredScenarioState": f"s{len(failures)}",
                "request": {"method": method, "urlPath": path, "headers": bearer(TOKEN_B)},
                "response": finals[path],
            }
        )
    wiremock.stub(
        {
            "request": {"method": "POST", "urlPath": "/api/exports", "headers": bearer(TOKEN_B)},
            "response": json_response({"status": "queued"}, 202, Location="export-jobs/42"),
        }
    )
    wiremock.stub(
        {
            "scenarioName": "export",
            "requiredScenarioState": "Started",
            "newScenarioState": "ready",
            "request": {
                "method": "GET",
                "urlPath": "/api/export-jobs/42",
                "headers": bearer(TOKEN_B),
            },
            # a poll's 202 without Location: polled again at the same URL
            "response": json_response({"status": "running"}, 202),
        }
    )
    wiremock.stub(
        {
            "scenarioName": "export",
            "requiredScenarioState": "ready",
            "request": {
                "method": "GET",
                "urlPath": "/api/export-jobs/42",
                "headers": bearer(TOKEN_B),
            },
            "response": json_response({"status": "done", "rows": 3}),
        }
    )


@pytest.mark.parametrize(("log_format", "level"), [("text", "INFO"), ("json", "DEBUG")])
def test_push_job_survives_429_503_202_and_token_expiry_without_leaking(
    proj: E2EProject, wiremock: WireMock, log_format: str, level: str
) -> None:
    write_config(proj, wiremock)
    stub_push_job(wiremock)

    run = proj.run_script("push_job", "--log-format", log_format, "--log-level", level)

    assert run.code == 0, run
    assert wiremock.count("POST", TOKEN_PATH) == 2
    assert [(r["method"], r["url"]) for r in api_requests(wiremock)] == [
        ("GET", "/api/status"),
        ("GET", "/api/status"),
        ("POST", "/api/orders"),
        ("POST", "/api/orders"),
        ("PUT", "/api/inventory/A-1"),
        ("PUT", "/api/inventory/A-1"),
        ("PUT", "/api/inventory/A-1"),
        ("POST", "/api/exports"),
        ("GET", "/api/export-jobs/42"),
        ("GET", "/api/export-jobs/42"),
    ]
    orders = wiremock.find("POST", "/api/orders")
    assert orders[1]["loggedDate"] - orders[0]["loggedDate"] >= 1000  # Retry-After: 1 honoured
    (saved,) = proj.output_files()
    assert json.loads(saved.read_text()) == {
        "status": {"ok": True},
        "order": {"orderId": 1001},
        "stock": {"level": 17},
        "export": {"status": "done", "rows": 3},
    }
    summary = run.summary()
    assert summary["calls"] == 10
    assert (summary["retries"], summary["r429"], summary["files"]) == (3, 1, 1)
    if log_format == "json":
        lines = [json.loads(line) for line in run.stderr.splitlines() if line.strip()]
        assert all(isinstance(line, dict) and "message" in line for line in lines)
        assert any("Loaded config" in line["message"] for line in lines)  # DEBUG on the console
    # no secret anywhere a person or a log shipper could see it
    log_text = proj.log_text()
    assert "Loaded config" in log_text  # the careless DEBUG line reached the file, redacted
    places = {"stdout": run.stdout, "stderr": run.stderr, "log": log_text}
    places.update({p.name: p.read_text(errors="replace") for p in proj.output_files()})
    for where, text in places.items():
        for secret in (CLIENT_SECRET, TOKEN_A, TOKEN_B):
            assert secret not in text, f"{secret} in {where}"


# -- 3. failure paths as cron and Kubernetes see them ---------------------------------------
def test_api_down_exits_4_with_a_helpful_message(proj: E2EProject, wiremock: WireMock) -> None:
    write_config(proj, wiremock, api_base=f"http://127.0.0.1:{free_port()}/api")
    stub_token(wiremock, TOKEN_A)

    run = proj.run_script("users_report")

    assert run.code == 4, run
    assert_clean_stderr(run)
    summary = run.summary()
    retries = FAST_BEHAVIOR["retry-strategy"]["max-retries"]
    assert (summary["exit"], summary["calls"], summary["retries"]) == (4, 1 + retries, retries)
    assert proj.output_files() == []


def test_breaker_opening_mid_run_exits_4_and_stops_calling(
    proj: E2EProject, wiremock: WireMock
) -> None:
    write_config(
        proj,
        wiremock,
        {
            "retry-strategy": {"max-retries": 1},
            "circuit-breaker": {"failure-threshold": 3, "timeout-seconds": 30},
        },
    )
    stub_token(wiremock, TOKEN_A)
    wiremock.stub(
        {
            "request": {"method": "GET", "urlPathPattern": "/api/items/[0-9]+"},
            "response": json_response({"error": "down"}, status=500),
        }
    )

    run = proj.run_script("item_checker")

    assert run.code == 4, run
    assert_clean_stderr(run)
    # item 1: 2 attempts; item 2: 1 attempt opens the breaker, its retry fails at once
    assert wiremock.count("GET", "/api/items/1") == 2
    assert wiremock.count("GET", "/api/items/2") == 1
    assert len(api_requests(wiremock)) == 3
    summary = run.summary()
    assert (summary["calls"], summary["opens"]) == (3, 1)


def test_token_endpoint_refusal_exits_3_without_the_secret(
    proj: E2EProject, wiremock: WireMock
) -> None:
    write_config(proj, wiremock)
    wiremock.stub(
        {
            "request": {"method": "POST", "urlPath": TOKEN_PATH},
            "response": json_response(
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided.",
                },
                status=400,
            ),
        }
    )

    run = proj.run_script("users_report")

    assert run.code == 3, run
    assert_clean_stderr(run)
    assert "invalid_client" in run.stderr
    assert wiremock.count("POST", TOKEN_PATH) == 1  # a refusal is not retried
    assert api_requests(wiremock) == []
    assert CLIENT_SECRET not in run.stderr + proj.log_text()


def test_file_written_then_stream_fails_leaves_first_file_whole_and_no_temp(
    proj: E2EProject, wiremock: WireMock
) -> None:
    write_config(proj, wiremock)
    stub_token(wiremock, TOKEN_A)
    customers = [{"id": n, "name": f"C{n}"} for n in range(7)]
    wiremock.stub({"request": {"urlPath": "/api/customers"}, "response": json_response(customers)})
    wiremock.stub(
        {
            "request": {"urlPath": "/api/invoices", "queryParameters": {"p": {"absent": True}}},
            "response": json_response(
                {"value": [{"id": 1}, {"id": 2}], "@odata.nextLink": "invoices?p=2"}
            ),
        }
    )
    wiremock.stub(
        {
            "request": {"urlPath": "/api/invoices", "queryParameters": {"p": {"equalTo": "2"}}},
            "response": json_response({"error": "not found"}, status=404),
        }
    )

    run = proj.run_script("write_then_fail")

    assert run.code == 4, run
    assert_clean_stderr(run)
    assert [p.name for p in proj.output_files()] == ["customers.csv"]
    assert pd.read_csv(proj.root / "output" / "customers.csv").to_dict("records") == customers
    assert wiremock.count("GET", "/api/invoices") == 2
    assert run.summary()["files"] == 1


def test_sigterm_during_a_long_paging_loop_exits_143_with_summary(
    proj: E2EProject, wiremock: WireMock
) -> None:
    write_config(proj, wiremock)
    stub_token(wiremock, TOKEN_A)
    pages = 40
    for number in range(pages):
        body: dict[str, Any] = {"value": [{"event": number * 10 + k} for k in range(10)]}
        if number + 1 < pages:
            body["@odata.nextLink"] = f"events?page={number + 1}"
        query = {"page": {"equalTo": str(number)}} if number else {"page": {"absent": True}}
        response = json_response(body)
        response["fixedDelayMilliseconds"] = 150
        wiremock.stub(
            {
                "request": {"urlPath": "/api/events", "queryParameters": query},
                "response": response,
            }
        )

    proc = start_script(proj, "long_pager")
    assert proc.stderr is not None
    seen = []
    deadline = time.monotonic() + SIGNAL_WAIT
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        seen.append(line)
        if "Page 3 read" in line or (not line and proc.poll() is not None):
            break
    proc.send_signal(signal.SIGTERM)
    _, rest = proc.communicate(timeout=SIGNAL_WAIT)
    stderr = "".join(seen) + rest

    assert proc.returncode == 143, stderr
    run = E2ERun(proc.returncode, "", stderr, proj)
    assert run.summary()["exit"] == 143
    assert "Traceback" not in stderr
    assert [p.name for p in proj.output_files()] == ["started.csv"]  # no partial, no temp
    assert wiremock.count("GET", "/api/events") < pages


def test_forgotten_get_path_with_dotdot_exits_5(proj: E2EProject, wiremock: WireMock) -> None:
    write_config(proj, wiremock)

    run = proj.run_script("forgot_get_path")

    assert run.code == 5, run
    assert_clean_stderr(run)
    assert not (proj.root / "x.json").exists()
    assert wiremock.requests() == []


def tidy(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain dicts, every missing value as None (dtypes aside)."""
    return [
        {k: (None if pd.isna(v) else v) for k, v in row.items()}
        for row in frame.astype(object).to_dict("records")
    ]


# -- 4. streaming pages into files ---------------------------------------------------------
STREAM_RECORDS = 3000
STREAM_PAGE = 250


def test_streamed_pages_load_back_equal(proj: E2EProject, wiremock: WireMock) -> None:
    write_config(proj, wiremock)
    stub_token(wiremock, TOKEN_A)
    records = [
        {
            "id": n,
            "name": f'rec-{n}-é,"q"',
            "amount": round(n * 0.37, 2),
            "flag": n % 3 == 0,
            "note": None if n < STREAM_PAGE else f"n{n}",
        }
        for n in range(STREAM_RECORDS)
    ]
    pages = [records[i : i + STREAM_PAGE] for i in range(0, STREAM_RECORDS, STREAM_PAGE)]
    for index, page in enumerate(pages):
        body: dict[str, Any] = {"value": page}
        if index + 1 < len(pages):
            body["@odata.nextLink"] = f"records?$skiptoken={index + 1}"
        query = (
            {"$skiptoken": {"equalTo": str(index)}} if index else {"$skiptoken": {"absent": True}}
        )
        wiremock.stub(
            {
                "request": {"urlPath": "/api/records", "queryParameters": query},
                "response": json_response(body),
            }
        )

    run = proj.run_script("stream_export")

    assert run.code == 0, run
    assert wiremock.count("GET", "/api/records") == 3 * len(pages)
    out = proj.root / "output"
    jsonl = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert jsonl == records
    expected = pd.DataFrame(records)
    csv = pd.read_csv(out / "records.csv", keep_default_na=False, na_values=[""])
    parquet = pd.read_parquet(out / "records.parquet")
    for name, frame in {"csv": csv, "parquet": parquet}.items():
        assert tidy(frame) == tidy(expected), name
    assert run.summary()["files"] == 3
    assert not leftovers(proj)


# -- 5. two threads, one client, one limiter ----------------------------------------------
def test_two_threads_share_one_client_and_one_rate_limit(
    proj: E2EProject, wiremock: WireMock
) -> None:
    write_config(
        proj,
        wiremock,
        {
            "rate-limiting": {
                "enabled": True,
                "calls-per-second": CALLS_PER_SECOND,
                "burst-size": BURST,
            }
        },
    )
    stub_token(wiremock, TOKEN_A)
    wiremock.stub(
        {
            "request": {"method": "GET", "urlPathPattern": "/api/ping/[ab]/[0-9]+"},
            "response": {
                "status": 200,
                "body": '{"pong": "{{request.path.[3]}}"}',
                "headers": {"Content-Type": "application/json"},
                "transformers": ["response-template"],
            },
        }
    )

    # warm WireMock's templating up, so the journal's times are arrival times, not start-up
    warm = wiremock.session.get(f"{wiremock.base_url}/api/ping/a/0", timeout=10)
    assert warm.json() == {"pong": "0"}
    wiremock.reset_journal()

    run = proj.run_script("two_threads")

    assert run.code == 0, run
    saved = json.loads((proj.root / "output" / "pings.json").read_text())
    assert saved["same_client"] is True
    calls = 15
    assert saved["a"] == [{"pong": str(n)} for n in range(calls)] == saved["b"]
    stamps = sorted(r["loggedDate"] / 1000 for r in api_requests(wiremock))
    assert len(stamps) == 2 * calls == run.summary()["calls"]
    slack = 0.03  # server-side timestamps: network and scheduling jitter
    for i in range(len(stamps)):
        for j in range(i, len(stamps)):
            started = j - i + 1
            allowed = BURST + CALLS_PER_SECOND * (stamps[j] - stamps[i] + slack)
            assert started <= allowed, (i, j, stamps[j] - stamps[i])
    assert stamps[-1] - stamps[0] >= (2 * calls - BURST) / CALLS_PER_SECOND - slack


# -- 6. more of what a demanding user meets ---------------------------------------------------
def test_parallel_patches_hitting_401_together_share_one_refresh(
    proj: E2EProject, wiremock: WireMock
) -> None:
    """The token expires under ``api.map``: 8 threads get 401 at once, one refresh serves all."""
    write_config(proj, wiremock)
    stub_token(wiremock, TOKEN_A, TOKEN_B)
    stub_users(wiremock)
    for token, status in ((TOKEN_A, 401), (TOKEN_B, 204)):
        wiremock.stub(
            {
                "request": {
                    "method": "PATCH",
                    "urlPathPattern": "/api/users/u[0-9]+",
                    "headers": bearer(token),
                },
                "response": {"status": status, "fixedDelayMilliseconds": 20},
            }
        )

    run = proj.run_script("graph_sync")

    assert run.code == 0, run
    assert wiremock.count("POST", TOKEN_PATH) == 2
    patches = wiremock.find("PATCH")
    with_b = Counter(p["url"] for p in patches if p["headers"]["Authorization"].endswith(TOKEN_B))
    with_a = Counter(p["url"] for p in patches if p["headers"]["Authorization"].endswith(TOKEN_A))
    assert set(with_b.values()) == {1} and set(with_a.values()) <= {1}
    assert set(with_a) <= set(with_b)
    summary = run.summary()
    assert summary["calls"] == len(api_requests(wiremock))
    assert summary["retries"] == 0  # the repeat after a 401 refresh is not a retry


def test_sigterm_during_parallel_patches_stops_fast_with_summary(
    proj: E2EProject, wiremock: WireMock
) -> None:
    """SIGTERM while ``api.map`` runs: exit 143 promptly, no new request after, no file."""
    write_config(proj, wiremock)
    stub_token(wiremock, TOKEN_A)
    wiremock.stub(
        {
            "request": {"method": "PATCH", "urlPathPattern": "/api/devices/[0-9]+"},
            "response": json_response({"ok": True}) | {"fixedDelayMilliseconds": 100},
        }
    )
    code, stderr, took = sigterm_after_requests(proj, wiremock, "bulk_patch", "PATCH", 10)

    assert code == 143, stderr
    assert took < 2, f"exit took {took:.1f}s after SIGTERM"
    assert E2ERun(143, "", stderr, proj).summary()["exit"] == 143
    sent = wiremock.count("PATCH")
    time.sleep(0.3)
    assert wiremock.count("PATCH") == sent < 200
    assert proj.output_files() == []


def test_breaker_opening_under_parallel_patches_bounds_the_requests(
    proj: E2EProject, wiremock: WireMock
) -> None:
    """503s under ``api.map`` (8 threads): the breaker opens; only calls in flight still land."""
    threshold, workers = 5, 8
    write_config(proj, wiremock, {"circuit-breaker": {"failure-threshold": threshold}})
    stub_token(wiremock, TOKEN_A)
    wiremock.stub(
        {
            "request": {"method": "PATCH", "urlPathPattern": "/api/devices/[0-9]+"},
            "response": {"status": 503, "fixedDelayMilliseconds": 30},
        }
    )

    run = proj.run_script("bulk_patch")

    assert run.code == 4, run
    assert_clean_stderr(run)
    sent = wiremock.count("PATCH")
    assert threshold <= sent <= threshold + workers - 1
    summary = run.summary()
    assert (summary["calls"], summary["opens"], summary["retries"]) == (sent, 1, 0)
    assert proj.output_files() == []


def stub_users_answer(wiremock: WireMock, response: dict[str, Any]) -> None:
    wiremock.stub({"request": {"method": "GET", "urlPath": "/api/users"}, "response": response})


@pytest.mark.parametrize(
    ("case", "code", "requests_seen"),
    [
        ("retry-after-too-long", 4, 1),  # Retry-After 600 > max-wait-seconds 5: fail at once
        ("read-timeout", 4, 2),  # 1 retry of a GET after a read timeout
        ("token-endpoint-down", 3, 0),
        ("server-echoes-token", 4, 1),  # a 400 quoting the Authorization header back
    ],
)
def test_failure_exit_codes_and_messages(
    proj: E2EProject, wiremock: WireMock, case: str, code: int, requests_seen: int
) -> None:
    behavior = {
        "retry-strategy": {"max-retries": 1},
        "api-timeouts": {"rest-timeout-seconds": 0.4},
    }
    write_config(proj, wiremock, behavior)
    stub_token(wiremock, TOKEN_A)
    if case == "retry-after-too-long":
        stub_users_answer(wiremock, {"status": 429, "headers": {"Retry-After": "600"}})
    elif case == "read-timeout":
        stub_users_answer(wiremock, json_response([]) | {"fixedDelayMilliseconds": 1500})
    elif case == "token-endpoint-down":
        config = json.loads((proj.root / "config" / f"{ORG}-{ENV}-config.json").read_text())
        config["global"]["oauth-token-url"] = f"http://127.0.0.1:{free_port()}/token"
        proj.write_config(config, ORG, ENV)
    else:
        stub_users_answer(
            wiremock,
            json_response(
                {"error": f"bad header 'Authorization: Bearer {TOKEN_A}' for {CLIENT_SECRET}"},
                status=400,
            ),
        )

    started = time.monotonic()
    run = proj.run_script("users_report", "--log-format", "json")

    assert run.code == code, run
    assert time.monotonic() - started < 15
    lines = [json.loads(line) for line in run.stderr.splitlines() if line.strip()]
    errors = [line["message"] for line in lines if line["level"] == "ERROR"]
    assert len(errors) == 1 and "❌ Problem:" in errors[0], run.stderr
    assert "Traceback" not in run.stderr
    assert len(api_requests(wiremock)) == requests_seen
    for text in (run.stderr, proj.log_text()):
        assert TOKEN_A not in text and CLIENT_SECRET not in text
    assert proj.output_files() == []


def test_next_links_are_followed_exactly_as_sent(proj: E2EProject, wiremock: WireMock) -> None:
    """Graph/BC skip tokens carry %2B, %3D, quotes and parentheses: sent back byte for byte."""
    write_config(proj, wiremock)
    stub_token(wiremock, TOKEN_A)
    raw_next = "/api/users?$filter=startswith(displayName,'A%20B')&$skiptoken=X%2BY%2FZ%3D%3D"
    wiremock.stub(
        {
            "request": {
                "urlPath": "/api/users",
                "queryParameters": {"$skiptoken": {"absent": True}},
            },
            "response": json_response(
                {"value": [user(1)], "@odata.nextLink": f"{wiremock.base_url}{raw_next}"}
            ),
        }
    )
    wiremock.stub(
        {
            "request": {
                "urlPath": "/api/users",
                "queryParameters": {"$skiptoken": {"equalTo": "X+Y/Z=="}},
            },
            "response": json_response({"value": [user(2)]}),
        }
    )

    run = proj.run_script("users_report")

    assert run.code == 0, run
    urls = [r["url"] for r in api_requests(wiremock)]
    assert urls == ["/api/users", raw_next]
    (saved,) = proj.output_files()
    assert pd.read_csv(saved)["id"].tolist() == ["u001", "u002"]


STAFF_PAGES = 12
STAFF_PAGE = 1000  # 12,000 rows: more than the CSV stream's first batch of 10,000


def test_streamed_csv_keeps_an_integer_column_integer_in_every_batch(
    proj: E2EProject, wiremock: WireMock
) -> None:
    """An optional integer field (null once, after the first batch) stays ``123``, not ``123.0``."""
    write_config(proj, wiremock)
    stub_token(wiremock, TOKEN_A)
    for index in range(STAFF_PAGES):
        page = [
            {
                "id": index * STAFF_PAGE + k,
                "managerId": None if (index, k) == (STAFF_PAGES - 1, 0) else k % 50 + 1,
            }
            for k in range(STAFF_PAGE)
        ]
        body: dict[str, Any] = {"value": page}
        if index + 1 < STAFF_PAGES:
            body["@odata.nextLink"] = f"staff?page={index + 1}"
        query = {"page": {"equalTo": str(index)}} if index else {"page": {"absent": True}}
        wiremock.stub(
            {
                "request": {"urlPath": "/api/staff", "queryParameters": query},
                "response": json_response(body),
            }
        )

    run = proj.run_script("managers_csv")

    assert run.code == 0, run
    rows = (proj.root / "output" / "staff.csv").read_text().splitlines()
    assert rows[0] == "id,managerId" and len(rows) == STAFF_PAGES * STAFF_PAGE + 1
    bad = [row for row in rows[1:] if not re.fullmatch(r"\d+,\d*", row)]
    assert bad == [], f"{len(bad)} rows like {bad[:2]}"


def test_sigterm_with_worker_threads_stops_api_traffic_and_exits_promptly(
    proj: E2EProject, wiremock: WireMock
) -> None:
    """Two threads share one client (rate 5/s): SIGTERM after 4 calls must end the traffic."""
    write_config(proj, wiremock, {"rate-limiting": {"calls-per-second": 5, "burst-size": 1}})
    stub_token(wiremock, TOKEN_A)
    wiremock.stub(
        {
            "request": {"method": "GET", "urlPathPattern": "/api/ping/[ab]/[0-9]+"},
            "response": json_response({"pong": True}),
        }
    )
    code, stderr, took = sigterm_after_requests(proj, wiremock, "two_threads", "GET", 4)

    assert code == 143, stderr
    summary = E2ERun(143, "", stderr, proj).summary()
    sent = len(api_requests(wiremock))
    # 30 calls at 5/s would take 6 s: a stopped run sends at most the calls already waiting
    assert took < 1.5 and sent <= summary["calls"] + 2, (took, sent, summary)


# -- 7. the README's own first script, verbatim, against the demo API ------------------------
README = Path(__file__).resolve().parent.parent / "README.md"
MOCK_API = Path(__file__).resolve().parent.parent / "mock-api"
DEMO_PORT_URL = "http://127.0.0.1:8089"


def readme_block(first_line: str) -> str:
    """The README's fenced python block whose first line is ``first_line``."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    (block,) = [b for b in blocks if b.startswith(first_line)]
    return block


def test_readme_customer_report_runs_as_documented(tmp_path: Path, wiremock: WireMock) -> None:
    """Save the README's ``src/customer_report.py`` as it stands and run it against the demo."""
    proj = E2EProject(make_project(tmp_path / "proj").root)
    (proj.root / "src").mkdir()
    (proj.root / "src" / "__init__.py").touch()
    script = proj.root / "src" / "customer_report.py"
    script.write_text(readme_block("# src/customer_report.py"), encoding="utf-8")
    for mapping in sorted(MOCK_API.glob("mappings/demo-*.json")):
        wiremock.stub(json.loads(mapping.read_text(encoding="utf-8")))
    config = (README.parent / "config" / "demo-test-config.json").read_text(encoding="utf-8")
    proj.write_config(config.replace(DEMO_PORT_URL, wiremock.base_url), "demo", "test")
    shutil.copy(
        proj.root / "config" / "demo-test-config-secrets_example.json",
        proj.root / "config" / "demo-test-config-secrets.json",
    )
    (proj.root / "config" / "demo-test-config-secrets.json").chmod(0o600)

    files = Path(wiremock.root_dir) / "__files"
    bodies = [shutil.copy(b, files / b.name) for b in MOCK_API.glob("__files/demo-*.json")]
    try:
        done = subprocess.run(
            proj.command("customer_report", "demo", "test"),
            cwd=proj.root,
            env=proj.environment(None),
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
            check=False,
        )
    finally:
        for body in bodies:
            Path(body).unlink()
    run = E2ERun(done.returncode, done.stdout, done.stderr, proj)

    assert run.code == 0, run
    assert "[txo] Read 64 customers" in run.stderr  # the README's example output
    summary = run.summary()
    assert (summary["calls"], summary["files"]) == (2, 1)
    (saved,) = proj.output_files()
    assert re.fullmatch(r"demo-test-customers_\d{4}-\d\d-\d\dT\d{4}Z\.csv", saved.name)
    assert len(pd.read_csv(saved)) == 64
    checked = subprocess.run(
        [sys.executable, "-m", "tools.check_patterns", str(script)],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout


# -- incremental pulls: the watermark example against the demo API's own mappings ----------------
MOCK_API = Path(__file__).resolve().parent.parent / "mock-api"
DEMO_URL = "http://127.0.0.1:8089"


def serve_demo_mappings(wiremock: WireMock) -> None:
    """Load every ``mock-api`` mapping into the shared WireMock, body files inlined."""
    for path in sorted((MOCK_API / "mappings").glob("demo-*.json")):
        mapping = json.loads(path.read_text(encoding="utf-8"))
        response = mapping["response"]
        if "bodyFileName" in response:
            body = MOCK_API / "__files" / response.pop("bodyFileName")
            response["body"] = body.read_text(encoding="utf-8")
        wiremock.stub(mapping)


def demo_customers() -> list[dict[str, Any]]:
    pages = sorted((MOCK_API / "__files").glob("demo-customers-page-*.json"))
    return [c for p in pages for c in json.loads(p.read_text(encoding="utf-8"))["value"]]


def test_sync_customers_second_run_fetches_only_what_changed_since_the_watermark(
    proj: E2EProject, wiremock: WireMock
) -> None:
    shutil.copy(SCRIPTS.parent.parent / "src" / "sync_customers.py", proj.root / "src")
    demo = (MOCK_API.parent / "config" / "demo-test-config.json").read_text(encoding="utf-8")
    proj.write_config(demo.replace(DEMO_URL, wiremock.base_url), ORG, ENV)
    shutil.copy(
        MOCK_API.parent / "config" / "demo-test-config-secrets_example.json",
        proj.root / "config" / f"{ORG}-{ENV}-config-secrets.json",
    )
    serve_demo_mappings(wiremock)
    customers = demo_customers()
    newest = max(c["lastModifiedDateTime"] for c in customers)
    state_file = proj.root / "state" / f"{ORG}-{ENV}-sync-customers.json"

    def customer_requests() -> list[str]:
        return [r["url"] for r in api_requests(wiremock) if "/customers" in r["url"]]

    def newest_csv() -> pd.DataFrame:
        return pd.read_csv(max(proj.output_files(), key=lambda p: p.stat().st_mtime_ns))

    first = proj.run_script("sync_customers")
    assert first.code == 0, first
    assert all("$filter" not in url for url in customer_requests())
    assert len(newest_csv()) == len(customers)
    assert json.loads(state_file.read_text()) == {"customers_watermark": newest}

    wiremock.reset_journal()
    second = proj.run_script("sync_customers")
    assert second.code == 0, second
    since = "2025-06-09T10:40:00.000Z"  # the watermark minus the default 5 minutes
    assert newest == "2025-06-09T10:45:00.000Z"
    assert customer_requests() == [
        f"/api/v2.0/companies(8f2d1c3a-5b7e-4c9d-a1f0-3e6b2d4c5a71)/customers"
        f"?$filter=lastModifiedDateTime%20gt%20{since}"
    ]
    changed = [c["id"] for c in customers if c["lastModifiedDateTime"] > since]
    assert list(newest_csv()["id"]) == changed
    assert json.loads(state_file.read_text()) == {"customers_watermark": newest}

    wiremock.reset_journal()
    wider = proj.run_script("sync_customers", "--overlap-minutes", str(60 * 24 * 60))
    assert wider.code == 0, wider
    since_wide = "2025-04-10T10:45:00.000Z"  # 60 days before the watermark
    assert sorted(newest_csv()["id"]) == sorted(
        c["id"] for c in customers if c["lastModifiedDateTime"] > since_wide
    )
    assert len(customer_requests()) == 1


def test_users_delta_full_then_changes_then_resync_after_410(
    proj: E2EProject, wiremock: WireMock
) -> None:
    write_config(proj, wiremock)
    stub_token(wiremock, TOKEN_A)
    base = f"{wiremock.base_url}/api/users/delta"
    fresh = "/api/users/delta?$select=id,displayName,mail,department"

    def page(url: str, body: dict[str, Any], status: int = 200) -> None:
        wiremock.stub(
            {
                "request": {"method": "GET", "url": url, "headers": bearer()},
                "response": json_response(body, status),
            }
        )

    page(fresh, {"value": [user(1), user(2)], "@odata.nextLink": f"{base}?$skiptoken=p2"})
    page(
        "/api/users/delta?$skiptoken=p2",
        {"value": [user(3)], "@odata.deltaLink": f"{base}?$deltatoken=t1"},
    )
    page(
        "/api/users/delta?$deltatoken=t1",
        {
            "value": [user(2), {"id": user(3)["id"], "@removed": {"reason": "deleted"}}],
            "@odata.deltaLink": f"{base}?$deltatoken=t2",
        },
    )
    page("/api/users/delta?$deltatoken=t2", {"error": {"code": "syncStateNotFound"}}, 410)
    state_file = proj.root / "state" / f"{ORG}-{ENV}-users-delta.json"

    def run_once() -> tuple[dict[str, Any], list[str]]:
        wiremock.reset_journal()
        done = proj.run_script("users_delta")
        assert done.code == 0, done
        newest = max(proj.output_files(), key=lambda p: p.stat().st_mtime_ns)
        output = json.loads(newest.read_text(encoding="utf-8"))
        newest.unlink()  # the next run in the same minute writes the same name
        return output, [r["url"] for r in api_requests(wiremock)]

    first, seen = run_once()
    assert (first["kind"], len(first["changed"]), first["removed"]) == ("full", 3, [])
    assert seen == [fresh, "/api/users/delta?$skiptoken=p2"]
    assert json.loads(state_file.read_text()) == {"users_delta_link": f"{base}?$deltatoken=t1"}

    second, seen = run_once()
    assert second["kind"] == "changes"
    assert [u["id"] for u in second["changed"]] == [user(2)["id"]]
    assert second["removed"] == [user(3)["id"]]
    assert seen == ["/api/users/delta?$deltatoken=t1"]
    assert json.loads(state_file.read_text()) == {"users_delta_link": f"{base}?$deltatoken=t2"}

    wiremock.reset_journal()
    done = proj.run_script("users_delta")
    assert done.code == 0, done
    assert "410 Gone" in done.stderr
    third = json.loads(max(proj.output_files()).read_text(encoding="utf-8"))
    assert (third["kind"], len(third["changed"])) == ("full", 3)
    assert [r["url"] for r in api_requests(wiremock)] == [
        "/api/users/delta?$deltatoken=t2",
        fresh,
        "/api/users/delta?$skiptoken=p2",
    ]
    assert json.loads(state_file.read_text()) == {"users_delta_link": f"{base}?$deltatoken=t1"}


@pytest.mark.parametrize(
    "script", [SCRIPTS.parent.parent / "src" / "sync_customers.py", SCRIPTS / "users_delta.py"]
)
def test_the_incremental_pulls_manual_shows_the_tested_scripts_as_they_are(script: Path) -> None:
    manual = SCRIPTS.parent.parent / "docs" / "incremental-pulls.md"
    blocks = re.findall(r"```python\n(.*?)```", manual.read_text(encoding="utf-8"), re.S)
    text = script.read_text(encoding="utf-8")
    (block,) = [b for b in blocks if b.startswith(text.splitlines()[0])]
    assert block == text


# -- 7. write-back: a complete report however the run ends ------------------------------------
def load_report_csv(proj: E2EProject) -> pd.DataFrame:
    return pd.read_csv(proj.root / "output" / "writes.csv", dtype=str, keep_default_na=False)


def stub_devices(wiremock: WireMock, delay_ms: int = 0) -> None:
    wiremock.stub(
        {
            "request": {
                "method": "PATCH",
                "urlPathPattern": "/api/devices/[0-9]+",
                "headers": {"If-Match": {"matches": 'W/"[0-9]+"'}},
            },
            "response": json_response({"ring": "stable"}) | {"fixedDelayMilliseconds": delay_ms},
        }
    )


def test_sigterm_during_write_many_leaves_a_complete_report_and_exits_143(
    proj: E2EProject, wiremock: WireMock
) -> None:
    """The report holds every record; its ``ok`` rows are exactly the writes the server got."""
    write_config(proj, wiremock)
    stub_token(wiremock, TOKEN_A)
    stub_devices(wiremock, delay_ms=100)

    code, stderr, took = sigterm_after_requests(proj, wiremock, "write_back_job", "PATCH", 10)

    assert code == 143, stderr
    assert took < 3, f"exit took {took:.1f}s after SIGTERM"
    assert "Traceback" not in stderr
    report = load_report_csv(proj)
    assert list(report["key"]) == [f"D{n:04d}" for n in range(200)]
    received = wiremock.count("PATCH")
    assert 10 <= received < 200
    assert set(report["status"]) == {"ok", "not-sent"}
    assert (report["status"] == "ok").sum() == received
    written = {e["url"].rsplit("/", 1)[1] for e in wiremock.find("PATCH")}
    assert set(report.loc[report["status"] == "ok", "path"].str.rsplit("/", n=1).str[1]) == written
    not_sent = report[report["status"] == "not-sent"]
    assert set(not_sent["attempts"]) == {"0"}
    assert not_sent["error"].str.contains("run was stopped").all()
    assert not leftovers(proj)
    assert E2ERun(143, "", stderr, proj).summary()["exit"] == 143


@pytest.mark.parametrize("batch", [False, True])
def test_a_record_that_fails_ends_the_run_with_exit_6_and_names_the_report(
    proj: E2EProject, wiremock: WireMock, batch: bool
) -> None:
    write_config(proj, wiremock)
    stub_token(wiremock, TOKEN_A)
    stub_devices(wiremock)
    wiremock.stub(
        {
            "priority": 1,
            "request": {"method": "PATCH", "urlPath": "/api/devices/7"},
            "response": json_response({"error": {"message": "Device is retired."}}, 400),
        }
    )
    template = (
        "{\"responses\": [{{#each (jsonPath request.body '$.requests') as |r|}}"
        '{{#unless @first}},{{/unless}}{"id": "{{r.id}}", "status": '
        '{{#if (contains r.url \'devices/7\')}}400, "body": {"error": {"message": '
        '"Device is retired."}} {{else}}200{{/if}} }{{/each}}]}'
    )
    wiremock.stub(
        {
            "request": {"method": "POST", "urlPath": "/api/$batch"},
            "response": {
                "status": 200,
                "body": template,
                "headers": {"Content-Type": "application/json"},
                "transformers": ["response-template"],
            },
        }
    )

    run = proj.run_script("write_back_job", "--count", "30", *(["--batch"] if batch else []))

    assert run.code == 6, run
    assert_clean_stderr(run)
    assert "29 of 30 records written, 1 failed, 0 not sent" in run.stderr
    assert "D0007: HTTP 400 Bad Request. The server said: Device is retired." in run.stderr
    assert "writes.csv" in run.stderr
    report = load_report_csv(proj)
    assert (report["status"] == "ok").sum() == 29
    assert report.loc[7, ["status", "http_status"]].tolist() == ["failed", "400"]
    assert run.summary()["exit"] == 6
    assert wiremock.count("PATCH") == (0 if batch else 30)
    assert wiremock.count("POST", "/api/$batch") == (3 if batch else 0)  # update-batch-size 10


def test_dry_run_sends_no_write_and_reports_each_record(
    proj: E2EProject, wiremock: WireMock
) -> None:
    write_config(proj, wiremock)
    stub_token(wiremock, TOKEN_A)
    stub_devices(wiremock)

    run = proj.run_script("write_back_job", "--count", "5", "--dry-run")

    assert run.code == 0, run
    assert wiremock.count("PATCH") == 0 and wiremock.count("POST", "/api/$batch") == 0
    assert run.stderr.count("DRY RUN: would PATCH ") == 5
    assert f"DRY RUN: would PATCH {wiremock.base_url}/api/devices/4" in run.stderr
    report = load_report_csv(proj)
    assert set(report["status"]) == {"dry-run"} and set(report["attempts"]) == {"0"}
