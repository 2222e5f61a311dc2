"""JSON and JSON Lines for the data a batch script holds: Decimal, datetimes, numpy, pandas.

Encoding rules (used by ``TxoDataHandler.save`` for ``.json`` and ``.jsonl``):

- ``Decimal`` → a JSON number with its exact digits (``Decimal("0.10")`` → ``0.10``), never a
  float and never a string; a non-finite Decimal → ``null``.
- ``datetime`` / ``date`` / ``time`` (``pd.Timestamp`` included) → ISO 8601 text, with the
  offset when the value is timezone-aware; ``timedelta`` → ISO 8601 duration (``P1DT2H0M0S``,
  a negative one with a leading minus: ``-P0DT0H0M1S``).
- numpy integers, floats, booleans and arrays → their Python equivalents; a ``float32`` is
  written with its shortest digits (``np.float32(0.1)`` → ``0.1``, not ``0.10000000149011612``).
- ``None``, ``NaN``, ``±inf``, ``pd.NaT``, ``pd.NA`` → ``null`` (JSON has no NaN).
- ``set`` / ``frozenset`` → a list, sorted when the items can be compared.
- ``UUID`` and paths → text; ``Enum`` → its value; ``bytes`` → base64 text; dataclasses →
  objects; a ``DataFrame`` → a list of row objects; a ``Series`` → a list.
- dict keys that JSON cannot hold (dates, Decimals, tuples ...) → text.

Anything else is a :class:`~utils.exceptions.ValidationError` naming the type.

numpy, pandas and ``decimal`` are never imported here: a value can only be a numpy, pandas or
``Decimal`` object when that module is already loaded, so the encoder looks them up in
``sys.modules`` (saving a dict of plain values stays free of their import time and memory).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import io
import json
import re
import secrets
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import chain
from json.encoder import (  # type: ignore[attr-defined]
    c_make_encoder,
    encode_basestring,
    encode_basestring_ascii,
)
from pathlib import Path, PurePath
from typing import Any

try:  # a declared dependency; without it JSON Lines take the stdlib path, with the same text
    import orjson
except ImportError:  # pragma: no cover - exercised by the tests through monkeypatching
    orjson = None  # type: ignore[assignment]

from utils.exceptions import ValidationError

DEFAULT_INDENT = 2
JSONL_BATCH_ROWS = 10_000  # records encoded per write when a page or list is larger
JSONL_SEPARATORS = (",", ":")
# Bare tokens the stdlib writes for non-finite floats; JSON has no such literals.
_NON_FINITE = re.compile(r'"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)')
_KEYS_ERROR = "keys must be"
NANOS_PER_SECOND = 10**9
NANOS_PER_MICRO = 1_000
SECONDS_PER_DAY = 86_400
SECONDS_PER_HOUR = 3_600
SECONDS_PER_MINUTE = 60
DOUBLE_BYTES = 8  # numpy floats narrower than this are written with their shortest digits


def iso_duration(nanoseconds: int) -> str:
    """Return an ISO 8601 duration for a signed number of nanoseconds.

    Example:
        >>> iso_duration(-1_500_000_000)
        '-P0DT0H0M1.5S'
    """
    sign = "-" if nanoseconds < 0 else ""
    seconds, fraction = divmod(abs(nanoseconds), NANOS_PER_SECOND)
    days, seconds = divmod(seconds, SECONDS_PER_DAY)
    hours, seconds = divmod(seconds, SECONDS_PER_HOUR)
    minutes, seconds = divmod(seconds, SECONDS_PER_MINUTE)
    decimals = f".{fraction:09d}".rstrip("0") if fraction else ""
    return f"{sign}P{days}DT{hours}H{minutes}M{seconds}{decimals}S"


def unique_columns(frame: Any, fmt: str) -> None:
    """Raise ``ValidationError`` when a DataFrame repeats a column name ``fmt`` cannot repeat.

    JSON objects and Parquet files hold each column name once; without this check pandas
    would drop all but one of the columns (JSON) or fail with a bare ``ValueError``.
    """
    if not frame.columns.is_unique:
        repeated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
        raise ValidationError(
            f"The DataFrame repeats the column name(s) {repeated}; {fmt} holds each name once.",
            "Rename or drop the repeated columns before saving (or save as .csv or .xlsx).",
            "df = df.loc[:, ~df.columns.duplicated()]",
        )


def frame_records(frame: Any) -> list[dict[Any, Any]]:
    """Return a DataFrame's rows as dicts, one per row (the JSON form of a table).

    Raises:
        ValidationError: A column name is repeated (a JSON object holds each key once).
    """
    unique_columns(frame, "a JSON object")
    records: list[dict[Any, Any]] = frame.to_dict(orient="records")
    return records


class _NoSuchType:
    """Stands for a type whose module is not loaded: nothing is an instance of it."""


def _timedelta_nanos(delta: dt.timedelta) -> int:
    whole = delta.days * SECONDS_PER_DAY + delta.seconds
    return whole * NANOS_PER_SECOND + delta.microseconds * NANOS_PER_MICRO


class _Encoder(json.JSONEncoder):
    """A stdlib encoder (C accelerated) whose ``default`` knows the toolkit's value types.

    A Decimal cannot be emitted as a raw number through ``default``, so it becomes a string
    tagged with a per-encoder random marker, which :meth:`finish` turns back into the bare
    digits. User text cannot carry the marker: it is fresh for every call.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_nan=True, **kwargs)
        self._tag = f"@txo-decimal-{secrets.token_hex(8)}:"
        self._tagged = re.compile('"' + re.escape(self._tag) + r'([^"]*)"')
        self.saw_decimal = False
        # Every value exists before its encoder does, so what is loaded now is all there is.
        self._pd = sys.modules.get("pandas")
        self._np = sys.modules.get("numpy")
        decimal = sys.modules.get("decimal")
        self._decimal: Any = decimal.Decimal if decimal is not None else _NoSuchType
        missing = object()  # stands for NaT and NA when pandas is not loaded
        self._nat = self._pd.NaT if self._pd is not None else missing
        self._na = self._pd.NA if self._pd is not None else missing

    def default(self, o: Any) -> Any:
        # Most frequent types first: this runs once per value the stdlib cannot encode.
        if isinstance(o, (dt.date, dt.time)):  # datetime and pd.Timestamp included
            return None if o is self._nat else o.isoformat()
        if isinstance(o, self._decimal):
            if not o.is_finite():
                return None
            self.saw_decimal = True
            return f"{self._tag}{o}"
        if o is self._na:
            return None
        pd = self._pd
        if isinstance(o, dt.timedelta) and (pd is None or not isinstance(o, pd.Timedelta)):
            return iso_duration(_timedelta_nanos(o))
        np = self._np
        if np is not None and isinstance(o, np.generic):
            return self._numpy_scalar(o, np)
        if np is not None and isinstance(o, np.ndarray):
            return o.tolist()
        if pd is not None:
            if isinstance(o, pd.Timedelta):
                return iso_duration(o.value)
            if isinstance(o, pd.DataFrame):
                return frame_records(o)
            if isinstance(o, (pd.Series, pd.Index)):
                return o.tolist()
        if isinstance(o, (uuid.UUID, PurePath)):
            return str(o)
        if isinstance(o, enum.Enum):
            return o.value
        if isinstance(o, (bytes, bytearray, memoryview)):
            return base64.b64encode(bytes(o)).decode("ascii")
        if isinstance(o, (set, frozenset)):
            try:
                return sorted(o)
            except TypeError:
                return list(o)
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return dataclasses.asdict(o)
        if isinstance(o, Mapping):
            return dict(o)
        return super().default(o)

    @staticmethod
    def _numpy_scalar(o: Any, np: Any) -> Any:
        if isinstance(o, (np.datetime64, np.timedelta64)):
            import pandas as pd  # only for numpy dates, which come from pandas in practice

            value = pd.Timestamp(o) if isinstance(o, np.datetime64) else pd.Timedelta(o)
            if value is pd.NaT:
                return None
            return (
                value.isoformat() if isinstance(value, pd.Timestamp) else iso_duration(value.value)
            )
        if isinstance(o, np.floating):
            # float32's nearest double has noise digits; its shortest repr is what was meant.
            return float(o) if o.dtype.itemsize >= DOUBLE_BYTES else float(str(o))
        return o.item()

    def encode_each(self) -> Callable[[Any], str]:
        """``encode`` for many values in a row: the C encoder is built once, not per value.

        ``JSONEncoder.encode`` builds a new C encoder for every call, a fixed cost that
        dominates for small records; the text is the same. Without the C accelerator (or with
        ``indent``), it is ``encode`` itself.
        """
        if c_make_encoder is None or self.indent is not None:
            return self.encode
        quote = encode_basestring_ascii if self.ensure_ascii else encode_basestring
        make = c_make_encoder(
            {} if self.check_circular else None,
            self.default,
            quote,
            self.indent,
            self.key_separator,
            self.item_separator,
            self.sort_keys,
            self.skipkeys,
            self.allow_nan,
        )
        return lambda value: "".join(make(value, 0))

    def finish(self, text: str) -> str:
        """Turn Decimal markers into bare numbers and non-finite floats into ``null``."""
        if self.saw_decimal:
            text = self._tagged.sub(r"\1", text)
        if "NaN" in text or "Infinity" in text:
            text = _NON_FINITE.sub(lambda m: "null" if m.group(1) else m.group(0), text)
        return text


def _text_key(key: Any) -> Any:
    if key is None or (isinstance(key, (str, int, float, bool)) and not isinstance(key, enum.Enum)):
        return key
    if isinstance(key, (dt.datetime, dt.date, dt.time)):
        return key.isoformat()
    np = sys.modules.get("numpy")
    if np is not None and isinstance(key, np.generic):
        return _text_key(key.item())
    if isinstance(key, enum.Enum):
        return _text_key(key.value)
    return str(key)


def _with_text_keys(obj: Any) -> Any:
    """Copy ``obj`` with every dict key JSON cannot hold turned into text (slow path only)."""
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(obj, pd.DataFrame):
        obj = frame_records(obj)  # its column names become keys, maybe tuples
    if isinstance(obj, Mapping):
        return {_text_key(k): _with_text_keys(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_with_text_keys(v) for v in obj]
    return obj


def _encode_with(encoder: _Encoder, values: Sequence[Any], joiner: str) -> str:
    try:
        try:
            text = joiner.join(map(encoder.encode_each(), values))
        except TypeError as err:
            if _KEYS_ERROR not in str(err):
                raise
            text = joiner.join(encoder.encode(_with_text_keys(v)) for v in values)
    except TypeError as err:
        raise ValidationError(
            f"Cannot write the data as JSON: {err}.",
            "Convert the value to text, a number, a list or a dict before saving, or save "
            "it in another format.",
            'handler.save({"id": str(value)}, "output", "data.json")',
        ) from err
    except (ValueError, RecursionError) as err:
        raise ValidationError(
            f"Cannot write the data as JSON: {err}.",
            "Remove the circular reference (an object that contains itself) before saving.",
        ) from err
    return encoder.finish(text)


def encode(data: Any, **kwargs: Any) -> str:
    """Return ``data`` as JSON text under the module's encoding rules.

    Args:
        data: A dict, list or any value the rules cover.
        **kwargs: ``json.JSONEncoder`` options: ``indent`` (default 2), ``ensure_ascii``
            (default False: UTF-8 text, emoji and CJK kept readable), ``sort_keys``,
            ``separators``.

    Returns:
        The JSON text.

    Raises:
        ValidationError: A value has no JSON form, or the data contains itself.

    Example:
        >>> encode({"amount": Decimal("12.30")}, indent=None)
        '{"amount": 12.30}'
    """
    kwargs.setdefault("indent", DEFAULT_INDENT)
    kwargs.setdefault("ensure_ascii", False)
    return _encode_with(_Encoder(**kwargs), (data,), "")


# -- JSON Lines through orjson, where its text is the stdlib's, byte for byte --------------
_FAST_OPTIONS = (
    (orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATETIME)
    | orjson.OPT_PASSTHROUGH_DATACLASS
    if orjson is not None
    else 0
)
SMALLEST_FIXED = 1e-4
"""Python writes a float below this in size (0 aside) in exponent form (``1e-05``), orjson
not always (``0.00001``); so is one of :data:`LARGEST_FIXED` and above (``1e+16``, ``1e16``).
These are the only floats whose text differs between the two."""
LARGEST_FIXED = 1e16


def _refuse(value: Any) -> Any:
    raise TypeError(type(value).__name__)


def _floats_print_alike(values: Iterable[Any]) -> bool:
    """True when no float in ``values`` (nested in dicts, lists and tuples too) is written in
    exponent form by Python; a NaN or an infinity counts as one (the stdlib path writes it)."""
    nested: list[Iterable[Any]] = []
    for value in values:
        kind = value.__class__
        if kind is float:
            if value and not (
                SMALLEST_FIXED <= value < LARGEST_FIXED or -LARGEST_FIXED < value <= -SMALLEST_FIXED
            ):
                return False
        elif kind is dict:
            nested.append(value.values())
        elif kind is list or kind is tuple:
            nested.append(value)
    return all(map(_floats_print_alike, nested))


def fast_lines(records: Sequence[Any]) -> bytes | None:
    """The UTF-8 JSON Lines of ``records`` from orjson, or None for the stdlib to write.

    What it returns is exactly the encoding of :func:`encode_lines` without options (compact,
    UTF-8 text): orjson and ``json`` write strings, integers up to 64 bits, booleans, None,
    lists and dicts alike, and floats alike except in exponent form. Everything else goes to
    the stdlib and the rules above: a page with a float Python writes in exponent form, NaN
    or infinity, subclasses of the plain types (enums of str or int), datetimes, Decimals,
    numpy and pandas values, dataclasses, keys that are not text, integers beyond 64 bits,
    lone surrogates, nesting deeper than 254.
    """
    if orjson is None or not records:
        return None
    buffer = io.BytesIO()  # each line written as made: a list of 1,000 lines is 6x slower
    write, dumps, options = buffer.write, orjson.dumps, _FAST_OPTIONS
    try:  # first, as it stops at the first value it does not write (a datetime in row 0)
        for record in records:
            write(dumps(record, _refuse, options))
            write(b"\n")
    except TypeError:  # orjson.JSONEncodeError included
        return None
    if set(map(type, records)) == {dict}:  # flat records: one level less to walk
        alike = _floats_print_alike(chain.from_iterable(map(dict.values, records)))
    else:
        alike = _floats_print_alike(records)
    return buffer.getvalue() if alike else None


def _line_encoder(kwargs: dict[str, Any]) -> _Encoder:
    """The encoder of JSON Lines for ``kwargs`` (compact, UTF-8 text, never indented)."""
    if kwargs.get("indent") is not None:
        raise ValidationError(
            "JSON Lines cannot be indented: every record must stay on one line.",
            "Drop indent=, or save to .json for an indented document.",
        )
    kwargs.pop("indent", None)
    kwargs.setdefault("ensure_ascii", False)
    kwargs.setdefault("separators", JSONL_SEPARATORS)
    return _Encoder(**kwargs)


def _lines(encoder: _Encoder, records: Sequence[Any]) -> str:
    text = _encode_with(encoder, records, "\n")
    return text + "\n" if text else text


def encode_lines(records: Sequence[Any], **kwargs: Any) -> str:
    """Return ``records`` as JSON Lines: one compact JSON value per line, each line ended.

    Args:
        records: The values, one per line.
        **kwargs: ``json.JSONEncoder`` options (``ensure_ascii``, ``sort_keys`` ...);
            ``indent`` is not allowed: a JSON Lines value must stay on one line.

    Returns:
        The text, empty when there are no records.

    Raises:
        ValidationError: A value has no JSON form, or ``indent`` was given.
    """
    return _lines(_line_encoder(kwargs), records)


def _is_frame(value: Any) -> bool:
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(value, pd.DataFrame)


def _jsonl_pages(data: Any) -> Iterable[list[Any]]:
    if _is_frame(data):
        data = frame_records(data)
    if isinstance(data, (list, tuple)):
        for start in range(0, len(data), JSONL_BATCH_ROWS):
            yield list(data[start : start + JSONL_BATCH_ROWS])
        return
    loose: list[Any] = []
    for page in data:
        if _is_frame(page):
            page = frame_records(page)
        if isinstance(page, (list, tuple)):
            if loose:
                yield loose
                loose = []
            yield from _jsonl_pages(page)
        else:
            loose.append(page)
            if len(loose) >= JSONL_BATCH_ROWS:
                yield loose
                loose = []
        del page  # not held while the source fetches the next one
    if loose:
        yield loose


def write_jsonl(path: Path, data: list[Any] | Iterator[Any], **kwargs: Any) -> None:
    """Write ``data`` as JSON Lines (UTF-8), one record per line, page by page.

    Args:
        path: The file to create (``TxoDataHandler.save`` passes its temporary file).
        data: A list of records, a DataFrame, or an iterator whose items are pages (a list,
            tuple or DataFrame of records) or single records; only one page is held at a
            time.
        **kwargs: JSON encoder options (``sort_keys``, ``ensure_ascii``, ``separators``).

    Raises:
        ValidationError: A value has no JSON form (the file is left incomplete for the
            caller to discard), or ``indent`` was given.
    """
    fast = not kwargs  # orjson writes the default encoding only (see fast_lines)
    encoder = _line_encoder(kwargs)  # one for the file: its set-up is not per page
    with open(path, "wb") as handle:
        for page in _jsonl_pages(data):
            lines = fast_lines(page) if fast else None
            handle.write(lines if lines is not None else _lines(encoder, page).encode("utf-8"))
            del page, lines  # one page in memory at a time, not two
