"""What ``save()`` accepts for each extension, and the writer that puts the data in a file.

The table of accepted types, the checks that reject data before anything is written (each
error names what the extension accepts), and the choice of writer: ``json_encoding`` for
``.json``/``.jsonl`` (no DataFrame library needed), ``table_writers`` for ``.csv``/``.parquet``,
``excel_writer`` for ``.xlsx``. Those two bring pandas, pyarrow and xlsxwriter; they are
imported here on first use only.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from utils import _record_streams
from utils._json_encoding import encode, write_jsonl
from utils.exceptions import ValidationError

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_SHEET_NAME = "Sheet1"  # as utils._excel_writer names an unnamed sheet
UNEXPECTED_OPTION = "unexpected keyword argument"

_STREAM = "an iterator of pages (streamed)"
ACCEPTED: dict[str, str] = {
    ".json": "a dict, a list, or a DataFrame (written as a list of row objects)",
    ".jsonl": f"a list of records, a DataFrame, or {_STREAM}",
    ".csv": f"a DataFrame, a list of dicts, or {_STREAM}",
    ".parquet": f"a DataFrame, a list of dicts, or {_STREAM}",
    ".xlsx": "a DataFrame, a list of dicts, or a dict of DataFrames (one sheet each; a "
    "list of dicts also makes a sheet)",
    ".txt": "a str",
}
# What each extension accepts, by the kind kind_of() gives the data.
KINDS: dict[str, frozenset[str]] = {
    ".json": frozenset({"dict", "list", "frame"}),
    ".jsonl": frozenset({"list", "frame", "stream"}),
    ".csv": frozenset({"list", "frame", "stream"}),
    ".parquet": frozenset({"list", "frame", "stream"}),
    ".xlsx": frozenset({"list", "frame", "dict"}),
    ".txt": frozenset({"str"}),
}
_TABLES = frozenset({".csv", ".parquet", ".xlsx"})
# The options each format's writer takes, named in the error for one it does not.
OPTIONS: dict[str, str] = {
    ".json": "indent, sort_keys, ensure_ascii, separators",
    ".jsonl": "sort_keys, ensure_ascii, separators",
    ".csv": "DataFrame.to_csv options (sep, columns, header, index, encoding, date_format ...)",
    ".parquet": "schema, row_group_size, compression and other pyarrow ParquetWriter options",
    ".xlsx": "sheet_name (one table), index, datetime_format, date_format, number_formats, "
    "title, totals, charts",
    ".txt": "encoding, errors",
}


class SourceFailure(BaseException):
    """Carries an exception raised by the caller's iterator out through the writers.

    A ``BaseException`` so that no writer's ``except Exception`` catches it, and so that
    ``write_atomically`` does not mistake the caller's ``OSError`` (a page fetch failing) for
    a disk error: ``save()`` unwraps it and raises the original exception, unchanged.
    """

    def __init__(self, error: BaseException) -> None:
        super().__init__(error)
        self.error = error


def guarded(pages: Iterator[Any]) -> Iterator[Any]:
    """Yield the items of ``pages``; an exception raised while producing one is wrapped in
    :class:`SourceFailure`."""
    while True:
        try:
            page = next(pages)
        except StopIteration:
            return
        except BaseException as err:  # the caller's own failure, handed back unchanged
            raise SourceFailure(err) from None
        yield page
        del page  # not held while the source fetches the next one


def is_frame(data: Any) -> bool:
    """Return whether ``data`` is a pandas DataFrame (without importing pandas)."""
    # A DataFrame can only exist once pandas is loaded; no need to import it to find out.
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(data, pd.DataFrame)


def kind_of(data: Any) -> str:
    """Return ``frame``, ``str``, ``dict``, ``list``, ``stream`` or ``other`` for ``data``."""
    if is_frame(data):
        return "frame"
    if isinstance(data, str):
        return "str"
    if isinstance(data, Mapping):
        return "dict"
    if isinstance(data, (list, tuple)):
        return "list"
    if isinstance(data, Iterator):
        return "stream"
    return "other"


def describe(value: Any) -> str:
    """Return ``"a dict"``, ``"an int"``, ``"None"`` ... for an error message."""
    if value is None:
        return "None"
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def extension_of(filename: Any) -> str:
    """Return the lower-case extension of ``filename``.

    Raises:
        ValidationError: The extension is missing or not one of :data:`ACCEPTED`.
    """
    suffix = Path(str(filename)).suffix.lower()
    if suffix not in ACCEPTED:
        problem = (
            f"unknown extension {suffix!r}"
            if suffix
            else "the name has no extension to pick the format from"
        )
        raise ValidationError(
            f"Cannot save {str(filename)!r}: {problem}.",
            f"Name the file with one of: {', '.join(ACCEPTED)}.",
            'handler.save(df, "output", "report.xlsx")',
        )
    return suffix


def type_error(data: Any, ext: str, detail: str = "") -> ValidationError:
    """Return the error for ``data`` of a type ``ext`` does not accept."""
    hint = {
        ".txt": "Convert the value with str() or json.dumps(), or use a format for its type.",
        ".json": "Use .jsonl for a stream of pages, or .txt for text.",
    }.get(ext, "Pass one of the accepted types, or pick the extension that fits the data.")
    return ValidationError(
        f"Cannot save {describe(data)} as {ext}{detail}; {ext} accepts {ACCEPTED[ext]}.",
        hint,
        'handler.save([{"id": 1}], "output", "rows.csv")',
    )


def check_rows(rows: list[Any], ext: str, where: str = "the list") -> None:
    """Raise ``ValidationError`` unless every item of ``rows`` is a dict (a table row)."""
    for position, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ValidationError(
                f"Cannot save {where} as {ext}: item {position} is {describe(row)}, not a "
                f"dict (one dict per row); {ext} accepts {ACCEPTED[ext]}.",
                "Pass a list of dicts (one per row), or a DataFrame.",
                '[{"id": 1, "name": "Ada"}, {"id": 2, "name": "Lin"}]',
            )


def _xlsx_sheets(data: Any, kwargs: dict[str, Any]) -> list[tuple[Any, pd.DataFrame]]:
    import pandas as pd

    if not isinstance(data, Mapping):
        name = kwargs.pop("sheet_name", DEFAULT_SHEET_NAME)
        return [(name, data if isinstance(data, pd.DataFrame) else pd.DataFrame(data))]
    if "sheet_name" in kwargs:
        raise ValidationError(
            "sheet_name= names the sheet of a single table; a dict's keys name its sheets.",
            "Drop sheet_name=, or rename the dict's keys.",
        )
    sheets: list[tuple[Any, pd.DataFrame]] = []
    for key, value in data.items():
        if isinstance(value, (list, tuple)):
            check_rows(list(value), ".xlsx", f"sheet {key!r}")
            value = pd.DataFrame(list(value))
        if not isinstance(value, pd.DataFrame):
            raise ValidationError(
                f"Cannot save a dict as .xlsx: sheet {key!r} holds {describe(value)}, not a "
                f"table; .xlsx accepts {ACCEPTED['.xlsx']}.",
                "Make every value of the dict a DataFrame (or a list of dicts, one per row).",
                'handler.save({"Customers": customers_df}, "output", "report.xlsx")',
            )
        sheets.append((key, value))
    return sheets


def _write_text(path: Path, text: str, encoding: str = "utf-8", errors: str = "strict") -> None:
    with open(path, "w", encoding=encoding, errors=errors, newline="") as handle:
        handle.write(text)


def writer_for(data: Any, ext: str, kind: str, kwargs: dict[str, Any]) -> Callable[[Path], None]:
    """Return a function that writes ``data`` in ``ext``'s format to the path it is given."""
    if ext == ".json":
        return functools.partial(_write_text, text=encode(data, **kwargs))
    if ext == ".txt":
        return functools.partial(_write_text, text=data, **kwargs)
    if ext == ".jsonl":
        return functools.partial(write_jsonl, data=data, **kwargs)
    if kind == "list" and ext in _TABLES:
        check_rows(data, ext)
    if ext == ".xlsx":
        from utils._excel_writer import check_xlsx_options, write_excel

        sheets = _xlsx_sheets(data, kwargs)  # takes sheet_name= out of kwargs
        check_xlsx_options(sheets, **kwargs)  # a bad column name fails before any file exists
        return functools.partial(write_excel, sheets=sheets, **kwargs)
    if ext == ".csv" and kind != "frame" and _record_streams.takes_options(kwargs):
        # records need no pandas (nor its import time and memory): the csv module writes them
        return functools.partial(_record_streams.write_csv, data=data, **kwargs)
    from utils import _table_writers as table_writers

    writer = table_writers.write_csv if ext == ".csv" else table_writers.write_parquet
    return functools.partial(writer, data=data, **kwargs)


def option_error(err: TypeError, ext: str) -> ValidationError:
    """Return the error for a keyword option ``ext``'s writer does not take."""
    return ValidationError(
        f"save() got an option that {ext} does not take: {err}.",
        f"Drop or rename it; {ext} takes: {OPTIONS[ext]}.",
        'handler.save(df, "output", "report.csv", sep=";")',
    )


def encoding_error(err: UnicodeEncodeError, target: Path) -> ValidationError:
    """Return the error for text that the chosen ``encoding=`` (or UTF-8) cannot hold.

    Only ``.txt`` takes ``errors=``; in the other formats the value itself must change. A lone
    surrogate (text decoded with ``errors="surrogateescape"``, or a ``"\\ud800"`` escape
    in JSON) has no form in any encoding.
    """
    bad = err.object[err.start : err.end]
    problem = (
        f"Cannot write {target.name}: {bad!r} (position {err.start:,}) cannot be written in "
        f"the {err.encoding} encoding."
    )
    if target.suffix.lower() == ".txt":
        return ValidationError(
            problem,
            "Keep the default encoding (UTF-8), or pass errors='replace' to write '?' instead.",
            'handler.save(text, "output", "notes.txt", encoding="cp1252", errors="replace")',
        )
    if any(0xD800 <= ord(c) <= 0xDFFF for c in bad):
        return ValidationError(
            problem,
            "A text value holds a lone surrogate, which no encoding can write: replace it in "
            "the data before saving.",
            'value = value.encode("utf-8", "replace").decode("utf-8")  # "?" for the surrogate',
        )
    return ValidationError(
        problem,
        "Keep the default encoding (UTF-8), which writes every character, or replace the "
        "character in the data.",
        f'handler.save(data, "output", "{target.name}")  # UTF-8',
    )
