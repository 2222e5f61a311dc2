"""TxoDataHandler: round trips of every format, every rejection, loads, file names."""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import subprocess
import sys
import textwrap
import time
import tracemalloc
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.support_files import every_file
from utils import run_stats
from utils.exceptions import ConfigurationError, FileOperationError, ValidationError
from utils.load_n_save import ACCEPTED, TxoDataHandler, timestamped_filename
from utils.path_helpers import PROJECT_ROOT

BIG_DECIMAL = Decimal("12345678901234567890.123456789")
INT64_MAX = 2**63 - 1
UNICODE = ["😀 emoji", "中文 CJK", "עברית RTL", "e\u0301 combining"]


def sample_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "zeta": [3, 1, INT64_MAX, 4],
            "text": UNICODE,
            "amount": [1.5, float("nan"), -2.25, 0.0],
            "when": pd.to_datetime(
                ["2024-01-01 08:00:00", "2024-02-29 23:59:59", None, "1999-12-31 00:00:00"]
            ),
            "alpha": [True, False, True, False],
        }
    )


# --- round trips -------------------------------------------------------------------------


def test_json_round_trip_keeps_decimal_digits_dates_nulls_unicode_big_ints_and_key_order(
    root: Path, handler: TxoDataHandler
) -> None:
    data = {
        "z_first": 1,
        "amount": BIG_DECIMAL,
        "when": dt.datetime(2024, 3, 5, 14, 7, 9, 123456, tzinfo=dt.timezone.utc),
        "day": dt.date(2024, 2, 29),
        "missing": None,
        "nan": float("nan"),
        "nat": pd.NaT,
        "int64_max": INT64_MAX,
        "beyond_int64": 2**100,
        "texts": UNICODE,
        "a_last": [{"b": 2, "a": 1}],
    }
    path = handler.save(data, "output", "data.json")

    text = path.read_text(encoding="utf-8")
    assert '"amount": 12345678901234567890.123456789,' in text
    assert "😀 emoji" in text  # UTF-8, not \\u escapes
    loaded = handler.load_json("output", "data.json", parse_float=Decimal)
    assert loaded == {
        "z_first": 1,
        "amount": BIG_DECIMAL,
        "when": "2024-03-05T14:07:09.123456+00:00",
        "day": "2024-02-29",
        "missing": None,
        "nan": None,
        "nat": None,
        "int64_max": INT64_MAX,
        "beyond_int64": 2**100,
        "texts": UNICODE,
        "a_last": [{"b": 2, "a": 1}],
    }
    assert list(loaded) == list(data)
    assert list(loaded["a_last"][0]) == ["b", "a"]


def test_json_from_a_dataframe_is_a_list_of_row_objects(
    root: Path, handler: TxoDataHandler
) -> None:
    handler.save(sample_frame(), "output", "rows.json")
    rows = handler.load_json("output", "rows.json")
    assert rows[1] == {
        "zeta": 1,
        "text": "中文 CJK",
        "amount": None,
        "when": "2024-02-29T23:59:59",
        "alpha": False,
    }
    assert rows[2]["when"] is None
    assert rows[2]["zeta"] == INT64_MAX


@pytest.mark.parametrize("data", [[], {}])
def test_json_empty_containers(root: Path, handler: TxoDataHandler, data: object) -> None:
    handler.save(data, "output", "empty.json")
    assert handler.load_json("output", "empty.json") == data


def test_jsonl_round_trip_of_a_list(root: Path, handler: TxoDataHandler) -> None:
    records = [{"id": i, "v": BIG_DECIMAL, "t": UNICODE[i % 4]} for i in range(5)]
    path = handler.save(records, "output", "rows.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 5
    assert lines[0] == '{"id":0,"v":12345678901234567890.123456789,"t":"😀 emoji"}'
    assert handler.load_json("output", "rows.jsonl", parse_float=Decimal) == records


def test_jsonl_streams_pages_single_records_and_dataframes_in_order(
    root: Path, handler: TxoDataHandler
) -> None:
    def pages():
        yield [{"id": 1}, {"id": 2}]
        yield {"id": 3}
        yield pd.DataFrame({"id": [4, 5]})
        yield []
        yield {"id": 6}

    handler.save(pages(), "output", "stream.jsonl")
    assert handler.load_json("output", "stream.jsonl") == [{"id": i} for i in range(1, 7)]


@pytest.mark.parametrize("data", [[], iter([])])
def test_jsonl_empty_data_writes_an_empty_file(
    root: Path, handler: TxoDataHandler, data: object
) -> None:
    path = handler.save(data, "output", "empty.jsonl")
    assert path.read_bytes() == b""
    assert handler.load_json("output", "empty.jsonl") == []


def test_csv_round_trip_keeps_columns_unicode_big_ints_and_decimal_digits(
    root: Path, handler: TxoDataHandler
) -> None:
    frame = sample_frame()
    frame["exact"] = [BIG_DECIMAL, Decimal("0.10"), None, Decimal("-1E+3")]
    path = handler.save(frame, "output", "report.csv")

    assert path.read_text(encoding="utf-8").splitlines()[0] == "zeta,text,amount,when,alpha,exact"
    loaded = handler.load_csv("output", "report.csv", dtype={"exact": str}, parse_dates=["when"])
    assert list(loaded.columns) == list(frame.columns)
    assert loaded["zeta"].tolist() == [3, 1, INT64_MAX, 4]
    assert loaded["text"].tolist() == UNICODE
    assert loaded["exact"].tolist()[:2] == ["12345678901234567890.123456789", "0.10"]
    assert pd.isna(loaded["exact"][2])
    assert pd.isna(loaded["amount"][1])
    assert loaded["when"].tolist()[:2] == [
        pd.Timestamp("2024-01-01 08:00"),
        pd.Timestamp("2024-02-29 23:59:59"),
    ]
    assert pd.isna(loaded["when"][2])


def test_csv_from_a_list_of_dicts_unites_keys_in_first_seen_order(
    root: Path, handler: TxoDataHandler
) -> None:
    path = handler.save([{"b": 1, "a": "x"}, {"a": "y", "c": 3}], "output", "rows.csv")
    assert path.read_text(encoding="utf-8") == "b,a,c\n1,x,\n,y,3\n"


def test_csv_empty_frame_writes_the_header_and_empty_list_an_empty_file(
    root: Path, handler: TxoDataHandler
) -> None:
    assert handler.save(pd.DataFrame(columns=["a", "b"]), "output", "h.csv").read_text() == "a,b\n"
    assert handler.save([], "output", "e.csv").read_bytes() == b""
    assert handler.load_csv("output", "e.csv").empty


def test_parquet_round_trip_keeps_types_decimals_timezones_and_unicode(
    root: Path, handler: TxoDataHandler
) -> None:
    frame = sample_frame()
    frame["exact"] = [BIG_DECIMAL, Decimal("0.1"), None, Decimal("-1000")]
    frame["aware"] = pd.to_datetime(["2024-06-01 12:00"] * 4).tz_localize("Europe/Amsterdam")
    handler.save(frame, "output", "report.parquet")

    loaded = handler.load_parquet("output", "report.parquet")
    assert list(loaded.columns) == list(frame.columns)
    assert loaded["exact"].tolist()[0] == BIG_DECIMAL
    assert str(loaded["aware"].dt.tz) == "Europe/Amsterdam"
    assert loaded["zeta"].tolist() == [3, 1, INT64_MAX, 4]
    assert loaded["text"].tolist() == UNICODE
    pd.testing.assert_frame_equal(loaded.drop(columns=["exact"]), frame.drop(columns=["exact"]))


def test_parquet_from_a_list_of_dicts_keeps_integers_with_nulls_as_integers(
    root: Path, handler: TxoDataHandler
) -> None:
    path = handler.save([{"id": 1, "n": None}, {"id": 2, "n": 5, "late": "x"}], "data", "r.parquet")
    table = pq.read_table(path)
    assert table.column_names == ["id", "n", "late"]
    assert str(table.schema.field("n").type) == "int64"
    assert table.to_pylist() == [
        {"id": 1, "n": None, "late": None},
        {"id": 2, "n": 5, "late": "x"},
    ]


def test_parquet_column_mixing_types_is_a_validation_error(
    root: Path, handler: TxoDataHandler
) -> None:
    with pytest.raises(ValidationError) as info:
        handler.save(pd.DataFrame({"mixed": [1, "one"]}), "output", "m.parquet")
    assert info.value.what_went_wrong.startswith("Cannot convert the rows from row 0 to Parquet")
    assert every_file(root) == []


def test_parquet_empty_frame_keeps_its_columns(root: Path, handler: TxoDataHandler) -> None:
    handler.save(pd.DataFrame({"a": pd.Series([], dtype="int64")}), "output", "e.parquet")
    loaded = handler.load_parquet("output", "e.parquet")
    assert list(loaded.columns) == ["a"]
    assert len(loaded) == 0


def test_xlsx_round_trip_of_a_frame(root: Path, handler: TxoDataHandler) -> None:
    frame = sample_frame()
    handler.save(frame, "output", "report.xlsx")
    loaded = handler.load_excel("output", "report.xlsx", dtype={"zeta": str})
    assert list(loaded.columns) == list(frame.columns)
    # Beyond 15 digits an integer is written as text so no digit is lost.
    assert loaded["zeta"].tolist() == ["3", "1", str(INT64_MAX), "4"]
    assert loaded["text"].tolist() == UNICODE
    assert loaded["when"].tolist()[:2] == frame["when"].tolist()[:2]
    assert pd.isna(loaded["when"][2]) and pd.isna(loaded["amount"][1])
    assert loaded["alpha"].tolist() == [True, False, True, False]


def test_xlsx_dict_of_frames_writes_one_sheet_each_and_loads_back_by_name(
    root: Path, handler: TxoDataHandler
) -> None:
    sheets = {"customers": pd.DataFrame({"id": [1, 2]}), "orders": [{"n": "a"}, {"n": "b"}]}
    handler.save(sheets, "output", "book.xlsx")
    everything = handler.load_excel("output", "book.xlsx", sheet_name=None)
    assert list(everything) == ["customers", "orders"]
    assert everything["orders"]["n"].tolist() == ["a", "b"]
    assert handler.load_excel("output", "book.xlsx")["id"].tolist() == [1, 2]
    assert handler.load_excel("output", "book.xlsx", sheet_name=1)["n"].tolist() == ["a", "b"]
    assert handler.load_excel("output", "book.xlsx", sheet_name="orders").shape == (2, 1)


def test_xlsx_empty_frame_writes_the_header(root: Path, handler: TxoDataHandler) -> None:
    handler.save(pd.DataFrame(columns=["a", "b"]), "output", "empty.xlsx")
    loaded = handler.load_excel("output", "empty.xlsx")
    assert list(loaded.columns) == ["a", "b"] and loaded.empty


def test_xlsx_empty_dict_writes_one_empty_sheet(root: Path, handler: TxoDataHandler) -> None:
    handler.save({}, "output", "none.xlsx")
    assert list(handler.load_excel("output", "none.xlsx", sheet_name=None)) == ["Sheet1"]


@pytest.mark.parametrize("text", ["", "line 1\r\nline 2\n😀 中文 עברית\n", "no newline"])
def test_txt_is_written_exactly(root: Path, handler: TxoDataHandler, text: str) -> None:
    path = handler.save(text, "output", "notes.txt")
    assert path.read_bytes() == text.encode("utf-8")


def test_extension_is_case_insensitive_and_the_name_is_kept(
    root: Path, handler: TxoDataHandler
) -> None:
    path = handler.save([{"a": 1}], "output", "Report.CSV")
    assert path == root / "output" / "Report.CSV"
    assert path.read_text() == "a\n1\n"


def test_sub_folders_in_the_file_name_are_created(root: Path, handler: TxoDataHandler) -> None:
    path = handler.save("x", "output", "2024/03/notes.txt")
    assert path == root / "output" / "2024" / "03" / "notes.txt"
    assert handler.exists("output", "2024/03/notes.txt")


# --- kwargs reach the writer -------------------------------------------------------------


def test_csv_kwargs_override_the_defaults(root: Path, handler: TxoDataHandler) -> None:
    frame = pd.DataFrame({"a": [1, 2]}, index=["x", "y"])
    path = handler.save(frame, "output", "k.csv", sep=";", index=True, encoding="utf-8-sig")
    assert path.read_bytes() == "\ufeff;a\nx;1\ny;2\n".encode()


def test_json_kwargs_reach_the_encoder(root: Path, handler: TxoDataHandler) -> None:
    path = handler.save({"b": 1, "a": "é"}, "output", "k.json", indent=None, sort_keys=True)
    assert path.read_text(encoding="utf-8") == '{"a": "é", "b": 1}'
    path = handler.save({"a": "é"}, "output", "k.json", indent=None, ensure_ascii=True)
    assert path.read_text() == '{"a": "\\u00e9"}'


def test_parquet_kwargs_reach_pyarrow(root: Path, handler: TxoDataHandler) -> None:
    path = handler.save(pd.DataFrame({"a": range(10)}), "output", "k.parquet", compression="gzip")
    assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "GZIP"


def test_xlsx_sheet_name_kwarg(root: Path, handler: TxoDataHandler) -> None:
    handler.save(pd.DataFrame({"a": [1]}), "output", "k.xlsx", sheet_name="Data")
    assert list(handler.load_excel("output", "k.xlsx", sheet_name=None)) == ["Data"]


def test_xlsx_sheet_name_kwarg_with_a_dict_is_rejected(root: Path, handler: TxoDataHandler) -> None:
    with pytest.raises(ValidationError, match="dict's keys name its sheets"):
        handler.save({"a": pd.DataFrame()}, "output", "k.xlsx", sheet_name="Data")
    assert every_file(root) == []


# --- counting and logging ----------------------------------------------------------------


def test_each_file_written_is_counted_and_logged_with_its_size(
    root: Path, handler: TxoDataHandler, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="utils.load_n_save")
    handler.save("hello", "output", "a.txt")
    handler.save([{"a": 1}], "output", "b.csv")
    with pytest.raises(ValidationError):
        handler.save("hello", "output", "c.csv")
    assert run_stats.get(run_stats.FILES_WRITTEN) == 2
    messages = [r.getMessage() for r in caplog.records if r.name == "utils.load_n_save"]
    assert messages == [
        f"Saved {root / 'output' / 'a.txt'} (5 B)",
        f"Saved {root / 'output' / 'b.csv'} (4 B)",
    ]


# --- rejections: nothing is written ------------------------------------------------------

WRONG_TYPES = [
    (".json", "text"),
    (".json", 42),
    (".json", iter([{"a": 1}])),
    (".json", {1, 2}),
    (".jsonl", {"a": 1}),
    (".jsonl", "text"),
    (".jsonl", 3.5),
    (".csv", {"a": [1, 2]}),
    (".csv", "a,b\n1,2\n"),
    (".csv", [1, 2, 3]),
    (".csv", [{"a": 1}, "b"]),
    (".csv", None),
    (".parquet", {"a": [1]}),
    (".parquet", "text"),
    (".parquet", [[1, 2]]),
    (".xlsx", "text"),
    (".xlsx", iter([[{"a": 1}]])),
    (".xlsx", {"sheet": {"a": 1}}),
    (".xlsx", {"sheet": [1, 2]}),
    (".xlsx", [1]),
    (".txt", {"a": 1}),
    (".txt", ["line"]),
    (".txt", b"bytes"),
    (".txt", pd.DataFrame({"a": [1]})),
]


@pytest.mark.parametrize(("ext", "data"), WRONG_TYPES)
def test_wrong_data_type_is_rejected_naming_what_is_accepted_and_nothing_is_written(
    root: Path, handler: TxoDataHandler, ext: str, data: object
) -> None:
    with pytest.raises(ValidationError) as info:
        handler.save(data, "output", f"sub/out{ext}")
    message = info.value.what_went_wrong
    assert ACCEPTED[ext] in message or "not a dict" in message
    assert every_file(root) == []
    assert run_stats.get(run_stats.FILES_WRITTEN) == 0


def test_the_accepted_types_are_named_in_the_message(root: Path, handler: TxoDataHandler) -> None:
    with pytest.raises(ValidationError) as info:
        handler.save("text", "output", "out.parquet")
    assert info.value.what_went_wrong == (
        "Cannot save a str as .parquet; .parquet accepts a DataFrame, a list of dicts, "
        "or an iterator of pages (streamed)."
    )


@pytest.mark.parametrize("filename", ["report.xls", "report.docx", "report", "report.csv.bak"])
def test_unknown_extension_is_rejected_listing_the_supported_ones(
    root: Path, handler: TxoDataHandler, filename: str
) -> None:
    with pytest.raises(ValidationError) as info:
        handler.save([{"a": 1}], "output", filename)
    assert info.value.how_to_fix == (
        "Name the file with one of: .json, .jsonl, .csv, .parquet, .xlsx, .txt."
    )
    assert every_file(root) == []


@pytest.mark.parametrize(
    "filename", ["../escape.csv", "a/../../escape.csv", "/tmp/absolute.csv", "sub/../../../x.csv"]
)
def test_escaping_or_absolute_names_are_rejected_and_nothing_is_written(
    root: Path, handler: TxoDataHandler, filename: str
) -> None:
    before = set(Path("/tmp").iterdir())
    with pytest.raises(FileOperationError):
        handler.save([{"a": 1}], "output", filename)
    assert every_file(root) == []
    assert set(Path("/tmp").iterdir()) == before
    assert run_stats.get(run_stats.FILES_WRITTEN) == 0


def test_unknown_category_is_rejected(root: Path, handler: TxoDataHandler) -> None:
    with pytest.raises(FileOperationError, match="Unknown folder category"):
        handler.save([{"a": 1}], "secrets", "x.csv")
    assert every_file(root) == []


# --- loads ---------------------------------------------------------------------------------


def test_missing_file_names_the_folder_lists_it_and_guesses(
    root: Path, handler: TxoDataHandler
) -> None:
    handler.save("x", "output", "customers.txt")
    handler.save([{"a": 1}], "output", "customers.csv")
    with pytest.raises(FileOperationError) as info:
        handler.load_csv("output", "customer.csv")
    error = info.value
    assert error.what_went_wrong == f"File 'customer.csv' not found in {root / 'output'}."
    assert "It holds: customers.csv, customers.txt." in error.how_to_fix
    assert error.example == 'handler.load_csv("output", "customers.csv")'


def test_missing_file_in_an_empty_folder(root: Path, handler: TxoDataHandler) -> None:
    with pytest.raises(FileOperationError) as info:
        handler.load_json("data", "nothing.json")
    assert "It is empty or missing." in info.value.how_to_fix


def test_listing_is_capped(root: Path, handler: TxoDataHandler) -> None:
    for i in range(13):
        handler.save("x", "tmp", f"f{i:02}.txt")
    with pytest.raises(FileOperationError) as info:
        handler.load_parquet("tmp", "zzz.parquet")
    assert "f09.txt (and 3 more)." in info.value.how_to_fix


def test_corrupt_json_is_a_validation_error_with_line_and_column(
    root: Path, handler: TxoDataHandler
) -> None:
    (root / "data").mkdir()
    (root / "data" / "bad.json").write_text('{\n  "a": 1,\n  "b": oops\n}\n')
    with pytest.raises(ValidationError) as info:
        handler.load_json("data", "bad.json")
    assert info.value.what_went_wrong == (
        f"{root / 'data' / 'bad.json'} is not valid JSON: Expecting value at line 3, column 8."
    )


def test_corrupt_json_lines_name_the_line(root: Path, handler: TxoDataHandler) -> None:
    (root / "data").mkdir()
    (root / "data" / "bad.jsonl").write_text('{"a": 1}\n\n{"a": oops}\n')
    with pytest.raises(ValidationError) as info:
        handler.load_json("data", "bad.jsonl")
    assert info.value.what_went_wrong.endswith("Expecting value at line 3, column 7.")


def test_json_with_a_byte_order_mark_loads(root: Path, handler: TxoDataHandler) -> None:
    (root / "data").mkdir()
    (root / "data" / "bom.json").write_bytes(b'\xef\xbb\xbf{"a": 1}')
    assert handler.load_json("data", "bom.json") == {"a": 1}


@pytest.mark.parametrize(
    ("method", "name", "content"),
    [
        ("load_parquet", "bad.parquet", b"not parquet at all"),
        ("load_excel", "bad.xlsx", b"not a zip file"),
        ("load_csv", "bad.csv", b"a,b\n1,2,3,4\n\xff\xfe"),
    ],
)
def test_corrupt_files_are_validation_errors(
    root: Path, handler: TxoDataHandler, method: str, name: str, content: bytes
) -> None:
    (root / "data").mkdir()
    (root / "data" / name).write_bytes(content)
    with pytest.raises(ValidationError) as info:
        getattr(handler, method)("data", name)
    assert info.value.what_went_wrong.startswith(f"{root / 'data' / name} is not a valid")


def test_missing_sheet_lists_the_sheets(root: Path, handler: TxoDataHandler) -> None:
    handler.save({"a": pd.DataFrame({"x": [1]}), "b": pd.DataFrame()}, "output", "s.xlsx")
    with pytest.raises(ValidationError) as info:
        handler.load_excel("output", "s.xlsx", sheet_name="c")
    assert "its sheets are: a, b." in info.value.what_went_wrong
    with pytest.raises(ValidationError):
        handler.load_excel("output", "s.xlsx", sheet_name=2)


def test_exists(root: Path, handler: TxoDataHandler) -> None:
    assert not handler.exists("output", "sub/a.txt")
    handler.save("x", "output", "sub/a.txt")
    assert handler.exists("output", "sub/a.txt")
    assert not handler.exists("output", "sub")  # a folder is not a file
    with pytest.raises(FileOperationError):
        handler.exists("output", "../config/x.json")


# --- timestamped_filename ----------------------------------------------------------------

CONFIG = {"_org_id": "acme", "_env_type": "prod"}
MINUTE = dt.datetime(2024, 3, 5, 14, 7, 59, tzinfo=dt.timezone.utc)
FIRST = "acme-prod-customers_2024-03-05T1407Z.xlsx"


@pytest.mark.parametrize("ext", ["xlsx", ".xlsx"])
def test_timestamped_filename_with_an_injected_time(root: Path, ext: str) -> None:
    assert timestamped_filename(CONFIG, "customers", ext, now=MINUTE) == FIRST


def test_timestamped_filename_converts_to_utc(root: Path) -> None:
    tz = dt.timezone(dt.timedelta(hours=-5))
    now = dt.datetime(2024, 12, 31, 22, 30, tzinfo=tz)
    assert timestamped_filename(CONFIG, "r", "csv", now=now) == "acme-prod-r_2025-01-01T0330Z.csv"


def test_timestamped_filename_defaults_to_utc_now(root: Path) -> None:
    before = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)
    name = timestamped_filename(CONFIG, "r", "json")
    after = dt.datetime.now(dt.timezone.utc)
    stamp = dt.datetime.strptime(name, "acme-prod-r_%Y-%m-%dT%H%MZ.json")
    assert before <= stamp.replace(tzinfo=dt.timezone.utc) <= after


def test_timestamped_filename_needs_the_injected_keys(root: Path) -> None:
    with pytest.raises(ConfigurationError, match="_org_id/_env_type"):
        timestamped_filename({"global": {}}, "r", "csv")


@pytest.mark.parametrize(("name", "ext"), [("", "csv"), ("a/b", "csv"), ("r", ""), ("r", ".")])
def test_timestamped_filename_rejects_bad_parts(root: Path, name: str, ext: str) -> None:
    with pytest.raises(ValidationError):
        timestamped_filename(CONFIG, name, ext)
    assert every_file(root) == []


def test_a_name_returned_twice_in_one_run_gets_a_suffix(root: Path) -> None:
    names = [timestamped_filename(CONFIG, "customers", "xlsx", now=MINUTE) for _ in range(3)]
    assert names == [FIRST, FIRST.replace(".xlsx", "_2.xlsx"), FIRST.replace(".xlsx", "_3.xlsx")]
    # Another extension or name is another file: no suffix.
    assert timestamped_filename(CONFIG, "customers", "csv", now=MINUTE) == FIRST[:-4] + "csv"


def test_a_file_an_earlier_run_wrote_is_never_named_again(
    root: Path, handler: TxoDataHandler
) -> None:
    handler.save([{"run": 1}], "output", FIRST)
    handler.save([{"run": 2}], "output", FIRST.replace(".xlsx", "_2.xlsx"))
    assert timestamped_filename(CONFIG, "customers", "xlsx", now=MINUTE) == FIRST.replace(
        ".xlsx", "_3.xlsx"
    )


def test_the_name_is_reserved_in_the_directory_given(root: Path, handler: TxoDataHandler) -> None:
    handler.save("earlier", "data", "acme-prod-notes_2024-03-05T1407Z.txt")
    assert timestamped_filename(CONFIG, "notes", "txt", now=MINUTE, directory="output") == (
        "acme-prod-notes_2024-03-05T1407Z.txt"
    )
    assert timestamped_filename(CONFIG, "notes", "txt", now=MINUTE, directory="data") == (
        "acme-prod-notes_2024-03-05T1407Z_2.txt"
    )
    with pytest.raises(FileOperationError, match="Unknown folder category"):
        timestamped_filename(CONFIG, "notes", "txt", directory="outputs")


def test_a_name_that_cannot_be_reserved_is_a_file_operation_error(root: Path) -> None:
    with pytest.raises(FileOperationError, match="Cannot reserve the output name"):
        timestamped_filename(CONFIG, "x" * 300, "csv")


RESERVING_RUN = textwrap.dedent(
    """
    import datetime as dt, os, sys, time
    from pathlib import Path
    from utils import path_helpers
    path_helpers.PROJECT_ROOT = Path(sys.argv[1])
    from utils.load_n_save import TxoDataHandler, timestamped_filename

    config = {"_org_id": "acme", "_env_type": "prod"}
    now = dt.datetime(2024, 3, 5, 14, 7, tzinfo=dt.timezone.utc)
    go = Path(sys.argv[1]) / "go"
    while not go.exists():  # every process is up before any asks: a real race
        time.sleep(0.005)
    name = timestamped_filename(config, "customers", "xlsx", now=now)
    print(name, flush=True)
    if sys.argv[2] == "save":
        TxoDataHandler().save([{"pid": os.getpid()}], "output", name)
    elif sys.argv[2] == "hang":
        time.sleep(60)
    """
)


def start_run(root: Path, mode: str) -> subprocess.Popen[str]:
    """A separate Python process that asks for the name (and saves, or hangs) in ``root``."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", RESERVING_RUN, str(root), mode],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


PROCESSES = 6


def test_runs_starting_in_the_same_minute_each_keep_their_own_file(tmp_path: Path) -> None:
    runs = [start_run(tmp_path, "save") for _ in range(PROCESSES)]
    (tmp_path / "go").touch()
    names = []
    for run in runs:
        out, _ = run.communicate(timeout=60)
        assert run.returncode == 0
        names.append((out.strip(), run.pid))
    expected = [FIRST] + [FIRST.replace(".xlsx", f"_{n}.xlsx") for n in range(2, PROCESSES + 1)]
    assert sorted(name for name, _ in names) == sorted(expected)
    for name, pid in names:  # each file holds what its own process wrote
        written = pd.read_excel(tmp_path / "output" / name)
        assert written["pid"].tolist() == [pid]
    # Every reservation went with its process: only the reports are left.
    assert sorted(p.name for p in (tmp_path / "output").iterdir()) == sorted(expected)


def test_a_run_that_saved_nothing_leaves_no_trace(tmp_path: Path) -> None:
    (tmp_path / "go").touch()
    first = start_run(tmp_path, "name-only")
    assert first.communicate(timeout=60)[0].strip() == FIRST and first.returncode == 0
    assert list((tmp_path / "output").iterdir()) == []
    second = start_run(tmp_path, "name-only")
    assert second.communicate(timeout=60)[0].strip() == FIRST  # no file: the name is free


def test_a_killed_run_leaves_a_hidden_reservation_that_only_moves_the_next_name_on(
    tmp_path: Path,
) -> None:
    (tmp_path / "go").touch()
    hung = start_run(tmp_path, "hang")
    assert hung.stdout is not None and hung.stdout.readline().strip() == FIRST
    hung.kill()  # SIGKILL: no exit handler runs
    hung.wait(timeout=30)
    hung.stdout.close()
    marker = tmp_path / "output" / f".{FIRST}.reserved"
    assert [p.name for p in (tmp_path / "output").iterdir()] == [marker.name]
    assert f"process {hung.pid} " in marker.read_text()
    later = start_run(tmp_path, "name-only")
    assert later.communicate(timeout=60)[0].strip() == FIRST.replace(".xlsx", "_2.xlsx")
    # A day later the stale reservation is swept and the unused name is free again.
    day_old = time.time() - 24 * 3600 - 60
    os.utime(marker, (day_old, day_old))
    after = start_run(tmp_path, "name-only")
    assert after.communicate(timeout=60)[0].strip() == FIRST
    assert list((tmp_path / "output").iterdir()) == []


def test_loading_a_missing_file_does_not_list_reservations(
    root: Path, handler: TxoDataHandler
) -> None:
    name = timestamped_filename(CONFIG, "customers", "xlsx", now=MINUTE)
    handler.save([{"a": 1}], "output", "other.csv")
    with pytest.raises(FileOperationError) as caught:
        handler.load_excel("output", name)
    assert "It holds: other.csv." in caught.value.how_to_fix


def test_json_text_is_valid_json_for_a_standard_parser(root: Path, handler: TxoDataHandler) -> None:
    path = handler.save({"n": float("inf"), "d": Decimal("1E+3")}, "output", "v.json")
    assert json.loads(path.read_text()) == {"n": None, "d": 1000.0}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_leaves_its_parents_reservations_alone(root: Path) -> None:
    from utils import _output_names

    name = timestamped_filename(CONFIG, "customers", "xlsx", now=MINUTE)
    marker = root / "output" / f".{name}.reserved"
    pid = os.fork()
    if pid == 0:  # the child ends as a child running the exit handlers would
        _output_names.release_all()
        os._exit(0)
    os.waitpid(pid, 0)
    assert marker.exists()
    _output_names.release_all()
    assert not marker.exists()


# ==== contract_save: DESIGN §3 contract of saving and loading: every extension against every kind of data.
#
# Written from the contract, not from the implementation: ``save()`` picks the format from the
# extension, checks it against the data (a mismatch is a ``ValidationError`` naming the accepted
# types, and nothing is written), encodes JSON exactly, streams iterators of pages, and loads
# everything back. Atomicity, paths and errors are in ``test_load_n_save_atomic.py``.
REPO = Path(__file__).resolve().parent.parent
ROWS = [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Lin"}]
FRAME_COLUMNS = ["id", "name"]


def strict_json(text: str) -> Any:
    """Parse ``text`` as standard JSON: NaN and Infinity are not JSON."""

    def refuse(token: str) -> Any:
        raise AssertionError(f"bare {token} in the JSON text")

    return json.loads(text, parse_constant=refuse)


def pages_of(rows: int, size: int, frames: bool = False) -> Iterator[Any]:
    for start in range(0, rows, size):
        page = [{"id": i, "name": f"n{i}"} for i in range(start, min(start + size, rows))]
        yield pd.DataFrame(page) if frames else page


# --- what each extension accepts ----------------------------------------------------------

ACCEPTED_CASES: list[tuple[str, Callable[[], Any]]] = [
    (".json", lambda: {"a": 1}),
    (".json", lambda: [1, "two", None]),
    (".jsonl", lambda: list(ROWS)),
    (".jsonl", lambda: pages_of(5, 2)),
    (".csv", lambda: pd.DataFrame(ROWS)),
    (".csv", lambda: list(ROWS)),
    (".csv", lambda: pages_of(5, 2)),
    (".csv", lambda: pages_of(5, 2, frames=True)),
    (".parquet", lambda: pd.DataFrame(ROWS)),
    (".parquet", lambda: list(ROWS)),
    (".parquet", lambda: pages_of(5, 2)),
    (".parquet", lambda: pages_of(5, 2, frames=True)),
    (".xlsx", lambda: pd.DataFrame(ROWS)),
    (".xlsx", lambda: list(ROWS)),
    (".xlsx", lambda: {"One": pd.DataFrame(ROWS), "Two": pd.DataFrame(ROWS)}),
    (".txt", lambda: "hello\n"),
]


@pytest.mark.parametrize(("ext", "make"), ACCEPTED_CASES)
def test_each_accepted_type_is_written_and_counted(
    root: Path, handler: TxoDataHandler, ext: str, make: Callable[[], Any]
) -> None:
    path = handler.save(make(), "output", f"data{ext}")
    assert path == root / "output" / f"data{ext}"
    assert path.is_file() and path.stat().st_size > 0
    assert every_file(root) == [f"output/data{ext}"]
    assert run_stats.get(run_stats.FILES_WRITTEN) == 1


# What the ValidationError must name, per extension, so the user knows what fits.
MUST_NAME = {
    ".json": ("dict", "list"),
    ".jsonl": ("list", "iterator"),
    ".csv": ("DataFrame", "list of dicts", "iterator"),
    ".parquet": ("DataFrame", "list of dicts", "iterator"),
    ".xlsx": ("DataFrame", "list of dicts", "dict of DataFrames"),
    ".txt": ("str",),
}

REJECTED_CASES: list[tuple[str, Callable[[], Any]]] = [
    (".json", lambda: "text"),
    (".json", lambda: 42),
    (".json", lambda: None),
    (".json", lambda: b"bytes"),
    (".json", lambda: pages_of(2, 1)),
    (".jsonl", lambda: {"a": 1}),
    (".jsonl", lambda: "text"),
    (".jsonl", lambda: 42),
    (".csv", lambda: {"a": [1, 2]}),
    (".csv", lambda: "a,b\n1,2\n"),
    (".csv", lambda: [1, 2, 3]),
    (".csv", lambda: [{"a": 1}, "not a row"]),
    (".csv", lambda: None),
    (".parquet", lambda: {"a": [1, 2]}),
    (".parquet", lambda: [[1, 2], [3, 4]]),
    (".parquet", lambda: b"PAR1"),
    (".xlsx", lambda: pages_of(2, 1)),
    (".xlsx", lambda: {"Sheet": 5}),
    (".xlsx", lambda: {"Sheet": "text"}),
    (".xlsx", lambda: {"Good": pd.DataFrame(ROWS), "Bad": [1, 2]}),
    (".xlsx", lambda: "text"),
    (".xlsx", lambda: pd.Series([1, 2])),
    (".txt", lambda: b"bytes"),
    (".txt", lambda: ["a", "b"]),
    (".txt", lambda: {"a": 1}),
    (".txt", lambda: 3.5),
    (".txt", lambda: None),
]


@pytest.mark.parametrize(("ext", "make"), REJECTED_CASES)
def test_a_mismatch_is_a_validation_error_naming_the_accepted_types_and_writes_nothing(
    root: Path, handler: TxoDataHandler, ext: str, make: Callable[[], Any]
) -> None:
    with pytest.raises(ValidationError) as info:
        handler.save(make(), "output", f"data{ext}")
    message = str(info.value)
    for accepted in MUST_NAME[ext]:
        assert accepted in message
    assert every_file(root) == []
    assert run_stats.get(run_stats.FILES_WRITTEN) == 0


@pytest.mark.parametrize("name", ["DATA.CSV", "Data.Csv", "data.JSON", "x.XLSX", "x.Parquet"])
def test_the_extension_is_recognised_in_any_case_and_the_name_kept(
    root: Path, handler: TxoDataHandler, name: str
) -> None:
    path = handler.save(list(ROWS), "output", name)
    assert path.name == name
    assert every_file(root) == [f"output/{name}"]


@pytest.mark.parametrize("name", ["noextension", "data.xml", "data.json.gz", "data.", ".csv"])
def test_a_missing_or_unknown_extension_is_a_validation_error_listing_the_known_ones(
    root: Path, handler: TxoDataHandler, name: str
) -> None:
    with pytest.raises(ValidationError) as info:
        handler.save(list(ROWS), "output", name)
    for ext in (".json", ".jsonl", ".csv", ".xlsx", ".parquet", ".txt"):
        assert ext in info.value.how_to_fix
    assert every_file(root) == []


# --- JSON ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("0.1"), "0.1"),
        (Decimal("12.30"), "12.30"),
        (Decimal("-7.250"), "-7.250"),
        (Decimal("1E+2"), "1E+2"),
        (Decimal("0E-8"), "0E-8"),
        (
            Decimal("3.141592653589793238462643383279502884197"),
            "3.141592653589793238462643383279502884197",
        ),
        (Decimal("123456789012345678901234567890"), "123456789012345678901234567890"),
    ],
)
def test_json_writes_a_decimal_as_a_number_with_its_exact_digits(
    root: Path, handler: TxoDataHandler, value: Decimal, text: str
) -> None:
    path = handler.save({"amount": value}, "output", "d.json")
    body = path.read_text(encoding="utf-8")
    assert f'"amount": {text}' in body  # a number, not a string
    loaded = handler.load_json("output", "d.json", parse_float=Decimal, parse_int=Decimal)
    assert loaded["amount"] == value and str(loaded["amount"]) == str(value)


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")])
def test_json_writes_a_non_finite_decimal_as_null(
    root: Path, handler: TxoDataHandler, value: Decimal
) -> None:
    path = handler.save([value], "output", "d.json")
    assert strict_json(path.read_text(encoding="utf-8")) == [None]


AMSTERDAM = dt.timezone(dt.timedelta(hours=1))


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        (dt.datetime(2024, 3, 5, 14, 7, 9), "2024-03-05T14:07:09"),
        (
            dt.datetime(2024, 3, 5, 14, 7, 9, 500, tzinfo=dt.timezone.utc),
            "2024-03-05T14:07:09.000500+00:00",
        ),
        (dt.datetime(2024, 3, 5, 14, 7, tzinfo=AMSTERDAM), "2024-03-05T14:07:00+01:00"),
        (dt.date(2024, 2, 29), "2024-02-29"),
        (dt.time(8, 30), "08:30:00"),
        (pd.Timestamp("2024-03-05 14:07:09"), "2024-03-05T14:07:09"),
        (pd.Timestamp("2024-03-05 14:07", tz="UTC"), "2024-03-05T14:07:00+00:00"),
        (np.datetime64("2024-03-05T14:07:09"), "2024-03-05T14:07:09"),
    ],
)
def test_json_writes_datetimes_as_iso_8601(
    root: Path, handler: TxoDataHandler, value: Any, iso: str
) -> None:
    path = handler.save({"when": value}, "output", "t.json")
    assert strict_json(path.read_text(encoding="utf-8")) == {"when": iso}
    parsed = (dt.time if isinstance(value, dt.time) else dt.datetime).fromisoformat(iso)
    assert parsed is not None


def test_json_writes_numpy_and_pandas_scalars_as_plain_json(
    root: Path, handler: TxoDataHandler
) -> None:
    data = {
        "int64": np.int64(2**63 - 1),
        "int32": np.int32(-5),
        "uint8": np.uint8(255),
        "float64": np.float64(2.5),
        "float32": np.float32(0.1),
        "bool": np.bool_(True),
        "array": np.array([1, 2, 3]),
        "timedelta": pd.Timedelta(hours=36),
    }
    path = handler.save(data, "output", "n.json")
    assert strict_json(path.read_text(encoding="utf-8")) == {
        "int64": 2**63 - 1,
        "int32": -5,
        "uint8": 255,
        "float64": 2.5,
        "float32": 0.1,
        "bool": True,
        "array": [1, 2, 3],
        "timedelta": "P1DT12H0M0S",
    }


def test_json_has_no_bare_nan_every_missing_value_is_null(
    root: Path, handler: TxoDataHandler
) -> None:
    data = {
        "nan": float("nan"),
        "inf": float("inf"),
        "minus_inf": -math.inf,
        "np_nan": np.float64("nan"),
        "np_nan32": np.float32("nan"),
        "na": pd.NA,
        "nat": pd.NaT,
        "np_nat": np.datetime64("NaT"),
        "none": None,
        "nested": [{"deep": [float("nan"), {"x": pd.NA}]}],
        "text": "NaN and Infinity stay text",
        "NaN": "a key named NaN",
    }
    path = handler.save(data, "output", "nan.json")
    assert strict_json(path.read_text(encoding="utf-8")) == {
        **dict.fromkeys(["nan", "inf", "minus_inf", "np_nan", "np_nan32", "na", "nat"]),
        "np_nat": None,
        "none": None,
        "nested": [{"deep": [None, {"x": None}]}],
        "text": "NaN and Infinity stay text",
        "NaN": "a key named NaN",
    }


def test_json_round_trips_a_nested_structure(root: Path, handler: TxoDataHandler) -> None:
    data = {
        "org": "acme",
        "totals": {"EUR": Decimal("1234.50"), "USD": Decimal("0.05")},
        "rows": [{"id": i, "tags": ["a", "ü", "😀"], "ok": i % 2 == 0} for i in range(3)],
        "empty": {},
        "none": [],
    }
    handler.save(data, "output", "nested.json")
    assert handler.load_json("output", "nested.json", parse_float=Decimal) == data


def test_json_keeps_text_readable_and_is_utf8(root: Path, handler: TxoDataHandler) -> None:
    path = handler.save({"name": "Zoë 中文 😀"}, "output", "u.json")
    assert "Zoë 中文 😀" in path.read_bytes().decode("utf-8")


def test_json_of_an_unknown_object_is_a_validation_error_and_writes_nothing(
    root: Path, handler: TxoDataHandler
) -> None:
    with pytest.raises(ValidationError, match="object"):
        handler.save({"x": object()}, "output", "o.json")
    assert every_file(root) == []


# --- JSON Lines ---------------------------------------------------------------------------


def test_jsonl_writes_one_json_value_per_line_from_a_list(
    root: Path, handler: TxoDataHandler
) -> None:
    rows = [{"id": 1, "amount": Decimal("1.10"), "when": dt.date(2024, 1, 1)}, {"id": 2}]
    path = handler.save(rows, "output", "r.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [strict_json(line) for line in lines] == [
        {"id": 1, "amount": 1.1, "when": "2024-01-01"},
        {"id": 2},
    ]
    assert "1.10" in lines[0]
    assert handler.load_json("output", "r.jsonl") == [strict_json(line) for line in lines]


def test_jsonl_streams_a_generator_of_pages_while_it_is_consumed(
    root: Path, handler: TxoDataHandler
) -> None:
    seen_sizes: list[int] = []
    output = root / "output"

    def pages() -> Iterator[list[dict[str, Any]]]:
        for page in range(6):
            temps = [p for p in output.iterdir() if p.name.startswith(".")] if page else []
            seen_sizes.append(sum(p.stat().st_size for p in temps))
            yield [{"page": page, "row": i, "pad": "x" * 100} for i in range(500)]

    path = handler.save(pages(), "output", "stream.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3000
    assert json.loads(lines[-1]) == {"page": 5, "row": 499, "pad": "x" * 100}
    assert seen_sizes[-1] > 0  # earlier pages were on disk before the last was produced
    assert seen_sizes == sorted(seen_sizes)


# --- CSV and Parquet ----------------------------------------------------------------------


@pytest.mark.parametrize("ext", [".csv", ".parquet"])
@pytest.mark.parametrize(
    "make",
    [
        lambda: pd.DataFrame(ROWS),
        lambda: list(ROWS),
        lambda: iter([ROWS[:1], ROWS[1:]]),
        lambda: iter([pd.DataFrame(ROWS[:1]), pd.DataFrame(ROWS[1:])]),
        lambda: iter([ROWS[:1], pd.DataFrame(ROWS[1:])]),
    ],
    ids=["frame", "records", "pages-of-records", "pages-of-frames", "mixed-pages"],
)
def test_tables_round_trip(
    root: Path, handler: TxoDataHandler, ext: str, make: Callable[[], Any]
) -> None:
    handler.save(make(), "output", f"t{ext}")
    load = handler.load_csv if ext == ".csv" else handler.load_parquet
    loaded = load("output", f"t{ext}")
    assert list(loaded.columns) == FRAME_COLUMNS
    assert loaded.to_dict(orient="records") == ROWS


def test_csv_has_a_header_no_index_and_utf8(root: Path, handler: TxoDataHandler) -> None:
    path = handler.save([{"id": 1, "name": "Zoë"}], "output", "c.csv")
    assert path.read_bytes().decode("utf-8").splitlines() == ["id,name", "1,Zoë"]


@pytest.mark.parametrize("ext", [".csv", ".parquet"])
def test_a_stream_of_many_pages_is_written_in_bounded_memory(
    root: Path, handler: TxoDataHandler, ext: str
) -> None:
    rows, size = 200_000, 1_000
    pad = "p" * 40

    def pages() -> Iterator[list[dict[str, Any]]]:
        for start in range(0, rows, size):
            yield [{"id": i, "pad": pad, "value": i * 0.5} for i in range(start, start + size)]

    # The rows as Python objects all at once take about 250 bytes each (50 MB here).
    all_at_once = 250 * rows
    tracemalloc.start()
    try:
        path = handler.save(pages(), "output", f"big{ext}")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < all_at_once / 3, f"peak {peak:,} bytes for {rows:,} streamed rows"
    if ext == ".csv":
        assert sum(1 for _ in path.open(encoding="utf-8")) == rows + 1
    else:
        assert pq.ParquetFile(path).metadata.num_rows == rows


def test_a_stream_that_yields_nothing_writes_an_empty_file(
    root: Path, handler: TxoDataHandler
) -> None:
    handler.save(iter([]), "output", "e.csv")
    handler.save(iter([]), "output", "e.parquet")
    handler.save(iter([]), "output", "e.jsonl")
    assert handler.load_csv("output", "e.csv").empty
    assert handler.load_parquet("output", "e.parquet").empty
    assert handler.load_json("output", "e.jsonl") == []


# --- Excel --------------------------------------------------------------------------------


def test_xlsx_round_trips_a_frame_and_a_list_of_dicts(root: Path, handler: TxoDataHandler) -> None:
    handler.save(pd.DataFrame(ROWS), "output", "f.xlsx")
    handler.save(list(ROWS), "output", "l.xlsx")
    for name in ("f.xlsx", "l.xlsx"):
        loaded = handler.load_excel("output", name)
        assert isinstance(loaded, pd.DataFrame)
        assert loaded.to_dict(orient="records") == ROWS


def test_xlsx_from_a_dict_writes_one_sheet_each_and_loads_by_name_position_or_all(
    root: Path, handler: TxoDataHandler
) -> None:
    sheets = {
        "Customers": pd.DataFrame(ROWS),
        "Totals": pd.DataFrame({"total": [Decimal("1.5"), Decimal("2.25")]}),
    }
    handler.save(sheets, "output", "book.xlsx")
    assert handler.load_excel("output", "book.xlsx", sheet_name="Totals")["total"].tolist() == [
        1.5,
        2.25,
    ]
    second = handler.load_excel("output", "book.xlsx", sheet_name=1)
    assert isinstance(second, pd.DataFrame) and list(second.columns) == ["total"]
    everything = handler.load_excel("output", "book.xlsx", sheet_name=None)
    assert isinstance(everything, dict) and list(everything) == ["Customers", "Totals"]
    with pytest.raises(ValidationError, match="Customers, Totals"):
        handler.load_excel("output", "book.xlsx", sheet_name="Nope")


def test_xlsx_makes_sheet_names_valid_and_unique(root: Path, handler: TxoDataHandler) -> None:
    frame = pd.DataFrame(ROWS)
    long = "Quarterly revenue per customer and region"  # 41 characters
    keys = ["a/b:c*?[d]", long, long + " again", "", "SALES", "sales"]
    handler.save({key: frame for key in keys}, "output", "names.xlsx")
    names = list(handler.load_excel("output", "names.xlsx", sheet_name=None))
    assert len(names) == len(keys)
    assert len({n.casefold() for n in names}) == len(keys)
    for name in names:
        assert 0 < len(name) <= 31
        assert not set(name) & set("[]:*?/\\")
    assert names[0] == "a_b_c__d_" or set(names[0]) <= set("ab_cd")
    assert names[1] == long[:31]


# --- text ---------------------------------------------------------------------------------


def test_txt_writes_the_string_exactly(root: Path, handler: TxoDataHandler) -> None:
    text = "line 1\r\nline 2\nünïcödé 😀\n\n"
    path = handler.save(text, "output", "notes.txt")
    assert path.read_bytes() == text.encode("utf-8")


# --- options reach the writer -------------------------------------------------------------


def test_options_reach_each_writer(root: Path, handler: TxoDataHandler) -> None:
    frame = pd.DataFrame(ROWS)
    csv = handler.save(frame, "output", "k.csv", sep=";")
    assert csv.read_text(encoding="utf-8").splitlines()[0] == "id;name"
    js = handler.save({"b": 1, "a": 2}, "output", "k.json", sort_keys=True, indent=None)
    assert js.read_text(encoding="utf-8") == '{"a": 2, "b": 1}'
    pqt = handler.save(frame, "output", "k.parquet", compression="gzip")
    assert pq.ParquetFile(pqt).metadata.row_group(0).column(0).compression == "GZIP"
    handler.save(frame, "output", "k.xlsx", sheet_name="Data")
    assert list(handler.load_excel("output", "k.xlsx", sheet_name=None)) == ["Data"]
    txt = handler.save("é", "output", "k.txt", encoding="latin-1")
    assert txt.read_bytes() == b"\xe9"


def test_an_option_the_writer_does_not_take_is_a_validation_error(
    root: Path, handler: TxoDataHandler
) -> None:
    with pytest.raises(ValidationError, match="no_such_option"):
        handler.save(list(ROWS), "output", "k.csv", no_such_option=1)
    assert every_file(root) == []


# --- loading ------------------------------------------------------------------------------


def test_exists_tells_a_file_from_nothing(root: Path, handler: TxoDataHandler) -> None:
    assert handler.exists("output", "x.json") is False
    handler.save({"a": 1}, "output", "x.json")
    assert handler.exists("output", "x.json") is True
    assert handler.exists("data", "x.json") is False


def test_loaders_take_options(root: Path, handler: TxoDataHandler) -> None:
    handler.save(pd.DataFrame(ROWS), "output", "o.csv")
    handler.save(pd.DataFrame(ROWS), "output", "o.parquet")
    assert list(handler.load_csv("output", "o.csv", usecols=["name"]).columns) == ["name"]
    assert list(handler.load_parquet("output", "o.parquet", columns=["id"]).columns) == ["id"]


# --- start-up cost ------------------------------------------------------------------------
def passes_in_a_fresh_interpreter(probe: str) -> None:
    """Run ``probe`` with a fresh ``sys.modules``; its asserts must hold."""
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_a_script_set_up_for_a_pull_imports_only_what_a_pull_uses() -> None:
    # Each module here is imported where it is used (error hints, Decimal values, api.map,
    # DataFrames, a redaction family): a pull to CSV stays near a bare requests loop's memory.
    probe = (
        "import sys\n"
        "import utils.logger, utils.api_factory, utils.load_n_save, utils.script_runner\n"
        "from utils import _redaction\n"
        "utils.logger.setup_logger()\n"
        "lazy = ('difflib', 'decimal', 'concurrent.futures', 'pandas', 'numpy', 'pyarrow')\n"
        "assert not [m for m in lazy if m in sys.modules], [m for m in lazy if m in sys.modules]\n"
        "assert not _redaction._families, list(_redaction._families)\n"
    )
    passes_in_a_fresh_interpreter(probe)


def test_importing_load_n_save_and_saving_json_or_csv_records_loads_no_dataframe_library() -> None:
    probe = (
        "import sys, tempfile, pathlib\n"
        "import utils.load_n_save as lns\n"
        "heavy = ('pandas', 'numpy', 'pyarrow', 'xlsxwriter', 'openpyxl')\n"
        "assert not [m for m in heavy if m in sys.modules], sys.modules.keys()\n"
        "from utils import path_helpers\n"
        "path_helpers.PROJECT_ROOT = pathlib.Path(tempfile.mkdtemp())\n"
        "import datetime as dt\n"
        "from decimal import Decimal\n"
        "row = {'a': Decimal('1.0'), 'd': dt.timedelta(hours=1), 't': dt.datetime(2024, 1, 1)}\n"
        "lns.TxoDataHandler().save(row, 'tmp', 'a.json')\n"
        "lns.TxoDataHandler().save([row], 'tmp', 'a.jsonl')\n"
        "lns.TxoDataHandler().save('text', 'tmp', 'a.txt')\n"
        "lns.TxoDataHandler().save([row], 'tmp', 'a.csv')\n"
        "lns.TxoDataHandler().save(iter([[row], [row]]), 'tmp', 'b.csv')\n"
        "assert not [m for m in heavy if m in sys.modules]\n"
    )
    passes_in_a_fresh_interpreter(probe)
