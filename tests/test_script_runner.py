"""Real scripts (``tests/scripts/``) run as subprocesses in a scratch copy of the project, with a
real WireMock as the token endpoint: injection, token requests as the server saw them, every
exit code, SIGTERM and SIGINT, and each bad input (right code, no traceback, key named)."""

from __future__ import annotations

import copy
import json
import signal
import stat
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from tests.support_clock import FakeClock
from tests.support_scripts import (
    CONTRACT_TOKEN_PATH,
    ERROR_EXIT_CODES,
    ROOT,
    SIGNAL_WAIT,
    Project,
    Run,
    client_config,
    stub_contract_token,
    wait_for_line,
)
from tools.wiremock_server import WireMock, free_port
from utils import _auth as auth, _config_loader as config_loader, _redaction as redaction
from utils._config_loader import read_json_file
from utils.exceptions import ApiAuthenticationError, ConfigurationError

TOKEN_PATH = "/oauth2/v2.0/token"
SECRET = "Cl1ent-S3cret-Value-9f8e7d"
TOKEN = "eyJhbGciOi.run-token.Sig42"
LINE_COUNT, LINE = 200, "0123456789" * 10 + "\n"

pytestmark = pytest.mark.integration


def base_config(token_url: str) -> dict[str, Any]:
    return {
        "global": {
            "api-base-url": "https://api.example.com",
            "tenant-id": "tenant-guid",
            "client-id": "client-42",
            "oauth-scope": "https://api.example.com/.default",
            "oauth-token-url": token_url,
        },
        "script-behavior": {
            "api-delay-seconds": 0,
            "api-timeouts": {"rest-timeout-seconds": 2},
            "retry-strategy": {"max-retries": 2, "backoff-factor": 0.01},
        },
    }


@pytest.fixture
def configured(project: Project, wiremock: WireMock) -> Project:
    """acme/test with client credentials against WireMock, and a stubbed token endpoint."""
    project.write_config(base_config(wiremock.base_url + TOKEN_PATH))
    project.write_secrets({"client-secret": SECRET})
    stub_token(wiremock, TOKEN)
    return project


def stub_token(wm: WireMock, token: str, **extra: Any) -> None:
    wm.stub(
        {
            "request": {"method": "POST", "urlPath": TOKEN_PATH},
            "response": {
                "status": 200,
                "jsonBody": {"token_type": "Bearer", "expires_in": 3599, "access_token": token},
            },
            **extra,
        }
    )


def assert_clean_failure(run: Run, code: int) -> None:
    assert run.code == code, run
    assert "Traceback" not in run.stderr
    assert "❌ Problem:" in run.stderr
    assert f"Run summary: exit {code}" in run.stderr


# -- injection and tokens ------------------------------------------------------------------------
def test_config_secrets_and_token_are_injected(configured: Project, wiremock: WireMock) -> None:
    configured.write_secrets({"client-secret": SECRET, "apiKey": "k-123456", "az-token": ""})
    run = configured.run("probe", "acme", "test")
    assert run.code == 0, run
    config = run.report()["config"]
    assert config["_org_id"] == "acme"
    assert config["_env_type"] == "test"
    assert config["_token"] == TOKEN
    assert config["_client_secret"] == SECRET
    assert config["_api_key"] == "k-123456"
    assert config["_az_token"] == ""
    assert config["script-behavior"]["rate-limiting"] == {
        "enabled": True,
        "calls-per-second": 10,
        "burst-size": 1,
    }
    [request] = wiremock.find("POST", TOKEN_PATH)
    assert parse_qs(request["body"]) == {
        "grant_type": ["client_credentials"],
        "client_id": ["client-42"],
        "client_secret": [SECRET],
        "scope": ["https://api.example.com/.default"],
    }


def test_secret_and_token_never_reach_console_or_log(configured: Project) -> None:
    run = configured.run("probe", "acme", "test", "--log-level", "DEBUG")
    assert run.code == 0, run
    log_text = configured.log_text()
    assert log_text, "the run wrote no log file"
    for value in (SECRET, TOKEN):
        assert value not in run.stderr
        assert value not in log_text


def test_token_is_requested_once_for_several_get_token_calls(
    configured: Project, wiremock: WireMock
) -> None:
    run = configured.run("probe", "acme", "test", env={"PROBE_TOKEN_CALLS": "4"})
    assert run.code == 0, run
    assert run.report()["tokens"] == [TOKEN] * 4
    assert wiremock.count("POST", TOKEN_PATH) == 1


def test_refresh_gets_a_new_token(configured: Project, wiremock: WireMock) -> None:
    wiremock.reset()
    scenario = {"scenarioName": "tokens"}
    stub_token(
        wiremock,
        "token-one",
        **scenario,
        requiredScenarioState="Started",
        newScenarioState="refreshed",
    )
    stub_token(wiremock, "token-two", **scenario, requiredScenarioState="refreshed")
    run = configured.run("probe", "acme", "test", env={"PROBE_REFRESH": "1"})
    assert run.code == 0, run
    report = run.report()
    assert report["config"]["_token"] == "token-one"
    assert (report["refreshed"], report["after_refresh"]) == ("token-two", "token-two")
    assert wiremock.count("POST", TOKEN_PATH) == 2


def test_az_token_is_used_without_a_token_request(project: Project, wiremock: WireMock) -> None:
    project.write_config(base_config(wiremock.base_url + TOKEN_PATH))
    project.write_secrets({"az-token": f"Bearer {TOKEN}"})
    run = project.run("probe", "acme", "test")
    assert run.code == 0, run
    assert run.report()["config"]["_token"] == TOKEN
    assert wiremock.count("POST", TOKEN_PATH) == 0


@pytest.mark.parametrize(
    ("flags", "dry_run", "full_refresh"),
    [
        ((), False, False),
        (("--dry-run",), True, False),
        (("--dry-run", "--full-refresh"), True, True),
    ],
)
def test_run_flags_are_injected_as_bools(
    configured: Project, flags: tuple[str, ...], dry_run: bool, full_refresh: bool
) -> None:
    run = configured.run("probe", "acme", "test", *flags)
    assert run.code == 0, run
    config = run.report()["config"]
    assert (config["_dry_run"], config["_full_refresh"]) == (dry_run, full_refresh)
    assert (config["_args"]["dry_run"], config["_args"]["full_refresh"]) == (dry_run, full_refresh)


def test_script_options_reach_args(configured: Project) -> None:
    run = configured.run("probe", "acme", "test", "--limit", "5", env={"PROBE_OPTIONS": "1"})
    assert run.code == 0, run
    args = run.report()["config"]["_args"]
    assert (args["limit"], args["org_id"], args["env_type"]) == (5, "acme", "test")


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (("--limit", "many"), "--limit"),
        (("--nope",), "--nope"),
    ],
)
def test_bad_script_option_is_a_usage_error(
    configured: Project, wiremock: WireMock, argv: tuple[str, ...], named: str
) -> None:
    run = configured.run("probe", "acme", "test", *argv, env={"PROBE_OPTIONS": "1"})
    assert_clean_failure(run, 2)
    assert named in run.stderr
    assert wiremock.count("POST", TOKEN_PATH) == 0


def test_help_lists_the_script_options_and_the_run_flags(configured: Project) -> None:
    run = configured.run("probe", "--help", env={"PROBE_OPTIONS": "1"})
    assert run.code == 0, run
    for option in ("--limit", "--dry-run", "--full-refresh", "--log-format"):
        assert option in run.stdout, option
    assert "Run summary" not in run.stderr


def test_no_token_wanted_needs_no_secrets(project: Project, wiremock: WireMock) -> None:
    project.write_config({"global": {"api-base-url": "https://api.example.com"}})
    run = project.run("probe", "acme", "test", env={"PROBE_REQUIRE_TOKEN": "0"})
    assert run.code == 0, run
    assert run.report()["config"]["_token"] is None
    assert wiremock.count("ANY") == 0


# -- exit codes ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("raised", "code"), ERROR_EXIT_CODES)
def test_helpful_errors_map_to_exit_codes(configured: Project, raised: str, code: int) -> None:
    run = configured.run("probe", "acme", "test", env={"PROBE_RAISE": raised})
    assert_clean_failure(run, code)
    assert "❌ Problem: probe failure\n" in run.stderr or "probe failure" in run.stderr
    assert "Traceback" in configured.log_text()


def test_success_exits_zero_with_a_summary(configured: Project) -> None:
    run = configured.run("probe", "acme", "test")
    assert run.code == 0, run
    summary = [ln for ln in run.stderr.splitlines() if "Run summary:" in ln]
    assert len(summary) == 1
    assert "exit 0 (success)" in summary[0]
    for part in ("API calls 0", "retries 0", "429s 0", "breaker opens 0", "files written 0"):
        assert part in summary[0]


def test_unexpected_exception_exits_one_with_traceback_only_in_the_file(
    configured: Project,
) -> None:
    run = configured.run("probe", "acme", "test", env={"PROBE_RAISE": "RuntimeError"})
    assert run.code == 1, run
    assert "Traceback" not in run.stderr
    assert "RuntimeError: boom from the probe" in run.stderr
    assert "Run summary: exit 1" in run.stderr
    log_text = configured.log_text()
    assert "Traceback" in log_text and "boom from the probe" in log_text


def test_system_exit_code_is_kept(configured: Project) -> None:
    run = configured.run("probe", "acme", "test", env={"PROBE_RAISE": "SystemExit7"})
    assert run.code == 7, run
    assert "Run summary: exit 7" in run.stderr


def test_token_endpoint_refusal_exits_three_without_the_secret(
    project: Project, wiremock: WireMock
) -> None:
    project.write_config(base_config(wiremock.base_url + TOKEN_PATH))
    project.write_secrets({"client-secret": SECRET})
    wiremock.stub(
        {
            "request": {"method": "POST", "urlPath": TOKEN_PATH},
            "response": {
                "status": 401,
                "jsonBody": {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided.",
                },
            },
        }
    )
    run = project.run("probe", "acme", "test")
    assert_clean_failure(run, 3)
    assert "401 invalid_client: AADSTS7000215" in run.stderr
    assert SECRET not in run.stderr and SECRET not in project.log_text()
    assert wiremock.count("POST", TOKEN_PATH) == 1


def test_unreachable_token_endpoint_exits_three(project: Project) -> None:
    project.write_config(base_config(f"http://127.0.0.1:{free_port()}/token"))
    project.write_secrets({"client-secret": SECRET})
    run = project.run("probe", "acme", "test")
    assert_clean_failure(run, 3)
    assert "Cannot connect to the token endpoint" in run.stderr


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_mid_write_leaves_whole_files_and_no_temporary(
    project: Project, signum: int, code: int
) -> None:
    project.write_config({"global": {"api-base-url": "https://api.example.com"}})
    proc = project.start("slow_writer", "acme", "test")
    wait_for_line(proc, "second started")
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=SIGNAL_WAIT)
    assert proc.returncode == code, stderr
    assert "swallowed" not in stdout
    assert "Traceback" not in stderr
    assert f"Run summary: exit {code}" in stderr
    output = project.root / "output"
    assert (output / "first.txt").read_text() == LINE * LINE_COUNT
    assert sorted(p.name for p in output.iterdir()) == ["first.txt"]


# -- bad input -----------------------------------------------------------------------------------
def test_missing_config_lists_existing_ones_and_the_copy_command(project: Project) -> None:
    project.write_config({"global": {"api-base-url": "https://x"}}, org="demo", env="prod")
    run = project.run("probe", "acme", "test")
    assert_clean_failure(run, 2)
    assert "config/acme-test-config.json not found" in run.stderr
    assert "Configs that exist: demo-prod-config.json" in run.stderr
    assert "cp config/org-env-config_example.json config/acme-test-config.json" in run.stderr


def test_invalid_json_names_line_and_column(project: Project) -> None:
    project.write_config('{\n  "global": {\n    "api-base-url": "https://x",\n  }\n}\n')
    run = project.run("probe", "acme", "test")
    assert_clean_failure(run, 2)
    assert "config/acme-test-config.json is not valid JSON" in run.stderr
    assert "line 4, column 3" in run.stderr


def test_schema_violations_are_all_listed(project: Project, wiremock: WireMock) -> None:
    config = base_config(wiremock.base_url + TOKEN_PATH)
    config["script-behavior"]["rate-limiting"] = {"calls-per-second": "ten"}
    config["script-behavior"]["jitter"] = {"min-factor": -1}
    project.write_config(config)
    run = project.run("probe", "acme", "test")
    assert_clean_failure(run, 2)
    assert "script-behavior → rate-limiting → calls-per-second: 'ten' is not of type" in run.stderr
    assert "script-behavior → jitter → min-factor: -1 must be at least 0" in run.stderr
    assert wiremock.count("ANY") == 0


def test_jitter_min_above_max_is_refused(project: Project) -> None:
    project.write_config(
        {
            "global": {"api-base-url": "https://x"},
            "script-behavior": {"jitter": {"min-factor": 2, "max-factor": 1}},
        }
    )
    run = project.run("probe", "acme", "test", env={"PROBE_REQUIRE_TOKEN": "0"})
    assert_clean_failure(run, 2)
    assert "min-factor (2) must not exceed max-factor (1)" in run.stderr


def test_missing_secrets_file_when_a_token_is_needed(project: Project, wiremock: WireMock) -> None:
    project.write_config(base_config(wiremock.base_url + TOKEN_PATH))
    run = project.run("probe", "acme", "test")
    assert_clean_failure(run, 2)
    assert "config/acme-test-config-secrets.json not found" in run.stderr
    assert "cp config/org-env-config-secrets_example.json" in run.stderr
    assert wiremock.count("ANY") == 0


def test_missing_client_credentials_are_named(project: Project, wiremock: WireMock) -> None:
    config = base_config(wiremock.base_url + TOKEN_PATH)
    del config["global"]["client-id"], config["global"]["oauth-scope"]
    project.write_config(config)
    project.write_secrets({"client-secret": SECRET})
    run = project.run("probe", "acme", "test")
    assert_clean_failure(run, 2)
    assert "missing: global → client-id, global → oauth-scope." in run.stderr
    assert wiremock.count("ANY") == 0


@pytest.mark.parametrize(
    ("secrets", "expected"),
    [
        ('{"client-secret": "' + SECRET + '",}', "is not valid JSON"),
        ('["' + SECRET + '"]', "holds a JSON array, not an object"),
        ('{"client-secret": 12345}', "Secret 'client-secret'"),
        ('{"token": "' + SECRET + '"}', "would be injected as _token"),
        ('{"org-id": "' + SECRET + '"}', "would be injected as _org_id"),
        ('{"api": "' + SECRET + '"}', "would be injected as _api"),
        ('{"client-secret": "a-b-c-d", "clientSecret": "e-f-g-h"}', "both become _client_secret"),
    ],
)
def test_malformed_secrets_exit_two_naming_the_file_not_the_value(
    configured: Project, secrets: str, expected: str
) -> None:
    configured.write_secrets(secrets)
    run = configured.run("probe", "acme", "test")
    assert_clean_failure(run, 2)
    assert "config/acme-test-config-secrets.json" in run.stderr
    assert expected in run.stderr
    assert SECRET not in run.stderr and SECRET not in configured.log_text()


def test_secrets_readable_by_others_is_a_warning(configured: Project) -> None:
    configured.write_secrets({"client-secret": SECRET}, mode=0o644)
    run = configured.run("probe", "acme", "test")
    assert run.code == 0, run
    assert "accessible by group or others (mode 0o644)" in run.stderr
    assert "chmod 600 config/acme-test-config-secrets.json" in run.stderr
    assert (
        stat.S_IMODE((configured.root / "config" / "acme-test-config-secrets.json").stat().st_mode)
        == 0o644
    )


@pytest.mark.parametrize(
    "args",
    [
        ["../etc", "test"],
        ["acme", "prod/../../x"],
        ["a-b", "test"],
        [".hidden", "test"],
        ["acme", "a..b"],
        ["acme", ""],
        ["acme", "x" * 65],
        ["acme", "te st"],
    ],
)
def test_org_and_env_must_be_plain_names(project: Project, args: list[str]) -> None:
    run = project.run("probe", *args)
    assert_clean_failure(run, 2)
    assert "is not a plain name" in run.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["acme"], "the following arguments are required: ENV_TYPE"),
        (["acme", "test", "--colour"], "unrecognized arguments: --colour"),
        (["acme", "test", "--log-format", "xml"], "invalid choice: 'xml'"),
        (["acme", "test", "--log-level", "LOUD"], "invalid choice: 'LOUD'"),
    ],
)
def test_usage_errors_exit_two_with_help(project: Project, args: list[str], expected: str) -> None:
    run = project.run("probe", *args)
    assert_clean_failure(run, 2)
    assert expected in run.stderr
    assert "Run it as: python -m tests.scripts.probe ORG_ID ENV_TYPE" in run.stderr


def test_help_exits_zero_without_a_summary(project: Project) -> None:
    run = project.run("probe", "--help")
    assert run.code == 0, run
    assert "ORG_ID" in run.stdout and "--log-format" in run.stdout
    assert "Run summary" not in run.stderr


def test_log_level_option_is_applied_to_the_console(configured: Project) -> None:
    quiet = configured.run("probe", "acme", "test", "--log-level", "warning")
    assert quiet.code == 0, quiet
    assert "Run summary" not in quiet.stderr
    debug = configured.run("probe", "acme", "test", "--log-level", "DEBUG")
    assert "Loaded config/acme-test-config.json" in debug.stderr


def test_json_log_format_makes_every_console_line_json(configured: Project) -> None:
    run = configured.run(
        "probe", "acme", "test", "--log-format", "json", env={"PROBE_RAISE": "FileOperationError"}
    )
    assert run.code == 5, run
    records = [json.loads(line) for line in run.stderr.splitlines() if line.strip()]
    assert any("probe failure" in str(r.values()) for r in records)
    assert any("Run summary: exit 5" in str(r.values()) for r in records)


# -- the run summary ----------------------------------------------------------------------------
def summary_line(run: Run) -> str:
    [line] = [ln for ln in run.stderr.splitlines() if "Run summary:" in ln]
    assert line == run.stderr.strip().splitlines()[-1], "the summary is the last line"
    return line


def test_text_summary_lists_the_script_counters_and_the_dry_run(configured: Project) -> None:
    counts = {"PROBE_COUNT": "rows_read=40,rows_read=2,skipped=0,customers_updated=7"}
    run = configured.run("probe", "acme", "test", "--dry-run", env=counts)
    assert run.code == 0, run
    line = summary_line(run)
    assert line.endswith(
        "files written 0 · dry run: no POST/PUT/PATCH/DELETE sent · customers_updated 7"
        " · rows_read 42 · skipped 0"
    ), line
    plain = configured.run("probe", "acme", "test")
    assert "dry run" not in summary_line(plain)


def test_json_summary_carries_the_figures_as_fields(configured: Project) -> None:
    run = configured.run(
        "probe",
        "acme",
        "test",
        "--log-format",
        "json",
        "--dry-run",
        env={"PROBE_COUNT": "rows_read=42,skipped=3"},
    )
    assert run.code == 0, run
    record = json.loads(run.stderr.strip().splitlines()[-1])
    assert record["message"].startswith("Run summary: exit 0")
    figures = {
        k: record[k]
        for k in (
            "exit_code",
            "api_calls",
            "retries",
            "rate_limited",
            "breaker_opens",
            "files_written",
            "dry_run",
            "counters",
        )
    }
    assert figures == {
        "exit_code": 0,
        "api_calls": 0,
        "retries": 0,
        "rate_limited": 0,
        "breaker_opens": 0,
        "files_written": 0,
        "dry_run": True,
        "counters": {"rows_read": 42, "skipped": 3},
    }
    assert isinstance(record["duration_s"], float) and 0 <= record["duration_s"] < 30


def test_json_summary_of_a_failed_run_has_its_exit_code_and_counters(
    configured: Project,
) -> None:
    run = configured.run(
        "probe",
        "acme",
        "test",
        "--log-format",
        "json",
        env={"PROBE_COUNT": "rows_read=5", "PROBE_RAISE": "ApiOperationError"},
    )
    assert run.code == 4, run
    record = json.loads(run.stderr.strip().splitlines()[-1])
    assert (record["exit_code"], record["dry_run"], record["counters"]) == (
        4,
        False,
        {"rows_read": 5},
    )


@pytest.mark.parametrize("count", ["Rows-Read=1", "api_calls=1", "rows=-2"])
def test_a_bad_counter_fails_the_run_with_exit_two(configured: Project, count: str) -> None:
    run = configured.run("probe", "acme", "test", env={"PROBE_COUNT": count})
    assert_clean_failure(run, 2)
    assert "run_stats.count" in run.stderr


# -- script settings (scripts → probe, schemas/scripts/probe.json) -------------------------------
PROBE_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "page-size": {"type": "integer", "minimum": 1, "default": 100, "description": "x"},
        "target": {
            "type": "object",
            "additionalProperties": False,
            "default": {},
            "properties": {"folder": {"type": "string", "default": "inbox"}},
        },
    },
}


def write_schema(project: Project, name: str, schema: Any) -> Path:
    folder = project.root / "schemas" / "scripts"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(schema if isinstance(schema, str) else json.dumps(schema, indent=2))
    return path


def settings_config(scripts: dict[str, Any] | None) -> dict[str, Any]:
    config: dict[str, Any] = {"global": {"api-base-url": "https://api.example.com"}}
    if scripts is not None:
        config["scripts"] = scripts
    return config


NO_TOKEN = {"PROBE_REQUIRE_TOKEN": "0"}


@pytest.mark.parametrize(
    ("scripts", "expected"),
    [
        (None, {"page-size": 100, "target": {"folder": "inbox"}}),
        ({"probe": {"page-size": 7}}, {"page-size": 7, "target": {"folder": "inbox"}}),
        ({"probe": {"target": {"folder": "x"}}}, {"page-size": 100, "target": {"folder": "x"}}),
    ],
    ids=["no-section", "one-key", "nested"],
)
def test_the_running_scripts_settings_are_present_with_defaults(
    project: Project, scripts: dict[str, Any] | None, expected: dict[str, Any]
) -> None:
    write_schema(project, "probe", PROBE_SCHEMA)
    project.write_config(settings_config(scripts))
    run = project.run("probe", "acme", "test", env=NO_TOKEN)
    assert run.code == 0, run
    assert run.report()["config"]["scripts"] == {"probe": expected}


def test_a_script_without_a_schema_runs_with_an_empty_scripts_section(project: Project) -> None:
    project.write_config(settings_config(None))
    run = project.run("probe", "acme", "test", env=NO_TOKEN)
    assert run.code == 0, run
    assert run.report()["config"]["scripts"] == {}


def test_every_section_is_checked_whichever_script_runs(project: Project) -> None:
    write_schema(project, "probe", PROBE_SCHEMA)
    write_schema(project, "update-customers", PROBE_SCHEMA)
    project.write_config(settings_config({"update-customers": {"page-sise": 5}}))
    run = project.run("probe", "acme", "test", env=NO_TOKEN)
    assert_clean_failure(run, 2)
    assert (
        "scripts → update-customers → page-sise: unknown key (did you mean 'page-size'?)"
        in run.stderr
    )
    assert "schemas/scripts/update-customers.json describes them" in run.stderr


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"page-size": 0}, "scripts → probe → page-size: 0 must be at least 1"),
        ({"page-size": "ten"}, "scripts → probe → page-size: 'ten' is not of type 'integer'"),
        ({"target": {"fold": "x"}}, "scripts → probe → target → fold: unknown key (did you mean"),
        ({"target": []}, "scripts → probe → target: [] is not of type 'object'"),
        ([], "scripts → probe: [] is not of type 'object'"),
    ],
    ids=["minimum", "type", "nested-unknown", "nested-type", "section-type"],
)
def test_bad_settings_name_the_key_and_exit_two(
    project: Project, wiremock: WireMock, settings: Any, expected: str
) -> None:
    write_schema(project, "probe", PROBE_SCHEMA)
    project.write_config(settings_config({"probe": settings}))
    run = project.run("probe", "acme", "test", env=NO_TOKEN)
    assert_clean_failure(run, 2)
    assert expected in run.stderr
    assert "📝 Example:" in run.stderr


def test_a_required_setting_without_a_section_is_an_error(project: Project) -> None:
    write_schema(project, "probe", {**PROBE_SCHEMA, "required": ["page-size"]})
    project.write_config(settings_config(None))
    run = project.run("probe", "acme", "test", env=NO_TOKEN)
    assert_clean_failure(run, 2)
    assert "scripts → probe → page-size: required key is missing" in run.stderr


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ("update-customers", "schemas/scripts/update-customers.json does not exist"),
        ("prob", "Did you mean 'probe'"),
    ],
)
def test_a_section_without_a_schema_names_the_file_to_create(
    project: Project, section: str, expected: str
) -> None:
    write_schema(project, "probe", PROBE_SCHEMA)
    project.write_config(settings_config({section: {"page-size": 1}}))
    run = project.run("probe", "acme", "test", env=NO_TOKEN)
    assert_clean_failure(run, 2)
    assert expected in run.stderr
    assert f"scripts → {section}" in run.stderr
    assert "make new-script" in run.stderr


def test_a_bad_section_name_is_refused_by_the_config_schema(project: Project) -> None:
    project.write_config(settings_config({"Update_Customers": {}}))
    run = project.run("probe", "acme", "test", env=NO_TOKEN)
    assert_clean_failure(run, 2)
    assert "scripts: 'Update_Customers' is not a valid name (kebab-case" in run.stderr


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ('{\n  "type": "object",\n  "properties": {}\n  "x": 1\n}', "line 4, column 3"),
        ("", "is empty"),
        ('{"type": "array"}', "does not describe a JSON object"),
        (
            '{"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"}',
            'written for "http://json-schema.org/draft-07/schema#", not JSON Schema 2020-12',
        ),
        ('{"type": "object", "properties": {"n": {"type": "integr"}}}', "not a valid JSON Schema"),
        ('{"type": "object", "properties": {"page_size": {}}}', "page_size: keys are kebab-case"),
        ('{"type": "object", "properties": {"a": {}}}', 'set "additionalProperties": false'),
    ],
    ids=["json-syntax", "empty", "not-object", "draft-07", "bad-type", "snake-key", "open-object"],
)
def test_a_broken_settings_schema_is_reported_against_its_file(
    project: Project, schema: str, expected: str
) -> None:
    write_schema(project, "probe", schema)
    project.write_config(settings_config(None))
    run = project.run("probe", "acme", "test", env=NO_TOKEN)
    assert_clean_failure(run, 2)
    assert "schemas/scripts/probe.json" in run.stderr
    assert expected in run.stderr


# -- named APIs (global.apis) ---------------------------------------------------------------------
def test_a_named_api_gets_its_static_token_and_its_own_base_url(
    project: Project, wiremock: WireMock
) -> None:
    config = base_config(wiremock.base_url + TOKEN_PATH)
    config["global"]["apis"] = {"graph": {"api-base-url": f"{wiremock.base_url}/graph/v1.0"}}
    project.write_config(config)
    project.write_secrets({"az-token": "default-static-1", "graph-token": "Bearer graph-static-2"})
    wiremock.stub(
        {
            "request": {"method": "GET", "urlPath": "/graph/v1.0/me"},
            "response": {"status": 200, "jsonBody": {"id": "me"}},
        }
    )
    run = project.run("probe", "acme", "test", env={"PROBE_API": "graph", "PROBE_API_PATH": "me"})
    assert run.code == 0, run
    assert run.report()["api_answer"] == {"id": "me"}
    [request] = wiremock.find("GET", "/graph/v1.0/me")
    assert request["headers"]["Authorization"] == "Bearer graph-static-2"
    assert wiremock.count("POST", TOKEN_PATH) == 0
    assert "graph-static-2" not in run.stderr + project.log_text()


def test_an_unknown_api_name_exits_two_listing_the_known_ones(
    configured: Project, wiremock: WireMock
) -> None:
    config = base_config(wiremock.base_url + TOKEN_PATH)
    config["global"]["apis"] = {
        "graph": {"api-base-url": "https://graph.example.com"},
        "sharepoint": {"api-base-url": "https://sp.example.com"},
    }
    configured.write_config(config)
    run = configured.run("probe", "acme", "test", env={"PROBE_API": "grahp"})
    assert_clean_failure(run, 2)
    assert "No API named 'grahp'" in run.stderr
    assert "global → apis names graph, sharepoint. Did you mean 'graph'?" in run.stderr


# -- in-process ----------------------------------------------------------------------------------
def test_exit_code_table_follows_the_class_hierarchy() -> None:
    from utils import exceptions as exc
    from utils.script_runner import ScriptTerminated, exit_code_for

    table = {
        exc.ConfigurationError: 2,
        exc.ValidationError: 2,
        exc.ApiAuthenticationError: 3,
        exc.ApiOperationError: 4,
        exc.ApiTimeoutError: 4,
        exc.ApiRateLimitError: 4,
        exc.CircuitOpenError: 4,
        exc.FileOperationError: 5,
        exc.PartialWriteError: 6,
        exc.StateLockedError: 75,
        exc.HelpfulError: 1,
    }
    for error_class, code in table.items():
        assert exit_code_for(error_class("a", "b")) == code, error_class
    assert exit_code_for(ValueError("x")) == 1
    assert exit_code_for(KeyboardInterrupt()) == 130
    assert exit_code_for(ScriptTerminated()) == 143
    assert not issubclass(ScriptTerminated, Exception)


# ==== contract_runner_config: Contract checks for config, secrets, tokens and the script runner (DESIGN.md §3-§4).
#
# Every case runs a real script (``tests/scripts/contract_script.py``) as a subprocess in a
# scratch copy of the project, with a real WireMock as the token endpoint and the API: exit
# codes, what the console shows (no traceback, the key, line or file named, no secret), what
# the server saw (journal counts and the exact form body) and what was written to disk.
CONTRACT_SECRET = "C0ntract-Client-S3cret~value"
CONTRACT_TOKEN = "eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiJhcGkifQ.c2lnLXZhbHVl"
SHORT_TIMEOUT_SECONDS = 0.3
REDACTED_MARK = "[REDACTED]"

# DESIGN §4's example, verbatim.
SEED_EXAMPLE: dict[str, Any] = {
    "global": {
        "api-base-url": "https://api.example.com",
        "api-version": "v2",
        "tenant-id": "azure-tenant-guid",
        "client-id": "oauth-client-id",
        "oauth-scope": "https://api/.default",
    },
    "script-behavior": {
        "api-delay-seconds": 1,
        "api-timeouts": {
            "rest-timeout-seconds": 60,
            "async-max-wait": 300,
            "async-poll-interval": 5,
        },
        "retry-strategy": {"max-retries": 3, "backoff-factor": 2.0},
        "jitter": {"min-factor": 0.8, "max-factor": 1.2},
        "rate-limiting": {"enabled": True, "calls-per-second": 10, "burst-size": 1},
        "circuit-breaker": {"enabled": True, "failure-threshold": 5, "timeout-seconds": 60},
        "batch-handling": {"read-batch-size": 100, "update-batch-size": 50},
    },
}


def assert_clean_exit(run: Run, code: int, *named: str) -> None:
    """Exit ``code``, the rendered error and the summary on stderr, no traceback, no secret."""
    assert run.code == code, run
    console = run.stderr
    if console.startswith("{"):  # JSON lines: read the messages
        console = "\n".join(json.loads(line)["message"] for line in console.splitlines())
    assert "Traceback" not in console
    assert "❌ Problem:" in console
    assert "✅ Solution:" in console
    assert f"Run summary: exit {code}" in console
    assert CONTRACT_SECRET not in console
    for text in named:
        assert text in console, f"{text!r} not named in\n{console}"


CONTRACT_NO_TOKEN = {"CONTRACT_REQUIRE_TOKEN": "0"}


# -- the contract's own examples validate -------------------------------------------------------
def small_variant() -> dict[str, Any]:
    config = copy.deepcopy(SEED_EXAMPLE)
    config["global"]["oauth-token-url"] = "https://login.example.com/t/oauth2/v2.0/token"
    behaviour = config["script-behavior"]
    behaviour["api-delay-seconds"] = 0
    behaviour["retry-strategy"]["backoff-factor"] = 0.05
    behaviour["api-timeouts"]["async-poll-interval"] = 1
    behaviour["api-timeouts"]["rest-timeout-seconds"] = 1
    return config


@pytest.mark.parametrize(
    "config",
    [
        SEED_EXAMPLE,
        small_variant(),
        {"global": {"api-base-url": "https://api.example.com"}},
        {"global": {"api-base-url": "http://127.0.0.1:8089/api/v2.0/companies(1)"}},
        {
            "global": {"api-base-url": "https://a.example.com"},
            "script-behavior": {
                "api-delay-seconds": 0.25,
                "retry-strategy": {"max-retries": 0, "backoff-factor": 0},
                "api-timeouts": {"rest-timeout-seconds": 0.5, "async-poll-interval": 0.1},
                "rate-limiting": {"calls-per-second": 0.5},
            },
        },
    ],
    ids=["seed", "seed-small-numbers", "minimal", "local-url", "fractions-and-zeros"],
)
def test_valid_configs_load_with_defaults(project: Project, config: dict[str, Any]) -> None:
    project.write_config(config)
    run = project.run("probe", "acme", "test", env={"PROBE_REQUIRE_TOKEN": "0"})
    assert run.code == 0, run
    loaded = json.loads(run.stdout.strip().splitlines()[-1])["config"]
    behaviour = loaded["script-behavior"]
    assert behaviour["retry-strategy"]["max-retries"] == config.get("script-behavior", {}).get(
        "retry-strategy", {}
    ).get("max-retries", 3)
    assert behaviour["retry-strategy"]["max-wait-seconds"] == 300
    assert behaviour["rate-limiting"]["enabled"] is True
    assert behaviour["circuit-breaker"]["failure-threshold"] == 5
    assert behaviour["batch-handling"] == config.get("script-behavior", {}).get(
        "batch-handling", {"read-batch-size": 100, "update-batch-size": 50}
    )
    assert loaded["_org_id"] == "acme" and loaded["_env_type"] == "test"
    assert loaded["_token"] is None


def test_a_byte_order_mark_is_accepted(project: Project) -> None:
    """Windows editors save UTF-8 with a BOM; the file is still UTF-8 JSON."""
    project.write_config(b"\xef\xbb\xbf" + json.dumps(SEED_EXAMPLE).encode())
    project.write_secrets("\ufeff" + json.dumps({"client-secret": CONTRACT_SECRET}))
    run = project.run("probe", "acme", "test", env={"PROBE_REQUIRE_TOKEN": "0"})
    assert run.code == 0, run
    assert (
        json.loads(run.stdout.strip().splitlines()[-1])["config"]["_client_secret"]
        == CONTRACT_SECRET
    )


def test_the_shipped_examples_validate() -> None:
    example = json.loads((ROOT / "config" / "org-env-config_example.json").read_text())
    config_loader.validate_config(example, "example")
    secrets = json.loads((ROOT / "config" / "org-env-config-secrets_example.json").read_text())
    assert set(secrets) >= {"client-secret", "az-token"}


def test_the_schema_describes_every_key_and_closes_every_object() -> None:
    schema = json.loads((ROOT / "schemas" / "org-env-config-schema.json").read_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"

    def walk(node: dict[str, Any], path: str) -> None:
        assert node.get("additionalProperties") is False, path
        for key, sub in node["properties"].items():
            assert key == key.lower() and "_" not in key, f"{path}{key} is not kebab-case"
            assert sub.get("description"), f"{path}{key} has no description"
            assert "default" in sub or key in node.get("required", []), f"{path}{key}"
            if "propertyNames" in sub:  # a map of named entries (apis, scripts)
                entry = sub["additionalProperties"]
                if "properties" in entry:
                    walk(entry, f"{path}{key} → * → ")
            elif sub.get("type") == "object":
                walk(sub, f"{path}{key} → ")

    walk(schema, "")


# -- bad configs: exit 2, no traceback, the problem named, nothing done -------------------------
BASE = '{"global": {"api-base-url": "https://a.example.com"}'
BAD_CONFIGS: list[tuple[str, Any, tuple[str, ...]]] = [
    ("top_level_list", "[1, 2]", ("array", "not an object")),
    ("top_level_string", '"config"', ("string", "not an object")),
    ("top_level_null", "null", ("null",)),
    ("empty_file", "", ("is empty",)),
    ("whitespace_only", "  \n\t ", ("is empty",)),
    (
        "trailing_comma",
        '{"global": {"api-base-url": "https://a.example.com",}}',
        ("line 1", "column"),
    ),
    (
        "trailing_comma_multiline",
        '{\n  "global": {\n    "api-base-url": "https://a.b",\n  }\n}',
        ("line 4",),
    ),
    ("comment", '{"global": {"api-base-url": "https://a.b"} // note\n}', ("line 1",)),
    ("single_quotes", "{'global': {}}", ("line 1",)),
    ("not_utf8", b'{"global": {"api-base-url": "https://a.b\xff"}}', ("UTF-8",)),
    ("nan", BASE + ', "script-behavior": {"api-delay-seconds": NaN}}', ("NaN",)),
    (
        "infinity",
        BASE + ', "script-behavior": {"api-timeouts": {"rest-timeout-seconds": Infinity}}}',
        ("Infinity",),
    ),
    ("overflow", BASE + ', "script-behavior": {"api-delay-seconds": 1e999}}', ("1e999",)),
    ("deeply_nested", "[" * 50_000 + "]" * 50_000, ("nested too deeply",)),
    (
        "duplicate_key",
        '{"global": {"api-base-url": "https://a.b", "api-base-url": "https://c.d"}}',
        ("api-base-url", "twice"),
    ),
    ("no_global", "{}", ("global",)),
    ("global_is_list", '{"global": []}', ("global",)),
    ("no_base_url", '{"global": {"client-id": "x"}}', ("api-base-url",)),
    ("base_url_number", '{"global": {"api-base-url": 42}}', ("api-base-url",)),
    (
        "base_url_not_http",
        '{"global": {"api-base-url": "ftp://files.example.com"}}',
        ("api-base-url",),
    ),
    ("base_url_empty", '{"global": {"api-base-url": ""}}', ("api-base-url",)),
    (
        "token_url_not_url",
        '{"global": {"api-base-url": "https://a.b", "oauth-token-url": "login/token"}}',
        ("oauth-token-url",),
    ),
    (
        "tenant_number",
        '{"global": {"api-base-url": "https://a.b", "tenant-id": 7}}',
        ("tenant-id",),
    ),
    ("unknown_top", BASE + ', "extras": {}}', ("extras",)),
    (
        "unknown_global",
        '{"global": {"api-base-url": "https://a.b", "base-url": "x"}}',
        ("base-url",),
    ),
    (
        "unknown_camel_global",
        '{"global": {"api-base-url": "https://a.b", "clientId": "x"}}',
        ("clientId", "client-id"),
    ),
    ("unknown_behaviour", BASE + ', "script-behavior": {"delay": 1}}', ("delay",)),
    (
        "unknown_nested",
        BASE + ', "script-behavior": {"retry-strategy": {"retries": 1}}}',
        ("retries",),
    ),
    (
        "unknown_breaker",
        BASE + ', "script-behavior": {"circuit-breaker": {"enabled": true, "reset": 5}}}',
        ("reset",),
    ),
    (
        "secret_in_config",
        '{"global": {"api-base-url": "https://a.b", "client-secret": "' + CONTRACT_SECRET + '"}}',
        ("client-secret", "secrets"),
    ),
    (
        "auth_in_config",
        '{"global": {"api-base-url": "https://a.b", "auth": "' + CONTRACT_SECRET + '"}}',
        ("auth", "secrets"),
    ),
    (
        "token_url_typo",
        '{"global": {"api-base-url": "https://a.b", "token-url": "https://login/x"}}',
        ("token-url", "oauth-token-url"),
    ),
    (
        "password_in_config",
        '{"global": {"api-base-url": "https://a.b", "password": "' + CONTRACT_SECRET + '"}}',
        ("password", "secrets"),
    ),
    ("behaviour_list", BASE + ', "script-behavior": []}', ("script-behavior",)),
    ("behaviour_null", BASE + ', "script-behavior": null}', ("script-behavior",)),
    ("timeouts_string", BASE + ', "script-behavior": {"api-timeouts": "60"}}', ("api-timeouts",)),
    (
        "delay_negative",
        BASE + ', "script-behavior": {"api-delay-seconds": -1}}',
        ("api-delay-seconds",),
    ),
    (
        "delay_string",
        BASE + ', "script-behavior": {"api-delay-seconds": "1"}}',
        ("api-delay-seconds",),
    ),
    (
        "delay_bool",
        BASE + ', "script-behavior": {"api-delay-seconds": true}}',
        ("api-delay-seconds",),
    ),
    (
        "rest_timeout_zero",
        BASE + ', "script-behavior": {"api-timeouts": {"rest-timeout-seconds": 0}}}',
        ("rest-timeout-seconds",),
    ),
    (
        "async_max_wait_zero",
        BASE + ', "script-behavior": {"api-timeouts": {"async-max-wait": 0}}}',
        ("async-max-wait",),
    ),
    (
        "poll_interval_zero",
        BASE + ', "script-behavior": {"api-timeouts": {"async-poll-interval": 0}}}',
        ("async-poll-interval",),
    ),
    (
        "poll_interval_negative",
        BASE + ', "script-behavior": {"api-timeouts": {"async-poll-interval": -0.5}}}',
        ("async-poll-interval",),
    ),
    (
        "retries_negative",
        BASE + ', "script-behavior": {"retry-strategy": {"max-retries": -1}}}',
        ("max-retries",),
    ),
    (
        "retries_fraction",
        BASE + ', "script-behavior": {"retry-strategy": {"max-retries": 1.5}}}',
        ("max-retries",),
    ),
    (
        "retries_string",
        BASE + ', "script-behavior": {"retry-strategy": {"max-retries": "3"}}}',
        ("max-retries",),
    ),
    (
        "backoff_negative",
        BASE + ', "script-behavior": {"retry-strategy": {"backoff-factor": -2}}}',
        ("backoff-factor",),
    ),
    (
        "max_wait_negative",
        BASE + ', "script-behavior": {"retry-strategy": {"max-wait-seconds": -1}}}',
        ("max-wait-seconds",),
    ),
    (
        "jitter_negative",
        BASE + ', "script-behavior": {"jitter": {"min-factor": -0.1}}}',
        ("min-factor",),
    ),
    (
        "jitter_inverted",
        BASE + ', "script-behavior": {"jitter": {"min-factor": 1.5, "max-factor": 1.2}}}',
        ("min-factor", "max-factor"),
    ),
    (
        "rate_zero",
        BASE + ', "script-behavior": {"rate-limiting": {"calls-per-second": 0}}}',
        ("calls-per-second",),
    ),
    (
        "burst_zero",
        BASE + ', "script-behavior": {"rate-limiting": {"burst-size": 0}}}',
        ("burst-size",),
    ),
    (
        "burst_fraction",
        BASE + ', "script-behavior": {"rate-limiting": {"burst-size": 2.5}}}',
        ("burst-size",),
    ),
    (
        "enabled_string",
        BASE + ', "script-behavior": {"rate-limiting": {"enabled": "true"}}}',
        ("enabled",),
    ),
    (
        "threshold_zero",
        BASE + ', "script-behavior": {"circuit-breaker": {"failure-threshold": 0}}}',
        ("failure-threshold",),
    ),
    (
        "breaker_timeout_zero",
        BASE + ', "script-behavior": {"circuit-breaker": {"timeout-seconds": 0}}}',
        ("timeout-seconds",),
    ),
    (
        "batch_zero",
        BASE + ', "script-behavior": {"batch-handling": {"read-batch-size": 0}}}',
        ("read-batch-size",),
    ),
    (
        "batch_string",
        BASE + ', "script-behavior": {"batch-handling": {"update-batch-size": "50"}}}',
        ("update-batch-size",),
    ),
]


@pytest.mark.parametrize(("case", "content", "named"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_exits_two_naming_the_problem(
    project: Project, wiremock: WireMock, case: str, content: Any, named: tuple[str, ...]
) -> None:
    project.write_config(content)
    project.write_secrets({"client-secret": CONTRACT_SECRET})
    stub_contract_token(wiremock, CONTRACT_TOKEN)
    run = project.run("contract_script", "acme", "test", env={"CONTRACT_ACTION": "api"})
    assert_clean_exit(run, 2, "config/acme-test-config.json", *named)
    assert REDACTED_MARK not in run.stderr, "the message itself was mangled by redaction"
    assert CONTRACT_SECRET not in project.log_text()
    assert "done" not in run.stdout
    assert project.outputs() == []
    assert wiremock.count("ANY") == 0


def test_every_schema_problem_is_listed_at_once(project: Project) -> None:
    project.write_config(
        BASE + ', "script-behavior": {"api-delay-seconds": -1, "jitter": {"max-factor": "x"},'
        ' "surprise": 1}}'
    )
    run = project.run("probe", "acme", "test", env={"PROBE_REQUIRE_TOKEN": "0"})
    assert_clean_exit(run, 2, "3 problems", "api-delay-seconds", "max-factor", "surprise")


def test_missing_config_names_the_file_and_the_copy_command(project: Project) -> None:
    run = project.run("probe", "acme", "test", env={"PROBE_REQUIRE_TOKEN": "0"})
    assert_clean_exit(
        run, 2, "config/acme-test-config.json", "cp config/org-env-config_example.json"
    )


# -- bad secrets ------------------------------------------------------------------------------
BAD_SECRETS: list[tuple[str, Any, tuple[str, ...]]] = [
    ("list", f'["{CONTRACT_SECRET}"]', ("array", "not an object")),
    ("string", f'"{CONTRACT_SECRET}"', ("string",)),
    ("number_value", {"client-secret": 12345678}, ("client-secret", "number")),
    ("object_value", {"client-secret": {"value": CONTRACT_SECRET}}, ("client-secret", "object")),
    ("null_value", {"client-secret": None}, ("client-secret", "null")),
    ("bool_value", {"client-secret": CONTRACT_SECRET, "enabled": True}, ("enabled", "boolean")),
    ("empty_file", "", ("is empty",)),
    ("trailing_comma", f'{{"client-secret": "{CONTRACT_SECRET}",}}', ("line 1", "column")),
    (
        "duplicate_key",
        f'{{"client-secret": "{CONTRACT_SECRET}", "client-secret": "{CONTRACT_SECRET}2"}}',
        ("client-secret", "twice"),
    ),
    ("collides_with_org_id", {"org-id": CONTRACT_SECRET}, ("org-id", "_org_id")),
    ("collides_with_env_type", {"envType": CONTRACT_SECRET}, ("envType", "_env_type")),
    ("collides_with_token", {"token": CONTRACT_SECRET}, ("token", "_token")),
    ("collides_underscored", {"_token": CONTRACT_SECRET}, ("_token",)),
    (
        "two_keys_one_name",
        {"client-secret": CONTRACT_SECRET, "client_secret": CONTRACT_SECRET + "2"},
        ("_client_secret",),
    ),
    ("unnamable_key", {"%%%": CONTRACT_SECRET}, ("%%%",)),
    ("nan_value", '{"client-secret": NaN}', ("NaN",)),
]


@pytest.mark.parametrize(("case", "content", "named"), BAD_SECRETS, ids=[c[0] for c in BAD_SECRETS])
def test_bad_secrets_exit_two_naming_the_file_not_the_value(
    project: Project, wiremock: WireMock, case: str, content: Any, named: tuple[str, ...]
) -> None:
    project.write_config(client_config(wiremock.base_url + CONTRACT_TOKEN_PATH))
    project.write_secrets(content)
    stub_contract_token(wiremock, CONTRACT_TOKEN)
    run = project.run("contract_script", "acme", "test", env={"CONTRACT_ACTION": "api"})
    assert_clean_exit(run, 2, "config/acme-test-config-secrets.json", *named)
    assert REDACTED_MARK not in run.stderr, "the message itself was mangled by redaction"
    assert CONTRACT_SECRET not in project.log_text()
    assert project.outputs() == []
    assert wiremock.count("ANY") == 0


def test_contract_script_missing_secrets_file_when_a_token_is_needed(
    project: Project, wiremock: WireMock
) -> None:
    project.write_config(client_config(wiremock.base_url + CONTRACT_TOKEN_PATH))
    run = project.run("probe", "acme", "test")
    assert_clean_exit(run, 2, "config/acme-test-config-secrets.json", "not found")
    assert REDACTED_MARK not in run.stderr
    assert wiremock.count("ANY") == 0


@pytest.mark.parametrize(
    ("remove", "named"),
    [
        (("tenant-id",), ("tenant-id",)),
        (("client-id",), ("client-id",)),
        (("oauth-scope",), ("oauth-scope",)),
        (("tenant-id", "client-id", "oauth-scope"), ("tenant-id", "client-id", "oauth-scope")),
    ],
)
def test_missing_client_credential_keys_are_named(
    project: Project, wiremock: WireMock, remove: tuple[str, ...], named: tuple[str, ...]
) -> None:
    config = client_config(None)
    for key in remove:
        del config["global"][key]
    project.write_config(config)
    project.write_secrets({"client-secret": CONTRACT_SECRET})
    run = project.run("probe", "acme", "test")
    assert_clean_exit(run, 2, *named)
    assert REDACTED_MARK not in run.stderr


def test_missing_client_secret_is_named(project: Project, wiremock: WireMock) -> None:
    project.write_config(client_config(wiremock.base_url + CONTRACT_TOKEN_PATH))
    project.write_secrets({"other": "value-1234"})
    run = project.run("probe", "acme", "test")
    assert_clean_exit(run, 2, "client-secret")
    assert wiremock.count("ANY") == 0


def test_tenant_id_is_not_needed_with_a_token_url(project: Project, wiremock: WireMock) -> None:
    config = client_config(wiremock.base_url + CONTRACT_TOKEN_PATH)
    del config["global"]["tenant-id"]
    project.write_config(config)
    project.write_secrets({"client-secret": CONTRACT_SECRET})
    stub_contract_token(wiremock, CONTRACT_TOKEN)
    run = project.run("probe", "acme", "test")
    assert run.code == 0, run
    assert wiremock.count("POST", CONTRACT_TOKEN_PATH) == 1


def test_credentials_are_not_needed_without_a_token(project: Project) -> None:
    project.write_config({"global": {"api-base-url": "https://a.example.com"}})
    run = project.run("probe", "acme", "test", env={"PROBE_REQUIRE_TOKEN": "0"})
    assert run.code == 0, run


# -- org / env names --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("org", "env"),
    [
        ("a/b", "test"),
        ("..", "test"),
        ("acme", "../etc"),
        ("acme corp", "test"),
        ("acmé", "test"),
        ("", "test"),
        ("acme", ""),
        ("acme-x", "test"),
        (".hidden", "test"),
        ("acme", "a\\b"),
        ("acme", "x" * 200),
    ],
)
def test_contract_script_org_and_env_must_be_plain_names(
    project: Project, org: str, env: str
) -> None:
    run = project.run("probe", org, env, env={"PROBE_REQUIRE_TOKEN": "0"})
    assert_clean_exit(run, 2)
    assert "plain name" in run.stderr or "Bad command line" in run.stderr
    assert REDACTED_MARK not in run.stderr


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["acme"],
        ["acme", "test", "extra"],
        ["acme", "test", "--log-format", "xml"],
        ["acme", "test", "--log-level", "LOUD"],
        ["acme", "test", "--bogus"],
    ],
)
def test_bad_command_lines_exit_two(project: Project, args: list[str]) -> None:
    project.write_config({"global": {"api-base-url": "https://a.example.com"}})
    run = project.run("probe", *args, env={"PROBE_REQUIRE_TOKEN": "0"})
    assert_clean_exit(run, 2, "ORG_ID ENV_TYPE")


# -- injection ----------------------------------------------------------------------------------
def test_secrets_are_injected_as_underscore_snake_case(
    project: Project, wiremock: WireMock
) -> None:
    project.write_config(client_config(wiremock.base_url + CONTRACT_TOKEN_PATH))
    project.write_secrets(
        {
            "client-secret": CONTRACT_SECRET,
            "az-token": "",
            "sftp-password": "pw-value-1",
            "apiKey": "api-key-value-2",
            "SHAREPOINT_TOKEN": "sp-token-value-3",
        }
    )
    stub_contract_token(wiremock, CONTRACT_TOKEN)
    run = project.run("probe", "acme", "test")
    assert run.code == 0, run
    config = json.loads(run.stdout.strip().splitlines()[-1])["config"]
    injected = {k: v for k, v in config.items() if k.startswith("_")}
    assert injected == {
        "_client_secret": CONTRACT_SECRET,
        "_az_token": "",
        "_sftp_password": "pw-value-1",
        "_api_key": "api-key-value-2",
        "_sharepoint_token": "sp-token-value-3",
        "_org_id": "acme",
        "_env_type": "test",
        "_token": CONTRACT_TOKEN,
        "_dry_run": False,
        "_full_refresh": False,
        "_args": {
            "org_id": "acme",
            "env_type": "test",
            "log_format": None,
            "log_level": None,
            "dry_run": False,
            "full_refresh": False,
        },
    }
    for value in (
        "pw-value-1",
        "api-key-value-2",
        "sp-token-value-3",
        CONTRACT_SECRET,
        CONTRACT_TOKEN,
    ):
        assert value not in run.stderr and value not in project.log_text()


@pytest.mark.parametrize(
    "az_token", ["aztok-Value-123", "Bearer aztok-Value-123", "bearer  aztok-Value-123 "]
)
def test_az_token_is_used_raw_without_a_token_request(
    project: Project, wiremock: WireMock, az_token: str
) -> None:
    project.write_config(client_config(wiremock.base_url + CONTRACT_TOKEN_PATH))
    project.write_secrets({"client-secret": CONTRACT_SECRET, "az-token": az_token})
    run = project.run("probe", "acme", "test")
    assert run.code == 0, run
    assert json.loads(run.stdout.strip().splitlines()[-1])["config"]["_token"] == "aztok-Value-123"
    assert wiremock.count("ANY") == 0
    assert "aztok-Value-123" not in run.stderr and "aztok-Value-123" not in project.log_text()


# -- the token request as the server saw it ------------------------------------------------------
def test_token_request_is_the_exact_client_credentials_form(
    project: Project, wiremock: WireMock
) -> None:
    project.write_config(client_config(wiremock.base_url + CONTRACT_TOKEN_PATH))
    project.write_secrets({"client-secret": CONTRACT_SECRET})
    stub_contract_token(wiremock, CONTRACT_TOKEN)
    run = project.run("probe", "acme", "test", env={"PROBE_TOKEN_CALLS": "5"})
    assert run.code == 0, run
    seen = wiremock.find("POST", CONTRACT_TOKEN_PATH)
    assert len(seen) == 1 and wiremock.count("ANY") == 1
    request = seen[0]
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert "authorization" not in headers
    assert parse_qs(request["body"], keep_blank_values=True) == {
        "grant_type": ["client_credentials"],
        "client_id": ["client-42"],
        "client_secret": [CONTRACT_SECRET],
        "scope": ["https://api.example.com/.default"],
    }
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["config"]["_token"] == CONTRACT_TOKEN
    assert report["tokens"] == [CONTRACT_TOKEN] * 5


def test_default_token_url_is_azure_ad_for_the_tenant() -> None:
    provider = auth.TokenProvider(client_config(None) | {"_client_secret": CONTRACT_SECRET})
    assert provider.token_url == "https://login.microsoftonline.com/tenant-x/oauth2/v2.0/token"
    assert provider.can_refresh


@pytest.mark.parametrize(("expires_in", "fresh_until"), [(3600, 3300.0), (600, 300.0), (100, 50.0)])
def test_token_is_cached_until_its_safety_margin(
    wiremock: WireMock, expires_in: int, fresh_until: float
) -> None:
    stub_contract_token(wiremock, CONTRACT_TOKEN, expires_in=expires_in)
    clock = FakeClock()
    config = client_config(wiremock.base_url + CONTRACT_TOKEN_PATH) | {
        "_client_secret": CONTRACT_SECRET
    }
    provider = auth.TokenProvider(config, clock=clock)
    try:
        assert provider.get_token() == CONTRACT_TOKEN
        clock.now += fresh_until - 0.01
        assert provider.get_token() == CONTRACT_TOKEN
        assert wiremock.count("POST", CONTRACT_TOKEN_PATH) == 1
        clock.now += 0.02
        assert provider.get_token() == CONTRACT_TOKEN
        assert wiremock.count("POST", CONTRACT_TOKEN_PATH) == 2
        assert provider.refresh() == CONTRACT_TOKEN
        assert wiremock.count("POST", CONTRACT_TOKEN_PATH) == 3
    finally:
        redaction.clear_registered_secrets()


def test_providers_are_shared_per_credential_set(wiremock: WireMock) -> None:
    stub_contract_token(wiremock, CONTRACT_TOKEN)
    config = client_config(wiremock.base_url + CONTRACT_TOKEN_PATH) | {
        "_client_secret": CONTRACT_SECRET
    }
    auth.clear_token_providers()
    try:
        first = auth.get_token_provider(config)
        same = auth.get_token_provider(copy.deepcopy(config) | {"_token": CONTRACT_TOKEN})
        other = auth.get_token_provider(config | {"_client_secret": CONTRACT_SECRET + "-other"})
        assert first is same and first is not other
        first.get_token()
        same.get_token()
        assert wiremock.count("POST", CONTRACT_TOKEN_PATH) == 1
    finally:
        auth.clear_token_providers()
        redaction.clear_registered_secrets()


def test_refresh_without_client_credentials_is_an_auth_error() -> None:
    provider = auth.TokenProvider(
        {"global": {"api-base-url": "https://a"}, "_az_token": "tok-1234"}
    )
    assert provider.get_token() == "tok-1234"
    assert not provider.can_refresh
    with pytest.raises(ApiAuthenticationError):
        provider.refresh()
    with pytest.raises(ConfigurationError, match="client-id"):
        auth.TokenProvider({"global": {}, "_client_secret": "s-1234"}).get_token()
    redaction.clear_registered_secrets()


# -- token endpoint failures: exit 3, no secret anywhere ----------------------------------------
TOKEN_FAILURES: list[tuple[str, dict[str, Any], int]] = [
    (
        "invalid_client_echoing_the_secret",
        {
            "status": 401,
            "jsonBody": {
                "error": "invalid_client",
                "error_description": f"AADSTS7000215: Invalid client secret provided: {CONTRACT_SECRET}",
            },
        },
        1,
    ),
    ("invalid_scope", {"status": 400, "jsonBody": {"error": "invalid_scope"}}, 1),
    ("server_error_every_time", {"status": 500, "body": "oops"}, 3),
    ("throttled_every_time", {"status": 429, "headers": {"Retry-After": "0"}}, 3),
    (
        "html_instead_of_json",
        {"status": 200, "body": "<html>login</html>", "headers": {"Content-Type": "text/html"}},
        1,
    ),
    ("json_without_access_token", {"status": 200, "jsonBody": {"token_type": "Bearer"}}, 1),
    ("redirect_elsewhere", {"status": 302, "headers": {"Location": "http://127.0.0.1:9/steal"}}, 1),
    (
        "too_slow",
        {
            "status": 200,
            "fixedDelayMilliseconds": 800,
            "jsonBody": {"access_token": CONTRACT_TOKEN, "expires_in": 3600},
        },
        3,
    ),
    ("reset_connection", {"fault": "CONNECTION_RESET_BY_PEER"}, 3),
]


@pytest.mark.parametrize(
    ("case", "response", "requests_seen"), TOKEN_FAILURES, ids=[c[0] for c in TOKEN_FAILURES]
)
def test_token_endpoint_failure_exits_three_without_the_secret(
    project: Project, wiremock: WireMock, case: str, response: dict[str, Any], requests_seen: int
) -> None:
    config = client_config(wiremock.base_url + CONTRACT_TOKEN_PATH)
    config["script-behavior"]["api-timeouts"]["rest-timeout-seconds"] = SHORT_TIMEOUT_SECONDS
    project.write_config(config)
    project.write_secrets({"client-secret": CONTRACT_SECRET})
    wiremock.stub(
        {"request": {"method": "POST", "urlPath": CONTRACT_TOKEN_PATH}, "response": response}
    )
    run = project.run("contract_script", "acme", "test", env={"CONTRACT_ACTION": "api"})
    assert_clean_exit(run, 3, "token")
    assert CONTRACT_SECRET not in project.log_text()
    assert CONTRACT_TOKEN not in run.stderr and CONTRACT_TOKEN not in project.log_text()
    assert wiremock.count("POST", CONTRACT_TOKEN_PATH) == requests_seen
    assert wiremock.count("ANY") == requests_seen
    assert project.outputs() == []


def test_contract_script_unreachable_token_endpoint_exits_three(project: Project) -> None:
    project.write_config(client_config(f"http://127.0.0.1:{free_port()}/token"))
    project.write_secrets({"client-secret": CONTRACT_SECRET})
    run = project.run("probe", "acme", "test")
    assert_clean_exit(run, 3, "token endpoint")


# -- exit codes, summary, signals ---------------------------------------------------------------
def run_contract_raising(project: Project, raised: str) -> Any:
    """Run the contract script without a token; its main raises ``raised`` (a class name)."""
    project.write_config({"global": {"api-base-url": "https://a.example.com"}})
    env = {"CONTRACT_ACTION": f"raise:{raised}", **CONTRACT_NO_TOKEN}
    return project.run("contract_script", "acme", "test", env=env)


@pytest.mark.parametrize(("raised", "code"), ERROR_EXIT_CODES)
def test_each_error_class_has_its_exit_code(project: Project, raised: str, code: int) -> None:
    run = run_contract_raising(project, raised)
    assert_clean_exit(run, code, "contract failure", "contract fix", "📝 Example: contract example")
    assert "Traceback" in project.log_text()


def test_unexpected_error_exits_one_with_the_traceback_in_the_file_only(project: Project) -> None:
    run = run_contract_raising(project, "RuntimeError")
    assert run.code == 1, run
    assert "Traceback" not in run.stderr
    assert "unexpected failure in the script" in run.stderr
    assert "Run summary: exit 1" in run.stderr
    assert "Traceback" in project.log_text()


def test_keyboard_interrupt_in_main_exits_130(project: Project) -> None:
    run = run_contract_raising(project, "KeyboardInterrupt")
    assert run.code == 130, run
    assert "Traceback" not in run.stderr
    assert "Run summary: exit 130" in run.stderr


def test_success_summary_has_the_real_counts(project: Project, wiremock: WireMock) -> None:
    project.write_config(
        client_config(wiremock.base_url + CONTRACT_TOKEN_PATH, wiremock.base_url + "/api")
    )
    project.write_secrets({"client-secret": CONTRACT_SECRET})
    stub_contract_token(wiremock, CONTRACT_TOKEN)
    scenario = "items"
    wiremock.stub(
        {
            "scenarioName": scenario,
            "requiredScenarioState": "Started",
            "newScenarioState": "throttled",
            "request": {"method": "GET", "urlPath": "/api/items"},
            "response": {"status": 429, "headers": {"Retry-After": "0"}},
        }
    )
    wiremock.stub(
        {
            "scenarioName": scenario,
            "requiredScenarioState": "throttled",
            "request": {"method": "GET", "urlPath": "/api/items"},
            "response": {"status": 200, "jsonBody": {"value": [{"id": 1}, {"id": 2}]}},
        }
    )
    run = project.run("contract_script", "acme", "test", env={"CONTRACT_ACTION": "api"})
    assert run.code == 0, run
    assert wiremock.count("GET", "/api/items") == 2
    summary = [line for line in run.stderr.splitlines() if "Run summary" in line]
    assert len(summary) == 1
    line = summary[0]
    for part in (
        "exit 0",
        "API calls 2",
        "retries 1",
        "429s 1",
        "breaker opens 0",
        "files written 1",
    ):
        assert part in line, line
    assert project.outputs() and project.outputs()[0].startswith("items")
    items = wiremock.find("GET", "/api/items")
    assert all(r["headers"].get("Authorization") == f"Bearer {CONTRACT_TOKEN}" for r in items)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_mid_save_keeps_the_previous_file_and_no_temporary(
    project: Project, signum: int, code: int
) -> None:
    project.write_config({"global": {"api-base-url": "https://a.example.com"}})
    proc = project.start(
        "contract_script", "acme", "test", env={"CONTRACT_ACTION": "slow_save", **CONTRACT_NO_TOKEN}
    )
    wait_for_line(proc, "first saved")
    before = (project.root / "output" / "data.jsonl").read_bytes()
    wait_for_line(proc, "second started")
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=SIGNAL_WAIT)
    assert proc.returncode == code, stderr
    assert "done" not in stdout
    assert "Traceback" not in stderr
    assert f"Run summary: exit {code}" in stderr
    assert project.outputs() == ["data.jsonl"]
    assert (project.root / "output" / "data.jsonl").read_bytes() == before
    assert len(before.splitlines()) == 50


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_debug_console_still_shows_no_traceback_for_a_helpful_error(
    project: Project, log_format: str
) -> None:
    project.write_config({"global": {"api-base-url": "https://a.example.com"}})
    run = project.run(
        "contract_script",
        "acme",
        "test",
        "--log-level",
        "DEBUG",
        "--log-format",
        log_format,
        env={"CONTRACT_ACTION": "raise:ApiOperationError", **CONTRACT_NO_TOKEN},
    )
    assert_clean_exit(run, 4, "contract failure")
    assert "DEBUG" in run.stderr
    assert "Traceback" in project.log_text()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"a": NaN}', "holds NaN, which is not a JSON number"),
        ('{"a": -Infinity}', "holds -Infinity, which is not a JSON number"),
        ('{"a": 1e400}', "holds the number 1e400, which is too large"),
        ('{"a": 1, "a": 2}', "has the key 'a' twice in one object"),
        ("[" * 100_000 + "]" * 100_000, "is nested too deeply"),
        ("", "is empty"),
        ('{"a": 1,}', "is not valid JSON: Expecting property name"),
    ],
)
def test_read_json_file_is_strict(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "x-config.json"
    path.write_text(text)
    with pytest.raises(ConfigurationError) as caught:
        read_json_file(path, what="config file", show_line=True, example="e.json")
    assert problem in caught.value.what_went_wrong
    assert str(path) in caught.value.what_went_wrong


def test_read_json_file_accepts_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "x-config.json"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1.5}')
    assert read_json_file(path, what="config file", show_line=True, example="e.json") == {"a": 1.5}


def test_a_401_refresh_shares_the_first_tokens_provider(
    project: Project, wiremock: WireMock
) -> None:
    """script_runner's first token and the client's refresh after a 401 use one provider:
    exactly one token request each, and the retried call carries the new token."""
    project.write_config(
        client_config(wiremock.base_url + CONTRACT_TOKEN_PATH, wiremock.base_url + "/api")
    )
    project.write_secrets({"client-secret": CONTRACT_SECRET})
    for state, next_state, token in (
        ("Started", "second", CONTRACT_TOKEN),
        ("second", "third", "tok-2-Zx9"),
    ):
        wiremock.stub(
            {
                "scenarioName": "tokens",
                "requiredScenarioState": state,
                "newScenarioState": next_state,
                "request": {"method": "POST", "urlPath": CONTRACT_TOKEN_PATH},
                "response": {
                    "status": 200,
                    "jsonBody": {"access_token": token, "expires_in": 3600},
                },
            }
        )
    wiremock.stub(
        {
            "request": {
                "method": "GET",
                "urlPath": "/api/items",
                "headers": {"Authorization": {"equalTo": f"Bearer {CONTRACT_TOKEN}"}},
            },
            "response": {"status": 401},
        }
    )
    wiremock.stub(
        {
            "request": {
                "method": "GET",
                "urlPath": "/api/items",
                "headers": {"Authorization": {"equalTo": "Bearer tok-2-Zx9"}},
            },
            "response": {"status": 200, "jsonBody": {"value": [{"id": 1}]}},
        }
    )
    run = project.run("contract_script", "acme", "test", env={"CONTRACT_ACTION": "api"})
    assert run.code == 0, run
    assert wiremock.count("POST", CONTRACT_TOKEN_PATH) == 2
    assert wiremock.count("GET", "/api/items") == 2
    assert "tok-2-Zx9" not in run.stderr and "tok-2-Zx9" not in project.log_text()
