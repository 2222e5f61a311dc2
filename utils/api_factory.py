"""The REST client scripts use: ``create_rest_api(config)`` or ``ApiManager(config)``.

``TxoRestAPI`` joins relative paths to ``global.api-base-url``, decodes bodies, walks pages and
runs calls in parallel; retries, rate limiting, the circuit breaker, token refresh and 202
polling happen underneath in :mod:`utils._rest_client`, for every request (pages and polls
included). One client is safe to share across threads: they share its rate limiter, circuit
breaker and connection pool.

Example:
    >>> with ApiManager(config) as manager:                      # doctest: +SKIP
    ...     api = manager.get_rest_api()
    ...     for page in api.iter_pages("customers", {"$top": 100}):
    ...         handle(page)
    ...     details = api.map(api.get, [f"customers({n})" for n in ids])
    ...     report = api.write_many("PATCH", [WriteRequest(f"customers({n})", {"blocked": "All"},
    ...                                                    etag=etags[n]) for n in ids],
    ...                             report=("output", "blocked.csv"))
    ...     report.raise_for_failures()  # exit 6 when some records were not written

With ``--dry-run`` (``config["_dry_run"]``), POST, PUT, PATCH and DELETE are not sent: each is
logged as ``DRY RUN: would PATCH <url>`` and single calls return None; GETs are real.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from utils import _run_control as run_control
from utils._api_settings import behavior
from utils._http_body import decode_body
from utils._named_apis import api_config
from utils._pagination import DeltaPull, PageFetcher, walk_pages
from utils._rest_client import POOL_MAXSIZE, RestTransport
from utils._write_back import WRITE_METHODS, log_dry_run, write_many
from utils._write_report import WriteReport, WriteRequest, WriteResult, load_write_report

if TYPE_CHECKING:
    from concurrent.futures import Future

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
C = TypeVar("C", bound="_ClosedOnExit")

DEFAULT_MAX_WORKERS = 8
"""Threads of :meth:`TxoRestAPI.map` when not given (capped at the connection pool size)."""
ABSOLUTE_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://")
"""``scheme://…``: used as given (only http and https can be sent; others are an error)."""


class _ClosedOnExit:
    """``with`` support for a class with ``close()``: leaving the block closes it."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: C) -> C:  # typing.Self is Python 3.11+
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class TxoRestAPI(_ClosedOnExit):
    """A resilient REST client for one API (see the module docstring).

    Args:
        config: The whole config (``global.api-base-url`` required).
        require_auth: Send a bearer token (``_token`` from the config, else acquired).
        transport: An existing engine to use (tests); built from ``config`` when None.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        require_auth: bool = True,
        *,
        transport: RestTransport | None = None,
    ):
        self.config = config
        self.transport = transport or RestTransport(config, require_auth=require_auth)
        batches = behavior(config)["batch-handling"]
        self.read_batch_size = int(batches["read-batch-size"])
        self.update_batch_size = int(batches["update-batch-size"])

    @property
    def base_url(self) -> str:
        """``global.api-base-url`` without a trailing ``/``."""
        return self.transport.base_url

    def url_for(self, path_or_url: str) -> str:
        """An absolute URL: ``scheme://…`` as given, else appended to the base URL.

        Exactly one ``/`` separates them, so ``"/customers"`` and ``"customers"`` are the same.
        Only http(s) URLs can be sent; another scheme fails as an invalid URL.
        """
        if ABSOLUTE_URL.match(path_or_url):
            return path_or_url
        path = path_or_url.lstrip("/")
        return f"{self.base_url}/{path}" if path else self.base_url

    @property
    def dry_run(self) -> bool:
        """True in a dry run (``--dry-run``): POST, PUT, PATCH and DELETE are not sent."""
        return bool(self.config.get("_dry_run")) or run_control.is_dry_run()

    # -- verbs ------------------------------------------------------------------------------
    def _call(self, method: str, path_or_url: str, **kwargs: Any) -> Any:
        url = self.url_for(path_or_url)
        if method in WRITE_METHODS and self.dry_run:
            log_dry_run(method, url, kwargs.get("params"))
            return None
        return decode_body(self.transport.request(method, url, **kwargs))

    def get(self, path_or_url: str, params: Mapping[str, Any] | None = None, **kw: Any) -> Any:
        """GET and return the parsed JSON, None for an empty body, else the text.

        Args:
            path_or_url: Path relative to ``api-base-url``, or an absolute URL.
            params: Query parameters.
            **kw: ``headers`` (extra request headers).
        """
        return self._call("GET", path_or_url, params=params, **kw)

    def delete(self, path_or_url: str, **kw: Any) -> Any:
        """DELETE; returns like :meth:`get` (None in a dry run). ``kw``: ``params``,
        ``headers``."""
        return self._call("DELETE", path_or_url, **kw)

    def post(self, path_or_url: str, data: Any = None, **kw: Any) -> Any:
        """POST ``data`` as the JSON body; returns like :meth:`get` (None in a dry run).
        ``kw``: ``params``, ``headers``. Not retried after 500/502/504 or timeouts (it may
        have been applied) unless it carries an ``Idempotency-Key`` header (given, or added
        by ``retry-strategy.idempotency-keys``)."""
        return self._call("POST", path_or_url, json_body=data, **kw)

    def put(self, path_or_url: str, data: Any = None, **kw: Any) -> Any:
        """PUT ``data`` as the JSON body; returns like :meth:`get` (None in a dry run)."""
        return self._call("PUT", path_or_url, json_body=data, **kw)

    def patch(self, path_or_url: str, data: Any = None, **kw: Any) -> Any:
        """PATCH ``data`` as the JSON body; returns like :meth:`get` (None in a dry run).
        Retried like POST, or like PUT when it carries ``If-Match`` (``headers={"If-Match":
        etag}``): a repeat of an applied change then fails with 412 instead of applying
        twice."""
        return self._call("PATCH", path_or_url, json_body=data, **kw)

    def head(self, path_or_url: str, params: Mapping[str, Any] | None = None, **kw: Any) -> Any:
        """HEAD, retried like GET; returns the response headers (a HEAD answer has no body).

        Returns:
            A case-insensitive mapping of the final response's headers.
        """
        url = self.url_for(path_or_url)
        return self.transport.request("HEAD", url, params=params, **kw).headers

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Any HTTP method (``OPTIONS`` ...), with the same retries; returns like :meth:`get`.

        Args:
            method: HTTP method, any case; retried per the method's rules.
            path_or_url: Path relative to ``api-base-url``, or an absolute URL.
            params: Query parameters.
            data: JSON body (None: no body).
            headers: Extra request headers.
        """
        return self._call(
            method.upper(), path_or_url, params=params, json_body=data, headers=headers
        )  # a write in a dry run is not sent (None)

    # -- pages ------------------------------------------------------------------------------
    def iter_pages(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> Iterator[list[Any]]:
        """Yield each page's records, following the server's next links (streaming).

        Args:
            path: Collection path (or absolute URL).
            params: Query parameters for the first request only (next links carry theirs).
            headers: Extra request headers for every page (``Prefer: odata.maxpagesize=500``,
                Graph's ``ConsistencyLevel: eventual``).

        Raises:
            ApiOperationError: A page without records, a repeated next link, or any failure.
        """

        yield from walk_pages(self._page_fetcher(headers), self.url_for(path), params)

    def _page_fetcher(self, headers: Mapping[str, str] | None) -> PageFetcher:
        """One page GET with this client's retries, limits and token: for the page walkers."""

        def fetch(url: str, page_params: Mapping[str, Any] | None) -> tuple[str, Any, Any]:
            response = self.transport.request("GET", url, params=page_params, headers=headers)
            return response.url or url, response.headers, decode_body(response)

        return fetch

    def delta(
        self,
        path: str,
        delta_link: str | None = None,
        params: Mapping[str, Any] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> DeltaPull:
        """A Microsoft Graph delta query: every change since ``delta_link``, page by page.

        Args:
            path: The delta function (``"users/delta"``), relative to ``api-base-url`` or
                absolute; a fresh pull (no ``delta_link``, or after a 410 Gone) starts here.
            delta_link: The ``@odata.deltaLink`` a previous pull ended with (from the state);
                None for a first, full pull.
            params: Query parameters of a fresh pull (``$select``, ``$filter``); a delta link
                carries its own.
            headers: Extra request headers for every page (``Prefer: return=minimal``).

        Returns:
            A :class:`~utils._pagination.DeltaPull`: iterate ``.pages()``, then save
            ``.delta_link``; ``.resynced`` says the pages are a full pull (replace, not merge).

        Example:
            >>> state = load_state(config)                                  # doctest: +SKIP
            >>> pull = api.delta("users/delta", state.get("users_delta"),
            ...                  params={"$select": "displayName,mail"})
            >>> for page in pull.pages():
            ...     handle(page)          # removed users carry "@removed"
            >>> state.set("users_delta", pull.delta_link)
        """
        return DeltaPull(
            self._page_fetcher(headers),
            self.url_for(path),
            params,
            self.url_for(delta_link) if delta_link else None,
        )

    def get_all(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> list[Any]:
        """Every record of every page, as one list (use :meth:`iter_pages` to stream)."""
        return [
            record for page in self.iter_pages(path, params, headers=headers) for record in page
        ]

    # -- parallel ---------------------------------------------------------------------------
    def imap(
        self,
        fn: Callable[[T], R] | str,
        items: Iterable[T],
        max_workers: int | None = None,
        window: int | None = None,
    ) -> Generator[R, None, None]:
        """Run ``fn(item)`` for every item on a thread pool; yield results in input order.

        All threads share this client's rate limiter, circuit breaker and connection pool,
        so the configured rate holds for the whole run. ``items`` is consumed lazily: at
        most ``window`` calls are submitted ahead of the result being yielded.

        Args:
            fn: Called once per item, e.g. ``api.get`` or ``lambda c: api.patch(...)``, or
                the name of a client method (``"get"``).
            items: Any iterable (a generator of a million ids is fine).
            max_workers: Threads (default :data:`DEFAULT_MAX_WORKERS`, at most the pool size).
            window: Calls in flight or waiting to be yielded (default:
                ``batch-handling.update-batch-size``, at least ``max_workers``).

        Raises:
            Exception: The first failure in input order; calls not yet started are cancelled.
        """
        call: Callable[[T], R] = getattr(self, fn) if isinstance(fn, str) else fn
        workers = max(1, min(max_workers or DEFAULT_MAX_WORKERS, POOL_MAXSIZE))
        ahead = max(window or self.update_batch_size, workers)
        from concurrent.futures import ThreadPoolExecutor  # only map() needs threads

        pending: deque[Future[R]] = deque()
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="txo-api") as pool:
            try:
                for item in items:
                    pending.append(pool.submit(call, item))
                    if len(pending) >= ahead:
                        yield pending.popleft().result()
                while pending:
                    yield pending.popleft().result()
            finally:
                for future in pending:
                    future.cancel()

    def map(
        self,
        fn: Callable[[T], R] | str,
        items: Iterable[T],
        max_workers: int | None = None,
    ) -> list[R]:
        """:meth:`imap` collected into a list, in input order.

        Example:
            >>> api.map("get", ["customers(1)", "customers(2)"])  # doctest: +SKIP
        """
        return list(self.imap(fn, items, max_workers))

    def get_many(
        self,
        paths: Iterable[str],
        params: Mapping[str, Any] | None = None,
        max_workers: int | None = None,
    ) -> list[Any]:
        """GET every path in parallel (``read-batch-size`` ahead at most); results in order."""
        return list(
            self.imap(lambda p: self.get(p, params), paths, max_workers, self.read_batch_size)
        )

    # -- write-back -------------------------------------------------------------------------
    def write_many(
        self,
        method: str,
        items: Iterable[WriteRequest | tuple[str, Any]],
        *,
        batch: bool = False,
        batch_size: int | None = None,
        max_workers: int | None = None,
        report: tuple[str, str] | None = None,
    ) -> WriteReport:
        """Write many records and account for each one; never raises for a record's failure.

        One request per record, in parallel under this client's one rate limiter and circuit
        breaker, each with the retries its idempotency allows (PUT and DELETE always; a PATCH
        with an ETag; a POST with an ``Idempotency-Key``); or, with ``batch=True``, OData
        JSON ``$batch`` envelopes (``POST {api-base-url}/$batch``) of ``batch_size`` records,
        a throttled record re-sent in a later envelope. When the breaker opens, the token
        cannot be refreshed or the run is stopped, the records not yet sent are ``not-sent``;
        requests in flight are awaited and recorded. In a dry run nothing is sent: every
        record is ``dry-run``.

        Args:
            method: ``POST``, ``PUT``, ``PATCH`` or ``DELETE`` (any case).
            items: :class:`WriteRequest` objects or ``(path, body)`` pairs; read in full and
                checked before the first request.
            batch: Send ``$batch`` envelopes instead of one request per record.
            batch_size: Records per envelope (default ``batch-handling.update-batch-size``;
                Graph takes at most 20, Business Central 100).
            max_workers: Threads: requests in flight (default 8), or envelopes in flight in
                batch mode (default 1).
            report: ``(directory, filename)``: save the report there through ``save()``
                (format from the extension), however the call ends.

        Returns:
            The :class:`WriteReport`, one result per item in input order.

        Raises:
            ValidationError: ``method``, ``batch_size`` or an item is not valid (nothing sent).
            FileOperationError: The report could not be saved.

        Example:
            >>> report = api.write_many(                                     # doctest: +SKIP
            ...     "PATCH",
            ...     [WriteRequest(f"customers({c['id']})", {"blocked": "Invoice"},
            ...                   key=c["number"], etag=c["@odata.etag"]) for c in overdue],
            ...     report=("output", "blocked.csv"))
            >>> report.raise_for_failures()  # exit 6 when any record failed or was not sent
        """
        return write_many(
            self,
            method,
            items,
            batch=batch,
            batch_size=batch_size,
            max_workers=max_workers,
            report=report,
        )

    # -- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        """Close the session and its connections."""
        self.transport.close()


def create_rest_api(
    config: Mapping[str, Any], require_auth: bool = True, api: str | None = None
) -> TxoRestAPI:
    """A new client for one API of ``config`` (close it, or prefer :class:`ApiManager`).

    Args:
        config: The loaded config (``global.api-base-url``; ``_token`` when authenticated).
        require_auth: Send a bearer token; acquired through the shared token provider when
            the config carries no ``_token`` (for a named API: its ``{name}-token`` secret,
            else client credentials with its own scope).
        api: A name of ``global.apis`` (``"graph"``); None is the default API of
            ``global.api-base-url``. What the entry leaves out comes from ``global``.

    Raises:
        ConfigurationError: No ``api-base-url``, an unknown ``api`` (the known names are
            listed), or no way to get a token.
        ApiAuthenticationError: The token could not be acquired.

    Example:
        >>> graph = create_rest_api(config, api="graph")  # doctest: +SKIP
        >>> users = graph.get_all("users")                 # doctest: +SKIP
    """
    view = api_config(config, api)
    if api is not None:
        log.debug("Client for API %r at %s", api, view["global"].get("api-base-url"))
    return TxoRestAPI(view, require_auth=require_auth)


class ApiManager(_ClosedOnExit):
    """Hands out one client per setting (``require_auth``, ``api``), reused, and closes every
    one of them on exit.

    Example:
        >>> with ApiManager(config) as manager:              # doctest: +SKIP
        ...     customers = manager.get_rest_api().get_all("customers")
        ...     users = manager.get_rest_api(api="graph").get_all("users")
    """

    def __init__(self, config: Mapping[str, Any]):
        self.config = config
        self._clients: dict[tuple[bool, str | None], TxoRestAPI] = {}
        self._lock = threading.Lock()

    def get_rest_api(self, require_auth: bool = True, api: str | None = None) -> TxoRestAPI:
        """The client for ``require_auth`` and ``api``, created on first use and reused after.

        Args:
            require_auth: Send a bearer token.
            api: A name of ``global.apis``; None for the default API.

        Raises:
            ConfigurationError: An unknown ``api`` (the known names are listed).
        """
        key = (require_auth, api)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = create_rest_api(self.config, require_auth=require_auth, api=api)
                self._clients[key] = client
            return client

    def close(self) -> None:
        """Close every client handed out."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()


__all__ = [
    "ApiManager",
    "DeltaPull",
    "TxoRestAPI",
    "WriteReport",
    "WriteRequest",
    "WriteResult",
    "create_rest_api",
    "decode_body",
    "load_write_report",
]
