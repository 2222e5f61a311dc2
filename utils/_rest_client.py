"""The HTTP engine behind ``TxoRestAPI``: one retry loop, limits, token refresh, 202 polling.

Every request the client sends goes through :meth:`RestTransport.request`:
``api-delay-seconds`` pause → circuit breaker → rate limiter → one HTTP request (urllib3 does
no retries of its own: the adapter is mounted with ``max_retries=0``) → the retry decision of
:class:`utils._retry_policy.RetryPolicy`. A 401 refreshes the token once, a 202 is polled. The
bearer token goes only to the API's own origin (scheme, host, port of ``api-base-url``), also
across redirects.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.auth import HTTPBasicAuth
from requests.utils import get_auth_from_url

from utils import _redaction as redaction, _run_control as run_control, run_stats
from utils._api_settings import behavior
from utils._http_body import JSON_CONTENT_TYPE, encode_json
from utils._http_errors import (
    BAD_URL_ERRORS,
    LazySafeUrl,
    async_timeout_error,
    auth_error,
    name_refused_call,
    rate_limit_error,
    resolve_link,
    safe_url,
    status_error,
    transport_error,
    url_with_params,
)
from utils._retry_policy import (
    Outcome,
    RetryPolicy,
    TransportFailure,
    Verdict,
    classify_exception,
    parse_retry_after,
    retry_after_of,
)
from utils.api_common import CircuitBreaker, RateLimiter
from utils.exceptions import ApiOperationError, CircuitOpenError, ConfigurationError

log = logging.getLogger(__name__)

POOL_MAXSIZE = 32
"""Connections kept per host: enough for every worker of ``TxoRestAPI.map``."""
POOL_CONNECTIONS = 4
USER_AGENT = "txo-batch-toolkit"


# -- where the bearer token may go: the API's origin, also across redirects ------------------
DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int | None]
"""``(scheme, host, port)``."""


def origin_of(url: str) -> Origin:
    """``(scheme, host, port)`` of ``url``, lower case, with the scheme's default port filled."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL at all ("http://[bad"): matches no origin
        return "", "", None
    scheme = parts.scheme.lower()
    try:
        port = parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port


class UrlCredentialsOnly(requests.auth.AuthBase):
    """Basic auth from the URL's own ``user:password@`` (as ``requests`` does), never ``.netrc``.

    Set as the session's ``auth``, it stops ``requests`` from reading ``~/.netrc`` (or
    ``$NETRC``), which would replace the bearer token with Basic credentials, and add them to
    clients built with ``require_auth=False`` and to next links on other hosts.
    """

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        user, password = get_auth_from_url(r.url or "")
        if user or password:
            return HTTPBasicAuth(user, password)(r)
        return r


ENVIRONMENT_NAMES = (
    *("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"),
    *("all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"),
    "REQUEST_METHOD",  # in a CGI script urllib ignores HTTP_PROXY
    *("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"),
)
"""The environment variables that decide ``requests``' proxy and CA bundle for an http(s) URL."""
_ENVIRONMENTS_KEPT = 64


class OriginBoundSession(requests.Session):
    """A ``requests.Session`` that keeps ``Authorization`` to what the client itself sets.

    ``requests`` keeps the header on some cross-origin redirects (http → https on the same
    host) and adds ``.netrc`` credentials; here a redirect keeps the header only while it
    stays on ``api_origin``, and ``.netrc`` is never read (see :class:`UrlCredentialsOnly`).
    Proxy settings from the environment still apply; they are read once per origin (see
    :meth:`merge_environment_settings`).
    """

    def __init__(self, api_origin: Origin):
        super().__init__()
        self.api_origin = api_origin
        self.auth = UrlCredentialsOnly()
        self._environment: dict[tuple[Origin, tuple[str | None, ...]], Any] = {}

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:
        """``requests``' own merge, its answer kept per origin and proxy environment.

        For every request ``requests`` walks the whole of ``os.environ`` twice looking for
        proxy variables (``*_proxy``, ``no_proxy``) and reads ``REQUESTS_CA_BUNDLE``: about
        96 µs a request with 35 variables, and it grows with the environment (a Kubernetes pod
        has a few variables per service of its namespace). The answer depends only on the
        URL's origin and on the variables of :data:`ENVIRONMENT_NAMES`, which are looked up
        directly to tell when they change: 10 µs a request in all. A call with its own
        ``proxies``, ``stream``, ``verify`` or ``cert`` takes ``requests``' path unchanged.
        """
        if proxies or stream is not None or verify is not None or cert is not None:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        key = (origin_of(url), tuple(map(os.environ.get, ENVIRONMENT_NAMES)))
        settings = self._environment.get(key)
        if settings is None:
            settings = super().merge_environment_settings(url, {}, None, None, None)
            if len(self._environment) >= _ENVIRONMENTS_KEPT:
                self._environment.clear()
            self._environment[key] = settings
        return {**settings, "proxies": dict(settings["proxies"])}

    def rebuild_auth(self, prepared_request: Any, response: Any) -> None:
        """Keep ``Authorization`` only when the redirect target is the API's own origin."""
        if origin_of(prepared_request.url or "") != self.api_origin:
            prepared_request.headers.pop("Authorization", None)


@dataclass
class CallRecord:
    """What one call sent and last heard, for callers that account per call (write-back).

    Attributes:
        attempts: Requests actually sent (a request an open breaker or a stopping run refused
            is not counted; the repeat after a 401 token refresh is).
        response: The last response received, whatever its status (None when none came).
        refreshed: The token was refreshed once for this call already.
    """

    attempts: int = 0
    response: requests.Response | None = None
    refreshed: bool = False


class RestTransport:
    """Sends requests for one client; thread-safe; see the module docstring for the pipeline.

    Args:
        config: The whole config (``global.api-base-url`` required; ``script-behavior`` keys
            missing from it take their defaults).
        require_auth: Send a bearer token (from ``_token``, else the shared token provider).
        clock: Monotonic clock (injectable for tests).
        sleep: Sleep used for the delay, backoff and polling waits (injectable for tests);
            by default it ends at once, with an error, when the run is asked to stop.
        wall_clock: Unix time, to read ``Retry-After`` HTTP-dates.

    Raises:
        ConfigurationError: ``global.api-base-url`` is missing.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        require_auth: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = run_control.interruptible_sleep,
        wall_clock: Callable[[], float] = time.time,
    ):
        base = (config.get("global") or {}).get("api-base-url")
        if not isinstance(base, str) or not base.strip():
            raise ConfigurationError(
                "The config has no global → api-base-url, so the HTTP client has nowhere to go.",
                "Add the API's base URL to the config; request paths are appended to it.",
                '"global": {"api-base-url": "https://api.example.com/v2"}',
            )
        self.config = config
        self.base_url = base.strip().rstrip("/")
        self.origin = origin_of(self.base_url)
        if self.origin[0] not in ("http", "https") or not self.origin[1]:
            raise ConfigurationError(
                f"global → api-base-url is not an http(s) URL: {safe_url(self.base_url)!r}.",
                "Write the API's base URL in full, with https:// and the host; request paths "
                "are appended to it.",
                '"global": {"api-base-url": "https://api.example.com/v2"}',
            )
        base_parts = urlsplit(self.base_url)
        self._origin_prefix = f"{base_parts.scheme}://{base_parts.netloc}/"
        settings = behavior(config)
        timeouts = settings["api-timeouts"]
        self.timeout = float(timeouts["rest-timeout-seconds"])
        self.poll_interval = float(timeouts["async-poll-interval"])
        self.async_max_wait = float(timeouts["async-max-wait"])
        self.api_delay = float(settings["api-delay-seconds"])
        self.policy = RetryPolicy.from_config(config)
        limits, breaker = settings["rate-limiting"], settings["circuit-breaker"]
        self.limiter = (
            RateLimiter(
                float(limits["calls-per-second"]),
                int(limits["burst-size"]),
                clock=clock,
                sleep=sleep,
            )
            if limits["enabled"]
            else None
        )
        self.breaker = (
            CircuitBreaker(
                int(breaker["failure-threshold"]), float(breaker["timeout-seconds"]), clock=clock
            )
            if breaker["enabled"]
            else None
        )
        self._clock, self._sleep, self._wall_clock = clock, sleep, wall_clock
        self._closed = False
        self.session = OriginBoundSession(self.origin)
        self.session.headers["User-Agent"] = USER_AGENT
        adapter = HTTPAdapter(
            pool_connections=POOL_CONNECTIONS, pool_maxsize=POOL_MAXSIZE, max_retries=0
        )
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.require_auth = require_auth
        self._token_lock = threading.Lock()
        self._token: str | None = None
        if require_auth:
            given = config.get("_token")
            if isinstance(given, str) and given.strip():
                from utils._auth import strip_bearer

                given = strip_bearer(given)  # tolerate a token given with its scheme
            self._token = given if isinstance(given, str) and given else None
            if self._token is None:
                self._token = self._provider().get_token()
            redaction.register_secret(self._token)

    # -- tokens -----------------------------------------------------------------------------
    def _provider(self) -> Any:
        # Imported here: a client without auth never needs the token machinery.
        from utils._auth import get_token_provider

        return get_token_provider(self.config)

    def _refresh_token(self, rejected: str, response: requests.Response, method: str) -> None:
        with self._token_lock:
            if self._token != rejected:  # another thread refreshed already
                return
            provider = self._provider()
            if not provider.can_refresh:
                raise auth_error(response, method, response.url, refreshed=False)
            log.info("The API answered 401: refreshing the access token once")
            self._token = provider.refresh(rejected_token=rejected)

    def sends_token_to(self, url: str) -> bool:
        """True when a request to ``url`` carries the bearer token (the API's own origin)."""
        if self._token is None:
            return False
        # Fast path for URLs built from api-base-url; anything else is compared by origin.
        return url.startswith(self._origin_prefix) or origin_of(url) == self.origin

    # -- one request ------------------------------------------------------------------------
    def _send_once(
        self, method: str, url: str, headers: dict[str, str], call: CallRecord, **kwargs: Any
    ) -> requests.Response:
        self._check_may_send(method, url)
        breaker = self.breaker
        is_trial = False
        if breaker is not None:
            try:
                is_trial = breaker.before_call()
            except CircuitOpenError as err:
                name_refused_call(err, method, url, None)
                raise
        try:
            if self.api_delay > 0:
                self._sleep(self.api_delay)
            if self.limiter is not None:
                self.limiter.acquire()
            if breaker is not None:
                breaker.confirm(is_trial)
            self._check_may_send(method, url)  # the waits above may have outlasted the run
            run_stats.increment(run_stats.API_CALLS)
            call.attempts += 1
            response = self.session.request(
                method, url, headers=headers, timeout=(self.timeout, self.timeout), **kwargs
            )
        except CircuitOpenError as err:  # opened while this call waited: nothing was sent
            name_refused_call(err, method, url, None)
            raise
        except BAD_URL_ERRORS:
            # The URL could not even be sent: no server failed (a trial is spent, though).
            if breaker is not None and is_trial:
                breaker.record_failure()
            raise
        except BaseException:
            if breaker is not None:
                breaker.record_failure()
            raise
        if breaker is not None:
            if response.status_code >= HTTPStatus.INTERNAL_SERVER_ERROR:
                breaker.record_failure()
            else:
                breaker.record_success()
        call.response = response
        return response

    def pause(self, seconds: float) -> None:
        """Sleep ``seconds`` with the client's sleep: ends at once, with an error, when the
        run is asked to stop (or with the injected sleep of a test)."""
        self._sleep(seconds)

    def _wait(self, method: str, url: str, retry: int, retry_after: float | None, why: str) -> None:
        delay = self.policy.delay(retry, retry_after)
        if self.breaker is not None:
            # No point sleeping for a retry the open breaker will refuse anyway.
            try:
                self.breaker.raise_if_open(within=delay)
            except CircuitOpenError as err:
                name_refused_call(err, method, url, None)
                raise
        run_stats.increment(run_stats.RETRIES)
        log.debug(
            "Retry %d of %d for %s %s after %s: waiting %.3fs%s",
            retry,
            self.policy.max_retries,
            method,
            LazySafeUrl(url),
            why,
            delay,
            " (Retry-After)" if retry_after is not None else "",
        )
        self._sleep(delay)

    def prepare(
        self, method: str, json_body: Any, headers: Mapping[str, str] | None
    ) -> tuple[dict[str, str], bytes | None]:
        """The headers and encoded body of a call: JSON encoded once (not once per retry),
        ``Content-Type`` set when there is a body, an ``Idempotency-Key`` when configured.

        Raises:
            ValidationError: The body has no JSON form (nothing is sent).
        """
        base_headers = self.policy.with_idempotency_key(method, headers or {})
        body = None
        if json_body is not None:
            body = encode_json(json_body)
            if not any(name.lower() == "content-type" for name in base_headers):
                base_headers["Content-Type"] = JSON_CONTENT_TYPE
        return base_headers, body

    def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        *,
        params: Mapping[str, Any] | None = None,
        body: bytes | None = None,
        call: CallRecord | None = None,
    ) -> requests.Response:
        """One request of a call, with its bearer token; no retry but the one after a 401.

        A 401 to a request that carried the token refreshes it once per call (``call``) and
        sends the request again; any other answer is returned as it is, whatever its status.

        Args:
            method: HTTP method, upper case.
            url: Absolute URL.
            headers: Request headers (without ``Authorization``).
            params: Query parameters.
            body: The encoded body (see :meth:`prepare`).
            call: The call's record (attempts, last response, refresh done).

        Raises:
            requests.RequestException: No (usable) answer arrived; the caller classifies it.
            CircuitOpenError: The breaker refused the request (nothing was sent).
            ApiOperationError: The run is stopping or the client is closed (nothing sent).
            ApiAuthenticationError: 401 and no refresh possible, or 401 again after it.
        """
        call = call if call is not None else CallRecord()
        # The query is encoded here, once, RFC 3986 style (a space is %20, never +): the URL
        # sent, logged and shown in errors is this one (see utils._http_errors.encode_query).
        url = url_with_params(url, params)
        while True:
            token = self._token if self.sends_token_to(url) else None
            sent_headers = dict(headers)
            if token:
                sent_headers["Authorization"] = f"Bearer {token}"
            started = self._clock()
            try:
                response = self._send_once(method, url, sent_headers, call, data=body)
            except requests.RequestException as err:
                log.debug(
                    "%s %s -> %s (%s) on attempt %d",
                    method,
                    LazySafeUrl(url),
                    type(err).__name__,
                    classify_exception(err).value,
                    call.attempts,
                )
                raise
            status = response.status_code
            log.debug(
                "%s %s -> %d on attempt %d (%.0f ms)",
                method,
                LazySafeUrl(response.url or url),
                status,
                call.attempts,
                (self._clock() - started) * 1000,
            )
            if status == HTTPStatus.TOO_MANY_REQUESTS:
                run_stats.increment(run_stats.RATE_LIMITED)
            if status != HTTPStatus.UNAUTHORIZED:
                return response
            if token is None or call.refreshed:
                raise auth_error(
                    response,
                    method,
                    response.url or url,
                    refreshed=call.refreshed,
                )
            self._refresh_token(token, response, method)
            call.refreshed = True  # the repeat after a refresh is outside the retry budget

    def execute(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        call: CallRecord | None = None,
    ) -> requests.Response:
        """Send one call with its retries; return the final response below 400.

        Args:
            method: HTTP method, upper case.
            url: Absolute URL.
            params: Query parameters.
            json_body: JSON body (None: no body); see :func:`utils._http_body.encode_json`.
            headers: Extra request headers; ``If-Match`` on a PATCH or ``Idempotency-Key``
                on a POST makes the call idempotent (retried like PUT).
            call: Filled in with what the call sent and last heard (write-back reports).

        Raises:
            ApiOperationError: The final answer is an error, or no answer arrived (a
                :class:`ApiTimeoutError` for timeouts, :class:`ApiRateLimitError` for 429s
                and too long ``Retry-After`` waits, :class:`CircuitOpenError` when open).
            ApiAuthenticationError: 401 and no refresh possible, or 401 again after it.
        """
        call = call if call is not None else CallRecord()
        base_headers, body = self.prepare(method, json_body, headers)
        # The query is encoded here, once, RFC 3986 style (a space is %20, never +): the URL
        # sent, logged and shown in errors is this one (see utils._http_errors.encode_query).
        url = url_with_params(url, params)
        attempt = 0  # the retry budget's count: the repeat after a 401 refresh is outside it
        while True:
            attempt += 1
            response, retry_after = None, None
            outcome: Outcome
            try:
                response = self.send(method, url, base_headers, body=body, call=call)
                status = outcome = response.status_code
                if status < HTTPStatus.BAD_REQUEST:
                    return response
                retry_after = retry_after_of(status, response.headers, self._wall_clock())
            except requests.RequestException as err:
                outcome = err
            verdict = self.policy.decide(
                method, outcome, attempt, retry_after=retry_after, headers=base_headers
            )
            if verdict is not Verdict.RETRY:
                error = self._final_error(
                    verdict, method, url, attempt, outcome, response, retry_after
                )
                raise error from (outcome if isinstance(outcome, BaseException) else None)
            why = f"HTTP {outcome}" if response is not None else type(outcome).__name__
            self._wait(method, url, attempt, retry_after, why)

    def _final_error(
        self,
        verdict: Verdict,
        method: str,
        url: str,
        attempt: int,
        outcome: Outcome,
        response: requests.Response | None,
        retry_after: float | None,
    ) -> Exception:
        """The error a call ends with when ``verdict`` says not to retry."""
        if isinstance(outcome, requests.RequestException):
            kind = classify_exception(outcome)
            log.debug("%s %s: no retry after %s", method, LazySafeUrl(url), kind.value)
            error = transport_error(
                outcome,
                method,
                url,
                self.timeout,
                attempt,
                timed_out=kind is TransportFailure.TIMEOUT,
            )
            return error
        assert response is not None  # a status outcome comes with its response
        if verdict is Verdict.WAIT_TOO_LONG:
            return rate_limit_error(
                method,
                url,
                retry_after,
                too_long=True,
                max_wait=self.policy.max_wait_seconds,
                status_code=response.status_code,
            )
        if verdict is Verdict.EXHAUSTED and outcome == HTTPStatus.TOO_MANY_REQUESTS:
            return rate_limit_error(method, url, retry_after, too_long=False, max_wait=0.0)
        log.debug(
            "%s %s: HTTP %s is final (attempt %d)", method, LazySafeUrl(url), outcome, attempt
        )
        return status_error(response, method, response.url or url, attempt)

    # -- a call, with 202 polling ------------------------------------------------------------
    def request(
        self, method: str, url: str, *, call: CallRecord | None = None, **kwargs: Any
    ) -> requests.Response:
        """:meth:`execute`, then poll a 202 Accepted until its operation finishes.

        The ``Location`` of a 202 (absolute, or relative to the URL of the request that
        returned it) is polled with GET every ``Retry-After`` seconds, else every
        ``async-poll-interval``; each poll is a call with its own retry budget. A 202 without
        ``Location`` has nothing to poll and is returned as it is; a poll answering 202 without
        ``Location`` is polled again at the same URL.

        Args:
            method: HTTP method, upper case.
            url: Absolute URL.
            call: Filled in with what the call itself sent (the polls are not counted).
            **kwargs: ``params``, ``json_body``, ``headers`` of :meth:`execute`.

        Raises:
            ApiTimeoutError: Still 202 ``async-max-wait`` seconds after the first 202; its
                ``method`` and ``url`` are those of the call, the poll URL is in the message.
        """
        response = self.execute(method, url, call=call, **kwargs)  # polls are not counted
        if response.status_code != HTTPStatus.ACCEPTED or not response.headers.get("Location"):
            return response
        deadline = self._clock() + self.async_max_wait
        poll_url = url
        polls = 0
        while response.status_code == HTTPStatus.ACCEPTED:
            location = response.headers.get("Location")
            if location:
                poll_url = resolve_link(response.url or poll_url, location, "Location")
            hint = parse_retry_after(response.headers.get("Retry-After"), self._wall_clock())
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise async_timeout_error(
                    method,
                    url_with_params(url, kwargs.get("params")),
                    poll_url,
                    self.async_max_wait,
                    polls,
                )
            wait = min(hint if hint is not None else self.poll_interval, remaining)
            log.debug("202 Accepted: polling %s in %.2fs", LazySafeUrl(poll_url), wait)
            self._sleep(wait)
            polls += 1
            response = self.execute("GET", poll_url)
        return response

    def _check_may_send(self, method: str, url: str) -> None:
        if self._closed:
            raise ApiOperationError(
                f"{method} {safe_url(url)} not sent: the client was closed.",
                "Use the client inside its `with ApiManager(config) as manager:` block (or "
                "before calling close()); ask the manager for it again in a new block.",
                "with ApiManager(config) as manager:\n    api = manager.get_rest_api()",
                method=method,
                url=safe_url(url),
            )
        if run_control.stop_requested():
            raise run_control.stopping_error(method, safe_url(url))

    def close(self) -> None:
        """Close the session and its connection pool; later requests fail without sending."""
        self._closed = True
        self.session.close()
