"""JSON text for the data a batch script holds: Decimal, datetimes, numpy and pandas values.

Encoding rules (used by ``TxoDataHandler.save`` for ``.json`` and ``.jsonl``):

- ``Decimal`` → a JSON number with its exact digits (``Decimal("0.10")`` → ``0.10``), never a
  float and never a string; a non-finite Decimal → ``null``.
- ``datetime`` / ``date`` / ``time`` (``pd.Timestamp`` included) → ISO 8601 text, with the
  offset when the value is timezone-aware; ``timedelta`` → ISO 8601 duration (``P1DT2H0M0S``).
- numpy integers, floats, booleans and arrays → their Python equivalents.
- ``None``, ``NaN``, ``±inf``, ``pd.NaT``, ``pd.NA`` → ``null`` (JSON has no NaN).
- ``set`` / ``frozenset`` → a list, sorted when the items can be compared.
- ``UUID`` and paths → text; ``Enum`` → its value; ``bytes`` → base64 text; dataclasses →
  objects; a ``DataFrame`` → a list of row objects; a ``Series`` → a list.
- dict keys that JSON cannot hold (dates, Decimals, tuples ...) → text.

Anything else is a :class:`~utils.exceptions.ValidationError` naming the type.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import json
import re
import secrets
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import PurePath
from typing import Any

import numpy as np
import pandas as pd

from utils.exceptions import ValidationError

DEFAULT_INDENT = 2
JSONL_SEPARATORS = (",", ":")
# Bare tokens the stdlib writes for non-finite floats; JSON has no such literals.
_NON_FINITE = re.compile(r'"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)')
_KEYS_ERROR = "keys must be"


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

    def default(self, o: Any) -> Any:
        # Most frequent types first: this runs once per value the stdlib cannot encode.
        if isinstance(o, (dt.date, dt.time)):  # datetime and pd.Timestamp included
            return None if o is pd.NaT else o.isoformat()
        if isinstance(o, Decimal):
            if not o.is_finite():
                return None
            self.saw_decimal = True
            return f"{self._tag}{o}"
        if o is pd.NA:
            return None
        if isinstance(o, (dt.timedelta, np.timedelta64)):
            delta = pd.Timedelta(o)
            return None if delta is pd.NaT else delta.isoformat()
        if isinstance(o, np.datetime64):
            stamp = pd.Timestamp(o)
            return None if stamp is pd.NaT else stamp.isoformat()
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, pd.DataFrame):
            return o.to_dict(orient="records")
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
    if isinstance(key, np.generic):
        return _text_key(key.item())
    if isinstance(key, enum.Enum):
        return _text_key(key.value)
    return str(key)


def _with_text_keys(obj: Any) -> Any:
    """Copy ``obj`` with every dict key JSON cannot hold turned into text (slow path only)."""
    if isinstance(obj, Mapping):
        return {_text_key(k): _with_text_keys(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_with_text_keys(v) for v in obj]
    return obj


def _encode_with(encoder: _Encoder, values: Sequence[Any], joiner: str) -> str:
    try:
        try:
            text = joiner.join(encoder.encode(v) for v in values)
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
    if kwargs.get("indent") is not None:
        raise ValidationError(
            "JSON Lines cannot be indented: every record must stay on one line.",
            "Drop indent=, or save to .json for an indented document.",
        )
    kwargs.pop("indent", None)
    kwargs.setdefault("ensure_ascii", False)
    kwargs.setdefault("separators", JSONL_SEPARATORS)
    text = _encode_with(_Encoder(**kwargs), records, "\n")
    return text + "\n" if text else text
