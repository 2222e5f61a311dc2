"""Excel output a person wants to open: header, widths, dates, text safety, sheet names."""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from decimal import Decimal
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from utils import _excel_writer as excel_writer
from utils._excel_writer import MAX_COLUMN_WIDTH, sheet_names
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
    caplog.set_level("WARNING", logger="utils._excel_writer")
    ws = save_and_open(pd.DataFrame({"t": ["a" * 40_000, "short"]})).active
    assert len(ws["A2"].value) == 32_767 and ws["A3"].value == "short"
    assert [r.getMessage() for r in caplog.records] == [
        "Sheet 'Sheet1': 1 cell(s) held more than Excel's 32767 characters and were cut; "
        "save the data as .csv or .parquet to keep the whole text"
    ]


# --- money, number formats, heading, totals, charts ----------------------------------------

MONEY = "#,##0.00"


def money_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Customer": ["Ada", "Lin", "Bo"],
            "Amount": [Decimal("1234567.891"), Decimal("-0.5"), None],
            "Rate": [1.08421, 0.5, 2.0],
            "Count": [3, 4, 5],
            "Due": pd.to_datetime(["2025-06-30", "2025-07-01", "2025-07-02"]),
        }
    )


def test_decimal_columns_are_numbers_shown_as_money(root: Path) -> None:
    ws = save_and_open(money_frame()).active
    amounts = [ws.cell(row, 2) for row in (2, 3)]
    assert [c.value for c in amounts] == [1234567.891, -0.5]  # numbers, not text
    assert all(c.data_type == "n" for c in amounts)
    assert [c.number_format for c in amounts] == [MONEY, MONEY]
    assert ws["B4"].value is None
    assert ws["C2"].number_format == "General" and ws["D2"].number_format == "General"
    assert width(ws, "B") >= len("1,234,567.89")


@pytest.mark.parametrize(
    ("column", "letter", "fmt"),
    [
        ("Amount", "B", "#,##0.000"),
        ("Rate", "C", "0.0000"),
        ("Count", "D", "#,##0"),
        ("Due", "E", "dd mmm yyyy"),
    ],
)
def test_number_formats_set_any_columns_format(
    root: Path, column: str, letter: str, fmt: str
) -> None:
    ws = save_and_open(money_frame(), number_formats={column: fmt}).active
    assert ws[f"{letter}2"].number_format == fmt and ws[f"{letter}3"].number_format == fmt
    assert isinstance(ws[f"{letter}2"].value, (int, float, dt.datetime))


def test_number_formats_apply_on_every_sheet_with_that_column(root: Path) -> None:
    sheets = {"One": money_frame(), "Two": money_frame()[["Rate"]], "Three": pd.DataFrame({"x": [1]})}
    book = save_and_open(sheets, number_formats={"Rate": "0.0000"})
    assert book["One"]["C2"].number_format == "0.0000"
    assert book["Two"]["A2"].number_format == "0.0000"
    assert book["Three"]["A2"].number_format == "General"


@pytest.mark.parametrize(
    "options",
    [
        {"number_formats": {"Amount": MONEY, "Amuont": MONEY}},
        {"totals": ["Amount", "Amuont"]},
        {"totals": {"Sheet1": ["Amuont"]}},
    ],
)
def test_an_unknown_column_is_a_validation_error_naming_it(
    root: Path, options: dict[str, object]
) -> None:
    with pytest.raises(ValidationError) as caught:
        TxoDataHandler().save(money_frame(), "output", "book.xlsx", **options)
    assert "'Amuont'" in caught.value.what_went_wrong
    assert "'Amount'" in caught.value.what_went_wrong  # the columns there are, listed
    assert not (root / "output").exists()  # nothing written, no folder made


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"number_formats": ["Amount"]}, "number_formats must map"),
        ({"number_formats": {"Amount": ""}}, "number_formats must map"),
        ({"totals": "Amount"}, "totals must list"),
        ({"totals": ["Customer"]}, "Cannot total column 'Customer'"),
        ({"totals": {"Nope": ["Amount"]}}, "sheet(s) ['Nope']"),
        ({"title": 3}, "title must be"),
        ({"charts": "chart"}, "charts must be a function"),
    ],
)
def test_bad_layout_options_are_validation_errors(
    root: Path, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        TxoDataHandler().save(money_frame(), "output", "book.xlsx", **options)
    assert not (root / "output").exists()


def test_number_formats_is_an_xlsx_option_only(root: Path) -> None:
    with pytest.raises(ValidationError, match="does not take"):
        TxoDataHandler().save(money_frame(), "output", "book.csv", number_formats={"Rate": "0"})


def test_a_title_goes_above_the_table_which_keeps_its_filter_and_frozen_header(
    root: Path,
) -> None:
    title = "Receivables report\nAs of 30 June 2025"
    ws = save_and_open(money_frame(), title=title).active
    assert ws["A1"].value == "Receivables report" and ws["A1"].font.b and ws["A1"].font.sz == 14
    assert ws["A2"].value == "As of 30 June 2025"
    assert ws["A3"].value is None
    assert [c.value for c in ws[4]] == list(money_frame().columns)
    assert ws.freeze_panes == "A5"
    assert ws.auto_filter.ref == "A4:E7"
    assert ws.print_title_rows == "$4:$4"
    table = pd.read_excel(root / "output" / "book.xlsx", header=3)
    assert table["Customer"].tolist() == ["Ada", "Lin", "Bo"]


def test_totals_rows_sum_their_columns_with_live_formulas(root: Path) -> None:
    frame = money_frame()
    path = TxoDataHandler().save(frame, "output", "book.xlsx", totals=["Amount", "Count", "Rate"])
    formulas = openpyxl.load_workbook(path).active
    values = openpyxl.load_workbook(path, data_only=True).active
    assert formulas["B5"].value == "=SUBTOTAL(109,B2:B4)"
    assert formulas["D5"].value == "=SUBTOTAL(109,D2:D4)"
    assert values["A5"].value == "Total" and values["A5"].font.b
    assert values["B5"].value == pytest.approx(1234567.391)  # the Decimal sum, exact
    assert values["C5"].value == pytest.approx(3.58421)
    assert values["D5"].value == 12
    assert values["B5"].number_format == MONEY and values["B5"].font.b
    assert values["B5"].border.bottom.style == "double" and values["E5"].border.top.style
    assert values.auto_filter.ref == "A1:E4"  # the filter leaves the totals row out


def test_totals_by_sheet_and_on_an_empty_table(root: Path) -> None:
    sheets = {"Full": money_frame(), "Empty": money_frame().iloc[0:0]}
    path = TxoDataHandler().save(
        sheets, "output", "book.xlsx", totals={"Full": ["Count"], "Empty": ["Count"]}
    )
    book = openpyxl.load_workbook(path, data_only=True)
    assert book["Full"]["D5"].value == 12 and book["Full"]["B5"].value is None
    assert book["Empty"]["D2"].value == 0 and book["Empty"]["A2"].value == "Total"


def test_charts_get_each_tables_layout_and_end_up_in_the_workbook(root: Path) -> None:
    seen: dict[str, object] = {}

    def add_chart(book: object, layouts: dict[str, excel_writer.SheetLayout]) -> None:
        layout = layouts["Data"]
        seen.update(
            rows=(layout.header_row, layout.first_row, layout.last_row, layout.totals_row),
            cells=layout.cells("Count"),
            categories=layout.cells("Customer"),
        )
        chart = book.add_chart({"type": "column"})  # type: ignore[attr-defined]
        chart.add_series({"values": layout.cells("Count"), "categories": layout.cells("Customer")})
        layout.worksheet.insert_chart("G2", chart)

    path = TxoDataHandler().save(
        {"Data": money_frame()}, "output", "book.xlsx", title="T", totals=["Count"], charts=add_chart
    )
    assert seen["rows"] == (2, 3, 5, 6)
    assert seen["cells"] == ["Data", 3, 3, 5, 3]
    with zipfile.ZipFile(path) as archive:
        chart = archive.read("xl/charts/chart1.xml").decode()
    assert "<c:f>Data!$D$4:$D$6</c:f>" in chart and "<c:f>Data!$A$4:$A$6</c:f>" in chart


def test_a_title_by_sheet_heads_only_the_sheets_it_names(root: Path) -> None:
    sheets = {"One": money_frame(), "Two": money_frame()}
    book = save_and_open(sheets, title={"One": ["Summary", "As of 30 June 2025"]})
    assert [book["One"][f"A{n}"].value for n in (1, 2, 4)] == ["Summary", "As of 30 June 2025", "Customer"]
    assert book["Two"]["A1"].value == "Customer"
    with pytest.raises(ValidationError, match=re.escape("title names sheet(s) ['Three']")):
        TxoDataHandler().save(sheets, "output", "book.xlsx", title={"Three": "x"})


def test_headers_of_numbers_and_dates_are_right_aligned_over_them(root: Path) -> None:
    ws = save_and_open(money_frame()).active
    aligned = {c.value: c.alignment.horizontal for c in ws[1]}
    assert aligned == {
        "Customer": None,
        "Amount": "right",
        "Rate": "right",
        "Count": "right",
        "Due": "right",
    }


def test_a_chart_function_that_fails_fails_the_save_and_keeps_the_previous_file(
    root: Path,
) -> None:
    handler = TxoDataHandler()
    path = handler.save(money_frame(), "output", "book.xlsx")
    before = path.read_bytes()

    def broken(book: object, layouts: object) -> None:
        raise RuntimeError("chart bug")

    with pytest.raises(RuntimeError, match="chart bug"):
        handler.save(money_frame(), "output", "book.xlsx", totals=["Count"], charts=broken)
    assert path.read_bytes() == before
    assert [p.name for p in (root / "output").iterdir()] == ["book.xlsx"]
