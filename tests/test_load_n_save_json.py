"""JSON encoding rules: every value type a script holds, written as valid, exact JSON."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import random
import struct
import uuid
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
import pytest

from utils import _json_encoding as json_encoding
from utils._json_encoding import encode, encode_lines, fast_lines
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


# -- JSON Lines through orjson: the stdlib's text, byte for byte, or the stdlib itself -------
def stdlib_lines(records: list[Any]) -> bytes:
    return encode_lines(records).encode("utf-8")


def random_value(rng: random.Random, depth: int = 0) -> Any:
    """A value of the plain JSON types, floats of every magnitude and awkward text included."""
    kind = rng.randrange(9)
    if kind == 0:
        return rng.random() * 10.0 ** rng.randint(-12, 20) * rng.choice((1, -1))
    if kind == 1:  # any bit pattern: subnormals, huge values, NaN, infinities
        return struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0]
    if kind == 2:
        return rng.randint(-(2**63), 2**64 - 1)
    if kind == 3:
        points = (rng.randint(0, 0x7F), rng.randint(0x80, 0xD7FF), rng.randint(0xE000, 0x10FFFF))
        return "".join(chr(rng.choice(points)) for _ in range(rng.randint(0, 8)))
    if kind == 4:
        return str(uuid.UUID(int=rng.getrandbits(128)))
    if kind == 5 and depth < 3:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if kind == 6 and depth < 3:
        return {f"k{i}": random_value(rng, depth + 1) for i in range(rng.randint(0, 3))}
    edge = (None, True, False, 0.0, -0.0, 1e-4, -1e-4, 1e16, 9999999999999998.0, (1, 2.5))
    return rng.choice(edge) if kind == 7 else rng.random()


@pytest.mark.parametrize("seed", range(4))
def test_fast_json_lines_are_the_stdlib_text_or_left_to_it(seed: int) -> None:
    rng = random.Random(seed)
    fast = 0
    for _ in range(500):
        page: list[Any] = [
            {f"f{i}": random_value(rng) for i in range(rng.randint(0, 6))}
            for _ in range(rng.randint(1, 5))
        ]
        if rng.random() < 0.3:  # records need not be objects
            page = [random_value(rng) for _ in range(3)]
        text = fast_lines(page)
        if text is not None:
            fast += 1
            assert text == stdlib_lines(page), page
    assert fast > 100  # the fast path is taken, not only the fallback


@pytest.mark.parametrize(
    "value",
    [
        1e-05,
        -2.5e-07,
        1e16,
        -1.5e300,
        float("nan"),
        float("inf"),
        2**64,
        -(2**63) - 1,
        Decimal("1.10"),
        dt.datetime(2024, 1, 1, 8, 0),
        dt.date(2024, 1, 1),
        np.float64(1.5),
        np.int64(3),
        Point(1, Decimal("2")),
        "\ud800",
        {1: "int key"},
        [[[1e-9]]],
    ],
    ids=repr,
)
def test_fast_json_lines_leave_what_orjson_writes_otherwise_to_the_stdlib(value: Any) -> None:
    page = [{"id": 1, "v": 0.5}, {"id": 2, "v": value}]
    assert fast_lines(page) is None
    assert fast_lines([{"id": 1, "v": 0.5}, {"id": 2, "v": "x"}]) is not None


def test_fast_json_lines_write_an_enum_and_a_uuid_as_the_stdlib_rules_do() -> None:
    page = [{"colour": Colour.RED, "id": uuid.UUID(int=5)}]
    assert fast_lines(page) == stdlib_lines(page) == b'{"colour":"red","id":"%s"}\n' % (
        str(uuid.UUID(int=5)).encode()
    )


def test_deep_nesting_beyond_orjson_is_left_to_the_stdlib() -> None:
    deep: Any = 1
    for _ in range(300):
        deep = [deep]
    assert fast_lines([deep]) is None
    assert encode_lines([deep]) == "[" * 300 + "1" + "]" * 300 + "\n"


def test_saved_json_lines_are_the_same_with_and_without_orjson(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(11)
    pages = [
        [{f"f{i}": random_value(rng) for i in range(5)} for _ in range(50)] for _ in range(20)
    ]
    pages[3].append({"when": dt.datetime(2024, 1, 1), "amount": Decimal("1.10")})
    json_encoding.write_jsonl(tmp_path / "fast.jsonl", iter(pages))
    monkeypatch.setattr(json_encoding, "orjson", None)
    json_encoding.write_jsonl(tmp_path / "stdlib.jsonl", iter(pages))
    fast = (tmp_path / "fast.jsonl").read_bytes()
    assert fast == (tmp_path / "stdlib.jsonl").read_bytes()
    assert fast.count(b"\n") == 1001
