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

Every save goes through :func:`utils._atomic_write.write_atomically`: a crash, Ctrl-C or
SIGTERM leaves the previous file (or none), never a partial one. Each file written counts in
``run_stats.FILES_WRITTEN`` and is logged at INFO with its size.

Errors: a wrong data type, an unknown extension, an option the format's writer does not take,
or text the chosen ``encoding=`` cannot hold is a ``ValidationError``; a file name that is
absolute or escapes its folder, a missing file, or a disk problem is a ``FileOperationError``;
a file whose content cannot be parsed (corrupt JSON, CSV, Parquet or Excel) is a
``ValidationError`` (the file was read; its content is invalid), with line and column for JSON.
The name and the data are checked before anything touches the disk: a rejected save creates
no file and no folder. An exception raised by the data itself (a generator failing mid-stream)
propagates unchanged, after the temporary file is removed.

pandas, pyarrow and xlsxwriter are imported on first use, not with this module, so that a
script's ``--help`` (and a save of a dict to JSON) does not pay for them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from utils import run_stats
from utils._atomic_write import TEMP_SUFFIX, write_atomically
from utils._output_names import is_reservation, reserve
from utils._save_formats import (
    ACCEPTED,
    DEFAULT_SHEET_NAME,
    KINDS,
    UNEXPECTED_OPTION,
    SourceFailure,
    encoding_error,
    extension_of,
    guarded,
    kind_of,
    option_error,
    type_error,
    writer_for,
)
from utils.exceptions import ConfigurationError, FileOperationError, ValidationError
from utils.path_helpers import check_path, get_category_dir

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

__all__ = ["ACCEPTED", "TxoDataHandler", "timestamped_filename"]

TIMESTAMP_FORMAT = "%Y-%m-%dT%H%MZ"
LISTING_LIMIT = 10
CLOSE_MATCHES = 3
SIZE_UNITS = ("B", "KB", "MB", "GB", "TB")
SIZE_STEP = 1024


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
                ``sheet_name``, ``index``, ``datetime_format``, ``date_format``,
                ``number_formats`` (column → Excel number format, e.g.
                ``{"Rate": "0.0000"}``; ``Decimal`` columns default to ``#,##0.00``),
                ``title``, ``totals`` and ``charts`` for ``.xlsx`` (see ``excel_writer``);
                ``encoding`` for ``.txt``.

        Returns:
            The path written.

        Raises:
            ValidationError: Unknown extension, data of a type the extension does not take,
                an option its writer does not take, or text the encoding cannot hold
                (nothing is written).
            FileOperationError: Absolute or escaping file name (nothing is written), or the
                file could not be written (the previous file is unchanged).
        """
        target = check_path(directory, filename)  # fails before any folder is created
        ext = extension_of(filename)
        kind = kind_of(data)
        if kind not in KINDS[ext]:
            raise type_error(data, ext)
        if isinstance(data, tuple):
            data = list(data)
        elif kind == "stream":
            data = guarded(data)
        source_error: BaseException | None = None
        try:
            write = writer_for(data, ext, kind, dict(kwargs))
            size = write_atomically(target, write)  # creates the folders
        except SourceFailure as failure:
            source_error = failure.error
        except TypeError as err:
            if UNEXPECTED_OPTION not in str(err):
                raise
            raise option_error(err, ext) from err
        except UnicodeEncodeError as err:
            raise encoding_error(err, target) from err
        except LookupError as err:
            if type(err) is not LookupError:  # KeyError, IndexError: not about the encoding
                raise
            raise ValidationError(
                f"Cannot save {filename!r}: {err}.",
                "Pass a codec Python knows as encoding= (utf-8, utf-8-sig, cp1252 ...).",
            ) from err
        if source_error is not None:
            raise source_error  # outside the except block: no chained SourceFailure
        run_stats.increment(run_stats.FILES_WRITTEN)
        log.info("Saved %s (%s)", target, _human_size(size))
        return target

    def exists(self, directory: str, filename: str) -> bool:
        """Return whether ``directory/filename`` is an existing file (no folder is created).

        Raises:
            FileOperationError: The name is absolute or escapes its folder.
        """
        return check_path(directory, filename).is_file()

    def _existing(self, directory: str, filename: str, loader: str) -> Path:
        path = check_path(directory, filename)
        if path.is_file():
            return path
        folder = path.parent
        names = sorted(
            p.name
            for p in (folder.iterdir() if folder.is_dir() else ())
            if not (p.name.startswith(".") and p.name.endswith(TEMP_SUFFIX))
            and not is_reservation(p.name)
        )
        shown = ", ".join(names[:LISTING_LIMIT])
        more = f" (and {len(names) - LISTING_LIMIT} more)" if len(names) > LISTING_LIMIT else ""
        listing = f"It holds: {shown}{more}." if names else "It is empty or missing."
        import difflib  # only for an error's suggestion

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
        import pandas as pd

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
        import pandas as pd
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = self._existing(directory, filename, "load_parquet")
        try:
            return pd.read_parquet(path, engine="pyarrow", **kwargs)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
            try:
                names = pq.read_schema(path).names
            except (pa.ArrowException, OSError):
                raise self._invalid(path, "Parquet", err, "Write it again with save().") from err
            raise ValidationError(
                f"Cannot read {path} with the options given: {err}.",
                f"Check columns= and filters= against the file's columns: {', '.join(names)}.",
                f'handler.load_parquet("{directory}", "{filename}", columns={names[:2]!r})',
            ) from err
        except OSError as err:
            raise FileOperationError(f"Cannot read {path}: {err}.", _READ_FIX) from err

    def load_excel(
        self,
        directory: str,
        filename: str,
        sheet_name: str | int | list[str | int] | None = 0,
        **kwargs: Any,
    ) -> pd.DataFrame | dict[Any, pd.DataFrame]:
        """Load a sheet of an Excel workbook with ``pandas.read_excel`` (openpyxl).

        Args:
            directory: A ``get_path`` category.
            filename: Name inside the folder.
            sheet_name: The sheet's name or position (default: the first sheet); a list of
                them, or ``None`` for every sheet, loads a dict keyed by name or position.
            **kwargs: Other ``pandas.read_excel`` options.

        Raises:
            FileOperationError: The file is missing or unreadable.
            ValidationError: A sheet does not exist (the sheets are listed), the file is not
                an Excel workbook, or its sheets cannot be read with the options given.
        """
        import pandas as pd

        path = self._existing(directory, filename, "load_excel")
        try:
            book = pd.ExcelFile(path, engine="openpyxl")
        except OSError as err:
            raise FileOperationError(f"Cannot read {path}: {err}.", _READ_FIX) from err
        except Exception as err:  # openpyxl/zipfile raise many types for a corrupt workbook
            raise self._invalid(path, "Excel", err, "Write the file again with save().") from err
        with book:
            sheets = [str(s) for s in book.sheet_names]
            wanted = sheet_name if isinstance(sheet_name, list) else [sheet_name]
            missing = [s for s in wanted if s is not None and not _has_sheet(sheets, s)]
            if missing:
                shown = missing[0] if len(missing) == 1 else missing
                raise ValidationError(
                    f"{path} has no sheet {shown!r}; its sheets are: {', '.join(sheets)}.",
                    "Pass one of those names (or a position from 0) as sheet_name=, or "
                    "sheet_name=None for all of them.",
                    f'handler.load_excel("{directory}", "{filename}", '
                    f'sheet_name="{sheets[0] if sheets else DEFAULT_SHEET_NAME}")',
                )
            try:
                return pd.read_excel(book, sheet_name=sheet_name, **kwargs)
            except (ValueError, TypeError, KeyError) as err:
                raise ValidationError(
                    f"Cannot read {path}: {err}.",
                    "Check the options passed to load_excel() (usecols=, skiprows=, dtype= "
                    "...); if they are right, write the file again with save().",
                ) from err


def _has_sheet(sheets: list[str], wanted: Any) -> bool:
    if isinstance(wanted, str):
        return wanted in sheets
    if isinstance(wanted, int) and not isinstance(wanted, bool):
        return -len(sheets) <= wanted < len(sheets)
    return False


_READ_FIX = "Check that the file is readable by this user and not locked by another program."


def timestamped_filename(
    config: Mapping[str, Any],
    name: str,
    ext: str,
    now: dt.datetime | None = None,
    *,
    directory: str = "output",
) -> str:
    """Return ``{org_id}-{env_type}-{name}_{YYYY-MM-DDTHHMMZ}.{ext}`` (UTC), a name no run has.

    The first run in a minute gets exactly that name. A name an earlier run wrote, or one
    another run (or an earlier call in this run) has already been given, is never returned
    again: the next free one gets a suffix, ``…T1407Z_2.xlsx``, ``…T1407Z_3.xlsx`` ... The
    name is reserved in ``directory`` atomically (a hidden ``.{name}.reserved`` file, removed
    when the process ends), so two processes starting in the same minute never get the same
    name; see ``utils._output_names``.

    Args:
        config: The loaded config (``_org_id`` and ``_env_type`` are injected by
            ``parse_args_and_load_config``; plain ``org_id``/``env_type`` keys are taken
            when those are absent).
        name: What the file holds (``customers``).
        ext: The extension, with or without its leading dot(s); its case is kept.
        now: The time to use (tests); a naive value is taken as UTC. Default: now.
        directory: The ``get_path`` category the file will be saved in, where the name is
            checked and reserved (created when missing). Default ``output``.

    Raises:
        ConfigurationError: The config lacks ``_org_id`` or ``_env_type``.
        ValidationError: ``name`` or ``ext`` is empty or contains a path separator.
        FileOperationError: ``directory`` is not a category, or the name cannot be reserved
            in it (folder not writable).

    Example:
        >>> timestamped_filename({"_org_id": "acme", "_env_type": "prod"}, "customers",
        ...                      ".xlsx", now=dt.datetime(2024, 3, 5, 14, 7))
        'acme-prod-customers_2024-03-05T1407Z.xlsx'
        >>> timestamped_filename({"_org_id": "acme", "_env_type": "prod"}, "customers",
        ...                      ".xlsx", now=dt.datetime(2024, 3, 5, 14, 7))
        'acme-prod-customers_2024-03-05T1407Z_2.xlsx'
    """
    org = config.get("_org_id") or config.get("org_id")
    env = config.get("_env_type") or config.get("env_type")
    if not org or not env:
        raise ConfigurationError(
            "The config has no _org_id/_env_type to name the file with.",
            "Pass the config returned by parse_args_and_load_config(), which injects them.",
            'config = parse_args_and_load_config("Customer report")',
        )
    ext = ext.lstrip(".")
    for label, part in (("name", name), ("ext", ext)):
        if not part or "/" in part or "\\" in part:
            raise ValidationError(
                f"timestamped_filename() got an invalid {label} {part!r}.",
                "Give a plain, non-empty name and extension; to save in a sub-folder, put "
                "it in front of the returned name.",
                'f"2024/{timestamped_filename(config, "customers", "csv")}"',
            )
    moment = now or dt.datetime.now(dt.timezone.utc)
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc)
    stem = f"{org}-{env}-{name}_{moment.strftime(TIMESTAMP_FORMAT)}"
    return reserve(get_category_dir(directory), stem, ext)
