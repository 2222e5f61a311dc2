"""Column types for Parquet by name: ``schema={"created": "timestamp[ms, UTC]"}`` in ``save()``.

A type is written as pyarrow prints it, or as one of its aliases: ``string``, ``int64``,
``float64``, ``bool``, ``date32``, ``timestamp[ms]``, ``timestamp[ms, UTC]`` (also
``timestamp[ms, tz=Europe/Amsterdam]``), ``decimal128(18, 2)``, ``decimal(18, 2)`` ... or given
as a ``pyarrow.DataType``. Nothing is guessed: a column not named keeps the type inferred from
its values (text that looks like a date stays text).
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from utils.exceptions import ValidationError

TYPE_EXAMPLES = (
    "string, int64, float64, bool, date32, timestamp[ms], timestamp[ms, UTC], "
    "timestamp[us, Europe/Amsterdam], decimal128(18, 2)"
)
MAP_EXAMPLE = (
    'handler.save(pages, "output", "orders.parquet", '
    'schema={"created": "timestamp[ms, UTC]", "amount": "decimal128(18, 2)"})'
)
WIDEST_DECIMAL_PRECISION = 38  # decimal128's; integers pass through it on their way to a decimal
_TIMESTAMP = re.compile(r"timestamp\[\s*(s|ms|us|ns)\s*(?:,\s*(?:tz\s*=\s*)?([^\]]+?)\s*)?\]")
_DECIMAL = re.compile(r"(decimal|decimal128|decimal256)\(\s*(\d+)\s*,\s*(-?\d+)\s*\)")
_OFFSET = re.compile(r"[+-]\d{2}:\d{2}")


def _bad_type(column: Any, name: Any, detail: str = "") -> ValidationError:
    return ValidationError(
        f"schema= gives column {column!r} the type {name!r}, which is not a Parquet (Arrow) "
        f"type name{detail}.",
        f"Use one of: {TYPE_EXAMPLES} (any pyarrow type alias), or a pyarrow.DataType.",
        MAP_EXAMPLE,
    )


def _time_zone(column: Any, name: str, zone: str) -> str:
    if zone.upper() == "UTC" or _OFFSET.fullmatch(zone):
        return "UTC" if zone.upper() == "UTC" else zone
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise _bad_type(column, name, f" (unknown time zone {zone!r})") from None
    return zone


def arrow_type(column: Any, name: Any) -> pa.DataType:
    """The Arrow type a type name (or a ``pyarrow.DataType``) stands for.

    Raises:
        ValidationError: ``name`` is not a type name; the message names it and lists examples.

    Example:
        >>> arrow_type("created", "timestamp[ms, UTC]")
        TimestampType(timestamp[ms, tz=UTC])
    """
    if isinstance(name, pa.DataType):
        return name
    if not isinstance(name, str):
        raise _bad_type(column, name)
    text = name.strip()
    match = _TIMESTAMP.fullmatch(text)
    if match:
        unit, zone = match.groups()
        return pa.timestamp(unit, _time_zone(column, name, zone) if zone else None)
    match = _DECIMAL.fullmatch(text)
    if match:
        kind, precision, scale = match.group(1), int(match.group(2)), int(match.group(3))
        try:
            if kind == "decimal256":
                return pa.decimal256(precision, scale)
            return pa.decimal128(precision, scale)
        except (ValueError, pa.ArrowInvalid) as err:
            raise _bad_type(column, name, f" ({err})") from None
    try:
        return pa.type_for_alias(text)
    except (ValueError, KeyError):
        raise _bad_type(column, name) from None


def column_types(schema: Mapping[Any, Any]) -> dict[str, pa.DataType]:
    """``{column: type name or DataType}`` → ``{column: DataType}``, every name checked.

    Raises:
        ValidationError: A name is not a type name, or a column name is not text.
    """
    types: dict[str, pa.DataType] = {}
    for column, name in schema.items():
        if not isinstance(column, str):
            raise ValidationError(
                f"schema= has the key {column!r}: column names are text.",
                "Key the schema= map by column name.",
                MAP_EXAMPLE,
            )
        types[column] = arrow_type(column, name)
    return types


def cast_column(column: Any, target: pa.DataType) -> Any:
    """``column`` (an Arrow array or chunked array) cast to ``target``, safely.

    Text is parsed (ISO 8601 for timestamps and dates, digits for decimals); an integer
    column reaches a decimal through the widest decimal, then checked against the precision.

    Raises:
        pyarrow.ArrowInvalid: A value does not convert without loss.
    """
    if pa.types.is_integer(column.type) and pa.types.is_decimal(target):
        column = column.cast(pa.decimal128(WIDEST_DECIMAL_PRECISION, target.scale))
    return column.cast(target)
