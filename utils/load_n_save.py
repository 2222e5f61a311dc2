"""Save and load a script's data: one ``save()`` that picks the format and writes atomically.

Example::

    handler = TxoDataHandler()
    handler.save(df, "output", timestamped_filename(config, "customers", "xlsx"))
    handler.save(api.iter_pages("/orders"), "output", "orders.parquet")  # streamed

The format comes from the extension (any case) and is checked against the data before anything
is written:

============ ==============================================================================
``.json``    a dict, a list, or a DataFrame (a list of row objects); see ``json_encoding``
``.jsonl``   a list of records, a DataFrame, or an iterator of pages (streamed)
``.csv``     a DataFrame, a list of dicts, or an iterator of pages (streamed)
``.parquet`` a DataFrame, a list of dicts, or an iterator of pages (streamed, row groups)
``.xlsx``    a DataFrame, a list of dicts, or a dict of them (one sheet each); ``excel_writer``
``.txt``     a str, written exactly
============ ==============================================================================

Streams and their column rules: see ``table_writers``.

Every save goes through :func:`utils.atomic_write.write_atomically`: a crash, Ctrl-C or
SIGTERM leaves the previous file (or none), never a partial one. Each file written counts in
``run_stats.FILES_WRITTEN`` and is logged at INFO with its size.

Errors: a wrong data type or unknown extension is a ``ValidationError``; a file name that is
absolute or escapes its folder, a missing file, or a disk problem is a ``FileOperationError``;
a file whose content cannot be parsed (corrupt JSON, CSV, Parquet or Excel) is a
``ValidationError`` (the file was read; its content is invalid), with line and column for JSON.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from utils import run_stats
from utils.atomic_write import TEMP_SUFFIX, write_atomically
from utils.excel_writer import DEFAULT_SHEET_NAME, write_excel
from utils.exceptions import ConfigurationError, FileOperationError, ValidationError
from utils.json_encoding import encode
from utils.path_helpers import get_path
from utils.table_writers import check_records, write_csv, write_jsonl, write_parquet

log = logging.getLogger(__name__)

TIMESTAMP_FORMAT = "%Y-%m-%dT%H%MZ"
LISTING_LIMIT = 10
CLOSE_MATCHES = 3
SIZE_UNITS = ("B", "KB", "MB", "GB", "TB")
SIZE_STEP = 1024

_STREAM = "an iterator of pages (streamed)"
ACCEPTED: dict[str, str] = {
    ".json": "a dict, a list, or a DataFrame (written as a list of row objects)",
    ".jsonl": f"a list of records, a DataFrame, or {_STREAM}",
    ".csv": f"a DataFrame, a list of dicts, or {_STREAM}",
    ".parquet": f"a DataFrame, a list of dicts, or {_STREAM}",
    ".xlsx": "a DataFrame, a list of dicts, or a dict of DataFrames (one sheet each)",
    ".txt": "a str",
}
# What each extension accepts, by the kind _kind() gives the data.
_KINDS: dict[str, frozenset[str]] = {
    ".json": frozenset({"dict", "list", "frame"}),
    ".jsonl": frozenset({"list", "frame", "stream"}),
    ".csv": frozenset({"list", "frame", "stream"}),
    ".parquet": frozenset({"list", "frame", "stream"}),
    ".xlsx": frozenset({"list", "frame", "dict"}),
    ".txt": frozenset({"str"}),
}
_TABLES = frozenset({".csv", ".parquet", ".xlsx"})


def _kind(data: Any) -> str:
    if isinstance(data, pd.DataFrame):
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


def _extension(filename: str) -> str:
    suffix = Path(str(filename)).suffix.lower()
    if suffix not in ACCEPTED:
        raise ValidationError(
            f"Cannot save {filename!r}: unknown extension {suffix or '(none)'!r}.",
            f"Name the file with one of: {', '.join(ACCEPTED)}.",
            'handler.save(df, "output", "report.xlsx")',
        )
    return suffix


def _type_error(data: Any, ext: str, detail: str = "") -> ValidationError:
    hint = {
        ".txt": "Convert the value with str() or json.dumps(), or use a format for its type.",
        ".json": "Use .jsonl for a stream of pages, or .txt for text.",
    }.get(ext, "Pass one of the accepted types, or pick the extension that fits the data.")
    return ValidationError(
        f"Cannot save a {type(data).__name__} as {ext}{detail}; {ext} accepts {ACCEPTED[ext]}.",
        hint,
        'handler.save([{"id": 1}], "output", "rows.csv")',
    )


def _xlsx_sheets(data: Any, kwargs: dict[str, Any]) -> list[tuple[Any, pd.DataFrame]]:
    if not isinstance(data, Mapping):
        name = kwargs.pop("sheet_name", DEFAULT_SHEET_NAME)
        return [(name, data if isinstance(data, pd.DataFrame) else pd.DataFrame(data))]
    if "sheet_name" in kwargs:
        raise ValidationError(
            "sheet_name= names the sheet of a single table; a dict's keys name its sheets.",
            "Drop sheet_name=, or rename the dict's keys.",
        )
    sheets = []
    for key, value in data.items():
        if isinstance(value, (list, tuple)):
            check_records(list(value), f"sheet {key!r}")
            value = pd.DataFrame(list(value))
        if not isinstance(value, pd.DataFrame):
            raise _type_error(data, ".xlsx", f" (sheet {key!r} holds a {type(value).__name__})")
        sheets.append((key, value))
    return sheets


def _write_text(path: Path, text: str, encoding: str = "utf-8", errors: str = "strict") -> None:
    with open(path, "w", encoding=encoding, errors=errors, newline="") as handle:
        handle.write(text)


def _human_size(size: float) -> str:
    for unit in SIZE_UNITS:
        if size < SIZE_STEP or unit == SIZE_UNITS[-1]:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= SIZE_STEP
    raise AssertionError("unreachable")


class TxoDataHandler:
    """Save data in the format its file name asks for; load it back.

    Example:
        >>> handler = TxoDataHandler()
        >>> path = handler.save({"total": Decimal("12.30")}, "output", "totals.json")
        >>> path.read_text()
        '{\\n  "total": 12.30\\n}'
        >>> handler.load_json("output", "totals.json", parse_float=Decimal)
        {'total': Decimal('12.30')}
    """

    def save(self, data: Any, directory: str, filename: str, **kwargs: Any) -> Path:
        """Write ``data`` to ``directory/filename`` atomically, in the extension's format.

        Args:
            data: See the module table for what each extension accepts.
            directory: A ``get_path`` category (``output``, ``data``, ``tmp`` ...).
            filename: Name inside the folder; may contain sub-folders, which are created.
            **kwargs: Passed to the writer: ``DataFrame.to_csv`` options for ``.csv``
                (``index=False`` by default, ``encoding="utf-8"``); ``indent`` (default 2),
                ``sort_keys``, ``ensure_ascii`` for ``.json``/``.jsonl``; ``compression``,
                ``schema``, ``row_group_size`` and other pyarrow options for ``.parquet``;
                ``sheet_name``, ``index``, ``datetime_format``, ``date_format`` for
                ``.xlsx``; ``encoding`` for ``.txt``.

        Returns:
            The path written.

        Raises:
            ValidationError: Unknown extension, or data of a type the extension does not take
                (nothing is written).
            FileOperationError: Absolute or escaping file name (nothing is written), or the
                file could not be written (the previous file is unchanged).
        """
        target = get_path(directory, filename)
        ext = _extension(filename)
        kind = _kind(data)
        if kind not in _KINDS[ext]:
            raise _type_error(data, ext)
        if isinstance(data, tuple):
            data = list(data)
        if kind == "list" and ext in _TABLES:
            check_records(data, "the list")
        write: Callable[[Path], None]
        if ext == ".json":
            write = functools.partial(_write_text, text=encode(data, **kwargs))
        elif ext == ".txt":
            write = functools.partial(_write_text, text=data, **kwargs)
        elif ext == ".xlsx":
            sheets = _xlsx_sheets(data, kwargs)  # takes sheet_name= out of kwargs
            write = functools.partial(write_excel, sheets=sheets, **kwargs)
        else:
            writer = {".csv": write_csv, ".parquet": write_parquet, ".jsonl": write_jsonl}[ext]
            write = functools.partial(writer, data=data, **kwargs)
        size = write_atomically(target, write)
        run_stats.increment(run_stats.FILES_WRITTEN)
        log.info("Saved %s (%s)", target, _human_size(size))
        return target

    def exists(self, directory: str, filename: str) -> bool:
        """Return whether ``directory/filename`` is an existing file.

        Raises:
            FileOperationError: The name is absolute or escapes its folder.
        """
        return get_path(directory, filename).is_file()

    def _existing(self, directory: str, filename: str, loader: str) -> Path:
        path = get_path(directory, filename)
        if path.is_file():
            return path
        folder = path.parent
        names = sorted(
            p.name
            for p in (folder.iterdir() if folder.is_dir() else ())
            if not (p.name.startswith(".") and p.name.endswith(TEMP_SUFFIX))
        )
        shown = ", ".join(names[:LISTING_LIMIT])
        more = f" (and {len(names) - LISTING_LIMIT} more)" if len(names) > LISTING_LIMIT else ""
        listing = f"It holds: {shown}{more}." if names else "It is empty or missing."
        matches = difflib.get_close_matches(path.name, names, n=CLOSE_MATCHES)
        guess = str(Path(filename).with_name(matches[0])) if matches else filename
        raise FileOperationError(
            f"File {filename!r} not found in {folder}.",
            f"Check the name, or create the file first (save() writes it). {listing}",
            f'handler.{loader}("{directory}", "{guess}")',
        )

    @staticmethod
    def _invalid(path: Path, kind: str, err: BaseException, fix: str) -> ValidationError:
        return ValidationError(f"{path} is not a valid {kind} file: {err}.", fix)

    def load_json(self, directory: str, filename: str, **kwargs: Any) -> Any:
        """Load a ``.json`` file, or a ``.jsonl`` file as a list of its lines' values.

        Args:
            directory: A ``get_path`` category.
            filename: Name inside the folder.
            **kwargs: ``json.loads`` options; ``parse_float=decimal.Decimal`` keeps exact
                digits.

        Raises:
            FileOperationError: The file is missing or unreadable.
            ValidationError: The content is not valid JSON (line and column given).
        """
        path = self._existing(directory, filename, "load_json")
        fix = "Fix the file at that position, or write it again with save()."
        line_number = 0
        try:
            with open(path, encoding="utf-8-sig") as handle:
                if path.suffix.lower() != ".jsonl":
                    return json.load(handle, **kwargs)
                values = []
                for line_number, line in enumerate(handle, start=1):  # noqa: B007
                    if line.strip():
                        values.append(json.loads(line, **kwargs))
                return values
        except json.JSONDecodeError as err:
            where = f"{err.msg} at line {line_number or err.lineno}, column {err.colno}"
            raise ValidationError(f"{path} is not valid JSON: {where}.", fix) from err
        except UnicodeDecodeError as err:
            raise self._invalid(path, "UTF-8 JSON", err, "Save the file as UTF-8.") from err
        except OSError as err:
            raise FileOperationError(f"Cannot read {path}: {err.strerror}.", _READ_FIX) from err

    def load_csv(self, directory: str, filename: str, **kwargs: Any) -> pd.DataFrame:
        """Load a CSV file with ``pandas.read_csv`` (``kwargs`` passed on); an empty file
        gives an empty DataFrame.

        Raises:
            FileOperationError: The file is missing or unreadable.
            ValidationError: The content cannot be parsed (or decoded: pass ``encoding=``).
        """
        path = self._existing(directory, filename, "load_csv")
        try:
            return pd.read_csv(path, **kwargs)
        except pd.errors.EmptyDataError:
            return pd.DataFrame()
        except (pd.errors.ParserError, UnicodeDecodeError) as err:
            fix = "Check the separator and encoding (sep=, encoding=), or fix the file."
            raise self._invalid(path, "CSV", err, fix) from err
        except OSError as err:
            raise FileOperationError(f"Cannot read {path}: {err.strerror}.", _READ_FIX) from err

    def load_parquet(self, directory: str, filename: str, **kwargs: Any) -> pd.DataFrame:
        """Load a Parquet file with ``pandas.read_parquet`` (``columns=``, ``filters=`` ...).

        Raises:
            FileOperationError: The file is missing or unreadable.
            ValidationError: The content is not Parquet.
        """
        path = self._existing(directory, filename, "load_parquet")
        try:
            return pd.read_parquet(path, engine="pyarrow", **kwargs)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
            raise self._invalid(path, "Parquet", err, "Write the file again with save().") from err
        except OSError as err:
            raise FileOperationError(f"Cannot read {path}: {err}.", _READ_FIX) from err

    def load_excel(
        self, directory: str, filename: str, sheet_name: str | int | None = 0, **kwargs: Any
    ) -> pd.DataFrame | dict[str, pd.DataFrame]:
        """Load a sheet of an Excel workbook with ``pandas.read_excel`` (openpyxl).

        Args:
            directory: A ``get_path`` category.
            filename: Name inside the folder.
            sheet_name: The sheet's name or position (default: the first sheet); ``None``
                loads every sheet into a dict keyed by sheet name.
            **kwargs: Other ``pandas.read_excel`` options.

        Raises:
            FileOperationError: The file is missing or unreadable.
            ValidationError: The sheet does not exist (the sheets are listed), or the file is
                not an Excel workbook.
        """
        path = self._existing(directory, filename, "load_excel")
        try:
            with pd.ExcelFile(path, engine="openpyxl") as book:
                sheets = [str(s) for s in book.sheet_names]
                if sheet_name is not None and (
                    sheet_name not in sheets
                    if isinstance(sheet_name, str)
                    else not -len(sheets) <= sheet_name < len(sheets)
                ):
                    raise ValidationError(
                        f"{path} has no sheet {sheet_name!r}; its sheets are: {', '.join(sheets)}.",
                        "Pass one of those names (or a position from 0) as sheet_name=, or "
                        "sheet_name=None for all of them.",
                        f'handler.load_excel("{directory}", "{filename}", '
                        f'sheet_name="{sheets[0] if sheets else DEFAULT_SHEET_NAME}")',
                    )
                return pd.read_excel(book, sheet_name=sheet_name, **kwargs)
        except ValidationError:
            raise
        except OSError as err:
            raise FileOperationError(f"Cannot read {path}: {err}.", _READ_FIX) from err
        except Exception as err:  # openpyxl/zipfile raise many types for a corrupt workbook
            raise self._invalid(path, "Excel", err, "Write the file again with save().") from err


_READ_FIX = "Check that the file is readable by this user and not locked by another program."


def timestamped_filename(
    config: Mapping[str, Any], name: str, ext: str, now: dt.datetime | None = None
) -> str:
    """Return ``{org_id}-{env_type}-{name}_{YYYY-MM-DDTHHMMZ}.{ext}`` for the current UTC time.

    Args:
        config: The loaded config (``_org_id`` and ``_env_type`` are injected by
            ``parse_args_and_load_config``).
        name: What the file holds (``customers``).
        ext: The extension, with or without its leading dot.
        now: The time to use (tests); a naive value is taken as UTC. Default: now.

    Raises:
        ConfigurationError: The config lacks ``_org_id`` or ``_env_type``.
        ValidationError: ``name`` or ``ext`` is empty or contains a path separator.

    Example:
        >>> timestamped_filename({"_org_id": "acme", "_env_type": "prod"}, "customers",
        ...                      ".xlsx", now=dt.datetime(2024, 3, 5, 14, 7))
        'acme-prod-customers_2024-03-05T1407Z.xlsx'
    """
    org, env = config.get("_org_id"), config.get("_env_type")
    if not org or not env:
        raise ConfigurationError(
            "The config has no _org_id/_env_type to name the file with.",
            "Pass the config returned by parse_args_and_load_config(), which injects them.",
            'config = parse_args_and_load_config("Customer report")',
        )
    ext = ext[1:] if ext.startswith(".") else ext
    for label, part in (("name", name), ("ext", ext)):
        if not part or "/" in part or "\\" in part:
            raise ValidationError(
                f"timestamped_filename() got an invalid {label} {part!r}.",
                "Give a plain, non-empty name and extension; put sub-folders in front of "
                "the returned name instead.",
                'f"2024/{timestamped_filename(config, "customers", "csv")}"',
            )
    moment = now or dt.datetime.now(dt.timezone.utc)
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc)
    return f"{org}-{env}-{name}_{moment.strftime(TIMESTAMP_FORMAT)}.{ext}"
