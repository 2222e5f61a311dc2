"""Request and response bodies of the HTTP client: JSON out, JSON or text back in.

:func:`encode_json` turns the ``data`` of ``post/put/patch`` into UTF-8 JSON once per call
(not once per retry); values plain ``json`` cannot write (``Decimal``, datetimes, numpy and
pandas scalars, ``NaN``) are encoded by the toolkit's JSON rules, the same as ``save()``.
:func:`decode_body` turns a response into what the client returns.

Decoding is the stdlib ``json`` module's result, always; :func:`fast_json` gets it faster
with ``orjson`` straight from the UTF-8 bytes where the two agree, and hands every other body
to the stdlib: a body orjson refuses (``NaN``/``Infinity``, a byte-order mark, lone
surrogates, numbers beyond a double's range, text that is not UTF-8, any syntax error, whose
message is then the stdlib's), a body in a declared charset other than UTF-8, and a body with
a run of :data:`LONG_DIGITS` or more digits, which may be an integer beyond 64 bits (orjson
would make it a float; the stdlib keeps every digit). Both keep the last of duplicate keys.
"""

from __future__ import annotations

import codecs
import json
from typing import Any

import requests

try:  # a declared dependency; without it every body takes the stdlib path, with one result
    import orjson
except ImportError:  # pragma: no cover - exercised by the tests through monkeypatching
    orjson = None  # type: ignore[assignment]

from utils._http_errors import safe_url
from utils.exceptions import ApiOperationError

JSON_CONTENT_TYPE = "application/json"
LONG_DIGITS = 19
"""Digits in a row from which a number might not fit 64 bits (-2**63 has 19 digits)."""
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_RUN = b"0" * LONG_DIGITS
UTF8 = "utf-8"
REFUSED: Any = object()
"""What :func:`fast_json` returns for a body it leaves to the stdlib."""


def encode_json(data: Any) -> bytes:
    """``data`` as the UTF-8 JSON text of a request body.

    Plain ``json`` first (fast, no extra imports); on a value it cannot write, the rules of
    :mod:`utils._json_encoding`: ``Decimal`` with its exact digits, datetimes as ISO 8601,
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
        from utils._json_encoding import encode  # pandas-aware; imported only when needed

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


def fast_json(content: bytes) -> Any:
    """``content`` (UTF-8 JSON) parsed by orjson, or :data:`REFUSED` for the stdlib to decide.

    Whatever it returns other than :data:`REFUSED` equals, type for type, what
    ``json.loads(content)`` returns (see the module docstring for the bodies it refuses).

    Example:
        >>> fast_json(b'{"id": 1}')
        {'id': 1}
        >>> fast_json(b"[12345678901234567890]") is REFUSED
        True
    """
    if orjson is None or _LONG_RUN in content.translate(_DIGITS_AS_ZERO):
        return REFUSED
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return REFUSED


def _decodes_as_utf8(response: requests.Response) -> bool:
    """True when ``response.text`` is the body's bytes decoded as UTF-8 (declared charset)."""
    try:
        return codecs.lookup(response.encoding or "").name == UTF8
    except LookupError:
        return False


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
    declared = _declares_charset(content_type)
    if not declared or _decodes_as_utf8(response):
        parsed = fast_json(content)  # the bytes as they came: no str round trip
        if parsed is not REFUSED:
            return parsed
    try:
        if declared:
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
