"""Turn HTTP failures into the toolkit's errors, with secret-free URLs and a fix that fits.

The one boundary where ``requests`` outcomes become :class:`ApiOperationError` and friends:
every error carries ``status_code``, ``url`` (no user info, secret query values redacted) and
``method``, and its how-to-fix depends on the status.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import requests

from utils import _redaction as redaction
from utils._redaction import safe_url
from utils.exceptions import (
    ApiAuthenticationError,
    ApiOperationError,
    ApiRateLimitError,
    ApiTimeoutError,
    CircuitOpenError,
)

MAX_SERVER_MESSAGE_CHARS = 300
MESSAGE_KEYS = ("message", "error_description", "detail", "title", "error", "errors")
BAD_URL_ERRORS = (
    requests.exceptions.InvalidURL,
    requests.exceptions.InvalidSchema,
    requests.exceptions.MissingSchema,
)
"""Errors of a URL that cannot be sent at all (nothing reached a server)."""
QUERY_SAFE = "!$'()*,/:@"
"""Characters left as they are in a query name or value: RFC 3986 allows them unencoded in a
query, and OData writes its ``$filter`` with them. Beyond the unreserved ``A-Z a-z 0-9 - . _ ~``
everything else is percent-encoded, ``&``, ``=``, ``+``, ``;``, ``#`` and the space (``%20``)
included: OData servers read a ``+`` literally, never as a space."""


def _query_pairs(params: Any) -> list[tuple[Any, Any]]:
    items = params.items() if isinstance(params, Mapping) else params
    pairs: list[tuple[Any, Any]] = []
    for name, value in items:
        values = [value] if isinstance(value, str | bytes) or not _iterable(value) else value
        pairs.extend((name, v) for v in values if v is not None)
    return pairs


def _iterable(value: Any) -> bool:
    return hasattr(value, "__iter__")


def _quote_part(part: Any) -> str:
    text = part.decode("utf-8") if isinstance(part, bytes) else str(part)
    return quote(text, safe=QUERY_SAFE)


def encode_query(params: Any) -> str:
    """Percent-encode ``params`` as a query string, the RFC 3986 way (a space is ``%20``).

    Accepts what ``requests`` accepts: a mapping or a list of pairs (a value that is a list
    repeats the name, ``None`` leaves the name out), or a string / bytes taken as already
    encoded. Unlike ``requests`` (form encoding: a space becomes ``+``) only the characters
    that must be are encoded; :data:`QUERY_SAFE` stay readable.

    Example:
        >>> encode_query({"$filter": "status eq 'open' and amount gt 5", "$top": 50})
        "$filter=status%20eq%20'open'%20and%20amount%20gt%205&$top=50"
    """
    if isinstance(params, bytes):
        return params.decode("utf-8")
    if isinstance(params, str):
        return params
    return "&".join(
        f"{_quote_part(name)}={_quote_part(value)}" for name, value in _query_pairs(params)
    )


def url_with_params(url: str, params: Any) -> str:
    """``url`` with ``params`` added to its query (:func:`encode_query`): the URL as sent.

    The client sends exactly this URL, so logs and errors show what the server received.
    """
    query = encode_query(params) if params else ""
    if not query:
        return url
    base = url.split("#", 1)[0]  # a fragment is never sent
    joiner = "&" if urlsplit(base).query else ("" if base.endswith("?") else "?")
    return f"{base}{joiner}{query}"


def resolve_link(base: str, link: str, what: str) -> str:
    """``link`` resolved like a browser resolves it against ``base`` (RFC 3986).

    Args:
        base: URL of the response that carried the link.
        link: The ``Location`` or next link, absolute or relative.
        what: What the link is, for the error ("Location", "next link").

    Raises:
        ApiOperationError: The link is not a URL (``http://[bad``), or not http(s).
    """
    try:
        resolved = urljoin(base, link.strip())
        scheme = urlsplit(resolved).scheme.lower()
    except ValueError:
        resolved, scheme = "", ""
    if scheme in ("http", "https"):
        return resolved
    shown = safe_url(base)
    raise ApiOperationError(
        f"The API answered {shown} with a {what} that is not an http(s) URL: "
        f"{safe_url(link[:MAX_SERVER_MESSAGE_CHARS])!r}.",
        "The API sent a broken link: report it to the API owner; nothing more was requested.",
        None,
        status_code=None,
        url=shown,
        method="GET",
    )


class LazySafeUrl:
    """Renders :func:`safe_url` only when formatted: for log arguments that are often dropped.

    Args:
        url: The URL.
        params: Query parameters still to be added to it.
    """

    __slots__ = ("params", "url")

    def __init__(self, url: str, params: Mapping[str, Any] | None = None):
        self.url = url
        self.params = params

    def __str__(self) -> str:
        return safe_url(url_with_params(self.url, self.params))


def server_message(response: requests.Response) -> str:
    """The server's own error text: a JSON ``message``-like field, else the body; redacted.

    Returns:
        At most :data:`MAX_SERVER_MESSAGE_CHARS` characters, or ``""`` when the body is empty.
    """
    text = response.text or ""
    try:
        body = json.loads(text) if text.strip() else None
    except ValueError:
        body = None
    return message_in(body, text)


def message_in(body: Any, text: str | None = None) -> str:
    """The server's own error text in a parsed body: OData/Graph ``error.message`` (or a
    ``message``-like field), else ``text`` (the raw body); redacted and shortened.

    Args:
        body: The parsed JSON body (a dict, or anything else), e.g. a ``$batch`` item's.
        text: The raw body, used when no message field is found (default: ``body`` as text).

    Example:
        >>> message_in({"error": {"code": "Request_EntityChanged", "message": "Changed."}})
        'Changed.'
    """
    found: Any = None
    # OData / Graph nest it: {"error": {"code": ..., "message": ...}}
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    if isinstance(body, dict):
        for key in MESSAGE_KEYS:
            if body.get(key):
                found = body[key]
                break
    if text is None:
        text = "" if body is None else body if isinstance(body, str) else json.dumps(body)
    message = text if found is None else (found if isinstance(found, str) else json.dumps(found))
    message = " ".join(message.split())
    if len(message) > MAX_SERVER_MESSAGE_CHARS:
        message = message[: MAX_SERVER_MESSAGE_CHARS - 1] + "…"
    return redaction.redact(message)


def _fix_for(status: int) -> tuple[str, str | None]:
    """How-to-fix text and an example for an HTTP error status."""
    if status == HTTPStatus.NOT_FOUND:
        return (
            "Check the request path and global → api-base-url in the config (a relative path "
            "is appended to api-base-url), and that the record exists.",
            '"api-base-url": "https://api.businesscentral.dynamics.com/v2.0/<tenant>/'
            'Production/api/v2.0"',
        )
    if status == HTTPStatus.FORBIDDEN:
        return (
            "The token is valid but lacks permission: grant the app registration (client-id) "
            "the API permission or role this call needs, and check the company or tenant.",
            None,
        )
    if status == HTTPStatus.CONFLICT:
        return ("The record changed or already exists: read it again and retry the change.", None)
    if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        return (
            "The API is having trouble (server error): check its status page and run the script "
            "again later; raise script-behavior → retry-strategy → max-retries if it is "
            "merely flaky.",
            '"retry-strategy": {"max-retries": 5, "backoff-factor": 2.0}',
        )
    return (
        "Fix the request according to the server's message (fields, values, query options).",
        None,
    )


def status_error(
    response: requests.Response, method: str, url: str, attempts: int
) -> ApiOperationError:
    """Build the error for a final HTTP error response (>= 400, retries spent or not allowed).

    Args:
        response: The last response.
        method: HTTP method, upper case.
        url: The request URL (made safe here).
        attempts: Requests sent for this call.
    """
    status = response.status_code
    shown = safe_url(url)
    message = server_message(response)
    said = f" The server said: {message}" if message else ""
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    reason = redaction.redact(str(response.reason or "")[:MAX_SERVER_MESSAGE_CHARS])
    what = f"{method} {shown} failed with HTTP {status} {reason}".rstrip()
    what += f"{tries}.{said}"
    fix, example = _fix_for(status)
    return ApiOperationError(what, fix, example, status_code=status, url=shown, method=method)


def auth_error(
    response: requests.Response, method: str, url: str, refreshed: bool
) -> ApiAuthenticationError:
    """The error for a 401 that a token refresh cannot fix (or did not fix)."""
    shown = safe_url(url)
    message = server_message(response)
    said = f" The server said: {message}" if message else ""
    again = " even after a token refresh" if refreshed else ""
    return ApiAuthenticationError(
        f"{method} {shown} was rejected with HTTP 401 (unauthorized){again}.{said}",
        "Put a fresh az-token in the secrets file, or configure client credentials "
        "(client-id, client-secret, oauth-scope) that grant access to this API; the scope "
        "must match global → api-base-url.",
        '"oauth-scope": "https://api.businesscentral.dynamics.com/.default"',
    )


def rate_limit_error(
    method: str,
    url: str,
    retry_after: float | None,
    *,
    too_long: bool,
    max_wait: float,
    status_code: int = HTTPStatus.TOO_MANY_REQUESTS.value,
) -> ApiRateLimitError:
    """The error for a 429/503 we stop retrying: a wait too long, or retries spent."""
    shown = safe_url(url)
    if too_long:
        what = (
            f"{method} {shown}: the API answered HTTP {status_code} and asks to wait "
            f"{retry_after:.0f}s (Retry-After), longer than the allowed {max_wait:g}s."
        )
        fix = (
            "Run the script later, or raise script-behavior → retry-strategy → "
            "max-wait-seconds to let it wait that long."
        )
    else:
        what = f"{method} {shown} kept being rate limited (HTTP 429) until retries ran out."
        fix = (
            "Lower script-behavior → rate-limiting → calls-per-second (or raise "
            "api-delay-seconds) so the script stays under the API's limit."
        )
    return ApiRateLimitError(
        what,
        fix,
        '"rate-limiting": {"enabled": true, "calls-per-second": 5, "burst-size": 1}',
        retry_after=retry_after,
        status_code=status_code,
        url=shown,
        method=method,
    )


def transport_error(
    err: requests.RequestException,
    method: str,
    url: str,
    timeout: float,
    attempts: int,
    *,
    timed_out: bool = False,
) -> ApiOperationError:
    """The error for a request that got no (usable) response: timeout, reset, bad protocol.

    Args:
        err: What ``requests`` raised.
        method: HTTP method, upper case.
        url: The request URL (made safe here).
        timeout: The configured per-socket-operation timeout, for the message.
        attempts: Requests sent for this call.
        timed_out: The failure is a timeout even if ``err`` is not a ``requests.Timeout``
            (requests raises ``ConnectionError`` for a read timeout inside the body).
    """
    shown = safe_url(url)
    tries = f" (after {attempts} attempts)" if attempts > 1 else ""
    if timed_out or isinstance(err, requests.Timeout):
        return ApiTimeoutError(
            f"{method} {shown} got no answer within {timeout:g}s{tries}.",
            "The API is slow or unreachable: raise script-behavior → api-timeouts → "
            "rest-timeout-seconds, or ask for less data per request (smaller pages).",
            '"api-timeouts": {"rest-timeout-seconds": 120}',
            url=shown,
            method=method,
        )
    kind = type(err).__name__
    if isinstance(err, BAD_URL_ERRORS):
        what = f"{method} {shown} could not be sent: the URL is not valid ({kind})."
        fix = (
            "Check global → api-base-url in the config and the path passed to the client "
            "(relative to api-base-url, or a full http(s) URL)."
        )
        example: str | None = '"api-base-url": "https://api.example.com/v2"'
    elif isinstance(err, requests.exceptions.SSLError):
        what = f"{method} {shown} failed: the TLS connection could not be verified or set up."
        fix = (
            "Check the certificate of the API host; behind a proxy that inspects TLS, point "
            "REQUESTS_CA_BUNDLE at your organisation's CA bundle."
        )
        example = "export REQUESTS_CA_BUNDLE=/etc/ssl/certs/corporate-ca.pem"
    elif isinstance(err, requests.exceptions.TooManyRedirects):
        what = f"{method} {shown} was redirected too many times (a redirect loop)."
        fix = "Check the URL and global → api-base-url: the API keeps sending it elsewhere."
        example = None
    else:
        what = f"{method} {shown} failed before a complete response arrived ({kind}){tries}."
        fix = (
            "Check the network, proxy and global → api-base-url; if the API drops connections "
            "under load, lower rate-limiting → calls-per-second."
        )
        example = None
    return ApiOperationError(what, fix, example, status_code=None, url=shown, method=method)


def async_timeout_error(
    method: str, url: str, poll_url: str, max_wait: float, polls: int
) -> ApiTimeoutError:
    """The error for a 202-accepted operation still running after ``async-max-wait``.

    Its ``method`` and ``url`` are the call's (what did not finish); the poll URL is named in
    the message.
    """
    shown = safe_url(url)
    return ApiTimeoutError(
        f"{method} {shown} was accepted (202) but the operation was not finished after "
        f"{max_wait:g}s ({polls} polls of {safe_url(poll_url)}).",
        "Raise script-behavior → api-timeouts → async-max-wait if the operation is known to "
        "take that long, or check its status on the API side.",
        '"api-timeouts": {"async-max-wait": 900, "async-poll-interval": 5}',
        status_code=HTTPStatus.ACCEPTED.value,
        url=shown,
        method=method,
    )


def name_refused_call(
    err: CircuitOpenError, method: str, url: str, params: Mapping[str, Any] | None
) -> None:
    """Put the call an open breaker refused (method, secret-free URL) into its error."""
    err.url = safe_url(url_with_params(url, params))
    err.method = method
    err.what_went_wrong = f"{method} {err.url}: {err.what_went_wrong}"
