"""The incremental state store: values, commits, the one-run lock, corruption, and how every
way a run can end moves the state (real files; real subprocesses for runs, signals, locks)."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.support_scripts import SIGNAL_WAIT, Project, Run, wait_for_line
from tools.wiremock_server import WireMock
from utils import _run_control as run_control
from utils.exceptions import ConfigurationError, ValidationError
from utils.state import RunState, load_state

ORG, ENV = "acme", "test"
SCRIPT = "state_probe"
STATE_NAME = f"{ORG}-{ENV}-state-probe"
SECOND_RUN_MAX_SECONDS = 10  # the refused run's whole life, interpreter start-up included
UTC_STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


# -- in-process: values and commits ---------------------------------------------------------
@pytest.fixture
def config(root: Path) -> Iterator[dict[str, Any]]:
    """A run's config for acme/test, the script named ``state_probe``, not a dry run."""
    run_control.reset()
    run_control.set_script_name("state_probe")
    yield {"_org_id": ORG, "_env_type": ENV, "_full_refresh": False}
    run_control.set_script_name(None)
    run_control.reset()


def state_file(root: Path) -> Path:
    return root / "state" / f"{STATE_NAME}.json"


def test_state_lives_in_the_state_folder_named_by_org_env_and_script(
    root: Path, config: dict[str, Any]
) -> None:
    state = load_state(config)
    assert state.path == state_file(root)
    assert state.get("missing") is None
    assert state.get("missing", "1970-01-01") == "1970-01-01"
    assert not state.path.exists()  # nothing committed yet
    assert (root / "state" / f"{STATE_NAME}.lock").exists()


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (None, None),
        (True, True),
        (42, 42),
        (2.5, 2.5),
        ("text é", "text é"),
        ((1, "a"), [1, "a"]),
        (date(2025, 6, 30), "2025-06-30"),
        (datetime(2025, 6, 30, 12, 0, tzinfo=timezone.utc), "2025-06-30T12:00:00+00:00"),
        (datetime(2025, 6, 30, 8, 30), "2025-06-30T08:30:00"),
        ({"since": date(2025, 1, 2), "ids": [1, 2]}, {"since": "2025-01-02", "ids": [1, 2]}),
    ],
)
def test_set_stores_json_values_and_dates_as_iso_8601(
    root: Path, config: dict[str, Any], value: Any, stored: Any
) -> None:
    state = load_state(config)
    state.set("k", value)
    assert state.get("k") == stored
    state.commit()
    assert json.loads(state.path.read_text(encoding="utf-8")) == {"k": stored}


def test_an_aware_datetime_reads_back_as_the_same_instant(
    root: Path, config: dict[str, Any]
) -> None:
    plus_two = timezone(timedelta(hours=2))
    moment = datetime(2025, 6, 30, 23, 59, 59, 123456, tzinfo=plus_two)
    state = load_state(config)
    state.set("watermark", moment)
    state.commit()
    read = json.loads(state.path.read_text(encoding="utf-8"))["watermark"]
    back = datetime.fromisoformat(read)
    assert back == moment
    assert back.utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize(
    "value",
    [
        Decimal("1.50"),
        {1, 2},
        object(),
        float("nan"),
        float("inf"),
        {1: "int key"},
        b"bytes",
        [1, {"deep": Decimal("2")}],
    ],
    ids=["decimal", "set", "object", "nan", "inf", "int-key", "bytes", "nested-decimal"],
)
def test_set_refuses_what_json_cannot_store(root: Path, config: dict[str, Any], value: Any) -> None:
    state = load_state(config)
    state.set("kept", 1)
    with pytest.raises(ValidationError) as caught:
        state.set("bad", value)
    assert "'bad'" in caught.value.what_went_wrong
    assert state.get("bad") is None
    assert state.get("kept") == 1


def test_set_refuses_a_key_that_is_not_a_string(root: Path, config: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        load_state(config).set(7, "x")  # type: ignore[arg-type]


def test_get_returns_a_copy_so_only_set_changes_the_state(
    root: Path, config: dict[str, Any]
) -> None:
    state = load_state(config)
    state.set("ids", [1, 2])
    state.get("ids").append(3)
    assert state.get("ids") == [1, 2]


def test_load_state_twice_in_one_process_is_the_same_state(
    root: Path, config: dict[str, Any]
) -> None:
    assert load_state(config) is load_state(config)


def test_commit_replaces_the_file_whole_and_leaves_no_temporary_file(
    root: Path, config: dict[str, Any]
) -> None:
    state = load_state(config)
    state.set("a", 1)
    state.commit()
    state.set("b", "two")
    state.commit()
    assert json.loads(state.path.read_text(encoding="utf-8")) == {"a": 1, "b": "two"}
    assert sorted(p.name for p in state.path.parent.iterdir()) == [
        f"{STATE_NAME}.json",
        f"{STATE_NAME}.lock",
    ]


def test_commit_without_a_change_does_not_write(root: Path, config: dict[str, Any]) -> None:
    state = load_state(config)
    state.commit()
    assert not state.path.exists()
    state.set("a", 1)
    state.commit()
    before = state.path.stat().st_mtime_ns
    os.utime(state.path, ns=(before - 10**9, before - 10**9))
    state.commit()
    assert state.path.stat().st_mtime_ns == before - 10**9


def test_commit_in_a_dry_run_writes_nothing(root: Path, config: dict[str, Any]) -> None:
    run_control.set_dry_run(True)
    state = load_state(config)
    state.set("a", 1)
    state.commit()
    assert not state.path.exists()


def test_the_success_hook_commits_what_is_pending(root: Path, config: dict[str, Any]) -> None:
    state = load_state(config)
    state.set("a", 1)
    run_control.run_success_hooks()
    assert json.loads(state.path.read_text(encoding="utf-8")) == {"a": 1}


def test_a_full_refresh_starts_empty_and_replaces_the_old_state_when_committed(
    root: Path, config: dict[str, Any]
) -> None:
    state_file(root).parent.mkdir(parents=True, exist_ok=True)
    state_file(root).write_text('{"old": 1}', encoding="utf-8")
    state = load_state({**config, "_full_refresh": True})
    assert state.get("old") is None
    assert json.loads(state_file(root).read_text(encoding="utf-8")) == {"old": 1}
    state.commit()  # even with nothing set: the old state goes
    assert json.loads(state_file(root).read_text(encoding="utf-8")) == {}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"a": 1', "not valid JSON"),
        (b"", "not valid JSON"),
        (b"[1, 2]", "JSON list, not an object"),
        (b'"text"', "JSON str, not an object"),
        (b"\xff\xfe{}", "not UTF-8"),
    ],
)
def test_a_corrupt_state_file_is_a_configuration_error_naming_file_and_fix(
    root: Path, config: dict[str, Any], content: bytes, reason: str
) -> None:
    path = state_file(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    with pytest.raises(ConfigurationError) as caught:
        load_state(config)
    message = str(caught.value)
    assert str(path) in message
    assert reason in message
    assert "--full-refresh" in message
    assert path.read_bytes() == content  # never touched
    # the failed load let the lock go: the same process may try again after a fix
    path.write_text('{"a": 1}', encoding="utf-8")
    assert load_state(config).get("a") == 1


def test_an_unreadable_state_file_is_a_configuration_error(
    root: Path, config: dict[str, Any]
) -> None:
    state_file(root).mkdir(parents=True)  # a folder where the file should be
    with pytest.raises(ConfigurationError) as caught:
        load_state(config)
    assert str(state_file(root)) in str(caught.value)
    assert "--full-refresh" in str(caught.value)


def test_run_state_repr_names_path_and_keys(tmp_path: Path) -> None:
    assert repr(RunState(tmp_path / "s.json", {"b": 1, "a": 2})) == (
        f"RunState({str(tmp_path / 's.json')!r}, keys=['a', 'b'])"
    )


# -- real runs --------------------------------------------------------------------------------
@pytest.fixture
def probe(project: Project, wiremock: WireMock) -> Project:
    """The scratch project with a config for acme/test whose API is WireMock (404 anywhere)."""
    project.write_config(
        {
            "global": {"api-base-url": f"{wiremock.base_url}/api"},
            "script-behavior": {"retry-strategy": {"max-retries": 0, "backoff-factor": 0}},
        },
        ORG,
        ENV,
    )
    return project


def run_probe(project: Project, *args: str, **knobs: Any) -> Run:
    return project.run(SCRIPT, ORG, ENV, *args, env=probe_env(**knobs))


def probe_env(**knobs: Any) -> dict[str, str]:
    """``PROBE_*`` variables: dicts as JSON, the rest as text."""
    return {
        f"PROBE_{name.upper()}": json.dumps(v) if isinstance(v, dict) else str(v)
        for name, v in knobs.items()
    }


def project_state(project: Project) -> Path:
    return project.root / "state" / f"{STATE_NAME}.json"


def read_back(run: Run) -> dict[str, Any]:
    """What the run's ``load_state`` returned (the probe's first stdout line)."""
    return dict(json.loads(run.stdout.splitlines()[0])["read"])


def seed(project: Project, values: dict[str, Any]) -> bytes:
    path = project_state(project)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values), encoding="utf-8")
    return path.read_bytes()


def test_a_successful_run_commits_and_the_next_run_reads_it(probe: Project) -> None:
    first = run_probe(probe, state_set={"w": "2025-06-30T10:00:00Z", "a": [1, 2]})
    assert first.code == 0, first
    assert read_back(first) == {"w": None, "a": None, "b": None, "c": None}
    second = run_probe(probe, state_set={"b": True})
    assert second.code == 0, second
    assert read_back(second) == {"w": "2025-06-30T10:00:00Z", "a": [1, 2], "b": None, "c": None}
    assert json.loads(project_state(probe).read_text()) == {
        "w": "2025-06-30T10:00:00Z",
        "a": [1, 2],
        "b": True,
    }


@pytest.mark.parametrize(
    ("end", "code"),
    [("HelpfulError", 1), ("ValidationError", 2), ("ApiOperationError", 4), ("api", 4)],
)
def test_a_failed_run_leaves_the_state_as_it_was(
    probe: Project, wiremock: WireMock, end: str, code: int
) -> None:
    before = seed(probe, {"w": "old"})
    run = run_probe(probe, state_set={"w": "new"}, end=end)
    assert run.code == code, run
    assert project_state(probe).read_bytes() == before
    if end == "api":  # a real request failed on the server
        assert wiremock.count("GET", "/api/missing") == 1


def test_a_dry_run_never_commits_not_even_a_checkpoint(probe: Project) -> None:
    before = seed(probe, {"w": "old"})
    run = run_probe(probe, "--dry-run", state_set={"w": "new"}, checkpoint=1)
    assert run.code == 0, run
    assert "DRY RUN: state not committed" in run.stderr
    assert project_state(probe).read_bytes() == before


def test_sigterm_after_a_checkpoint_keeps_the_checkpoint_only(probe: Project) -> None:
    seed(probe, {"w": "old"})
    proc = probe.start(
        SCRIPT,
        ORG,
        ENV,
        env=probe_env(
            state_set={"w": "checkpoint"}, checkpoint=1, state_after={"w": "later"}, end="wait"
        ),
    )
    wait_for_line(proc, "waiting")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=SIGNAL_WAIT) == 143
    proc.communicate()
    assert json.loads(project_state(probe).read_text()) == {"w": "checkpoint"}


def test_a_full_refresh_reads_nothing_and_replaces_the_state_on_success(probe: Project) -> None:
    seed(probe, {"a": 1, "b": 2})
    run = run_probe(probe, "--full-refresh", state_set={"c": 3})
    assert run.code == 0, run
    assert read_back(run) == {"w": None, "a": None, "b": None, "c": None}
    assert json.loads(project_state(probe).read_text()) == {"c": 3}


def test_a_failed_full_refresh_keeps_the_old_state(probe: Project) -> None:
    before = seed(probe, {"a": 1})
    run = run_probe(probe, "--full-refresh", state_set={"c": 3}, end="HelpfulError")
    assert run.code == 1, run
    assert project_state(probe).read_bytes() == before


def test_a_corrupt_state_exits_2_naming_the_file_and_full_refresh_repairs_it(
    probe: Project,
) -> None:
    path = project_state(probe)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"w": "trunc', encoding="utf-8")
    run = run_probe(probe, state_set={"w": "new"})
    assert run.code == 2, run
    assert f"state/{STATE_NAME}.json is corrupt" in run.stderr
    assert "--full-refresh" in run.stderr
    assert "Traceback" not in run.stderr
    assert path.read_text(encoding="utf-8") == '{"w": "trunc'
    repaired = run_probe(probe, "--full-refresh", state_set={"w": "new"})
    assert repaired.code == 0, repaired
    assert json.loads(path.read_text()) == {"w": "new"}


def lock_file(project: Project) -> Path:
    return project.root / "state" / f"{STATE_NAME}.lock"


def test_a_second_run_exits_75_at_once_naming_the_holder_until_the_holder_dies(
    probe: Project,
) -> None:
    holder = probe.start(SCRIPT, ORG, ENV, env=probe_env(state_set={"w": "holder"}, end="wait"))
    try:
        wait_for_line(holder, "waiting")
        started = time.monotonic()
        second = run_probe(probe, state_set={"w": "second"})
        took = time.monotonic() - started
        assert second.code == 75, second
        assert took < SECOND_RUN_MAX_SECONDS
        assert f"process {holder.pid} on " in second.stderr
        info = json.loads(lock_file(probe).read_text())
        assert info["pid"] == holder.pid
        assert f"running since {info['started']}" in second.stderr
        assert re.fullmatch(UTC_STAMP, info["started"])
        assert not project_state(probe).exists()  # the refused run changed nothing
    finally:
        holder.kill()  # SIGKILL: no clean-up at all, as a crash
        holder.wait(timeout=SIGNAL_WAIT)
        holder.communicate()
    after = run_probe(probe, state_set={"w": "after"})
    assert after.code == 0, after
    assert json.loads(project_state(probe).read_text()) == {"w": "after"}


def test_a_stale_lock_file_naming_a_live_pid_does_not_block(probe: Project) -> None:
    path = lock_file(probe)
    path.parent.mkdir(parents=True, exist_ok=True)
    stale = {"pid": os.getpid(), "started": "2020-01-01T00:00:00Z", "host": "elsewhere"}
    path.write_text(json.dumps(stale), encoding="utf-8")
    run = run_probe(probe, state_set={"w": "new"})
    assert run.code == 0, run
    info = json.loads(path.read_text())
    assert info["pid"] != os.getpid()
    assert info["started"] != stale["started"]


def test_other_orgs_and_scripts_run_beside_a_holder(probe: Project) -> None:
    probe.write_config(
        json.loads((probe.root / "config" / f"{ORG}-{ENV}-config.json").read_text()),
        "globex",
        ENV,
    )
    holder = probe.start(SCRIPT, ORG, ENV, env=probe_env(end="wait"))
    try:
        wait_for_line(holder, "waiting")
        other = probe.run(SCRIPT, "globex", ENV, env=probe_env(state_set={"w": 1}))
        assert other.code == 0, other
    finally:
        holder.kill()
        holder.wait(timeout=SIGNAL_WAIT)
        holder.communicate()
