"""Run metrics (utils/_metrics.py): what a real Pushgateway shows after real script runs."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.pushgateway_server import Pushgateway, PushgatewayUnavailable
from tests.support_scripts import Project
from tools.wiremock_server import free_port
from utils import _metrics, _run_control as run_control, logger as txo_logger

SCRIPT = "metrics_probe"
SCRIPT_LABEL = "metrics-probe"
CONFIG = {"global": {"api-base-url": "http://127.0.0.1:9/api"}}
EXIT_API = 4
PUSH_WARNING = "Run metrics not pushed to the Pushgateway"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def gateway_server() -> Iterator[Pushgateway]:
    try:
        server = Pushgateway()
    except PushgatewayUnavailable as err:
        pytest.skip(str(err))
    with server:
        yield server


@pytest.fixture
def gateway(gateway_server: Pushgateway) -> Pushgateway:
    gateway_server.delete_all()
    return gateway_server


def samples(gateway: Pushgateway) -> Samples:
    """Every ``txo_`` sample on the gateway's /metrics, keyed by name and labels."""
    found: Samples = {}
    for family in text_string_to_metric_families(gateway.metrics()):
        for sample in family.samples:
            if sample.name.startswith("txo_"):
                found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def labels(org: str = "acme", env: str = "test", **extra: str) -> frozenset[tuple[str, str]]:
    # The gateway adds an empty ``instance`` to every pushed series.
    group = {"job": _metrics.JOB, "instance": "", "script": SCRIPT_LABEL, "org": org, "env": env}
    return frozenset({**group, **extra}.items())


def run(project: Project, url: str, org: str = "acme", **env: str) -> tuple[int, str]:
    done = project.run(SCRIPT, org, "test", env={"TXO_PUSHGATEWAY_URL": url, **env})
    return done.code, done.stderr


# -- pure parts --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("module", "label"),
    [("report", "report"), ("update_customers", "update-customers"), ("a_b_c", "a-b-c")],
)
def test_script_label_is_the_module_name_written_as_the_scripts_key(
    module: str, label: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_control.set_script_name(module)
    monkeypatch.setattr(txo_logger._state, "org", "acme")
    monkeypatch.setattr(txo_logger._state, "env", "test")
    try:
        assert _metrics.grouping_key() == {"script": label, "org": "acme", "env": "test"}
    finally:
        run_control.set_script_name(None)


@pytest.mark.parametrize("url", [None, "", "  "])
def test_nothing_is_pushed_without_a_gateway(
    monkeypatch: pytest.MonkeyPatch, url: str | None
) -> None:
    monkeypatch.delenv(_metrics.ENV_PUSHGATEWAY_URL, raising=False)
    assert _metrics.push_run_metrics(0, 1.0, {}, {}, url=url) is False


# -- a real Pushgateway ------------------------------------------------------------------------
def test_success_then_failure_keeps_the_last_success(
    project: Project, gateway: Pushgateway
) -> None:
    project.write_config(CONFIG)
    before = time.time()
    code, console = run(project, gateway.url, PROBE_COUNTERS="rows_exported=3,skipped=1")
    after = time.time()
    assert code == 0, console
    first = samples(gateway)

    success = first.pop(("txo_run_last_success_timestamp_seconds", labels()))
    assert before <= success <= after
    assert first.pop(("txo_run_duration_seconds", labels())) > 0
    assert first == {
        ("txo_run_exit_code", labels()): 0,
        ("txo_run_api_calls", labels()): 0,
        ("txo_run_files_written", labels()): 1,
        ("txo_run_counter", labels(name="rows_exported")): 3,
        ("txo_run_counter", labels(name="skipped")): 1,
    }

    code, console = run(project, gateway.url, PROBE_COUNTERS="rows_exported=2", PROBE_FAIL="1")
    assert code == EXIT_API, console
    second = samples(gateway)

    assert second[("txo_run_last_success_timestamp_seconds", labels())] == success
    assert second[("txo_run_exit_code", labels())] == EXIT_API
    assert second[("txo_run_counter", labels(name="rows_exported"))] == 2
    # A failure replaces the metrics it pushes: "skipped" belonged to the earlier run.
    assert ("txo_run_counter", labels(name="skipped")) not in second
    assert PUSH_WARNING not in console


def test_each_org_is_its_own_group_and_a_later_success_moves_the_timestamp(
    project: Project, gateway: Pushgateway
) -> None:
    project.write_config(CONFIG, org="acme")
    project.write_config(CONFIG, org="globex")
    assert run(project, gateway.url, org="acme")[0] == 0
    assert run(project, gateway.url, org="globex", PROBE_FAIL="1")[0] == EXIT_API
    first = samples(gateway)[("txo_run_last_success_timestamp_seconds", labels("acme"))]
    assert ("txo_run_last_success_timestamp_seconds", labels("globex")) not in samples(gateway)
    assert samples(gateway)[("txo_run_exit_code", labels("globex"))] == EXIT_API

    assert run(project, gateway.url, org="acme")[0] == 0
    assert samples(gateway)[("txo_run_last_success_timestamp_seconds", labels("acme"))] > first


def test_missing_config_is_pushed_as_exit_2(project: Project, gateway: Pushgateway) -> None:
    code, _ = run(project, gateway.url, org="nosuch")

    assert code == 2
    assert samples(gateway)[("txo_run_exit_code", labels("nosuch"))] == 2


# -- a gateway that is down or stuck -----------------------------------------------------------
def test_dead_gateway_is_one_warning_and_the_exit_code_stays(project: Project) -> None:
    project.write_config(CONFIG)

    code, console = run(project, f"http://127.0.0.1:{free_port()}")

    assert code == 0, console
    assert console.count(PUSH_WARNING) == 1
    assert "Traceback" not in console


def test_stuck_gateway_is_given_up_after_the_timeout(project: Project) -> None:
    """A gateway that accepts the connection and never answers does not hang the job."""
    project.write_config(CONFIG)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        code, console = run(project, url, PROBE_FAIL="1")
        elapsed = time.monotonic() - started

    assert code == EXIT_API, console
    assert console.count(PUSH_WARNING) == 1
    assert "timed out" in console
    assert elapsed < _metrics.PUSH_TIMEOUT_SECONDS + 10
