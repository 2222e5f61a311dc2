"""Excel workbooks a person wants to open: bold frozen header, sized columns, real dates.

Written with xlsxwriter in constant-memory mode (rows go to disk as they are written), which
``bench/bench_save.py`` measures against openpyxl and against ``DataFrame.to_excel``. Reading
stays with openpyxl (``pandas.read_excel``).

Decisions, for a reader of the workbook:

- The header row is bold, frozen (it stays visible while scrolling) and has an autofilter.
- Column widths come from the header and the first :data:`WIDTH_SCAN_ROWS` rows, capped at
  :data:`MAX_COLUMN_WIDTH` characters; wide (CJK, emoji) characters count double.
- ``datetime`` values (and ``datetime64`` columns) are Excel dates with a date-time number
  format; a column whose values are all at midnight gets a date-only format. Excel cannot
  store a timezone: timezone-aware values are converted to UTC and written without it.
- Excel numbers keep 15 significant digits: integers and ``Decimal`` values with more digits
  are written as text so that no digit is lost; ``NaN``/``None``/``NaT`` are empty cells and
  ``±inf`` the text ``inf``/``-inf`` (as pandas writes them).
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
import unicodedata
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xlsxwriter

from utils.exceptions import ValidationError

log = logging.getLogger(__name__)

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


def _display_width(value: str) -> int:
    if value.isascii():
        return len(value)
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in value)


def _is_blank(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


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

    def _number(self, ws: Any, row: int, col: int, value: Any) -> None:
        if value != value:  # NaN
            return
        if isinstance(value, int) and abs(value) >= EXACT_INT_LIMIT:
            ws.write_string(row, col, str(value))
        elif isinstance(value, float) and math.isinf(value):
            ws.write_string(row, col, "inf" if value > 0 else "-inf")
        else:
            ws.write_number(row, col, value)

    def _any(self, ws: Any, row: int, col: int, value: Any) -> None:
        if value is None or value is pd.NA or value is pd.NaT:
            return
        if isinstance(value, str):
            if len(value) > MAX_CELL_TEXT:
                self.cut_cells += 1
            ws.write_string(row, col, value)
        elif isinstance(value, (bool, np.bool_)):
            ws.write_boolean(row, col, bool(value))
        elif isinstance(value, (int, float, np.integer, np.floating)):
            self._number(ws, row, col, value.item() if isinstance(value, np.generic) else value)
        elif isinstance(value, Decimal):
            if not value.is_finite():
                if value.is_infinite():
                    ws.write_string(row, col, "inf" if value > 0 else "-inf")
            elif len(value.as_tuple().digits) <= EXCEL_EXACT_DIGITS:
                ws.write_number(row, col, float(value))
            else:
                ws.write_string(row, col, str(value))
        elif isinstance(value, dt.datetime):
            ws.write_datetime(row, col, _to_naive_utc(value), self.formats["datetime"])
        elif isinstance(value, dt.date):
            ws.write_datetime(row, col, value, self.formats["date"])
        elif isinstance(value, dt.time):
            ws.write_datetime(row, col, value.replace(tzinfo=None), self.formats["time"])
        elif isinstance(value, (dt.timedelta, np.timedelta64)):
            ws.write_datetime(row, col, pd.Timedelta(value).to_pytimedelta(), self.formats["dur"])
        elif isinstance(value, np.datetime64):
            self._any(ws, row, col, pd.Timestamp(value))
        else:
            ws.write_string(row, col, str(value))

    def _column(self, ws: Any, series: pd.Series) -> tuple[list[Any], Cell, int | None]:
        """Return (values, cell writer, fixed display width or None) for one column."""
        dtype = series.dtype
        if isinstance(dtype, pd.DatetimeTZDtype):
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
            dtype = series.dtype
        if pd.api.types.is_datetime64_any_dtype(dtype):
            valid = series.dropna()
            midnight = bool((valid == valid.dt.normalize()).all())
            fmt = self.formats["date" if midnight else "datetime"]
            values = [None if v is pd.NaT else v for v in series.tolist()]

            def cell(row: int, col: int, value: Any) -> None:
                if value is not None:
                    ws.write_datetime(row, col, value, fmt)

            width = len(DATE_FORMAT if midnight else DATETIME_FORMAT)
            return values, cell, width
        if pd.api.types.is_bool_dtype(dtype) and not series.hasnans:
            return series.tolist(), ws.write_boolean, None
        if pd.api.types.is_float_dtype(dtype) and isinstance(dtype, np.dtype):
            finite = np.isfinite(series.to_numpy()).all()
            values = series.tolist()
            return values, (ws.write_number if finite else self._bound(ws, self._number)), None
        if pd.api.types.is_integer_dtype(dtype) and isinstance(dtype, np.dtype):
            small = series.empty or bool(series.abs().max() < EXACT_INT_LIMIT)
            values = series.tolist()
            return values, (ws.write_number if small else self._bound(ws, self._number)), None
        return series.tolist(), self._bound(ws, self._any), None

    @staticmethod
    def _bound(ws: Any, method: Callable[[Any, int, int, Any], None]) -> Cell:
        return lambda row, col, value: method(ws, row, col, value)

    def write(self, name: str, frame: pd.DataFrame, index: bool) -> None:
        """Write ``frame`` to a new worksheet ``name``."""
        if index:
            frame = frame.reset_index()
        rows, cols = frame.shape
        if rows + 1 > MAX_ROWS or cols > MAX_COLUMNS:
            raise ValidationError(
                f"Sheet {name!r} has {rows:,} rows and {cols:,} columns; an Excel sheet holds "
                f"at most {MAX_ROWS - 1:,} data rows and {MAX_COLUMNS:,} columns.",
                "Split the data over several sheets (save a dict of DataFrames), or save it "
                "as .csv or .parquet.",
                'handler.save({"part1": df[:1_000_000], "part2": df[1_000_000:]}, "output", '
                '"report.xlsx")',
            )
        ws = self.book.add_worksheet(name)
        headers = [
            " / ".join(map(str, c)) if isinstance(c, tuple) else str(c) for c in frame.columns
        ]
        columns = [self._column(ws, frame.iloc[:, i]) for i in range(cols)]
        for col, (header, (values, _, fixed)) in enumerate(zip(headers, columns, strict=True)):
            width = _display_width(header) + FILTER_BUTTON_WIDTH
            if fixed is not None:
                width = max(width, fixed)
            else:
                for value in values[:WIDTH_SCAN_ROWS]:
                    if not _is_blank(value):
                        width = max(width, _display_width(str(value)))
            ws.set_column(col, col, min(width + WIDTH_PADDING, MAX_COLUMN_WIDTH))
        ws.write_row(0, 0, headers, self.formats["header"])
        if cols:
            ws.freeze_panes(1, 0)
            ws.autofilter(0, 0, rows, cols - 1)
        writers = [cell for _, cell, _ in columns]
        data = [values for values, _, _ in columns]
        self.cut_cells = 0
        for row in range(rows):
            excel_row = row + 1
            for col in range(cols):
                value = data[col][row]
                if value is not None:
                    writers[col](excel_row, col, value)
        if self.cut_cells:
            log.warning(
                "Sheet %r: %d cell(s) held more than Excel's %d characters and were cut; "
                "save the data as .csv or .parquet to keep the whole text",
                name,
                self.cut_cells,
                MAX_CELL_TEXT,
            )


def write_excel(
    path: Path,
    sheets: Sequence[tuple[Any, pd.DataFrame]],
    *,
    index: bool = False,
    datetime_format: str = DATETIME_FORMAT,
    date_format: str = DATE_FORMAT,
) -> None:
    """Write each ``(name, frame)`` of ``sheets`` as one worksheet of the workbook ``path``.

    Args:
        path: The file to create (``TxoDataHandler.save`` passes its temporary file).
        sheets: Sheet names (made valid, see :func:`sheet_names`) and their DataFrames; an
            empty sequence writes one empty sheet.
        index: Write the DataFrame index as the first column(s).
        datetime_format: Excel number format for date-time cells.
        date_format: Excel number format for date cells.

    Raises:
        ValidationError: A sheet is larger than Excel allows.
    """
    names = sheet_names([name for name, _ in sheets])
    # constant_memory streams rows through part files; keep them in a private folder beside
    # the target (always writable, unlike /tmp in a read-only container) and remove them.
    with tempfile.TemporaryDirectory(prefix=f".{path.name}.", dir=path.parent) as parts:
        book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "tmpdir": parts})
        try:
            formats = {
                "header": book.add_format({"bold": True, "bottom": 1}),
                "datetime": book.add_format({"num_format": datetime_format}),
                "date": book.add_format({"num_format": date_format}),
                "time": book.add_format({"num_format": TIME_FORMAT}),
                "dur": book.add_format({"num_format": DURATION_FORMAT}),
            }
            writer = _SheetWriter(book, formats)
            if not sheets:
                book.add_worksheet(DEFAULT_SHEET_NAME)
            for name, (_, frame) in zip(names, sheets, strict=True):
                writer.write(name, frame, index)
        except BaseException:
            # Release the part files; the half-written workbook is discarded by the caller.
            with contextlib.suppress(Exception):
                book.close()
            raise
        book.close()
