"""How a table is laid out in an ``.xlsx`` sheet: the layout options, widths, alignment.

What ``save(..., number_formats=, title=, totals=, charts=)`` asks of a workbook.

The options are checked here against the sheets before anything is written (a column named
that no sheet has is a ``ValidationError`` naming it), and :class:`SheetLayout` tells a
``charts=`` callable where each sheet's table ended up, so that it can point a chart at the
right cells. ``excel_writer`` does the writing.

Decisions:

- ``number_formats`` is one flat ``{column: format}`` mapping: for a dict of DataFrames it
  applies to every sheet that has a column of that name (a name means the same thing on every
  sheet of a report). A name that no sheet has is an error.
- ``title`` is one heading for every sheet (a str, lines split at newlines, or a list of
  lines), or a mapping ``{sheet key: heading}``.
- ``totals`` is a list of columns (summed on every sheet that has them; a name no sheet has
  is an error), or a mapping ``{sheet key: [columns]}`` for totals that differ by sheet (an
  unknown sheet, or a column that sheet lacks, is an error). A totals column must hold
  numbers (or be empty).
"""

from __future__ import annotations

import datetime as dt
import math
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from utils.exceptions import ValidationError

MONEY_FORMAT = "#,##0.00"
TOTAL_LABEL = "Total"
SHOWN_COLUMNS = 12  # columns listed in an error message


@dataclass(frozen=True)
class SheetLayout:
    """Where one table sits in its worksheet (rows and columns counted from 0, as xlsxwriter).

    Attributes:
        name: The worksheet's name as written (see ``excel_writer.sheet_names``).
        worksheet: The xlsxwriter worksheet (to ``insert_chart`` into).
        header_row: The row of the column headers.
        first_row: The first data row.
        last_row: The last data row (``first_row - 1`` for a table without rows).
        columns: Column header → column number.
        totals_row: The totals row, or ``None`` when the sheet has none.
    """

    name: str
    worksheet: Any
    header_row: int
    first_row: int
    last_row: int
    columns: Mapping[str, int] = field(default_factory=dict)
    totals_row: int | None = None

    def column(self, header: str) -> int:
        """Return the column number of ``header``.

        Raises:
            ValidationError: The sheet has no such column.
        """
        if header not in self.columns:
            raise _unknown_columns([header], f"sheet {self.name!r}", list(self.columns))
        return self.columns[header]

    def cells(self, header: str) -> list[Any]:
        """Return ``[sheet, first_row, col, last_row, col]``: the data cells of ``header``, in
        the list form xlsxwriter's ``add_series`` takes for ``values`` and ``categories``."""
        col = self.column(header)
        return [self.name, self.first_row, col, self.last_row, col]

    def row_cells(self, row: int, first: str, last: str) -> list[Any]:
        """Return ``[sheet, row, first_col, row, last_col]`` for one row across columns."""
        return [self.name, row, self.column(first), row, self.column(last)]

    def header_cells(self, first: str, last: str) -> list[Any]:
        """Return the header cells from column ``first`` to ``last`` (chart categories)."""
        return self.row_cells(self.header_row, first, last)


ChartHook = Callable[[Any, Mapping[Any, SheetLayout]], None]


def headers_of(frame: pd.DataFrame) -> list[str]:
    """The header texts of ``frame``'s columns as they are written (tuples joined by `` / ``)."""
    return [" / ".join(map(str, c)) if isinstance(c, tuple) else str(c) for c in frame.columns]


def _unknown_columns(names: Sequence[str], where: str, known: Sequence[str]) -> ValidationError:
    shown = ", ".join(repr(k) for k in known[:SHOWN_COLUMNS])
    more = f" (and {len(known) - SHOWN_COLUMNS} more)" if len(known) > SHOWN_COLUMNS else ""
    listed = ", ".join(repr(n) for n in names)
    return ValidationError(
        f"Column(s) {listed} not found in {where}; its columns are: {shown or 'none'}{more}.",
        "Name the columns exactly as the DataFrame's headers (case and spaces count).",
        'handler.save(df, "output", "report.xlsx", number_formats={"Amount": "#,##0.00"})',
    )


def _is_number(value: Any) -> bool:
    """True for a number or a blank (a totals column may have empty cells)."""
    if value is None or value is pd.NA:
        return True
    if isinstance(value, (bool, np.bool_)):
        return False
    return isinstance(value, (int, float, Decimal, np.integer, np.floating))


def is_blank(value: Any) -> bool:
    """True for what is written as an empty cell (``None``, NA, NaT, NaN)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def display_width(value: str) -> int:
    """Characters ``value`` takes on screen: wide (CJK, emoji) ones count double."""
    if value.isascii():
        return len(value)
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in value)


def shown_text(value: Any, num_format: str | None) -> str:
    """Roughly what Excel shows for ``value`` in ``num_format`` (for the column width);
    ``""`` for a blank."""
    if is_blank(value):
        return ""
    if num_format and isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        section = num_format.split(";")[0]
        decimals = len(section.split(".")[1].rstrip("%)_ ")) if "." in section else 0
        separator = "," if "," in section else ""
        try:
            return f"{float(value):{separator}.{decimals}f}"
        except (ValueError, OverflowError):
            return str(value)
    return str(value)


def holds_numbers(values: Sequence[Any]) -> bool:
    """True when the first non-blank value is a number or a date (Excel aligns it right)."""
    value = next((v for v in values if not is_blank(v)), None)
    if value is None or isinstance(value, (bool, np.bool_, str)):
        return False
    return isinstance(
        value, (int, float, Decimal, np.number, dt.date, dt.time, dt.timedelta, pd.Timestamp)
    )


def column_total(values: Sequence[Any]) -> float:
    """The sum of a column's numbers (blanks and NaN skipped), exact for ``Decimal`` values."""
    numbers = [v for v in values if v is not None and v is not pd.NA and v == v]
    if numbers and all(isinstance(v, (Decimal, int)) for v in numbers):
        return float(sum(numbers, Decimal(0)))
    return math.fsum(float(v) for v in numbers)


def check_options(
    sheets: Sequence[tuple[Any, pd.DataFrame]],
    *,
    index: bool,
    number_formats: Any,
    totals: Any,
    title: Any,
    charts: Any,
) -> dict[Any, list[str]]:
    """Check the layout options against the sheets; return the totals columns per sheet key.

    Raises:
        ValidationError: An option of the wrong type, a column or sheet it names that does
            not exist, or a totals column that holds something else than numbers.
    """
    headers = {key: headers_of(frame.reset_index() if index else frame) for key, frame in sheets}
    every = list(dict.fromkeys(h for hs in headers.values() for h in hs))
    where = "any sheet" if len(sheets) > 1 else "the table"
    if number_formats is not None:
        if not isinstance(number_formats, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in number_formats.items()
        ):
            raise ValidationError(
                f"number_formats must map column names to Excel number formats, not "
                f"{number_formats!r}.",
                "Pass a dict of column name → format string.",
                'number_formats={"Amount": "#,##0.00", "Rate": "0.0000"}',
            )
        unknown = [name for name in number_formats if name not in every]
        if unknown:
            raise _unknown_columns(unknown, where, every)
    _check_title(title, headers)
    if charts is not None and not callable(charts):
        raise ValidationError(
            f"charts must be a function (workbook, layouts) → None, not {charts!r}.",
            "Pass a function that adds charts with xlsxwriter's workbook.add_chart().",
            "def add_charts(book, layouts): ...",
        )
    wanted = _totals_per_sheet(sheets, headers, totals, where, every)
    frames = {key: frame.reset_index() if index else frame for key, frame in sheets}
    for key, columns in wanted.items():
        frame = frames[key]
        for column in columns:
            values = frame.iloc[:, headers[key].index(column)].tolist()
            bad = next((v for v in values if not _is_number(v)), None)
            if bad is not None:
                raise ValidationError(
                    f"Cannot total column {column!r} of sheet {key!r}: it holds {bad!r}, "
                    "not a number.",
                    "Total only columns of numbers (int, float or Decimal).",
                    'totals=["Amount"]',
                )
    return wanted


def title_lines(title: Any, key: Any) -> list[str]:
    """The heading lines of sheet ``key``: ``title`` is a str (split at newlines), a list of
    lines, or a dict of either by sheet key (a sheet it does not name has no heading)."""
    if isinstance(title, Mapping):
        title = title.get(key)
    if title is None:
        return []
    return title.splitlines() if isinstance(title, str) else list(title)


def _is_lines(value: Any) -> bool:
    return isinstance(value, str) or (
        isinstance(value, Sequence) and all(isinstance(t, str) for t in value)
    )


def _check_title(title: Any, headers: Mapping[Any, list[str]]) -> None:
    if title is None:
        return
    parts = list(title.values()) if isinstance(title, Mapping) else [title]
    if not all(_is_lines(part) for part in parts):
        raise ValidationError(
            f"title must be a str or a list of lines (or a dict of them by sheet), not {title!r}.",
            "Pass the heading text; each further line goes on a row of its own.",
            'title=["Receivables report", "As of 30 June 2025"]',
        )
    unknown = [key for key in title if key not in headers] if isinstance(title, Mapping) else []
    if unknown:
        raise ValidationError(
            f"title names sheet(s) {unknown!r} that the workbook does not have; its sheets "
            f"are: {list(headers)!r}.",
            "Key title= by the sheet names of the data (the dict's keys).",
            'title={"Summary": "Receivables summary"}',
        )


def _totals_per_sheet(
    sheets: Sequence[tuple[Any, pd.DataFrame]],
    headers: Mapping[Any, list[str]],
    totals: Any,
    where: str,
    every: list[str],
) -> dict[Any, list[str]]:
    if totals is None:
        return {}
    example = 'totals=["Amount"] or totals={"Customers": ["Revenue"]}'
    if isinstance(totals, Mapping):
        unknown_sheets = [key for key in totals if key not in headers]
        if unknown_sheets:
            raise ValidationError(
                f"totals names sheet(s) {unknown_sheets!r} that the workbook does not have; "
                f"its sheets are: {list(headers)!r}.",
                "Key totals= by the sheet names of the data (the dict's keys).",
                example,
            )
        wanted: dict[Any, list[str]] = {}
        for key, columns in totals.items():
            columns = _column_list(columns, example)
            unknown = [c for c in columns if c not in headers[key]]
            if unknown:
                raise _unknown_columns(unknown, f"sheet {key!r}", headers[key])
            wanted[key] = columns
        return wanted
    columns = _column_list(totals, example)
    unknown = [c for c in columns if c not in every]
    if unknown:
        raise _unknown_columns(unknown, where, every)
    return {key: [c for c in columns if c in headers[key]] for key, _ in sheets}


def _column_list(columns: Any, example: str) -> list[str]:
    if isinstance(columns, str) or not isinstance(columns, Sequence):
        raise ValidationError(
            f"totals must list column names, not {columns!r}.",
            "Pass a list of the columns to sum (or a dict of such lists by sheet).",
            example,
        )
    return [str(c) for c in columns]
