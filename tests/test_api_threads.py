"""One client shared by threads: the rate holds across them, map keeps order, runs in parallel."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from tests.http_contract_support import (
    SERVER_JITTER_MS,
    hang_guard,
    json_response,
    make_config,
    max_in_window,
)
from tools.wiremock_server import WireMock
from utils.api_factory import TxoRestAPI, create_rest_api
from utils.exceptions import ApiOperationError

pytestmark = pytest.mark.usefixtures(hang_guard.__name__)


def test_threads_sharing_one_client_respect_the_rate(wiremock: WireMock) -> None:
    rate, burst, calls = 20, 2, 44
    wiremock.stub(
        {
            "request": {"method": "GET", "urlPathPattern": "/api/r/.*"},
            "response": json_response({"ok": 1}),
        }
    )
    config = make_config(
        f"{wiremock.base_url}/api",
        {"rate-limiting": {"enabled": True, "calls-per-second": rate, "burst-size": burst}},
    )
    with create_rest_api(config) as client:
        paths = [f"r/{n}" for n in range(calls)]
        results = client.map(lambda p: (p, client.get(p)), paths, max_workers=8)
    assert [p for p, _ in results] == paths
    stamps = sorted(r["loggedDate"] for r in wiremock.requests())
    assert len(stamps) == calls
    assert max_in_window(stamps, 1000) <= burst + rate * (1 + SERVER_JITTER_MS / 1000)
    assert stamps[-1] - stamps[0] >= ((calls - burst) / rate) * 1000 - 60


def test_map_preserves_order_and_runs_in_parallel(wiremock: WireMock, api: TxoRestAPI) -> None:
    wiremock.stub(
        {
            "request": {"method": "GET", "urlPathPattern": "/api/slow/.*"},
            "response": {**json_response({"ok": 1}), "fixedDelayMilliseconds": 200},
        }
    )
    started = time.monotonic()
    results = api.get_many([f"slow/{n}" for n in range(8)], max_workers=8)
    elapsed = time.monotonic() - started
    assert results == [{"ok": 1}] * 8
    assert elapsed < 8 * 0.2 / 2  # at least twice as fast as one by one
    assert wiremock.count("GET") == 8


def test_map_raises_the_first_failure(wiremock: WireMock, api: TxoRestAPI) -> None:
    wiremock.stub(
        {"request": {"method": "GET", "urlPathPattern": "/api/m/.*"}, "response": json_response({})}
    )
    wiremock.stub(
        {"request": {"method": "GET", "urlPath": "/api/m/3"}, "response": {"status": 404}}
    )
    with pytest.raises(ApiOperationError) as caught:
        api.map(api.get, [f"m/{n}" for n in range(6)], max_workers=2)
    assert caught.value.url.endswith("/api/m/3")


def test_client_is_safe_to_share_between_threads(wiremock: WireMock, api: TxoRestAPI) -> None:
    wiremock.stub(
        {
            "request": {"method": "GET", "urlPathPattern": "/api/t/.*"},
            "response": {
                "status": 200,
                "body": '{"path": "{{request.path}}"}',
                "headers": {"Content-Type": "application/json"},
                "transformers": ["response-template"],
            },
        }
    )
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for k in range(10):
                assert api.get(f"t/{n}-{k}") == {"path": f"/api/t/{n}-{k}"}
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert wiremock.count("GET") == 80


def test_map_accepts_a_method_name_and_consumes_items_lazily(
    wiremock: WireMock, api: TxoRestAPI
) -> None:
    wiremock.stub(
        {
            "request": {"method": "GET", "urlPathPattern": "/api/lazy/.*"},
            "response": json_response({}),
        }
    )
    taken: list[int] = []

    def items() -> Iterator[str]:
        for n in range(100):
            taken.append(n)
            yield f"lazy/{n}"

    results = api.imap("get", items(), max_workers=2, window=4)
    next(results)
    assert len(taken) <= 5  # the window, not the whole input
    results.close()
    assert api.map("get", ["lazy/a", "lazy/b"]) == [{}, {}]
