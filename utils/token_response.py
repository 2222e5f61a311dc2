"""Pure helpers that read an OAuth2 token-endpoint exchange: no I/O, no state.

Used by :mod:`utils.auth`; kept apart so each decision (what a refusal means and how to fix
it, how long a token lives, when to retry) can be read and tested on its own.
"""

from __future__ import annotations

import math
import re
from http import HTTPStatus
from typing import Any

from utils.retry_policy import RETRY_STATUSES_IDEMPOTENT

BEARER_PREFIX = "bearer "
DEFAULT_EXPIRES_IN_SECONDS = 3600.0
MAX_DESCRIPTION_CHARS = 300
# OAuth2 error codes and what to do about them; an empty set matches a transient status.
REFUSAL_FIXES: tuple[tuple[frozenset[str], str], ...] = (
    (
        frozenset({"invalid_client", "unauthorized"}),
        "Check global → client-id in the config and client-secret in the secrets file; a "
        "client secret expires, so create a new one in the app registration if needed.",
    ),
    (
        frozenset({"invalid_scope", "invalid_resource"}),
        "Check global → oauth-scope (an application scope ends in /.default).",
    ),
    (
        frozenset({"invalid_request", "unauthorized_client", "invalid_tenant"}),
        "Check global → tenant-id, client-id and oauth-scope in the config.",
    ),
    (frozenset(), "The identity provider is unavailable or throttling; run again later."),
)
ERRNO_TEXT = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


def text(value: Any) -> str | None:
    """Return ``value`` stripped when it is a non-empty string, else None."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def strip_bearer(token: str) -> str:
    """Return ``token`` without a leading ``Bearer `` (any case)."""
    token = token.strip()
    if token.lower().startswith(BEARER_PREFIX):
        token = token[len(BEARER_PREFIX) :].strip()
    return token


def explain_refusal(status: int, body: Any) -> tuple[str, str]:
    """``("400 invalid_client: <description>", fix)`` for a refused token request."""
    code = description = ""
    if isinstance(body, dict):
        code = str(body.get("error") or "")
        lines = str(body.get("error_description") or "").strip().splitlines()
        description = lines[0][:MAX_DESCRIPTION_CHARS] if lines else ""
    detail = f"{status} {code}".strip() + (f": {description}" if description else "")
    if status == HTTPStatus.UNAUTHORIZED:
        code = code or "invalid_client"
    for codes, fix in REFUSAL_FIXES:
        if code in codes or (not codes and status in RETRY_STATUSES_IDEMPOTENT):
            return detail, fix
    return detail, "Check the client credentials and the token endpoint in the config."


def expires_in(value: Any) -> float:
    """Parse ``expires_in`` (a number or a numeric string); the default when unusable."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return DEFAULT_EXPIRES_IN_SECONDS
    return seconds if math.isfinite(seconds) and seconds > 0 else DEFAULT_EXPIRES_IN_SECONDS
