"""Shared fixtures: one real WireMock per test session, reset before each test that uses it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.wiremock_server import WireMock


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
