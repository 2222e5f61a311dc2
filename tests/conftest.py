"""Shared fixtures: one real WireMock per test session, reset before each test that uses it;
a project root for save/load tests; a scratch copy of the project for script runs; a REST
client of the ``test_api_*`` modules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.http_contract_support import make_config
from tests.support_scripts import Project, make_project
from tools.wiremock_server import WireMock
from utils import path_helpers, run_stats
from utils.api_factory import TxoRestAPI, create_rest_api
from utils.load_n_save import TxoDataHandler


@pytest.fixture(scope="session")
def wiremock_server() -> Iterator[WireMock]:
    """A real WireMock for the whole session (Docker via testcontainers, else the jar)."""
    server = WireMock().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def wiremock(wiremock_server: WireMock) -> WireMock:
    """The session's WireMock with no mappings and an empty request journal."""
    wiremock_server.reset()
    return wiremock_server


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path`` as the project root (``PROJECT_ROOT``), with the run counters at zero."""
    monkeypatch.setattr(path_helpers, "PROJECT_ROOT", tmp_path)
    run_stats.reset()
    return tmp_path


@pytest.fixture
def handler() -> TxoDataHandler:
    return TxoDataHandler()


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A scratch copy of the toolkit to run ``tests/scripts/`` in (see ``support_scripts``)."""
    return make_project(tmp_path / "proj")


@pytest.fixture
def api(wiremock: WireMock) -> Iterator[TxoRestAPI]:
    """A client for ``{wiremock}/api`` with the fast ``test_api_*`` config, closed after."""
    client = create_rest_api(make_config(f"{wiremock.base_url}/api"))
    yield client
    client.close()
