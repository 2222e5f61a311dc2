"""The demo API (``mock-api/``) on a WireMock of its own, and a project aimed at it: for the
tests that run the example scripts of ``src/`` end to end."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.wiremock_server import WireMock

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MOCK_API = PROJECT_ROOT / "mock-api"
DEMO_PORT_URL = "http://127.0.0.1:8089"
"""Where ``config/demo-test-config.json`` expects the demo API."""
RUN_TIMEOUT = 120


@pytest.fixture(scope="module")
def demo_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WireMock]:
    """A WireMock of its own serving a copy of mock-api/ (the shared one resets mappings)."""
    root = tmp_path_factory.mktemp("mock-api")
    shutil.copytree(MOCK_API, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.py"))
    server = WireMock(root_dir=root).start()
    try:
        yield server
    finally:
        server.stop()


def make_demo_project(folder: Path, server: WireMock) -> Path:
    """A project tree with the toolkit, ``src/`` and the demo config aimed at ``server``; the
    server's scenarios and journal start afresh."""
    for name in ("utils", "src", "schemas"):
        shutil.copytree(
            PROJECT_ROOT / name, folder / name, ignore=shutil.ignore_patterns("__pycache__")
        )
    config = (PROJECT_ROOT / "config" / "demo-test-config.json").read_text(encoding="utf-8")
    assert DEMO_PORT_URL in config
    (folder / "config").mkdir()
    (folder / "config" / "demo-test-config.json").write_text(
        config.replace(DEMO_PORT_URL, server.base_url), encoding="utf-8"
    )
    secrets = folder / "config" / "demo-test-config-secrets.json"
    shutil.copy(PROJECT_ROOT / "config" / "demo-test-config-secrets_example.json", secrets)
    secrets.chmod(0o600)
    server.session.post(f"{server.base_url}/__admin/scenarios/reset", timeout=10).raise_for_status()
    server.reset_journal()
    return folder


def run_demo_script(project: Path, module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``src/{module}.py`` for demo/test the way ``make run`` does, in ``project``, with
    the default console (text, INFO and up) whatever this shell sets."""
    env = {**os.environ, "PYTHONPATH": str(project)}
    for name in ("TXO_LOG_FORMAT", "TXO_LOG_LEVEL"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", f"src.{module}", "demo", "test", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
