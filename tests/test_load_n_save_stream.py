"""Streams of pages to CSV, Parquet and JSON Lines: batching, schema drift, bad pages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from utils import _record_streams
from utils.exceptions import ValidationError
from utils.load_n_save import TxoDataHandler


def pages(*batches: Any) -> Iterator[Any]:
    yield from batches


def numbered(count: int, size: int, **extra: Any) -> Iterator[list[dict[str, Any]]]:
    for page in range(count):
        yield [{"id": page * size + i, **extra} for i in range(size)]


def visible(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "output").iterdir())


# --- Parquet -------------------------------------------------------------------------------


def test_parquet_stream_writes_one_row_group_per_batch(root: Path, handler: TxoDataHandler) -> None:
    path = handler.save(numbered(10, 100), "output", "s.parquet", row_group_size=250)
    file = pq.ParquetFile(path)
    assert file.metadata.num_rows == 1000
    assert [file.metadata.row_group(i).num_rows for i in range(file.num_row_groups)] == [
        300,
        300,
        300,
        100,
    ]
    assert pq.read_table(path)["id"].to_pylist() == list(range(1000))


def test_parquet_stream_of_single_dicts_and_frames_keeps_order(
    root: Path, handler: TxoDataHandler
) -> None:
    data = pages({"id": 0}, {"id": 1}, pd.DataFrame({"id": [2, 3]}), [{"id": 4}], [], {"id": 5})
    path = handler.save(data, "output", "mix.parquet")
    assert pq.read_table(path)["id"].to_pylist() == [0, 1, 2, 3, 4, 5]


def test_parquet_column_null_in_the_first_page_takes_a_later_pages_type(
    root: Path, handler: TxoDataHandler
) -> None:
    data = pages([{"id": 1, "note": None}], [{"id": 2, "note": "late"}])
    path = handler.save(data, "output", "n.parquet")
    table = pq.read_table(path)
    assert table.schema.field("note").type == pa.string()
    assert table["note"].to_pylist() == [None, "late"]


def test_parquet_later_page_missing_a_column_gets_nulls(
    root: Path, handler: TxoDataHandler
) -> None:
    data = pages([{"id": 1, "note": "a"}], [{"id": 2}])
    path = handler.save(data, "output", "m.parquet", row_group_size=1)
    assert pq.read_table(path).to_pylist() == [{"id": 1, "note": "a"}, {"id": 2, "note": None}]


def test_parquet_later_page_with_a_new_column_is_rejected_and_nothing_is_written(
    root: Path, handler: TxoDataHandler
) -> None:
    data = pages([{"id": 1}], [{"id": 2, "surprise": "x"}])
    with pytest.raises(ValidationError) as info:
        handler.save(data, "output", "c.parquet", row_group_size=1)
    assert info.value.what_went_wrong == (
        "The rows from row 1 have column(s) ['surprise'] that the first rows of the Parquet "
        "file did not have; the columns are fixed by the first batch of rows."
    )
    assert "schema=" in info.value.how_to_fix
    assert visible(root) == []


def test_parquet_incompatible_type_after_the_first_row_group_names_the_column(
    root: Path, handler: TxoDataHandler
) -> None:
    data = pages([{"id": 1}], [{"id": 2.0}], [{"id": 2.5}])
    with pytest.raises(ValidationError) as info:
        handler.save(data, "output", "t.parquet", row_group_size=1)
    assert info.value.what_went_wrong.startswith(
        "Column 'id' in the rows from row 2 holds double values that do not convert to the "
        "file's int64"
    )
    assert visible(root) == []


def test_parquet_types_are_promoted_within_the_first_row_group(
    root: Path, handler: TxoDataHandler
) -> None:
    path = handler.save(pages([{"v": 1}], [{"v": 2.5}]), "output", "p.parquet")
    assert pq.read_table(path)["v"].to_pylist() == [1.0, 2.5]


def test_parquet_schema_kwarg_fixes_the_columns_up_front(
    root: Path, handler: TxoDataHandler
) -> None:
    schema = pa.schema([("id", pa.int32()), ("note", pa.string())])
    data = pages([{"id": 1}], [{"note": "x", "id": 2}])
    path = handler.save(data, "output", "s.parquet", schema=schema, row_group_size=1)
    table = pq.read_table(path)
    assert table.schema.equals(schema, check_metadata=False)
    assert table.to_pylist() == [{"id": 1, "note": None}, {"id": 2, "note": "x"}]


def test_parquet_empty_stream_writes_an_empty_file_with_the_schema_when_given(
    root: Path, handler: TxoDataHandler
) -> None:
    path = handler.save(iter([]), "output", "e.parquet")
    assert pq.read_table(path).num_rows == 0
    schema = pa.schema([("id", pa.int64())])
    path = handler.save(iter([[]]), "output", "e2.parquet", schema=schema)
    assert pq.read_table(path).schema.equals(schema, check_metadata=False)


def test_parquet_integer_beyond_64_bits_is_a_validation_error(
    root: Path, handler: TxoDataHandler
) -> None:
    with pytest.raises(ValidationError, match="Cannot convert the rows from row 0 to Parquet"):
        handler.save([{"n": 2**64}], "output", "big.parquet")
    assert visible(root) == []


def test_parquet_list_with_a_schema(root: Path, handler: TxoDataHandler) -> None:
    schema = pa.schema([("id", pa.int16())])
    path = handler.save([{"id": 1}], "output", "l.parquet", schema=schema)
    assert pq.read_table(path).schema.field("id").type == pa.int16()


# --- CSV -----------------------------------------------------------------------------------


@pytest.fixture
def small_csv_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_record_streams, "CSV_BATCH_ROWS", 3)


def test_csv_stream_writes_the_header_once_and_every_row(
    root: Path, handler: TxoDataHandler, small_csv_batches: None
) -> None:
    path = handler.save(numbered(5, 2, name="n"), "output", "s.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == "id,name"
    assert lines[1:] == [f"{i},n" for i in range(10)]


def test_csv_stream_mixes_dicts_lists_and_frames_in_order(
    root: Path, handler: TxoDataHandler, small_csv_batches: None
) -> None:
    data = pages({"a": 1}, pd.DataFrame({"a": [2, 3]}), [{"a": 4}], {"a": 5}, {"a": 6}, {"a": 7})
    path = handler.save(data, "output", "m.csv")
    assert path.read_text() == "a\n1\n2\n3\n4\n5\n6\n7\n"


def test_csv_later_batch_missing_a_column_gets_empty_cells(
    root: Path, handler: TxoDataHandler, small_csv_batches: None
) -> None:
    data = pages([{"a": 1, "b": "x"}] * 3, [{"a": 2}])
    assert handler.save(data, "output", "g.csv").read_text() == "a,b\n1,x\n1,x\n1,x\n2,\n"


def test_csv_later_batch_with_a_new_column_is_rejected(
    root: Path, handler: TxoDataHandler, small_csv_batches: None
) -> None:
    data = pages([{"a": 1}] * 3, [{"a": 2, "b": 3}])
    with pytest.raises(ValidationError, match=r"from row 3 have column\(s\) \['b'\]"):
        handler.save(data, "output", "n.csv")
    assert visible(root) == []


def test_csv_columns_are_united_within_the_first_batch(root: Path, handler: TxoDataHandler) -> None:
    data = pages([{"a": 1}], [{"b": 2}])
    assert handler.save(data, "output", "u.csv").read_text() == "a,b\n1,\n,2\n"


def test_csv_empty_stream_writes_an_empty_file(root: Path, handler: TxoDataHandler) -> None:
    assert handler.save(iter([]), "output", "e.csv").read_bytes() == b""


def test_csv_header_false_is_honoured_for_streams(
    root: Path, handler: TxoDataHandler, small_csv_batches: None
) -> None:
    path = handler.save(numbered(3, 2), "output", "h.csv", header=False)
    assert path.read_text() == "0\n1\n2\n3\n4\n5\n"


# --- bad pages -----------------------------------------------------------------------------


@pytest.mark.parametrize("ext", [".csv", ".parquet"])
@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("text", "Page 2 of the stream is a str."),
        ([{"a": 1}, 5], "Item 1 of page 2 of the stream is a int, not a dict"),
    ],
)
def test_a_bad_page_is_a_validation_error_naming_it(
    root: Path, handler: TxoDataHandler, ext: str, bad: object, message: str
) -> None:
    with pytest.raises(ValidationError) as info:
        handler.save(pages([{"a": 0}], bad), "output", f"bad{ext}")
    assert info.value.what_went_wrong.startswith(message)
    assert visible(root) == []


def test_csv_columns_kwarg_picks_orders_and_heads_an_empty_stream(
    root: Path, handler: TxoDataHandler, small_csv_batches: None
) -> None:
    data = pages([{"a": 1, "b": 2, "c": 3}] * 3, [{"a": 4, "extra": 5}])
    path = handler.save(data, "output", "c.csv", columns=["c", "a"])
    assert path.read_text() == "c,a\n3,1\n3,1\n3,1\n,4\n"
    assert handler.save(iter([]), "output", "e.csv", columns=["x", "y"]).read_text() == "x,y\n"
    assert handler.save([], "output", "l.csv", columns=["x"]).read_text() == "x\n"


def test_csv_header_aliases_are_written_once(
    root: Path, handler: TxoDataHandler, small_csv_batches: None
) -> None:
    path = handler.save(numbered(2, 2), "output", "a.csv", header=["Identifier"])
    assert path.read_text() == "Identifier\n0\n1\n2\n3\n"


def test_csv_keeps_whole_numbers_whole_and_fractions_as_written(
    root: Path, handler: TxoDataHandler
) -> None:
    data = [{"n": 7, "x": 1.5}, {"n": None, "x": None}, {"n": 2**40, "x": 2.0}]
    assert handler.save(data, "output", "w.csv").read_text() == (
        "n,x\n7,1.5\n,\n1099511627776,2.0\n"
    )


# --- Parquet column types by name (schema= map) ----------------------------------------------
def orders() -> Iterator[list[dict[str, Any]]]:
    yield [{"id": 1, "created": "2024-03-05T12:34:56.789Z", "amount": 12.3, "due": "2024-04-01"}]
    yield [{"id": 2, "created": None, "amount": 7, "due": "2024-05-01"}]


def test_parquet_schema_map_types_the_named_columns_and_guesses_nothing_else(
    root: Path, handler: TxoDataHandler
) -> None:
    types = {"created": "timestamp[ms, UTC]", "amount": "decimal128(18, 2)"}
    path = handler.save(orders(), "output", "o.parquet", schema=types)
    table = pq.read_table(path)
    assert table.schema.field("created").type == pa.timestamp("ms", tz="UTC")
    assert table.schema.field("amount").type == pa.decimal128(18, 2)
    assert table.schema.field("due").type == pa.string()  # looks like a date, stays text
    assert table.schema.field("id").type == pa.int64()
    rows = table.to_pylist()
    assert [str(r["amount"]) for r in rows] == ["12.30", "7.00"]
    assert rows[0]["created"].isoformat() == "2024-03-05T12:34:56.789000+00:00"
    assert rows[1]["created"] is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("timestamp[us, tz=Europe/Amsterdam]", pa.timestamp("us", tz="Europe/Amsterdam")),
        ("timestamp[ns]", pa.timestamp("ns")),
        ("decimal(10, 3)", pa.decimal128(10, 3)),
        ("decimal256(40,2)", pa.decimal256(40, 2)),
        ("date32", pa.date32()),
        ("float32", pa.float32()),
        (pa.large_string(), pa.large_string()),
    ],
)
def test_parquet_schema_map_takes_type_names_and_pyarrow_types(
    root: Path, handler: TxoDataHandler, name: Any, expected: pa.DataType
) -> None:
    value = "2024-03-05" if expected == pa.date32() else "2024-03-05T00:00:00"
    if pa.types.is_decimal(expected) or pa.types.is_floating(expected):
        value = "1.5"
    if pa.types.is_timestamp(expected) and expected.tz:
        value = "2024-03-05T00:00:00Z"
    path = handler.save([{"v": value}], "output", "t.parquet", schema={"v": name})
    assert pq.read_schema(path).field("v").type == expected


@pytest.mark.parametrize("bad", ["timestamp[minutes]", "datetime", "timestamp[ms, Mars/Base]", 5])
def test_parquet_schema_map_with_an_unknown_type_names_it_and_lists_examples(
    root: Path, handler: TxoDataHandler, bad: Any
) -> None:
    with pytest.raises(ValidationError) as info:
        handler.save(orders(), "output", "bad.parquet", schema={"created": bad})
    assert f"the type {bad!r}" in info.value.what_went_wrong
    assert "timestamp[ms, UTC]" in info.value.how_to_fix
    assert "decimal128(18, 2)" in info.value.how_to_fix
    assert visible(root) == []


def test_parquet_schema_map_naming_a_missing_column_is_rejected(
    root: Path, handler: TxoDataHandler
) -> None:
    with pytest.raises(ValidationError, match=r"names column\(s\) \['creatd'\]"):
        handler.save(orders(), "output", "m.parquet", schema={"creatd": "timestamp[ms, UTC]"})
    assert visible(root) == []


def test_parquet_schema_map_value_that_does_not_convert_names_the_column(
    root: Path, handler: TxoDataHandler
) -> None:
    data = pages([{"when": "2024-01-01T00:00:00Z"}], [{"when": "next tuesday"}])
    with pytest.raises(ValidationError, match=r"Column 'when' in the rows from row 1 holds string"):
        handler.save(data, "output", "w.parquet", schema={"when": "timestamp[ms, UTC]"})
    assert visible(root) == []


def test_parquet_schema_map_applies_to_lists_and_dataframes(
    root: Path, handler: TxoDataHandler
) -> None:
    rows = [{"id": 1, "created": "2024-01-02T03:04:05Z"}]
    types = {"created": "timestamp[ms, UTC]"}
    for data, name in ((rows, "l.parquet"), (pd.DataFrame(rows), "f.parquet")):
        path = handler.save(data, "output", name, schema=types)
        assert pq.read_schema(path).field("created").type == pa.timestamp("ms", tz="UTC")
    assert handler.load_parquet("output", "f.parquet")["id"].tolist() == [1]


# --- CSV of records: the csv module, pandas' text ----------------------------------------------
AWKWARD = [
    {"id": 1, "name": "Zoë, \"the\" first", "note": "two\nlines", "ok": True, "x": 1.5},
    {"id": 2, "name": "", "note": None, "ok": False, "x": 2.25, "tags": ["a", "b"]},
    {"id": 3, "name": "semi;colon", "ok": None, "x": None, "big": 2**70, "d": Decimal("1.10")},
    {"id": 4, "name": "nan", "note": "NaT", "x": float("nan"), "when": dt.date(2024, 1, 2)},
]


@pytest.mark.parametrize("sep", [",", ";"])
@pytest.mark.parametrize("page_size", [1, 2, 4])
def test_csv_of_records_is_the_text_pandas_writes(
    root: Path, handler: TxoDataHandler, sep: str, page_size: int
) -> None:
    chunks = [AWKWARD[i : i + page_size] for i in range(0, len(AWKWARD), page_size)]
    path = handler.save(iter(chunks), "output", "r.csv", sep=sep)
    expected = pd.DataFrame(AWKWARD).to_csv(index=False, sep=sep)
    assert path.read_text(encoding="utf-8") == expected
    assert handler.save(list(AWKWARD), "output", "l.csv", sep=sep).read_text() == expected


def test_csv_of_records_writes_each_number_as_python_writes_it(
    root: Path, handler: TxoDataHandler
) -> None:
    # pandas would make the column float64 (100.0) and, with a gap, Int64 (2): value by value,
    # an int stays an int and a float keeps its point, whatever the other rows hold.
    data = [{"amount": 100, "rate": 2.0}, {"amount": 12.5, "rate": None}]
    path = handler.save(iter([data]), "output", "n.csv")
    assert path.read_text() == "amount,rate\n100,2.0\n12.5,\n"


def test_csv_first_batch_pads_rows_written_before_a_column_appeared(
    root: Path, handler: TxoDataHandler, small_csv_batches: None
) -> None:
    data = pages([{"a": "x,y"}], [{"a": "z", "b": 1}], [{"a": "w", "b": 2}], [{"a": "v"}])
    assert handler.save(data, "output", "p.csv").read_text() == (
        'a,b\n"x,y",\nz,1\nw,2\nv,\n'
    )
