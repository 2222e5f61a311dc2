"""Helpers of the HTTP client tests (``tests/test_api_*.py``), written from DESIGN §3/§4.

Every timing is small and every wait is capped (``max-wait-seconds`` 2 s, ``async-max-wait``
2 s, ``rest-timeout-seconds`` 1 s), so a regression that retries or polls too much fails fast
instead of hanging the suite.
"""

from __future__ import annotations

import copy
import itertools
import re
import signal
import socket
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from tools.wiremock_server import WireMock
from utils.api_factory import TxoRestAPI, create_rest_api

TOKEN = "contract-token-Zq81xVw3"
"""The bearer token the contract configs carry (``_token``)."""
CLIENT_SECRET = "contract-client-secret-Hq7pM2"

HANG_LIMIT_SECONDS = 30.0
"""No HTTP test may run longer: a retry or poll regression fails instead of hanging the run."""


class HungTestError(BaseException):
    """Raised into a test that ran past :data:`HANG_LIMIT_SECONDS` (a BaseException, so no
    ``except Exception`` in the code under test can swallow it)."""


@pytest.fixture
def hang_guard() -> Iterator[None]:
    """Interrupt the test (SIGALRM, main thread) after :data:`HANG_LIMIT_SECONDS`."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise HungTestError(f"test still running after {HANG_LIMIT_SECONDS:g}s: a hang")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, HANG_LIMIT_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


FAST: dict[str, Any] = {
    "api-delay-seconds": 0,
    "api-timeouts": {"rest-timeout-seconds": 1, "async-max-wait": 2, "async-poll-interval": 0.02},
    "retry-strategy": {"max-retries": 2, "backoff-factor": 0.01, "max-wait-seconds": 2},
    "jitter": {"min-factor": 1.0, "max-factor": 1.0},
    "rate-limiting": {"enabled": False, "calls-per-second": 10, "burst-size": 1},
    "circuit-breaker": {"enabled": False, "failure-threshold": 5, "timeout-seconds": 60},
}
"""``script-behavior`` of the contract configs: fast, nothing that can wait for long."""


def merged_behavior(
    behavior: dict[str, Any] | None, defaults: dict[str, Any] = FAST
) -> dict[str, Any]:
    """A copy of ``defaults`` with ``behavior`` merged into it one section deep."""
    merged = copy.deepcopy(defaults)
    for key, value in (behavior or {}).items():
        if isinstance(value, dict):
            merged[key] = {**merged.get(key, {}), **value}
        else:
            merged[key] = value
    return merged


def contract_config(
    base_url: str,
    behavior: dict[str, Any] | None = None,
    *,
    token: str | None = TOKEN,
    defaults: dict[str, Any] = FAST,
) -> dict[str, Any]:
    """A config for ``base_url`` with ``defaults`` (:data:`FAST`) as its ``script-behavior``,
    ``behavior`` merged per section; ``_token`` is ``token`` unless that is None."""
    merged = merged_behavior(behavior, defaults)
    config: dict[str, Any] = {"global": {"api-base-url": base_url}, "script-behavior": merged}
    if token is not None:
        config["_token"] = token
    return config


def client(wm: WireMock, behavior: dict[str, Any] | None = None, base: str = "/api") -> TxoRestAPI:
    """A client for ``{wm}{base}`` with the contract config, ``behavior`` merged."""
    return create_rest_api(contract_config(f"{wm.base_url}{base}", behavior))


def respond(
    status: int = 200, body: Any = None, headers: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    """A WireMock response: JSON when ``body`` is not a string."""
    response: dict[str, Any] = {"status": status, "headers": dict(headers or {}), **extra}
    if isinstance(body, str):
        response["body"] = body
    elif body is not None:
        response["jsonBody"] = body
        response["headers"].setdefault("Content-Type", "application/json")
    return response


def always(wm: WireMock, method: str, url_path: str, response: dict[str, Any]) -> None:
    """Answer every ``method`` request to ``url_path`` with ``response``."""
    wm.stub({"request": {"method": method, "urlPath": url_path}, "response": response})


_scenarios = itertools.count()


def sequence(
    wm: WireMock,
    method: str,
    url_path: str,
    responses: Iterable[dict[str, Any]],
    *,
    url: str | None = None,
) -> None:
    """Answer successive requests with ``responses``; the last one repeats."""
    items = list(responses)
    name = f"contract-{next(_scenarios)}"
    for i, response in enumerate(items):
        request: dict[str, Any] = {"method": method}
        if url is not None:
            request["url"] = url
        else:
            request["urlPath"] = url_path
        mapping: dict[str, Any] = {
            "scenarioName": name,
            "requiredScenarioState": "Started" if i == 0 else f"s{i}",
            "request": request,
            "response": response,
        }
        if i < len(items) - 1:
            mapping["newScenarioState"] = f"s{i + 1}"
        wm.stub(mapping)


def header(entry: dict[str, Any], name: str) -> str | None:
    """A request header of a journal entry (case-insensitive), or None."""
    for key, value in (entry.get("headers") or {}).items():
        if key.lower() == name.lower():
            return str(value)
    return None


def stamps_ms(wm: WireMock, method: str = "ANY", url_path: str | None = None) -> list[int]:
    """``loggedDate`` (ms) of the matching journal entries, oldest first."""
    return [int(e["loggedDate"]) for e in wm.find(method, url_path)]


def gaps_ms(wm: WireMock, method: str = "ANY", url_path: str | None = None) -> list[int]:
    """Milliseconds between successive matching requests, as the server logged them."""
    stamps = stamps_ms(wm, method, url_path)
    return [b - a for a, b in itertools.pairwise(stamps)]


UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
"""A random (version 4) UUID in its canonical text: what an ``Idempotency-Key`` must be."""

SERVER_JITTER_MS = 50
"""How much later than the limiter released it a request may reach WireMock's journal: the
socket and a busy machine's scheduling delay some requests and not others, which bunches
them. A window of W ms as the server sees it may hold what the limiter released in
W + this (a limiter that does not limit fails by far more)."""


def max_in_window(stamps: list[int], window_ms: float) -> int:
    """The most timestamps any closed interval of ``window_ms`` holds."""
    ordered = sorted(stamps)
    best = 0
    j = 0
    for i, start in enumerate(ordered):
        j = max(j, i)
        while j + 1 < len(ordered) and ordered[j + 1] - start <= window_ms:
            j += 1
        best = max(best, j - i + 1)
    return best


def closed_port() -> int:
    """A port on 127.0.0.1 where nobody listens (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def other_origin(wm: WireMock) -> str:
    """The same WireMock reached under another origin (``localhost`` vs ``127.0.0.1``)."""
    return wm.base_url.replace("127.0.0.1", "localhost")


# -- configs and answers of the tests/test_api_*.py modules --------------------------------
API_TOKEN = "test-token-4f1c9a77e2"
FAST_BEHAVIOR: dict[str, Any] = merged_behavior(
    {
        "api-timeouts": {"async-poll-interval": 0.05},
        # a small max-wait: a Retry-After regression fails fast instead of sleeping for minutes
        "retry-strategy": {"max-wait-seconds": 5},
    }
)
"""The contract tests' fast ``script-behavior``, polling a little slower, waiting a little longer."""


def make_config(
    base_url: str, behavior: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    """A minimal config with small timings: token ``API_TOKEN``; ``behavior`` merged one level deep."""
    config = contract_config(base_url, behavior, token=API_TOKEN, defaults=FAST_BEHAVIOR)
    config.update(extra)
    return config


def json_response(body: Any, status: int = 200, **headers: str) -> dict[str, Any]:
    return {
        "status": status,
        "jsonBody": body,
        "headers": {"Content-Type": "application/json", **headers},
    }
