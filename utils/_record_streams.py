"""Streams of record pages, and CSV written from records with the ``csv`` module (no pandas).

A *stream* is an iterator (a generator, ``api.iter_pages(...)``) whose items are pages: a list
of dicts, a DataFrame, or a single dict (one record). :func:`iter_pieces` checks the pages and
numbers their rows; it serves the CSV and Parquet writers alike and imports neither pandas nor
pyarrow.

:func:`write_csv` writes a list of dicts or a stream of them page by page, holding one page
(plus the first batch's text, see below), without importing pandas: a script that pulls an API
into CSV pays for neither pandas' import nor its memory. Each value is written as Python writes
it: text as it is, ``7`` for an int, ``1.5`` and ``2.0`` for floats (the shortest round-trip
digits), ``True``/``False``, ``None``/``NaN``/``NaT``/``NA`` as an empty cell, anything else
(dates, Decimals, lists) as ``str()`` gives it. The columns are the keys in order of first
appearance within the first :data:`CSV_BATCH_ROWS` rows (their text is held until then, so a
column first seen on page 3 still gets its header); after that a page missing a column gets
empty cells and a page with a new column is a ``ValidationError`` (``columns=`` fixes the
columns up front and leaves other keys out). A DataFrame (as the data or as a page) is written
by pandas (``DataFrame.to_csv``), and so is data with an option only pandas knows
(``na_rep=``, ``quoting=``, ``date_format=`` ...): see ``table_writers.write_csv``.
"""

from __future__ import annotations

import csv
import io
import os
import sys
from collections.abc import Iterator, Mapping
from itertools import repeat
from pathlib import Path
from typing import Any

from utils.exceptions import ValidationError

CSV_BATCH_ROWS = 10_000
"""Rows of a stream whose keys, united, make the CSV columns (the first batch)."""
LOOSE_RECORDS_BATCH = 10_000  # single-dict items gathered into pages of this many
MAX_EXACT_FLOAT_INT = 2**53  # beyond it a float64 no longer holds every whole number exactly
CSV_OPTIONS = frozenset({"sep", "encoding", "header", "columns", "index", "mode"})
"""The ``save()`` options this writer takes itself; any other goes to pandas' writer."""
NULL_TEXTS = ("nan", "NaN", "NaT", "<NA>")
"""What ``str()`` writes for a missing value; a page whose text has one is checked value by
value (an empty cell for a null, the text kept for a string that merely contains it)."""
LINE_END = os.linesep  # as DataFrame.to_csv ends lines
QUOTE = '"'
_PLAIN_DICT = frozenset({dict})
SCHEMA_EXAMPLE = (
    'handler.save(pages, "output", "orders.parquet", '
    'schema=pa.schema([("id", pa.int64()), ("note", pa.string())]))'
)


def is_frame(value: Any) -> bool:
    """Whether ``value`` is a pandas DataFrame (without importing pandas)."""
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(value, pd.DataFrame)


def check_records(records: list[Any], where: str) -> None:
    """Raise ``ValidationError`` unless every item of ``records`` is a dict."""
    if set(map(type, records)) <= _PLAIN_DICT:  # a decoded page: one C-level pass, no ABC check
        return
    for position, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise ValidationError(
                f"Item {position} of {where} is a {type(record).__name__}, not a dict: a table "
                "needs one dict per row.",
                "Pass a list of dicts (one per row), or a DataFrame.",
                '[{"id": 1, "name": "Ada"}, {"id": 2, "name": "Lin"}]',
            )


def iter_pieces(pages: Iterator[Any], loose_batch: int) -> Iterator[tuple[int, Any]]:
    """Yield ``(first_row_number, piece)`` for each non-empty page of ``pages``.

    A piece is a list of dicts or a DataFrame; single dicts are gathered into lists of up to
    ``loose_batch`` records.

    Raises:
        ValidationError: A page is neither a dict, a list of dicts nor a DataFrame.
    """
    row = number = 0
    loose: list[Mapping[str, Any]] = []
    for page in pages:  # not enumerate(): its cached result tuple would keep the last page
        number += 1
        if isinstance(page, Mapping):
            loose.append(page)
            if len(loose) >= loose_batch:
                yield row, loose
                row, loose = row + len(loose), []
            continue
        if loose:
            yield row, loose
            row, loose = row + len(loose), []
        if isinstance(page, tuple):
            page = list(page)
        if isinstance(page, list):
            check_records(page, f"page {number} of the stream")
        elif not is_frame(page):
            raise ValidationError(
                f"Page {number} of the stream is a {type(page).__name__}.",
                "Yield pages that are lists of dicts, DataFrames, or single dicts.",
                "def pages():\n    yield [{'id': 1}, {'id': 2}]",
            )
        if len(page):
            size = len(page)
            yield row, page
            del page  # not held while the source fetches the next one
            row += size
    if loose:
        yield row, loose


def new_columns_error(new: list[Any], start: int, fmt: str) -> ValidationError:
    """The error for rows that bring columns the first batch of a ``fmt`` file lacked."""
    return ValidationError(
        f"The rows from row {start:,} have column(s) {new} that the first rows of the {fmt} "
        "file did not have; the columns are fixed by the first batch of rows.",
        "Give every page the same columns (None where there is no value)"
        + (", or pass schema= with every column." if fmt == "Parquet" else "."),
        SCHEMA_EXAMPLE if fmt == "Parquet" else None,
    )


def _is_null(value: Any) -> bool:
    """True for the values pandas writes as an empty cell: NaN (float, numpy, Decimal), NaT, NA."""
    if isinstance(value, float):  # numpy's float64 included
        return value != value
    decimal = sys.modules.get("decimal")  # a Decimal exists only once decimal is loaded
    if decimal is not None and isinstance(value, decimal.Decimal):
        return bool(value.is_nan())
    pd = sys.modules.get("pandas")
    if pd is not None and (value is pd.NaT or value is pd.NA):
        return True
    np = sys.modules.get("numpy")
    return np is not None and isinstance(value, np.floating) and bool(np.isnan(value))


def _render(rows: Any, sep: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=sep, lineterminator=LINE_END).writerows(rows)
    return buffer.getvalue()


def render_records(records: list[Mapping[Any, Any]], columns: list[Any], sep: str) -> str:
    """The CSV text of ``records`` in ``columns`` (a missing key is an empty cell)."""
    if not columns:  # records without keys: empty rows, as pandas writes them
        return LINE_END * len(records)
    values: list[list[Any]]
    if set(map(type, records)) <= _PLAIN_DICT:  # C-level column extraction
        get: Any = dict.get
        values = [list(map(get, records, repeat(name))) for name in columns]
    else:
        values = [[record.get(name) for record in records] for name in columns]
    text = _render(zip(*values, strict=True), sep)
    if any(null in text for null in NULL_TEXTS):
        values = [[None if _is_null(v) else v for v in column] for column in values]
        text = _render(zip(*values, strict=True), sep)
    return text


def integers_as_integers(frame: Any) -> Any:
    """Write whole-number float columns that hold nulls as integers (``7``, not ``7.0``).

    pandas turns an integer field that is missing in some records into float64, so a CSV
    would say ``7.0`` in a batch with a gap and ``7`` in one without. Such columns become
    nullable ``Int64`` (a gap is an empty cell), so every batch writes the same digits.
    """
    import pandas as pd  # loaded already: frame is a DataFrame

    changed = {}
    for name in frame.columns[frame.dtypes.map(pd.api.types.is_float_dtype).to_numpy()]:
        column = frame[name]
        if not column.hasnans:
            continue
        values = column.dropna()
        if ((values % 1) == 0).all() and (values.abs() < MAX_EXACT_FLOAT_INT).all():
            changed[name] = column.astype("Int64")
    if changed:
        frame = frame.copy(deep=False)
        for name, column in changed.items():
            frame[name] = column
    return frame


def frame_csv_text(frame: Any, columns: list[Any], sep: str) -> str:
    """The CSV text of a DataFrame page of a record stream: ``columns``, no header, no index."""
    if list(frame.columns) != columns:
        frame = frame.reindex(columns=columns)
    text: str = integers_as_integers(frame).to_csv(None, header=False, index=False, sep=sep)
    return text


class CsvRecordWriter:
    """Writes pieces (lists of dicts, DataFrames) to an open CSV file; see the module docstring.

    Args:
        handle: The open text file (``newline=""``).
        sep: The one-character field separator.
        header: Write the header line.
        columns: The columns chosen with ``columns=`` (other keys left out), or None.
    """

    def __init__(self, handle: Any, sep: str, header: bool, columns: list[Any] | None):
        self.handle = handle
        self.sep = sep
        self.header = header
        self.chosen = columns is not None
        self.columns: list[Any] = list(columns) if columns is not None else []
        self.known = set(self.columns)
        self.fixed = False  # the columns are settled and the header written
        self.first_batch: list[tuple[int, str]] = []  # (columns when rendered, text)
        self.first_rows = 0
        if self.chosen:
            self._flush_first_batch()  # nothing to wait for: the header can go first

    def write(self, piece: Any, start: int) -> None:
        """Write one piece whose first row is row ``start`` of the data."""
        names = list(piece.columns) if is_frame(piece) else _keys_in_order(piece)
        new = [name for name in names if name not in self.known]
        if new and not self.chosen:
            if self.fixed:
                raise new_columns_error(new, start, "CSV")
            self.columns += new
            self.known.update(new)
        text = self._text(piece)
        if self.fixed:
            self.handle.write(text)
            return
        self.first_batch.append((len(self.columns), text))
        self.first_rows += len(piece)
        if self.first_rows >= CSV_BATCH_ROWS:
            self._flush_first_batch()

    def finish(self) -> None:
        """Write what the first batch still holds."""
        if not self.fixed and self.first_batch:
            self._flush_first_batch()

    def _text(self, piece: Any) -> str:
        if is_frame(piece):
            return frame_csv_text(piece, self.columns, self.sep)
        return render_records(piece, self.columns, self.sep)

    def _flush_first_batch(self) -> None:
        if self.header:
            self.handle.write(_render([[str(name) for name in self.columns]], self.sep))
        width = len(self.columns)
        for rendered_width, text in self.first_batch:
            self.handle.write(_pad(text, width - rendered_width, self.sep))
        self.first_batch, self.fixed = [], True


def _keys_in_order(records: list[Mapping[Any, Any]]) -> list[Any]:
    """Every key of ``records``, in order of first appearance."""
    first = records[0]
    if len(set().union(*records)) == len(first):  # no record has a key the first lacks
        return list(first)
    return list(dict.fromkeys(key for record in records for key in record))


def _pad(text: str, missing: int, sep: str) -> str:
    """``text`` with ``missing`` empty cells added to the end of every row."""
    if missing <= 0 or not text:
        return text
    if QUOTE not in text:  # no quoted field, so every line end ends a row
        return text.replace(LINE_END, sep * missing + LINE_END)
    rows = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    return _render((row + [""] * missing for row in rows), sep)


def takes_options(kwargs: Mapping[str, Any]) -> bool:
    """Whether this writer takes every option in ``kwargs`` (else pandas' writer does)."""
    sep = kwargs.get("sep", ",")
    return (
        set(kwargs) <= CSV_OPTIONS
        and not kwargs.get("index", False)
        and isinstance(kwargs.get("header", True), bool)
        and isinstance(sep, str)
        and len(sep) == 1
    )


def write_csv(path: Path, data: Any, **kwargs: Any) -> None:
    """Write ``data`` (a list of dicts, or a stream of pages) as CSV with the ``csv`` module.

    ``save()`` sends a DataFrame, or data with an option only pandas takes (see
    :func:`takes_options`), to ``table_writers.write_csv`` instead.

    Raises:
        ValidationError: A page is not a table, or brings a new column after the first batch.
    """
    columns = kwargs.get("columns")
    encoding = kwargs.get("encoding", "utf-8")
    with open(path, "w", encoding=encoding, newline="") as handle:
        writer = CsvRecordWriter(
            handle,
            kwargs.get("sep", ","),
            kwargs.get("header", True),
            None if columns is None else list(columns),
        )
        if isinstance(data, list):
            if data:
                writer.write(data, 0)
        else:
            for start, piece in iter_pieces(data, LOOSE_RECORDS_BATCH):
                writer.write(piece, start)
                del piece  # one page in memory at a time (see iter_pieces)
        writer.finish()
