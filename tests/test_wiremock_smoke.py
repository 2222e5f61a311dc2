"""The WireMock harness itself: a stub answers and the journal counts what the server saw."""

from __future__ import annotations

import requests

from tools.wiremock_server import WireMock


def test_stub_answers_and_journal_counts(wiremock: WireMock) -> None:
    wiremock.stub(
        {
            "request": {"method": "GET", "urlPath": "/ping"},
            "response": {"status": 200, "jsonBody": {"ok": True}},
        }
    )
    for _ in range(3):
        assert requests.get(f"{wiremock.base_url}/ping", timeout=5).json() == {"ok": True}
    assert wiremock.count("GET", "/ping") == 3
    assert len(wiremock.requests()) == 3
