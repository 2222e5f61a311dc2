"""Bearer tokens for the API: a static ``az-token`` secret or OAuth2 client credentials.

One :class:`TokenProvider` per credential set (:func:`get_token_provider`) caches the token
for the run, so the first token (``script_runner``) and the refresh after a 401
(``api_factory``) share one cache. Token requests go straight to the identity provider, never
through the API's rate limiter or circuit breaker.

Decisions:

* The token is cached until ``expires_in`` minus a safety margin of
  :data:`EXPIRY_MARGIN_SECONDS`, or half the lifetime when that is shorter. A response
  without a usable ``expires_in`` is assumed to live ``DEFAULT_EXPIRES_IN_SECONDS`` (3600).
* A transient failure of the token endpoint (429, 500, 502, 503, 504, connection error,
  timeout) is retried up to ``min(retry-strategy.max-retries, TOKEN_MAX_RETRIES)`` times,
  waiting ``backoff-factor * 2**(n-1)`` seconds before retry n (or ``Retry-After`` when the
  server sends a longer one, up to ``retry-strategy.max-wait-seconds``). Anything else fails
  at once. The decision is :meth:`utils._retry_policy.RetryPolicy.decide`'s, as for API calls
  (a client-credentials grant is idempotent).
* Each request waits at most ``api-timeouts.rest-timeout-seconds`` per socket operation.
* An empty ``az-token`` or ``client-secret`` counts as absent, so a copied example with an
  empty value behaves like one without the key.
* Error messages name the endpoint, the status and the server's own error code and
  description (redacted), and never the client secret or a token.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

import requests

from utils import _redaction as redaction, run_stats
from utils._api_settings import behavior
from utils._retry_policy import (
    RETRY_STATUSES_IDEMPOTENT,
    Outcome,
    RetryPolicy,
    Verdict,
    parse_retry_after,
)
from utils.exceptions import ApiAuthenticationError, ConfigurationError

log = logging.getLogger(__name__)

AZURE_TOKEN_URL = "https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token"
EXPIRY_MARGIN_SECONDS = 300.0
TOKEN_MAX_RETRIES = 2
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


# -- reading a token-endpoint exchange (pure) ---------------------------------------------
def _text(value: Any) -> str | None:
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


def _digest(value: str | None) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest() if value else ""


def _section(config: Mapping[str, Any], *keys: str) -> Mapping[str, Any]:
    """Return the nested mapping at ``keys``, or an empty one when any level is missing."""
    node: Any = config
    for key in keys:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) else {}


class TokenProvider:
    """Acquire, cache and refresh the bearer token for one credential set.

    Args:
        config: The loaded config (secrets injected as ``_az_token`` / ``_client_secret``).
        session: HTTP session for token requests; a private one when None.
        clock: Monotonic clock in seconds (tests inject one).
        sleep: Sleep function used between token-endpoint retries (tests inject one).

    Example:
        >>> provider = get_token_provider(config)   # doctest: +SKIP
        >>> headers = {"Authorization": f"Bearer {provider.get_token()}"}  # doctest: +SKIP
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self._config = config
        self._session = session or requests.Session()
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.RLock()
        self._token: str | None = None
        self._expires_at = 0.0
        glob = _section(config, "global")
        self._az_token = _text(config.get("_az_token"))
        self._client_secret = _text(config.get("_client_secret"))
        self._client_id = _text(glob.get("client-id"))
        self._scope = _text(glob.get("oauth-scope"))
        self._tenant_id = _text(glob.get("tenant-id"))
        self._explicit_url = _text(glob.get("oauth-token-url"))
        # A config that already carries a token (and nothing to get one with) uses it as is.
        self._given_token = _text(config.get("_token"))
        # A named API of global.apis (its config view, see api_settings.api_config), for
        # messages: its keys live under global → apis → {name}, its static token is
        # {name}-token.
        self._api = _text(config.get("_api"))
        for secret in (self._az_token, self._client_secret, self._given_token):
            if secret:
                redaction.register_secret(secret)

    # -- public API ------------------------------------------------------------------------
    @property
    def can_refresh(self) -> bool:
        """True when client credentials are complete, so a new token can be requested."""
        return not self._missing_credentials()

    @property
    def token_url(self) -> str | None:
        """The token endpoint: ``oauth-token-url``, else Azure AD v2 for ``tenant-id``."""
        if self._explicit_url:
            return self._explicit_url
        if self._tenant_id:
            return AZURE_TOKEN_URL.format(tenant_id=self._tenant_id)
        return None

    def get_token(self) -> str:
        """Return a valid token, from the cache when it has not reached its safety margin.

        Returns:
            The raw token, without ``Bearer ``.

        Raises:
            ConfigurationError: No ``az-token`` and incomplete client credentials (the
                message names every missing key).
            ApiAuthenticationError: The token endpoint refused or failed.
        """
        with self._lock:
            if self._token and (self._az_token or self._clock() < self._expires_at):
                return self._token
            if self._az_token:
                self._token = strip_bearer(self._az_token)
                redaction.register_secret(self._token)
                log.debug("Using the %s from the secrets file", self._static_secret)
                return self._token
            if self._given_token and not self.can_refresh:
                self._token = strip_bearer(self._given_token)
                return self._token
            return self._acquire()

    def refresh(self, rejected_token: str | None = None) -> str:
        """Request a new client-credentials token, replacing the cached one.

        Args:
            rejected_token: The token the API just refused. When another thread has already
                replaced it, that newer token is returned without a second request.

        Returns:
            The new raw token.

        Raises:
            ApiAuthenticationError: No client credentials to refresh with, or the token
                endpoint refused or failed.
        """
        with self._lock:
            if not self.can_refresh:
                raise ApiAuthenticationError(
                    "The API rejected the token and it cannot be refreshed: no client "
                    f"credentials are configured (the token came from {self._static_secret} "
                    "or was given).",
                    f"Put a fresh {self._static_secret} in the secrets file, or configure client "
                    "credentials (client-id, oauth-scope, tenant-id or oauth-token-url in the "
                    "config, client-secret in the secrets file) so tokens renew themselves.",
                    self._files_hint(),
                )
            if rejected_token is not None and self._token and self._token != rejected_token:
                return self._token
            return self._acquire()

    # -- internals -------------------------------------------------------------------------
    @property
    def _static_secret(self) -> str:
        """The secrets-file key of a ready token for this API."""
        return f"{self._api}-token" if self._api else "az-token"

    def _key_name(self, key: str) -> str:
        """Where ``key`` of ``global`` is set for this API (a named one may set its own)."""
        if self._api:
            return f"global → apis → {self._api} → {key} (or global → {key})"
        return f"global → {key}"

    def _files_hint(self) -> str:
        org, env = self._config.get("_org_id"), self._config.get("_env_type")
        if org and env:
            return f"config/{org}-{env}-config.json and config/{org}-{env}-config-secrets.json"
        return "config/{org}-{env}-config.json and config/{org}-{env}-config-secrets.json"

    def _missing_credentials(self) -> list[str]:
        missing = []
        if not self._explicit_url and not self._tenant_id:
            missing.append(
                f"{self._key_name('tenant-id')}, or {self._key_name('oauth-token-url')}"
                if self._api
                else "global → tenant-id (or global → oauth-token-url)"
            )
        if not self._client_id:
            missing.append(self._key_name("client-id"))
        if not self._scope:
            missing.append(self._key_name("oauth-scope"))
        if not self._client_secret:
            missing.append("client-secret (secrets file)")
        return missing

    def _acquire(self) -> str:
        missing = self._missing_credentials()
        if missing:
            which = f" for the API '{self._api}'" if self._api else ""
            raise ConfigurationError(
                f"No token can be acquired{which}: there is no {self._static_secret} secret "
                f"and the client credentials are incomplete; missing: {', '.join(missing)}.",
                "Add the missing keys (config file for global → …, secrets file for "
                "client-secret), or put a ready token in the secrets file as "
                f"{self._static_secret}.",
                self._files_hint(),
            )
        url = str(self.token_url)
        settings = behavior(self._config)
        timeout = float(settings["api-timeouts"]["rest-timeout-seconds"])
        configured = RetryPolicy.from_config(self._config)
        # The token endpoint gets fewer retries than an API call, and no jitter.
        policy = dataclasses.replace(
            configured,
            max_retries=min(configured.max_retries, TOKEN_MAX_RETRIES),
            jitter_min=1.0,
            jitter_max=1.0,
        )
        form = {
            "grant_type": "client_credentials",
            "client_id": str(self._client_id),
            "client_secret": str(self._client_secret),
            "scope": str(self._scope),
        }
        attempt = 0
        while True:
            attempt += 1
            failure, outcome, retry_after = self._request_once(url, form, timeout)
            if failure is None:
                return str(self._token)
            # A client-credentials grant may be repeated: the request is idempotent.
            verdict = policy.decide("POST", outcome, attempt, idempotent=True)
            # Never sooner than the backoff, whatever Retry-After says.
            delay = max(retry_after or 0.0, policy.backoff(attempt))
            if verdict is not Verdict.RETRY or policy.exceeds_max_wait(delay):
                raise failure
            log.warning(
                "Token request failed (%s); retry %d of %d in %.2fs",
                failure.what_went_wrong,
                attempt,
                policy.max_retries,
                delay,
            )
            self._sleep(delay)

    def _request_once(
        self, url: str, form: dict[str, str], timeout: float
    ) -> tuple[ApiAuthenticationError | None, Outcome, float | None]:
        """Make one token request.

        Returns:
            ``(error, outcome, retry_after)``: the error is None on success (token cached);
            the outcome (status or exception) is for the retry decision, with the server's
            ``Retry-After`` in seconds (None when absent).
        """
        safe = redaction.safe_url(url, query=False)
        log.debug("Requesting a token from %s for client_id %s", safe, form["client_id"])
        try:
            response = self._session.post(
                url, data=form, timeout=(timeout, timeout), allow_redirects=False
            )
        except requests.Timeout as err:
            return (
                self._fail(
                    f"The token endpoint {safe} did not answer within {timeout:g}s.",
                    "Check that the identity provider is reachable from this machine, or raise "
                    "script-behavior → api-timeouts → rest-timeout-seconds.",
                ),
                err,
                None,
            )
        except requests.ConnectionError as err:
            found = ERRNO_TEXT.search(str(err))
            reason = found.group(1).strip() if found else type(err).__name__
            return (
                self._fail(
                    f"Cannot connect to the token endpoint {safe} ({reason}).",
                    "Check the network, proxy settings and global → oauth-token-url / "
                    "tenant-id in the config.",
                ),
                err,
                None,
            )
        except requests.RequestException as err:
            return (
                self._fail(
                    f"The token request to {safe} failed ({type(err).__name__}).",
                    "Check global → oauth-token-url / tenant-id in the config.",
                ),
                err,
                None,
            )
        return self._handle_response(response, safe)

    def _handle_response(
        self, response: requests.Response, safe: str
    ) -> tuple[ApiAuthenticationError | None, Outcome, float | None]:
        status = response.status_code
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        if status >= HTTPStatus.BAD_REQUEST:
            detail, fix = explain_refusal(status, body)
            failure = self._fail(f"The token endpoint {safe} refused the request ({detail}).", fix)
            return (
                failure,
                status,
                parse_retry_after(response.headers.get("Retry-After"), time.time()),
            )
        if response.is_redirect:
            # Never follow: that would send the client secret to a host nobody configured.
            return (
                self._fail(
                    f"The token endpoint {safe} answered {status}, a redirect.",
                    "Set global → oauth-token-url to the final token URL.",
                ),
                status,
                None,
            )
        if not isinstance(body, dict):
            kind = response.headers.get("Content-Type", "no content type")
            return (
                self._fail(
                    f"The token endpoint {safe} answered {status} with a body that is not a JSON "
                    f"object ({kind}).",
                    "Check that global → oauth-token-url points to an OAuth2 token endpoint.",
                ),
                status,
                None,
            )
        token = _text(body.get("access_token"))
        if not token:
            return (
                self._fail(
                    f"The token endpoint {safe} answered {status} without an access_token.",
                    "Check that global → oauth-token-url points to an OAuth2 token endpoint "
                    "and that the app registration may use the client-credentials grant.",
                ),
                status,
                None,
            )
        token = strip_bearer(token)
        redaction.register_secret(token)
        lifetime = expires_in(body.get("expires_in"))
        margin = min(EXPIRY_MARGIN_SECONDS, lifetime / 2)
        self._token = token
        self._expires_at = self._clock() + lifetime - margin
        run_stats.increment(run_stats.TOKENS_ACQUIRED)
        log.info("Acquired an access token from %s (valid %.0fs)", safe, lifetime)
        return None, status, None

    def _fail(self, what: str, fix: str) -> ApiAuthenticationError:
        for secret in (self._client_secret, self._token, self._az_token):
            if secret:
                what = what.replace(secret, redaction.REDACTED)
        return ApiAuthenticationError(redaction.redact(what), fix, self._files_hint())


_providers: dict[tuple[str, ...], TokenProvider] = {}
_providers_lock = threading.Lock()


def _credential_key(config: Mapping[str, Any]) -> tuple[str, ...]:
    glob = _section(config, "global")
    secret, az_token = _text(config.get("_client_secret")), _text(config.get("_az_token"))
    # An injected _token is the credential only when there is nothing to get one with;
    # otherwise it is the provider's own output and must not split the cache.
    given = None if (secret or az_token) else _text(config.get("_token"))
    return (
        str(_text(glob.get("oauth-token-url")) or ""),
        str(_text(glob.get("tenant-id")) or ""),
        str(_text(glob.get("client-id")) or ""),
        str(_text(glob.get("oauth-scope")) or ""),
        _digest(secret),
        _digest(az_token),
        _digest(given),
    )


def get_token_provider(config: Mapping[str, Any]) -> TokenProvider:
    """Return the one shared :class:`TokenProvider` for the credentials in ``config``.

    Configs with the same token endpoint, client id, scope and secrets share a provider (and
    so its cached token); the provider keeps the first config it was built from.

    Args:
        config: The loaded config with injected secrets.

    Returns:
        The shared provider.
    """
    key = _credential_key(config)
    with _providers_lock:
        provider = _providers.get(key)
        if provider is None:
            provider = TokenProvider(config)
            _providers[key] = provider
        return provider


def clear_token_providers() -> None:
    """Forget every shared provider and its cached token (tests)."""
    with _providers_lock:
        _providers.clear()
