"""Follow next links page by page: OData ``@odata.nextLink``, RFC 8288 ``Link``, JSON ``next``;
and Microsoft Graph delta queries (:class:`DeltaPull`) on top of the same walk.

The walk streams: one page is held at a time. Records come from ``value``, a top-level list,
or ``data`` / ``items`` / ``results``; an empty body is a page without records. The JSON next
link may also sit under ``links`` (JSON:API) or ``_links`` (HAL). A next link that was already
fetched in the same walk is an error (a server bug that would otherwise loop forever). Next
links are followed as given — never rebuilt from ``$skip`` arithmetic — so a server that caps
the page size loses nothing.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from http import HTTPStatus
from typing import Any

from requests.utils import parse_header_links

from utils._http_errors import resolve_link, safe_url
from utils.exceptions import ApiOperationError

log = logging.getLogger(__name__)

RECORD_KEYS = ("value", "data", "items", "results")
ODATA_NEXT = "@odata.nextLink"
ODATA_DELTA = "@odata.deltaLink"
JSON_NEXT = "next"
LINK_CONTAINERS = ("links", "_links")
"""Objects that may hold the JSON ``next`` link (JSON:API ``links``, HAL ``_links``)."""
PROGRESS_EVERY_PAGES = 10
"""A progress line (pages, records, rate) is logged at INFO every this many pages."""

_DELIMITED = re.compile(r'<[^>]*>|"[^"]*"')
_COMMA, _SEMI = "\x00c", "\x00s"

PageFetcher = Callable[[str, Mapping[str, Any] | None], tuple[str, Mapping[str, str], Any]]
"""``fetch(url, params) -> (final_url, headers, parsed_body)`` for one page."""


def parse_link_header(value: str | None) -> dict[str, str]:
    """Parse an RFC 8288 ``Link`` header into ``{relation: uri}`` (relations lower case).

    ``requests.utils.parse_header_links`` splits the header; here parameter names and
    relations are matched in any case, several relations in one ``rel`` (``rel="next last"``)
    are split, and the first link wins for a relation.

    Example:
        >>> parse_link_header('<https://a/x?p=2>; rel="next", <https://a/x?p=9>; REL=last')
        {'next': 'https://a/x?p=2', 'last': 'https://a/x?p=9'}
    """
    links: dict[str, str] = {}
    for link in parse_header_links(_shield(value)) if value else ():
        params = {key.lower(): text for key, text in link.items() if key != "url"}
        for rel in _unshield(params.get("rel", "")).lower().split():
            links.setdefault(rel, _unshield(link["url"]).strip())
    return links


def _shield(value: str) -> str:
    # parse_header_links splits at every "," and ";": hide those inside <uri> and "quoted"
    # parameters (title="a, b; c") so that only the separators of the header split it.
    return _DELIMITED.sub(lambda m: m.group(0).replace(",", _COMMA).replace(";", _SEMI), value)


def _unshield(text: str) -> str:
    return text.replace(_COMMA, ",").replace(_SEMI, ";")


def next_link(body: Any, headers: Mapping[str, str], page_url: str) -> str | None:
    """The absolute URL of the next page, or None on the last page.

    Looks at ``@odata.nextLink`` in the body, then a ``Link: <…>; rel="next"`` header, then a
    JSON ``next`` link: a top-level ``next``, else ``links.next`` (JSON:API) or
    ``_links.next`` (HAL), each a string or an object with an ``href``. A relative link is
    resolved against the page's URL.

    Args:
        body: The page's parsed JSON body.
        headers: The page's response headers (case-insensitive mapping).
        page_url: The URL the page was fetched from.
    """
    candidate: Any = None
    if isinstance(body, dict):
        candidate = body.get(ODATA_NEXT)
    if not candidate:
        candidate = parse_link_header(headers.get("Link")).get("next")
    if not candidate and isinstance(body, dict):
        candidate = _json_next(body)
    if not isinstance(candidate, str) or not candidate.strip():
        return None
    return resolve_link(page_url, candidate, "next link")


def _href(value: Any) -> str | None:
    """A link given as a string, or as an object with an ``href`` (JSON:API, HAL)."""
    if isinstance(value, Mapping):
        value = value.get("href")
    return value if isinstance(value, str) and value.strip() else None


def _json_next(body: Mapping[str, Any]) -> str | None:
    """``next`` at the top level, else under ``links`` (JSON:API) or ``_links`` (HAL)."""
    found = _href(body.get(JSON_NEXT))
    for container in LINK_CONTAINERS:
        if found is not None:
            break
        links = body.get(container)
        if isinstance(links, Mapping):
            found = _href(links.get(JSON_NEXT))
    return found


def extract_records(body: Any, page_url: str) -> list[Any]:
    """The records of one page: a top-level list, or the list under a record key.

    An empty body (``None``, e.g. a 204 No Content) is a page without records.

    Raises:
        ApiOperationError: The page holds no list of records.
    """
    if body is None:
        return []
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for key in RECORD_KEYS:
            records = body.get(key)
            if isinstance(records, list):
                return records  # the body is this page's own: no copy needed
    shown = safe_url(page_url)
    raise ApiOperationError(
        f"GET {shown} returned a page without a list of records "
        f"(looked for a top-level list and the keys {', '.join(RECORD_KEYS)}).",
        "Use iter_pages/get_all only on collection endpoints; read a single object with get().",
        "api.get_all('customers') rather than api.get_all('customers(42)')",
        url=shown,
        method="GET",
    )


def walk_pages(
    fetch: PageFetcher,
    url: str,
    params: Mapping[str, Any] | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    progress_every: int = PROGRESS_EVERY_PAGES,
) -> Iterator[list[Any]]:
    """Yield each page's records, following next links until there is none.

    Args:
        fetch: Fetches one page (see :data:`PageFetcher`); it does retries, limits, auth.
        url: Absolute URL of the first page.
        params: Query parameters of the first request only (a next link carries its own).
        clock: Monotonic clock, for the progress rate.
        progress_every: Log progress at INFO every this many pages.

    Raises:
        ApiOperationError: A next link repeats one already fetched, or a page has no records.
    """
    seen: set[str] = set()
    pages = records = 0
    started = clock()
    current: str | None = url
    current_params = params
    while current is not None:
        final_url, headers, body = fetch(current, current_params)
        seen.add(final_url)
        if current_params is None:
            seen.add(current)
        page = extract_records(body, final_url)
        pages += 1
        records += len(page)
        if pages % progress_every == 0:
            elapsed = max(clock() - started, 1e-9)
            log.info(
                "Paging %s: %d pages, %d records so far (%.1f records/s)",
                safe_url(url),
                pages,
                records,
                records / elapsed,
            )
        following = next_link(body, headers, final_url)
        if following is not None and following in seen:
            shown = safe_url(following)
            raise ApiOperationError(
                f"Pagination loop: the server sent the next link {shown} again after "
                f"{pages} pages ({records} records).",
                "The API's paging is broken for this query: report it to the API owner, or "
                "narrow the query ($filter) so it fits fewer pages.",
                None,
                status_code=None,
                url=shown,
                method="GET",
            )
        yield page
        # Dropped before the next fetch, so that one page (not two) is held at a time.
        del page, body
        current, current_params = following, None
    log.debug("Paging %s done: %d pages, %d records", safe_url(url), pages, records)


class DeltaPull:
    """One Microsoft Graph delta query: the changes since a saved ``@odata.deltaLink``.

    :meth:`pages` walks the pages like :func:`walk_pages` (the same records, loop detection
    and progress lines; the bearer token goes only to the API's own origin) until the page
    that carries ``@odata.deltaLink``; then :attr:`delta_link` holds that link (absolute), to
    save for the next run. Removed items (with ``@removed``) come in the pages as the server
    sends them. A ``410 Gone`` (the saved sync state expired) restarts the pull once from
    ``url`` with ``params`` (a second 410 is an error): :attr:`resynced` is then True and the
    records are the whole collection again, so the caller replaces what it holds instead of
    merging. When the 410 comes after some pages were already yielded, those records come
    again in the full pull.

    Built by ``TxoRestAPI.delta``; iterate :meth:`pages` once.

    Args:
        fetch: Fetches one page (see :data:`PageFetcher`).
        url: Absolute URL of the delta function (``…/users/delta``).
        params: Query parameters of a fresh pull (``$select``, ``$filter``).
        delta_link: The link a previous pull ended with; the first request goes there.
        clock: Monotonic clock, for the progress rate.
    """

    def __init__(
        self,
        fetch: PageFetcher,
        url: str,
        params: Mapping[str, Any] | None = None,
        delta_link: str | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._fetch = fetch
        self.url = url
        self.params = params
        self.start_link = delta_link or None
        self.delta_link: str | None = None
        """The ``@odata.deltaLink`` of the last page, once :meth:`pages` has run to its end."""
        self.resynced = False
        """True when a 410 Gone made the pull start over from the full collection."""
        self._clock = clock
        self._found: str | None = None

    def _fetch_noting_delta(
        self, url: str, params: Mapping[str, Any] | None
    ) -> tuple[str, Mapping[str, str], Any]:
        final_url, headers, body = self._fetch(url, params)
        link = body.get(ODATA_DELTA) if isinstance(body, dict) else None
        self._found = (
            resolve_link(final_url, link, "delta link")
            if isinstance(link, str) and link.strip()
            else None
        )
        return final_url, headers, body

    def _walk(self, url: str, params: Mapping[str, Any] | None) -> Iterator[list[Any]]:
        yield from walk_pages(self._fetch_noting_delta, url, params, clock=self._clock)

    def pages(self) -> Iterator[list[Any]]:
        """Yield each page's records; :attr:`delta_link` is set when the last page is read.

        Raises:
            ApiOperationError: A request failed (a second 410 included), a next link
                repeated, or the last page carried no ``@odata.deltaLink``.
        """
        self.delta_link, self._found = None, None
        if self.start_link is not None:
            first_url, first_params = self.start_link, None
        else:
            first_url, first_params = self.url, self.params
        try:
            yield from self._walk(first_url, first_params)
        except ApiOperationError as err:
            if err.status_code != HTTPStatus.GONE:
                raise
            log.warning(
                "Delta pull of %s: the server answered 410 Gone (the sync state expired); "
                "starting over with a full pull: replace the data you hold, do not merge",
                safe_url(self.url),
            )
            self.resynced = True
            yield from self._walk(self.url, self.params)
        if self._found is None:
            shown = safe_url(self.url)
            raise ApiOperationError(
                f"The delta pull of {shown} ended without an @odata.deltaLink on its last page.",
                "Check that the path is a delta function (…/delta) of an API that supports "
                "delta queries; the state was not moved forward.",
                "api.delta('users/delta', params={'$select': 'displayName,mail'})",
                url=shown,
                method="GET",
            )
        self.delta_link = self._found
