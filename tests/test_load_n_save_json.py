"""JSON encoding rules: every value type a script holds, written as valid, exact JSON."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import uuid
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
import pytest

from utils._json_encoding import encode, encode_lines
from utils.exceptions import ValidationError


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    y: Decimal


AMSTERDAM_SUMMER = dt.timezone(dt.timedelta(hours=2))

VALUES = [
    (Decimal("12345678901234567890.123456789"), "12345678901234567890.123456789"),
    (Decimal("0.10"), "0.10"),
    (Decimal("-0"), "-0"),
    (Decimal("1E+3"), "1E+3"),
    (Decimal("1.5E-7"), "1.5E-7"),
    (Decimal("NaN"), "null"),
    (Decimal("-Infinity"), "null"),
    (dt.datetime(2024, 3, 5, 14, 7, 9), '"2024-03-05T14:07:09"'),
    (dt.datetime(2024, 3, 5, 14, 7, tzinfo=AMSTERDAM_SUMMER), '"2024-03-05T14:07:00+02:00"'),
    (dt.date(2024, 2, 29), '"2024-02-29"'),
    (dt.time(23, 59, 1), '"23:59:01"'),
    (dt.timedelta(days=1, hours=2), '"P1DT2H0M0S"'),
    (pd.Timestamp("2024-01-01 10:00", tz="UTC"), '"2024-01-01T10:00:00+00:00"'),
    (pd.Timestamp("2024-01-01 10:00:00.000000001"), '"2024-01-01T10:00:00.000000001"'),
    (np.datetime64("2024-01-01T10:00"), '"2024-01-01T10:00:00"'),
    (np.datetime64("NaT"), "null"),
    (np.timedelta64(90, "s"), '"P0DT0H1M30S"'),
    (pd.NaT, "null"),
    (pd.NA, "null"),
    (None, "null"),
    (float("nan"), "null"),
    (float("inf"), "null"),
    (float("-inf"), "null"),
    (np.float64("nan"), "null"),
    (np.float32(1.5), "1.5"),
    (np.float32("nan"), "null"),
    (np.int64(2**63 - 1), "9223372036854775807"),
    (np.uint64(2**64 - 1), "18446744073709551615"),
    (2**100, "1267650600228229401496703205376"),
    (np.bool_(True), "true"),
    (np.array([[1, 2], [3, 4]]), "[[1, 2], [3, 4]]"),
    ({3, 1, 2}, "[1, 2, 3]"),
    (frozenset({"b", "a"}), '["a", "b"]'),
    (uuid.UUID("12345678-1234-5678-1234-567812345678"), '"12345678-1234-5678-1234-567812345678"'),
    (PurePosixPath("out/report.csv"), '"out/report.csv"'),
    (Colour.RED, '"red"'),
    (b"\x00\xffhi", '"AP9oaQ=="'),
    (Point(1, Decimal("2.50")), '{"x": 1, "y": 2.50}'),
    (pd.Series([1, None]), "[1.0, NaN]".replace("NaN", "null")),
    (pd.DataFrame({"a": [1], "b": ["x"]}), '[{"a": 1, "b": "x"}]'),
    ("NaN and Infinity in text", '"NaN and Infinity in text"'),
    ("😀 中文 עברית", '"😀 中文 עברית"'),
]


@pytest.mark.parametrize(("value", "expected"), VALUES, ids=[repr(v)[:40] for v, _ in VALUES])
def test_value_encoding(value: Any, expected: str) -> None:
    text = encode(value, indent=None)
    assert text == expected
    json.loads(text)  # always valid JSON


def test_mixed_set_falls_back_to_insertion_order() -> None:
    assert sorted(json.loads(encode({1, "a"}, indent=None)), key=str) == [1, "a"]


def test_keys_json_cannot_hold_become_text() -> None:
    data = {
        dt.date(2024, 1, 1): 1,
        Decimal("1.5"): 2,
        np.int64(7): 3,
        ("a", 1): 4,
        Colour.RED: 5,
        "nested": {pd.Timestamp("2024-01-01"): [{dt.time(8, 0): 1}]},
    }
    assert json.loads(encode(data)) == {
        "2024-01-01": 1,
        "1.5": 2,
        "7": 3,
        "('a', 1)": 4,
        "red": 5,
        "nested": {"2024-01-01T00:00:00": [{"08:00:00": 1}]},
    }


def test_nan_inside_nested_structures_and_strings() -> None:
    data = {"x": [float("nan"), {"y": "NaN"}, '"NaN"', "Infinity\\"], "z": -float("inf")}
    assert json.loads(encode(data)) == {"x": [None, {"y": "NaN"}, '"NaN"', "Infinity\\"], "z": None}


def test_a_string_that_looks_like_a_decimal_marker_stays_text() -> None:
    value = "@txo-decimal-0000000000000000:1.5"
    assert json.loads(encode({"a": value, "b": Decimal("1.5")})) == {"a": value, "b": 1.5}


def test_default_is_indented_utf8() -> None:
    assert encode({"a": "é"}) == '{\n  "a": "é"\n}'


def test_unencodable_value_is_a_validation_error_naming_the_type() -> None:
    with pytest.raises(ValidationError, match="Object of type object is not JSON serializable"):
        encode({"a": object()})


def test_circular_data_is_a_validation_error() -> None:
    data: dict[str, Any] = {}
    data["self"] = data
    with pytest.raises(ValidationError, match="circular reference"):
        encode(data)


def test_json_lines_are_compact_one_per_line() -> None:
    text = encode_lines([{"a": Decimal("1.0"), "b": [1, 2]}, {"a": None}])
    assert text == '{"a":1.0,"b":[1,2]}\n{"a":null}\n'


def test_json_lines_refuse_indent() -> None:
    with pytest.raises(ValidationError, match="cannot be indented"):
        encode_lines([{"a": 1}], indent=2)


def test_json_lines_with_text_keys_slow_path() -> None:
    assert encode_lines([{dt.date(2024, 1, 1): 1}, {"b": 2}]) == '{"2024-01-01":1}\n{"b":2}\n'
