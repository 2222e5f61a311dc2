"""``make run-all`` (tools/run_all.py): real runs of a real script, one process per org/env."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support_scripts import make_project

ROOT = Path(__file__).resolve().parent.parent
RUN_TIMEOUT = 120
GOOD = {"global": {"api-base-url": "http://127.0.0.1:9/api"}}
BAD = {"global": {}}  # api-base-url missing: the script exits 2
LINE = re.compile(
    r"^(?P<org>\S+)\s+(?P<env>\S+)\s+exit (?P<code>\d+)\s+\(\w[\w ]*\)\s+(?P<secs>[\d.]+)s\s+(?P<log>\S+)$"
)
# A script that records when it ran (wall clock: the runs are separate processes) and,
# with PROBE_SLEEP, stays a while so runs overlap.
TIMED_SCRIPT = """
import json, os, time
from utils.load_n_save import TxoDataHandler
from utils.script_runner import parse_args_and_load_config, run_script

def main() -> None:
    config = parse_args_and_load_config("timed", require_token=False)
    start = time.time()
    print("started", flush=True)
    time.sleep(float(os.environ.get("PROBE_SLEEP", "0")))
    name = f"{config['_org_id']}-{config['_env_type']}-times.json"
    print(f"console of {config['_org_id']}/{config['_env_type']}")
    TxoDataHandler().save({"start": start, "end": time.time()}, "output", name)

if __name__ == "__main__":
    run_script(main)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A scratch toolkit with tools/ and a src/timed.py script, and no configs of its own."""
    root = make_project(tmp_path / "proj").root
    shutil.copytree(ROOT / "tools", root / "tools", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "src").mkdir()
    (root / "src" / "__init__.py").touch()
    (root / "src" / "timed.py").write_text(TIMED_SCRIPT, encoding="utf-8")
    return root


def write_configs(root: Path, configs: dict[str, dict]) -> None:
    for pair, data in configs.items():
        (root / "config" / f"{pair}-config.json").write_text(json.dumps(data), encoding="utf-8")


def run_all(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.run_all", "timed", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
        env={"PATH": "/usr/bin:/bin", **env},
    )


def lines(stdout: str) -> dict[tuple[str, str], re.Match[str]]:
    found = [m for line in stdout.splitlines() if (m := LINE.match(line))]
    return {(m["org"], m["env"]): m for m in found}


def test_one_failing_org_among_several_fails_the_whole_and_the_others_run(project: Path) -> None:
    write_configs(project, {"acme-prod": GOOD, "globex-prod": GOOD, "initech-prod": BAD})

    done = run_all(project)

    assert done.returncode == 1, done
    runs = lines(done.stdout)
    assert {pair: int(m["code"]) for pair, m in runs.items()} == {
        ("acme", "prod"): 0,
        ("globex", "prod"): 0,
        ("initech", "prod"): 2,
    }
    assert "3 runs: 2 succeeded, 1 failed" in done.stdout
    for (org, env), match in runs.items():
        log = (project / match["log"]).read_text(encoding="utf-8")
        assert f"{org}-{env}" in log  # each run's console in its own file
        others = {o for o, _ in runs} - {org}
        assert not any(f"console of {o}/" in log for o in others)
    assert "initech-prod-config.json" in (project / runs["initech", "prod"]["log"]).read_text()
    assert sorted(p.name for p in (project / "output").iterdir()) == [
        "acme-prod-times.json",
        "globex-prod-times.json",
    ]


def test_all_succeeding_exits_0_and_examples_are_never_run(project: Path) -> None:
    write_configs(project, {"acme-prod": GOOD})
    assert list((project / "config").glob("*_example.json"))  # present, and left alone

    done = run_all(project)

    assert done.returncode == 0, done
    assert list(lines(done.stdout)) == [("acme", "prod")]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--envs", "prod"], [("acme", "prod"), ("globex", "prod")]),
        (["--orgs", "acme"], [("acme", "prod"), ("acme", "test")]),
        (["--orgs", "acme globex", "--envs", "test"], [("acme", "test")]),
    ],
)
def test_orgs_and_envs_keep_only_the_named_pairs(
    project: Path, args: list[str], expected: list[tuple[str, str]]
) -> None:
    write_configs(project, {"acme-prod": GOOD, "acme-test": GOOD, "globex-prod": GOOD})

    done = run_all(project, *args)

    assert done.returncode == 0, done
    assert sorted(lines(done.stdout)) == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--orgs", "nosuch"], "No config file for organisation nosuch"),
        (["--envs", "staging"], "No config file for environment staging"),
        (["--parallel", "0"], "PARALLEL must be 1 or more"),
    ],
)
def test_usage_errors_exit_2_before_anything_runs(
    project: Path, args: list[str], message: str
) -> None:
    write_configs(project, {"acme-prod": GOOD})

    done = run_all(project, *args)

    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert not (project / "output").exists() or not list((project / "output").iterdir())


def test_unknown_script_exits_2_naming_the_scripts(project: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tools.run_all", "nosuch"],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "Pick one of: timed." in done.stderr


def test_at_most_parallel_runs_go_at_once(project: Path) -> None:
    write_configs(project, {f"org{i}-prod": GOOD for i in range(4)})

    done = run_all(project, "--parallel", "2", PROBE_SLEEP="1.5")

    assert done.returncode == 0, done
    spans = [json.loads(p.read_text(encoding="utf-8")) for p in (project / "output").glob("*.json")]
    assert len(spans) == 4
    overlap = max(
        sum(1 for s in spans if s["start"] <= moment["start"] < s["end"]) for moment in spans
    )
    assert overlap == 2


def test_options_after_a_double_dash_go_to_every_run(project: Path) -> None:
    write_configs(project, {"acme-prod": GOOD})

    done = run_all(project, "--", "--log-format", "json")

    assert done.returncode == 0, done
    log = (project / lines(done.stdout)["acme", "prod"]["log"]).read_text(encoding="utf-8")
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any("Run summary" in str(r.get("message")) for r in records), log


def test_sigterm_stops_the_run_going_and_starts_no_other(project: Path) -> None:
    write_configs(project, {"acme-prod": GOOD, "globex-prod": GOOD})
    proc = subprocess.Popen(
        [sys.executable, "-m", "tools.run_all", "timed", "--parallel", "1"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PROBE_SLEEP": "60"},
    )
    logs = project / "logs" / "run-all"
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline and not any(
        "started" in p.read_text(encoding="utf-8") for p in logs.glob("*.log")
    ):
        time.sleep(0.1)

    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)

    assert proc.returncode == 143, (out, err)
    assert {pair: int(m["code"]) for pair, m in lines(out).items()} == {("acme", "prod"): 143}
    assert "1 not started (stopped)" in out
