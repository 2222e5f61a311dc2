"""The run-wide stop and closed clients: once either applies, no request leaves the process."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from tests.http_contract_support import json_response, make_config
from tools.wiremock_server import WireMock
from utils import _run_control as run_control
from utils.api_factory import ApiManager, TxoRestAPI, create_rest_api
from utils.exceptions import ApiOperationError

STOP_WITHIN = 0.5  # seconds a waiting call may take to notice the stop


@pytest.fixture(autouse=True)
def clear_stop() -> Iterator[None]:
    run_control.reset()
    yield
    run_control.reset()


def stub_ok(wiremock: WireMock) -> None:
    wiremock.stub(
        {"request": {"method": "GET", "urlPath": "/api/x"}, "response": json_response({"ok": True})}
    )


def test_a_stopped_run_sends_nothing(wiremock: WireMock, api: TxoRestAPI) -> None:
    stub_ok(wiremock)
    assert api.get("x") == {"ok": True}
    run_control.request_stop()
    with pytest.raises(ApiOperationError) as info:
        api.get("x")
    assert "the run is stopping" in info.value.what_went_wrong
    assert info.value.method == "GET"
    assert wiremock.count("GET", "/api/x") == 1


def test_a_closed_client_sends_nothing(wiremock: WireMock) -> None:
    stub_ok(wiremock)
    with ApiManager(make_config(f"{wiremock.base_url}/api")) as manager:
        api = manager.get_rest_api()
        assert api.get("x") == {"ok": True}
    with pytest.raises(ApiOperationError) as info:
        api.get("x")
    assert "the client was closed" in info.value.what_went_wrong
    assert wiremock.count("GET", "/api/x") == 1


@pytest.mark.parametrize(
    "behavior",
    [
        {"rate-limiting": {"enabled": True, "calls-per-second": 0.2, "burst-size": 1}},
        {"api-delay-seconds": 30},
    ],
    ids=["waiting-at-the-rate-limiter", "in-the-api-delay"],
)
def test_the_stop_ends_a_waiting_call_at_once(wiremock: WireMock, behavior: dict) -> None:
    stub_ok(wiremock)
    api = create_rest_api(make_config(f"{wiremock.base_url}/api", behavior))
    if "rate-limiting" in behavior:
        api.get("x")  # uses the burst: the next call waits 5 s for its turn
    errors: list[BaseException] = []

    def call() -> None:
        try:
            api.get("x")
        except ApiOperationError as err:
            errors.append(err)

    worker = threading.Thread(target=call)
    worker.start()
    time.sleep(0.2)
    stopped = time.monotonic()
    run_control.request_stop()
    worker.join(timeout=5)
    assert not worker.is_alive()
    assert time.monotonic() - stopped < STOP_WITHIN
    assert len(errors) == 1
    sent = 1 if "rate-limiting" in behavior else 0
    assert wiremock.count("GET", "/api/x") == sent
    api.close()


def test_sleep_uses_time_sleep_in_slices_that_add_up(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    run_control.interruptible_sleep(0.1)
    run_control.interruptible_sleep(0.6)
    assert slept == [0.1, 0.25, 0.25, pytest.approx(0.1)]


def test_sleep_raises_at_once_when_the_run_is_stopping(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", lambda s: (slept.append(s), run_control.request_stop()))
    with pytest.raises(ApiOperationError):
        run_control.interruptible_sleep(10)
    assert slept == [run_control.STOP_CHECK_SECONDS]
