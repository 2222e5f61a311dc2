"""Where the bearer token may go: the API's origin, and a session that keeps it there.

The token is sent only to the scheme, host and port of ``api-base-url``; a ``Location``, next
link, absolute URL or redirect anywhere else gets no ``Authorization`` header.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests
from requests.auth import HTTPBasicAuth
from requests.utils import get_auth_from_url

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


class OriginBoundSession(requests.Session):
    """A ``requests.Session`` that keeps ``Authorization`` to what the client itself sets.

    ``requests`` keeps the header on some cross-origin redirects (http → https on the same
    host) and adds ``.netrc`` credentials; here a redirect keeps the header only while it
    stays on ``api_origin``, and ``.netrc`` is never read (see :class:`UrlCredentialsOnly`).
    Proxy settings from the environment still apply.
    """

    def __init__(self, api_origin: Origin):
        super().__init__()
        self.api_origin = api_origin
        self.auth = UrlCredentialsOnly()

    def rebuild_auth(self, prepared_request: Any, response: Any) -> None:
        """Keep ``Authorization`` only when the redirect target is the API's own origin."""
        if origin_of(prepared_request.url or "") != self.api_origin:
            prepared_request.headers.pop("Authorization", None)
