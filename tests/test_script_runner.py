"""Real scripts (``tests/scripts/``) run as subprocesses in a scratch copy of the project, with a
real WireMock as the token endpoint: injection, token requests as the server saw them, every
exit code, SIGTERM and SIGINT, and each bad input (right code, no traceback, key named)."""

from __future__ import annotations

import json
import signal
import stat
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from tests.support_scripts import ERROR_EXIT_CODES, SIGNAL_WAIT, Project, Run, wait_for_line
from tools.wiremock_server import WireMock, free_port

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
