"""Config and response builders of the ``tests/test_api_*.py`` integration modules."""

from __future__ import annotations

from typing import Any

from tests.http_contract_support import contract_config, merged_behavior

TOKEN = "test-token-4f1c9a77e2"
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
    """A minimal config with small timings: token ``TOKEN``; ``behavior`` merged one level deep."""
    config = contract_config(base_url, behavior, token=TOKEN, defaults=FAST_BEHAVIOR)
    config.update(extra)
    return config


def json_response(body: Any, status: int = 200, **headers: str) -> dict[str, Any]:
    return {
        "status": status,
        "jsonBody": body,
        "headers": {"Content-Type": "application/json", **headers},
    }
