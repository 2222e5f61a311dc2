"""Request and response bodies of the HTTP client: JSON out, JSON or text back in.

:func:`encode_json` turns the ``data`` of ``post/put/patch`` into UTF-8 JSON once per call
(not once per retry); values plain ``json`` cannot write (``Decimal``, datetimes, numpy and
pandas scalars, ``NaN``) are encoded by the toolkit's JSON rules, the same as ``save()``.
:func:`decode_body` turns a response into what the client returns.
"""

from __future__ import annotations

import json
from typing import Any

import requests

from utils.exceptions import ApiOperationError
from utils.http_errors import safe_url

JSON_CONTENT_TYPE = "application/json"


def encode_json(data: Any) -> bytes:
    """``data`` as the UTF-8 JSON text of a request body.

    Plain ``json`` first (fast, no extra imports); on a value it cannot write, the rules of
    :mod:`utils.json_encoding`: ``Decimal`` with its exact digits, datetimes as ISO 8601,
    numpy/pandas scalars as numbers, ``NaN``/``NaT`` as ``null`` (JSON has no NaN).

    Raises:
        ValidationError: A value has no JSON form (nothing is sent).

    Example:
        >>> encode_json({"a": 1})
        b'{"a": 1}'
    """
    try:
        text = json.dumps(data, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError):
        from utils.json_encoding import encode  # pandas-aware; imported only when needed

        text = encode(data, indent=None)
    return text.encode("utf-8")


def _declares_charset(content_type: str) -> bool:
    return any(part.strip().startswith("charset=") for part in content_type.split(";")[1:])


def _text_of(response: requests.Response, content_type: str) -> str:
    """The body as text: the declared charset, else UTF-8, else what ``requests`` guesses.

    ``requests`` decodes ``text/*`` without a charset as ISO-8859-1 (an old HTTP default),
    which garbles the UTF-8 that APIs actually send; a UTF-8 byte-order mark is dropped.
    """
    if not _declares_charset(content_type):
        try:
            return response.content.decode("utf-8-sig")
        except UnicodeDecodeError:
            pass
    return response.text.removeprefix("\ufeff")


def decode_body(response: requests.Response) -> Any:
    """The body as the client returns it: parsed JSON, None when empty, else the text.

    A body is parsed as JSON when the ``Content-Type`` says JSON (``application/json``,
    ``…+json``), or when there is no ``Content-Type`` and the body parses. Text is decoded
    with the declared charset, else as UTF-8 (a byte-order mark is dropped).

    Raises:
        ApiOperationError: The server declared JSON but sent something unparseable.
    """
    content = response.content
    if not content or content.isspace():
        return None
    content_type = response.headers.get("Content-Type", "").lower()
    if content_type and "json" not in content_type:
        return _text_of(response, content_type)
    try:
        if _declares_charset(content_type):
            return json.loads(response.text.removeprefix("\ufeff"))
        return json.loads(content)  # detects UTF-8/16/32 and a byte-order mark
    except ValueError as err:
        if not content_type:
            return _text_of(response, content_type)
        shown = safe_url(response.url or "")
        method = response.request.method if response.request is not None else ""
        raise ApiOperationError(
            f"{method} {shown} answered {response.status_code} with a body declared as JSON "
            f"that is not valid JSON ({err}).",
            "The API sent a broken response: run again, and report it to the API owner if it "
            "persists.",
            status_code=response.status_code,
            url=shown,
            method=method or "",
        ) from err
