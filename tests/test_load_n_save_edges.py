"""Edges a demanding user meets: odd names, encodings, repeated columns, options, messages."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.support_files import every_file
from utils._json_encoding import encode, iso_duration
from utils.exceptions import ApiOperationError, FileOperationError, HelpfulError, ValidationError
from utils.load_n_save import TxoDataHandler, timestamped_filename
from utils.path_helpers import check_path

NAME_BYTES_LIMIT = 255


@pytest.mark.parametrize("ext", [".txt", ".xlsx", ".csv"])
def test_a_long_name_of_multibyte_characters_saves(
    root: Path, handler: TxoDataHandler, ext: str
) -> None:
    name = "中" * 80 + ext  # 240 + bytes: valid, but a naive temporary name would not be
    assert len(name.encode("utf-8")) <= NAME_BYTES_LIMIT
    data = "x" if ext == ".txt" else [{"a": 1}]
    assert handler.save(data, "output", name).name == name
    assert every_file(root) == [f"output/{name}"]


def test_a_rejected_save_creates_no_folder(root: Path, handler: TxoDataHandler) -> None:
    with pytest.raises(ValidationError):
        handler.save(42, "output", "new/sub/x.txt")
    with pytest.raises(FileOperationError):
        handler.save("x", "output", "../x.txt")
    assert list(root.iterdir()) == []


def test_check_path_validates_without_creating(root: Path) -> None:
    assert check_path("output", "a/b.csv") == root / "output" / "a" / "b.csv"
    assert list(root.iterdir()) == []
    with pytest.raises(FileOperationError):
        check_path("nowhere", "b.csv")


@pytest.mark.parametrize(
    ("data", "described"), [(5, "an int"), (None, "None"), (b"x", "a bytes"), (1.5, "a float")]
)
def test_the_rejection_names_the_type_with_its_article(
    root: Path, handler: TxoDataHandler, data: object, described: str
) -> None:
    with pytest.raises(ValidationError, match=f"Cannot save {described} as .txt; .txt accepts"):
        handler.save(data, "output", "x.txt")


def test_a_name_without_extension_says_so(root: Path, handler: TxoDataHandler) -> None:
    with pytest.raises(ValidationError, match="has no extension"):
        handler.save("x", "output", "README")


def test_text_the_encoding_cannot_hold_is_a_validation_error_and_writes_nothing(
    root: Path, handler: TxoDataHandler
) -> None:
    with pytest.raises(ValidationError, match=r"'€' .* latin-1"):
        handler.save("price: 5 €", "output", "p.txt", encoding="latin-1")
    with pytest.raises(ValidationError, match=r"'€' .* latin-1"):
        handler.save([{"price": "5 €"}], "output", "p.csv", encoding="latin-1")
    with pytest.raises(ValidationError, match="codec"):
        handler.save("x", "output", "p.txt", encoding="no-such-codec")
    assert every_file(root) == []
    replaced = handler.save("5 €", "output", "p.txt", encoding="latin-1", errors="replace")
    assert replaced.read_bytes() == b"5 ?"


@pytest.mark.parametrize("ext", [".json", ".jsonl", ".csv", ".txt"])
def test_a_lone_surrogate_is_a_validation_error_that_fits_the_format(
    root: Path, handler: TxoDataHandler, ext: str
) -> None:
    text = "abc\udcff"  # a byte decoded with errors="surrogateescape"
    data: Any = text if ext == ".txt" else {"a": text} if ext == ".json" else [{"a": text}]
    with pytest.raises(ValidationError, match=r"'\\udcff' .* utf-8") as info:
        handler.save(data, "output", f"s{ext}")
    assert every_file(root) == []
    if ext == ".txt":  # only .txt takes errors=
        assert "errors='replace'" in info.value.how_to_fix
    else:
        assert "lone surrogate" in info.value.how_to_fix
        assert "errors=" not in info.value.how_to_fix
        fixed = text.encode("utf-8", "replace").decode("utf-8")  # the example's remedy
        handler.save([{"a": fixed}] if ext != ".json" else {"a": fixed}, "output", f"s{ext}")


@pytest.mark.parametrize(
    ("ext", "option"),
    [(".json", "bogus"), (".jsonl", "bogus"), (".xlsx", "bogus"), (".txt", "bogus")],
)
def test_an_unknown_option_names_what_the_format_takes(
    root: Path, handler: TxoDataHandler, ext: str, option: str
) -> None:
    data = "x" if ext == ".txt" else [{"a": 1}]
    with pytest.raises(ValidationError, match=option) as info:
        handler.save(data, "output", f"x{ext}", **{option: 1})
    assert f"{ext} takes:" in info.value.how_to_fix
    assert every_file(root) == []


def test_a_bad_parquet_option_is_a_validation_error(root: Path, handler: TxoDataHandler) -> None:
    with pytest.raises(ValidationError, match="compression"):
        handler.save(pd.DataFrame({"a": [1]}), "output", "x.parquet", compression="nope")
    assert every_file(root) == []


@pytest.mark.parametrize("ext", [".json", ".jsonl", ".parquet"])
def test_repeated_column_names_are_refused_where_the_format_cannot_hold_them(
    root: Path, handler: TxoDataHandler, ext: str
) -> None:
    frame = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(ValidationError, match=r"repeats the column name\(s\) \['a'\]"):
        handler.save(frame, "output", f"dup{ext}")
    assert every_file(root) == []


def test_repeated_column_names_are_kept_in_csv(root: Path, handler: TxoDataHandler) -> None:
    frame = pd.DataFrame([[1, 2]], columns=["a", "a"])
    assert handler.save(frame, "output", "dup.csv").read_text() == "a,a\n1,2\n"


def test_a_frame_with_tuple_column_names_writes_json_with_text_keys(
    root: Path, handler: TxoDataHandler
) -> None:
    frame = pd.DataFrame([[1, 2]], columns=pd.MultiIndex.from_tuples([("a", "x"), ("a", "y")]))
    path = handler.save(frame, "output", "m.json")
    assert json.loads(path.read_text()) == [{"('a', 'x')": 1, "('a', 'y')": 2}]


@pytest.mark.parametrize("ext", [".csv", ".parquet", ".jsonl"])
def test_a_stream_may_yield_tuples_of_records(
    root: Path, handler: TxoDataHandler, ext: str
) -> None:
    handler.save(iter([({"a": 1},), ({"a": 2}, {"a": 3})]), "output", f"t{ext}")
    if ext == ".csv":
        assert handler.load_csv("output", f"t{ext}")["a"].tolist() == [1, 2, 3]
    elif ext == ".parquet":
        assert handler.load_parquet("output", f"t{ext}")["a"].tolist() == [1, 2, 3]
    else:
        assert handler.load_json("output", f"t{ext}") == [{"a": 1}, {"a": 2}, {"a": 3}]


def test_loading_a_column_the_parquet_file_lacks_lists_its_columns(
    root: Path, handler: TxoDataHandler
) -> None:
    handler.save(pd.DataFrame({"id": [1], "name": ["x"]}), "output", "c.parquet")
    with pytest.raises(ValidationError, match="file's columns: id, name"):
        handler.load_parquet("output", "c.parquet", columns=["nope"])


def test_excel_reserved_sheet_name_history_is_renamed(root: Path, handler: TxoDataHandler) -> None:
    handler.save({"History": pd.DataFrame({"a": [1]})}, "output", "h.xlsx")
    assert list(handler.load_excel("output", "h.xlsx", sheet_name=None)) == ["History~2"]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (np.float32(0.1), "0.1"),
        (np.float16(0.1), "0.1"),
        (np.float32(1e-8), "1e-08"),
        (dt.timedelta(seconds=-1), '"-P0DT0H0M1S"'),
        (dt.timedelta(days=1, microseconds=500), '"P1DT0H0M0.0005S"'),
        (pd.Timedelta(nanoseconds=1), '"P0DT0H0M0.000000001S"'),
        (np.timedelta64(-90, "s"), '"-P0DT0H1M30S"'),
    ],
)
def test_json_numbers_and_durations(value: object, text: str) -> None:
    assert encode(value, indent=None) == text


def test_iso_duration_matches_pandas_for_positive_values() -> None:
    for delta in (pd.Timedelta(days=400, seconds=3723, microseconds=120), pd.Timedelta(0)):
        assert iso_duration(delta.value) == delta.isoformat()


@pytest.mark.parametrize("ext", ["..csv", ".csv", "csv"])
def test_timestamped_filename_takes_any_leading_dots(root: Path, ext: str) -> None:
    name = timestamped_filename(
        {"_org_id": "acme", "_env_type": "prod"}, "x", ext, now=dt.datetime(2024, 1, 2, 3, 4)
    )
    assert name == "acme-prod-x_2024-01-02T0304Z.csv"


def test_timestamped_filename_falls_back_to_plain_org_and_env_keys(root: Path) -> None:
    name = timestamped_filename(
        {"org_id": "acme", "env_type": "test"}, "x", "csv", now=dt.datetime(2024, 1, 2, 3, 4)
    )
    assert name == "acme-test-x_2024-01-02T0304Z.csv"


def test_repr_of_an_error_shows_its_parts() -> None:
    assert repr(HelpfulError("w", "h")) == "HelpfulError('w', 'h')"
    assert repr(ApiOperationError("w", "h", "e", 500)) == "ApiOperationError('w', 'h', 'e')"


def test_parquet_stream_with_a_schema_keeps_its_types(root: Path, handler: TxoDataHandler) -> None:
    import pyarrow as pa

    schema = pa.schema([("id", pa.int32()), ("note", pa.string())])
    path = handler.save(
        iter([[{"id": 1}], [{"id": 2, "note": "x"}]]), "output", "s.parquet", schema=schema
    )
    assert pq.read_schema(path).types == [pa.int32(), pa.string()]


def test_load_excel_takes_a_list_of_sheets_and_names_a_missing_one(
    root: Path, handler: TxoDataHandler
) -> None:
    handler.save({"A": pd.DataFrame({"a": [1]}), "B": pd.DataFrame({"b": [2]})}, "output", "b.xlsx")
    both = handler.load_excel("output", "b.xlsx", sheet_name=[0, "B"])
    assert isinstance(both, dict) and list(both) == [0, "B"]
    with pytest.raises(ValidationError, match="no sheet 'Z'; its sheets are: A, B"):
        handler.load_excel("output", "b.xlsx", sheet_name=["A", "Z"])
    with pytest.raises(ValidationError, match="no sheet True"):
        handler.load_excel("output", "b.xlsx", sheet_name=True)  # type: ignore[arg-type]


def test_load_excel_with_a_bad_option_says_so_not_that_the_file_is_corrupt(
    root: Path, handler: TxoDataHandler
) -> None:
    handler.save([{"a": 1}], "output", "o.xlsx")
    with pytest.raises(ValidationError, match="Check the options") as info:
        handler.load_excel("output", "o.xlsx", usecols=["nope"])
    assert "not a valid Excel file" not in str(info.value)


def test_exists_and_loads_create_no_folder(root: Path, handler: TxoDataHandler) -> None:
    assert handler.exists("data", "in.csv") is False
    with pytest.raises(FileOperationError, match="not found"):
        handler.load_csv("data", "in.csv")
    assert list(root.iterdir()) == []
