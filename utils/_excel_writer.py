"""Excel workbooks a person wants to open: bold frozen header, sized columns, real dates.

Written with xlsxwriter in constant-memory mode (rows go to disk as they are written), which
``bench/bench_save.py`` measures against openpyxl and against ``DataFrame.to_excel``. Reading
stays with openpyxl (``pandas.read_excel``).

Decisions, for a reader of the workbook:

- The header row is bold, frozen (it stays visible while scrolling) and has an autofilter;
  the header of a column of numbers or dates is right-aligned, over its figures.
- Column widths come from the header and the first :data:`WIDTH_SCAN_ROWS` rows, capped at
  :data:`MAX_COLUMN_WIDTH` characters; wide (CJK, emoji) characters count double.
- ``datetime`` values (and ``datetime64`` columns) are Excel dates with a date-time number
  format; a column whose values are all at midnight gets a date-only format. Excel cannot
  store a timezone: timezone-aware values are converted to UTC and written without it.
- Excel numbers keep 15 significant digits: integers and ``Decimal`` values with more digits
  are written as text so that no digit is lost; ``NaN``/``None``/``NaT`` are empty cells and
  ``±inf`` the text ``inf``/``-inf`` (as pandas writes them).
- ``Decimal`` values are money: numbers with two decimals and a thousands separator
  (``#,##0.00``). ``number_formats={"column": "0.0000"}`` sets any column's format instead
  (dates and numbers alike), on every sheet that has the column.
- ``title=`` puts a heading above each sheet's table (or, as a dict, above the sheets it
  names) (first line bold and large, further
  lines beneath it, then an empty row); ``totals=`` adds a bold totals row under the table,
  a ``SUBTOTAL(109, …)`` formula per column (it follows the autofilter, like Excel's own
  table total row) with its value already computed, so every reader shows the figure;
  ``charts=`` is called with the workbook and each sheet's :class:`SheetLayout` before the
  file is closed, to add native Excel charts. The checks: ``utils._excel_layout``.
- Printing: each sheet prints one page wide (landscape when wider than
  :data:`PORTRAIT_MAX_COLUMNS` columns), the header row repeated on every page.
- Text is always written as text: a value starting with ``=`` is never turned into a formula.
  Text longer than Excel's 32,767 characters per cell is cut, with a warning in the log.
- Sheet names are made valid: at most 31 characters, none of ``[]:*?/\\``, no leading or
  trailing apostrophe, not empty, not Excel's reserved ``History``, unique ignoring case (a
  ``~2`` suffix when needed).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xlsxwriter
from xlsxwriter.utility import xl_range

from utils._excel_layout import (
    MONEY_FORMAT,
    TOTAL_LABEL,
    ChartHook,
    SheetLayout,
    check_options,
    column_total,
    display_width,
    headers_of,
    holds_numbers,
    shown_text,
    title_lines,
)
from utils.exceptions import ValidationError

log = logging.getLogger(__name__)

__all__ = ["SheetLayout", "sheet_names", "write_excel"]

MAX_ROWS = 1_048_576  # Excel's sheet limit, header row included
MAX_COLUMNS = 16_384
SHEET_NAME_MAX = 31
DEFAULT_SHEET_NAME = "Sheet1"
INVALID_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")
RESERVED_SHEET_NAMES = frozenset({"history"})  # Excel keeps it for change tracking
WIDTH_SCAN_ROWS = 1_000
MAX_COLUMN_WIDTH = 60
WIDTH_PADDING = 2
FILTER_BUTTON_WIDTH = 2
MAX_CELL_TEXT = 32_767  # characters; xlsxwriter cuts longer text
EXCEL_EXACT_DIGITS = 15
EXACT_INT_LIMIT = 10**EXCEL_EXACT_DIGITS
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
DATE_FORMAT = "yyyy-mm-dd"
TIME_FORMAT = "hh:mm:ss"
DURATION_FORMAT = "[h]:mm:ss"
TITLE_FONT_SIZE = 14
SUBTITLE_COLOR = "#595959"
DOUBLE_BORDER = 6  # xlsxwriter's border style number for a double line
PORTRAIT_MAX_COLUMNS = 6

Cell = Callable[[int, int, Any], None]


def sheet_names(keys: Sequence[Any]) -> list[str]:
    """Return a valid, case-insensitively unique Excel sheet name for each key, in order.

    Example:
        >>> sheet_names(["Q1: sales/returns", "q1: SALES/returns", ""])
        ['Q1_ sales_returns', 'q1_ SALES_returns~2', 'Sheet3']
    """
    names: list[str] = []
    taken: set[str] = set()
    for position, key in enumerate(keys, start=1):
        name = INVALID_SHEET_CHARS.sub("_", str(key)).strip("'")[:SHEET_NAME_MAX].strip("'")
        name = name or f"Sheet{position}"
        base, counter = name, 1
        while name.casefold() in taken or name.casefold() in RESERVED_SHEET_NAMES:
            counter += 1
            suffix = f"~{counter}"
            name = base[: SHEET_NAME_MAX - len(suffix)] + suffix
        if name != str(key):
            log.info("Sheet name %r written as %r (Excel's sheet name rules)", key, name)
        taken.add(name.casefold())
        names.append(name)
    return names


def _to_naive_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        return value
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None)


class _SheetWriter:
    """Writes one DataFrame into one worksheet, choosing a cell writer per column."""

    def __init__(self, book: Any, formats: dict[str, Any]) -> None:
        self.book = book
        self.formats = formats
        self.cut_cells = 0
        self._cache: dict[tuple[str | None, bool], Any] = {}

    def number_format(self, num_format: str | None, total: bool = False) -> Any:
        """Return the workbook's format for ``num_format`` (bold and ruled in a totals row)."""
        key = (num_format, total)
        if key not in self._cache:
            props: dict[str, Any] = {"num_format": num_format} if num_format else {}
            if total:
                props.update(bold=True, top=1, bottom=DOUBLE_BORDER)
            self._cache[key] = self.book.add_format(props) if props else None
        return self._cache[key]

    def _number(self, ws: Any, row: int, col: int, value: Any, fmt: Any = None) -> None:
        if value != value:  # NaN
            return
        if isinstance(value, int) and abs(value) >= EXACT_INT_LIMIT:
            ws.write_string(row, col, str(value))
        elif isinstance(value, float) and math.isinf(value):
            ws.write_string(row, col, "inf" if value > 0 else "-inf")
        else:
            ws.write_number(row, col, value, fmt)

    def _any(self, ws: Any, row: int, col: int, value: Any, fmt: Any = None) -> None:
        if value is None or value is pd.NA or value is pd.NaT:
            return
        if isinstance(value, str):
            if len(value) > MAX_CELL_TEXT:
                self.cut_cells += 1
            ws.write_string(row, col, value)
        elif isinstance(value, (bool, np.bool_)):
            ws.write_boolean(row, col, bool(value), fmt)
        elif isinstance(value, (int, float, np.integer, np.floating)):
            number = value.item() if isinstance(value, np.generic) else value
            self._number(ws, row, col, number, fmt)
        elif isinstance(value, Decimal):
            if not value.is_finite():
                if value.is_infinite():
                    ws.write_string(row, col, "inf" if value > 0 else "-inf")
            elif len(value.as_tuple().digits) <= EXCEL_EXACT_DIGITS:
                ws.write_number(row, col, float(value), fmt or self.formats["money"])
            else:
                ws.write_string(row, col, str(value))
        elif isinstance(value, dt.datetime):
            ws.write_datetime(row, col, _to_naive_utc(value), fmt or self.formats["datetime"])
        elif isinstance(value, dt.date):
            ws.write_datetime(row, col, value, fmt or self.formats["date"])
        elif isinstance(value, dt.time):
            ws.write_datetime(row, col, value.replace(tzinfo=None), fmt or self.formats["time"])
        elif isinstance(value, (dt.timedelta, np.timedelta64)):
            duration = pd.Timedelta(value).to_pytimedelta()
            ws.write_datetime(row, col, duration, fmt or self.formats["dur"])
        elif isinstance(value, np.datetime64):
            self._any(ws, row, col, pd.Timestamp(value), fmt)
        else:
            ws.write_string(row, col, str(value))

    def _column(
        self, ws: Any, series: pd.Series, override: str | None
    ) -> tuple[list[Any], Cell, int | None, str | None]:
        """Return (values, cell writer, fixed display width or None, number format shown)
        for one column; ``override`` is its format from ``number_formats``."""
        fmt = self.number_format(override) if override else None
        dtype = series.dtype
        if isinstance(dtype, pd.DatetimeTZDtype):
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
            dtype = series.dtype
        if pd.api.types.is_datetime64_any_dtype(dtype):
            valid = series.dropna()
            midnight = bool((valid == valid.dt.normalize()).all())
            date_fmt = fmt or self.formats["date" if midnight else "datetime"]
            values = [None if v is pd.NaT else v for v in series.tolist()]

            def cell(row: int, col: int, value: Any) -> None:
                if value is not None:
                    ws.write_datetime(row, col, value, date_fmt)

            width = len(override or (DATE_FORMAT if midnight else DATETIME_FORMAT))
            return values, cell, width, override
        values = series.tolist()
        if pd.api.types.is_bool_dtype(dtype) and not series.hasnans:
            return values, self._with(ws.write_boolean, fmt), None, override
        if pd.api.types.is_float_dtype(dtype) and isinstance(dtype, np.dtype):
            finite = np.isfinite(series.to_numpy()).all()
            write = ws.write_number if finite else self._bound(ws, self._number)
            return values, self._with(write, fmt), None, override
        if pd.api.types.is_integer_dtype(dtype) and isinstance(dtype, np.dtype):
            small = series.empty or bool(series.abs().max() < EXACT_INT_LIMIT)
            write = ws.write_number if small else self._bound(ws, self._number)
            return values, self._with(write, fmt), None, override
        money = any(isinstance(v, Decimal) for v in values[:WIDTH_SCAN_ROWS])
        shown = override or (MONEY_FORMAT if money else None)
        return values, self._with(self._bound(ws, self._any), fmt), None, shown

    @staticmethod
    def _bound(ws: Any, method: Callable[..., None]) -> Callable[..., None]:
        return lambda row, col, value, *fmt: method(ws, row, col, value, *fmt)

    @staticmethod
    def _with(write: Callable[..., None], fmt: Any) -> Cell:
        """``write`` as a cell writer, passing ``fmt`` when there is one (else none: fast)."""
        if fmt is None:
            return write
        return lambda row, col, value: write(row, col, value, fmt)

    def write(
        self,
        name: str,
        frame: pd.DataFrame,
        index: bool,
        *,
        number_formats: Mapping[str, str],
        title: Sequence[str],
        totals: Sequence[str],
    ) -> SheetLayout:
        """Write ``frame`` to a new worksheet ``name``; return where its table sits."""
        if index:
            frame = frame.reset_index()
        rows, cols = frame.shape
        header_row = len(title) + 1 if title else 0
        if header_row + rows + (1 if totals else 0) + 1 > MAX_ROWS or cols > MAX_COLUMNS:
            raise ValidationError(
                f"Sheet {name!r} has {rows:,} rows and {cols:,} columns; an Excel sheet holds "
                f"at most {MAX_ROWS - 1:,} data rows and {MAX_COLUMNS:,} columns.",
                "Split the data over several sheets (save a dict of DataFrames), or save it "
                "as .csv or .parquet.",
                'handler.save({"part1": df[:1_000_000], "part2": df[1_000_000:]}, "output", '
                '"report.xlsx")',
            )
        ws = self.book.add_worksheet(name)
        headers = headers_of(frame)
        columns = [
            self._column(ws, frame.iloc[:, i], number_formats.get(headers[i])) for i in range(cols)
        ]
        sums = {headers.index(c): column_total(columns[headers.index(c)][0]) for c in totals}
        for col, (header, (values, _, fixed, shown)) in enumerate(
            zip(headers, columns, strict=True)
        ):
            width = display_width(header) + FILTER_BUTTON_WIDTH
            if fixed is not None:
                width = max(width, fixed)
            else:
                scanned = [*values[:WIDTH_SCAN_ROWS], sums.get(col)]
                width = max(width, *(display_width(shown_text(v, shown)) for v in scanned))
            ws.set_column(col, col, min(width + WIDTH_PADDING, MAX_COLUMN_WIDTH))
        for row, line in enumerate(title):
            ws.write_string(row, 0, line, self.formats["title" if row == 0 else "subtitle"])
        for col, (header, (values, _, _, _)) in enumerate(zip(headers, columns, strict=True)):
            right = holds_numbers(values[:WIDTH_SCAN_ROWS])  # over right-aligned figures
            ws.write_string(header_row, col, header, self.formats[f"header{'_right' * right}"])
        first_row = header_row + 1
        if cols:
            ws.freeze_panes(first_row, 0)
            ws.autofilter(header_row, 0, header_row + rows, cols - 1)
            ws.repeat_rows(header_row)
            ws.fit_to_pages(1, 0)
            if cols > PORTRAIT_MAX_COLUMNS:
                ws.set_landscape()
        writers = [cell for _, cell, _, _ in columns]
        data = [values for values, _, _, _ in columns]
        self.cut_cells = 0
        for row in range(rows):
            excel_row = first_row + row
            for col in range(cols):
                value = data[col][row]
                if value is not None:
                    writers[col](excel_row, col, value)
        totals_row = first_row + rows if totals else None
        if totals_row is not None:
            self._totals_row(ws, totals_row, first_row, columns, sums)
        if self.cut_cells:
            log.warning(
                "Sheet %r: %d cell(s) held more than Excel's %d characters and were cut; "
                "save the data as .csv or .parquet to keep the whole text",
                name,
                self.cut_cells,
                MAX_CELL_TEXT,
            )
        return SheetLayout(
            name=name,
            worksheet=ws,
            header_row=header_row,
            first_row=first_row,
            last_row=first_row + rows - 1,
            columns={h: i for i, h in reversed(list(enumerate(headers)))},
            totals_row=totals_row,
        )

    def _totals_row(
        self,
        ws: Any,
        row: int,
        first_row: int,
        columns: list[tuple[list[Any], Cell, int | None, str | None]],
        sums: Mapping[int, float],
    ) -> None:
        """Bold, ruled totals: ``SUBTOTAL(109, …)`` formulas with their values computed."""
        for col, (_, _, _, shown) in enumerate(columns):
            fmt = self.number_format(shown, total=True)
            if col in sums:
                if row == first_row:  # no data rows: nothing to refer to
                    ws.write_number(row, col, 0, fmt)
                    continue
                cells = xl_range(first_row, col, row - 1, col)
                ws.write_formula(row, col, f"=SUBTOTAL(109,{cells})", fmt, sums[col])
            elif col == 0:
                ws.write_string(row, col, TOTAL_LABEL, fmt)
            else:
                ws.write_blank(row, col, None, fmt)


def write_excel(
    path: Path,
    sheets: Sequence[tuple[Any, pd.DataFrame]],
    *,
    index: bool = False,
    datetime_format: str = DATETIME_FORMAT,
    date_format: str = DATE_FORMAT,
    number_formats: Mapping[str, str] | None = None,
    title: str | Sequence[str] | Mapping[Any, str | Sequence[str]] | None = None,
    totals: Sequence[str] | Mapping[Any, Sequence[str]] | None = None,
    charts: ChartHook | None = None,
) -> None:
    """Write each ``(name, frame)`` of ``sheets`` as one worksheet of the workbook ``path``.

    Args:
        path: The file to create (``TxoDataHandler.save`` passes its temporary file).
        sheets: Sheet names (made valid, see :func:`sheet_names`) and their DataFrames; an
            empty sequence writes one empty sheet.
        index: Write the DataFrame index as the first column(s).
        datetime_format: Excel number format for date-time cells.
        date_format: Excel number format for date cells.
        number_formats: Column name → Excel number format, on every sheet with that column.
        title: A heading above each table: a str (lines split at newlines) or a list of
            lines, or a dict of them keyed like ``sheets``.
        totals: Columns to total under the table: a list (every sheet that has them), or a
            dict of such lists keyed like ``sheets``.
        charts: Called as ``charts(workbook, layouts)`` once every sheet is written, with the
            xlsxwriter workbook and a :class:`SheetLayout` per sheet key, to add charts.

    Raises:
        ValidationError: A sheet is larger than Excel allows, or an option names a column or
            sheet that does not exist (see ``utils._excel_layout``).
    """
    wanted_totals = check_options(
        sheets,
        index=index,
        number_formats=number_formats,
        totals=totals,
        title=title,
        charts=charts,
    )
    names = sheet_names([name for name, _ in sheets])
    # constant_memory streams rows through part files; keep them in a private folder beside
    # the target (always writable, unlike /tmp in a read-only container) and remove them.
    with tempfile.TemporaryDirectory(prefix=f".{path.name}.", dir=path.parent) as parts:
        book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "tmpdir": parts})
        try:
            formats = {
                "header": book.add_format({"bold": True, "bottom": 1}),
                "header_right": book.add_format({"bold": True, "bottom": 1, "align": "right"}),
                "datetime": book.add_format({"num_format": datetime_format}),
                "date": book.add_format({"num_format": date_format}),
                "time": book.add_format({"num_format": TIME_FORMAT}),
                "dur": book.add_format({"num_format": DURATION_FORMAT}),
                "money": book.add_format({"num_format": MONEY_FORMAT}),
                "title": book.add_format({"bold": True, "font_size": TITLE_FONT_SIZE}),
                "subtitle": book.add_format({"font_color": SUBTITLE_COLOR}),
            }
            writer = _SheetWriter(book, formats)
            if not sheets:
                book.add_worksheet(DEFAULT_SHEET_NAME)
            layouts: dict[Any, SheetLayout] = {}
            for name, (key, frame) in zip(names, sheets, strict=True):
                layouts[key] = writer.write(
                    name,
                    frame,
                    index,
                    number_formats=number_formats or {},
                    title=title_lines(title, key),
                    totals=wanted_totals.get(key, ()),
                )
            if charts is not None:
                charts(book, layouts)
        except BaseException:
            # Release the part files; the half-written workbook is discarded by the caller.
            with contextlib.suppress(Exception):
                book.close()
            raise
        book.close()


def check_xlsx_options(sheets: Sequence[tuple[Any, pd.DataFrame]], **options: Any) -> None:
    """Check ``save()``'s ``.xlsx`` layout options before anything is written.

    Raises:
        ValidationError: As :func:`utils._excel_layout.check_options`.
    """
    check_options(
        sheets,
        index=bool(options.get("index", False)),
        number_formats=options.get("number_formats"),
        totals=options.get("totals"),
        title=options.get("title"),
        charts=options.get("charts"),
    )
