"""Excel output a person wants to open: header, widths, dates, text safety, sheet names."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from utils import excel_writer
from utils.excel_writer import MAX_COLUMN_WIDTH, sheet_names
from utils.exceptions import ValidationError
from utils.load_n_save import TxoDataHandler


def save_and_open(data: object, name: str = "book.xlsx", **kwargs: object) -> openpyxl.Workbook:
    path = TxoDataHandler().save(data, "output", name, **kwargs)
    return openpyxl.load_workbook(path)


def width(sheet: object, letter: str) -> float:
    dims = sheet.column_dimensions  # type: ignore[attr-defined]
    for key, dim in dims.items():
        if dim.min <= openpyxl.utils.column_index_from_string(letter) <= dim.max and key:
            return float(dim.width)
    raise AssertionError(f"no width for column {letter}")


def test_header_is_bold_frozen_and_filtered(root: Path) -> None:
    ws = save_and_open(pd.DataFrame({"id": [1, 2, 3], "name": ["a", "b", "c"]})).active
    assert [c.value for c in ws[1]] == ["id", "name"]
    assert all(c.font.b for c in ws[1])
    assert not ws["A2"].font.b
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "A1:B4"


def test_columns_are_sized_to_content_and_capped(root: Path) -> None:
    frame = pd.DataFrame(
        {"id": [1], "medium": ["x" * 30], "long": ["y" * 500], "cjk": ["中文中文"]}
    )
    ws = save_and_open(frame).active
    assert width(ws, "A") < width(ws, "B")
    assert 30 <= width(ws, "B") <= 35
    assert MAX_COLUMN_WIDTH <= width(ws, "C") <= MAX_COLUMN_WIDTH + 1
    assert width(ws, "D") >= 8 + 2  # wide characters count double


def test_width_scan_is_bounded(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(excel_writer, "WIDTH_SCAN_ROWS", 5)
    ws = save_and_open(pd.DataFrame({"c": ["a"] * 5 + ["z" * 40]})).active
    assert width(ws, "A") < 10


def test_dates_are_excel_dates_with_formats(root: Path) -> None:
    frame = pd.DataFrame(
        {
            "stamp": pd.to_datetime(["2024-01-02 03:04:05", None]),
            "day": pd.to_datetime(["2024-01-02", "2024-01-03"]),
            "pydate": [dt.date(2024, 2, 29), None],
            "aware": pd.to_datetime(["2024-06-01 12:00", "2024-12-01 12:00"]).tz_localize(
                "Europe/Amsterdam"
            ),
            "aware_obj": [
                dt.datetime(2024, 6, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2))),
                None,
            ],
            "duration": [dt.timedelta(hours=26, minutes=3), None],
        }
    )
    ws = save_and_open(frame).active
    assert ws["A2"].value == dt.datetime(2024, 1, 2, 3, 4, 5)
    assert ws["A2"].number_format == "yyyy-mm-dd hh:mm:ss"
    assert ws["A3"].value is None
    assert ws["B2"].number_format == "yyyy-mm-dd"  # all at midnight: a date column
    assert ws["C2"].value == dt.datetime(2024, 2, 29) and ws["C2"].number_format == "yyyy-mm-dd"
    # Excel cannot store a timezone: converted to UTC.
    assert ws["D2"].value == dt.datetime(2024, 6, 1, 10, 0)
    assert ws["D3"].value == dt.datetime(2024, 12, 1, 11, 0)
    assert ws["E2"].value == dt.datetime(2024, 6, 1, 10, 0)
    assert ws["F2"].number_format == "[h]:mm:ss"
    assert ws["F2"].value == dt.timedelta(hours=26, minutes=3)


def test_date_formats_can_be_chosen(root: Path) -> None:
    frame = pd.DataFrame({"t": [dt.datetime(2024, 1, 2, 3, 4)], "d": [dt.date(2024, 1, 2)]})
    ws = save_and_open(frame, datetime_format="dd/mm/yyyy hh:mm", date_format="dd/mm/yyyy").active
    assert ws["A2"].number_format == "dd/mm/yyyy hh:mm"
    assert ws["B2"].number_format == "dd/mm/yyyy"


def test_numbers_keep_every_digit_and_text_stays_text(root: Path) -> None:
    frame = pd.DataFrame(
        {
            "small": [123456789012345, 5],
            "big": [2**63 - 1, 1],
            "dec15": [Decimal("1234567890.12345"), None],
            "dec29": [Decimal("12345678901234567890.123456789"), Decimal("0.1")],
            "formula": ["=1+1", "@SUM(A1)"],
            "floats": [1.5, float("inf")],
            "mixed": [1, "one"],
        }
    )
    ws = save_and_open(frame).active
    assert ws["A2"].value == 123456789012345 and ws["A2"].data_type == "n"
    assert ws["B2"].value == "9223372036854775807" and ws["B3"].value == 1
    assert ws["C2"].value == pytest.approx(1234567890.12345) and ws["C2"].data_type == "n"
    assert ws["C3"].value is None
    assert ws["D2"].value == "12345678901234567890.123456789" and ws["D3"].value == 0.1
    assert ws["E2"].value == "=1+1" and ws["E2"].data_type == "s"
    assert ws["F3"].value == "inf"
    assert ws["G2"].value == 1 and ws["G3"].value == "one"


def test_index_can_be_written(root: Path) -> None:
    frame = pd.DataFrame({"v": [1, 2]}, index=pd.Index(["a", "b"], name="key"))
    ws = save_and_open(frame, index=True).active
    assert [c.value for c in ws[1]] == ["key", "v"]
    assert ws["A3"].value == "b"


def test_sheet_names_are_made_valid_and_unique_when_saving(root: Path) -> None:
    sheets = {
        "Sales: 2024/Q1 [draft]?": pd.DataFrame({"a": [1]}),
        "x" * 40: pd.DataFrame({"a": [2]}),
        "x" * 35: pd.DataFrame({"a": [3]}),
    }
    book = save_and_open(sheets)
    assert book.sheetnames == ["Sales_ 2024_Q1 _draft__", "x" * 31, "x" * 29 + "~2"]
    assert book["x" * 29 + "~2"]["A2"].value == 3


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (["a*b", "c\\d", "e:f"], ["a_b", "c_d", "e_f"]),
        (["Data", "data", "DATA"], ["Data", "data~2", "DATA~3"]),
        (["", "'quoted'", 7], ["Sheet1", "quoted", "7"]),
        (["y" * 30 + "'z"], ["y" * 30]),  # the cut leaves a trailing apostrophe
        (["z" * 31, "z" * 31 + "tail"], ["z" * 31, "z" * 29 + "~2"]),
    ],
)
def test_sheet_name_rules(keys: list[object], expected: list[str]) -> None:
    names = sheet_names(keys)
    assert names == expected
    assert all(len(n) <= 31 for n in names)


def test_too_many_rows_is_rejected_before_writing(root: Path) -> None:
    frame = pd.DataFrame({"a": range(excel_writer.MAX_ROWS)})
    with pytest.raises(ValidationError, match="1,048,575 data rows"):
        TxoDataHandler().save(frame, "output", "huge.xlsx")
    assert list((root / "output").iterdir()) == []


def test_workbook_is_written_by_xlsxwriter_in_constant_memory_mode(root: Path) -> None:
    path = TxoDataHandler().save(pd.DataFrame({"a": ["x"]}), "output", "w.xlsx")
    import zipfile

    with zipfile.ZipFile(path) as archive:
        sheet = archive.read("xl/worksheets/sheet1.xml").decode()
    assert 't="inlineStr"' in sheet  # constant_memory writes strings inline


def test_text_longer_than_a_cell_holds_is_cut_with_a_warning(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="utils.excel_writer")
    ws = save_and_open(pd.DataFrame({"t": ["a" * 40_000, "short"]})).active
    assert len(ws["A2"].value) == 32_767 and ws["A3"].value == "short"
    assert [r.getMessage() for r in caplog.records] == [
        "Sheet 'Sheet1': 1 cell(s) held more than Excel's 32767 characters and were cut; "
        "save the data as .csv or .parquet to keep the whole text"
    ]
