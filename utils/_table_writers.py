"""Writers for tables and streams of pages that need pandas or pyarrow: Parquet, and CSV of a
DataFrame (or with an option only ``DataFrame.to_csv`` takes).

(CSV of records is written by ``_record_streams.write_csv`` with the ``csv`` module, JSON
Lines by ``json_encoding.write_jsonl``: neither needs a DataFrame library.)

A *stream* is an iterator (a generator, ``api.iter_pages(...)``) whose items are pages: a list
of dicts, a DataFrame, or a single dict (one record), checked by
``_record_streams.iter_pieces``. Pages are regrouped into batches so that a stream of
100-record pages writes as fast as one DataFrame, and only one batch is held in memory at a
time.

Columns of a stream are fixed by the first batch: ``_record_streams.CSV_BATCH_ROWS`` rows for
CSV, the first row group for Parquet. A Parquet row group is cut, at a page boundary, once it
holds ``row_group_size=`` rows (default :data:`PARQUET_ROW_GROUP_ROWS`) or
:data:`PARQUET_ROW_GROUP_BYTES` of data, whichever comes first. Within that first batch,
columns are united and types promoted (a column that is all null in the first page takes its
type from a later one). After it, a page missing a column gets empty values; a page with a new
column, or a value that cannot be converted to the column's Parquet type without loss, is a
``ValidationError`` — pass ``columns=`` (CSV) or ``schema=`` (a ``pyarrow.Schema``, Parquet)
to fix the columns up front. ``schema=`` may instead map some columns to their types
(``{"created": "timestamp[ms, UTC]", "amount": "decimal128(18, 2)"}``, see
``utils._arrow_types``): those columns are converted to the type, the others keep the type
inferred from their values (nothing is guessed: ISO dates in text stay text unless named).
An empty stream writes an empty CSV file (only the header when ``columns=`` is given) and a
Parquet file with no rows (with the columns of ``schema=`` when given).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TypeAlias

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from utils import _record_streams
from utils._arrow_types import MAP_EXAMPLE, cast_column, column_types
from utils._json_encoding import unique_columns
from utils._record_streams import (
    LOOSE_RECORDS_BATCH,
    SCHEMA_EXAMPLE,
    integers_as_integers,
    iter_pieces,
    new_columns_error,
)
from utils.exceptions import ValidationError

PARQUET_ROW_GROUP_ROWS = 65_536
# A row group is also cut when its Arrow data reaches this size, so wide records keep the
# writer's memory bounded too: the pending pages, their concatenation and the encoder's copy
# of a whole row group are all held at once. 2 MB keeps a big pull's peak within ~10% of a
# loop writing one row group per page (bench/RESULTS.md) with row groups 10-20x larger.
PARQUET_ROW_GROUP_BYTES = 2 * 1024 * 1024
ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError)

Piece: TypeAlias = "list[Mapping[str, Any]] | pd.DataFrame"


def _frame(pieces: list[Piece]) -> pd.DataFrame:
    frames = [p if isinstance(p, pd.DataFrame) else pd.DataFrame(p) for p in pieces]
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True, sort=False)


class _CsvStream:
    """Appends batches of a stream to an open CSV file; the first batch fixes the columns."""

    def __init__(self, handle: Any, header: Any, columns: list[Any] | None, options: Any):
        self.handle = handle
        self.header = header
        self.columns = columns  # given with columns=: extra columns are left out, by request
        self.chosen = columns is not None
        self.options = options
        self.written = False

    def write(self, frame: pd.DataFrame, start: int) -> None:
        if self.columns is None:
            self.columns = list(frame.columns)
        elif list(frame.columns) != self.columns:
            known = set(self.columns)
            new = [c for c in frame.columns if c not in known]
            if new and not self.chosen:
                raise new_columns_error(new, start, "CSV")
            frame = frame.reindex(columns=self.columns)
        frame = integers_as_integers(frame)
        frame.to_csv(self.handle, header=False if self.written else self.header, **self.options)
        self.written = True

    def finish(self) -> None:
        if not self.written and self.chosen and self.header:
            empty = pd.DataFrame(columns=self.columns)
            empty.to_csv(self.handle, header=self.header, **self.options)


def write_csv(path: Path, data: pd.DataFrame | list[Any] | Iterator[Any], **kwargs: Any) -> None:
    """Write ``data`` as CSV with pandas: UTF-8, no index unless ``index=True``.

    Other ``kwargs`` go to ``DataFrame.to_csv``. ``columns=`` picks and orders the columns
    (missing ones are written empty) and gives an empty list or stream its header line. A
    stream is written batch by batch, the header once.
    """
    options = {"index": False, **kwargs}
    encoding = options.pop("encoding", "utf-8")
    header = options.pop("header", True)
    columns = options.pop("columns", None)
    options.pop("mode", None)
    with open(path, "w", encoding=encoding, newline="") as handle:
        if isinstance(data, pd.DataFrame):
            data.to_csv(handle, header=header, columns=columns, **options)
            return
        stream = _CsvStream(handle, header, None if columns is None else list(columns), options)
        if isinstance(data, list):
            if data:
                stream.write(pd.DataFrame(data), 0)
            stream.finish()
            return
        batch: list[Piece] = []
        records: list[Mapping[str, Any]] = []
        batch_start = rows = 0
        for _, piece in iter_pieces(data, LOOSE_RECORDS_BATCH):
            if isinstance(piece, pd.DataFrame):
                if records:
                    batch.append(records)
                    records = []
                batch.append(piece)
            else:
                records.extend(piece)
            rows += len(piece)
            if rows - batch_start >= _record_streams.CSV_BATCH_ROWS:
                stream.write(_frame([*batch, records] if records else batch), batch_start)
                batch, records, batch_start = [], [], rows
        if batch or records:
            stream.write(_frame([*batch, records] if records else batch), batch_start)
        stream.finish()


def records_to_table(records: list[Mapping[str, Any]], start: int = 0) -> pa.Table:
    """Convert dicts to an Arrow table; keys missing from some dicts become nulls.

    Raises:
        ValidationError: A column mixes types Arrow cannot hold together, or an integer is
            too large for 64 bits.
    """
    try:
        # from_pylist takes its columns from the first record: right when no record has a
        # key the first lacks (a C-level union of the keys tells, without a loop per record)
        if len(set().union(*records)) == len(records[0]):
            return pa.Table.from_pylist(records)
        names = dict.fromkeys(k for r in records for k in r)
        return pa.Table.from_pydict({k: [r.get(k) for r in records] for k in names})
    except ARROW_ERRORS as err:
        raise _arrow_error(err, start) from err


def _arrow_error(err: BaseException, start: int) -> ValidationError:
    return ValidationError(
        f"Cannot convert the rows from row {start:,} to Parquet: {err}.",
        "Make each column hold one type (numbers, text, dates ...) and integers fit in 64 "
        "bits, or pass schema= to say the types.",
        SCHEMA_EXAMPLE,
    )


def _piece_table(piece: Piece, start: int) -> pa.Table:
    if isinstance(piece, pd.DataFrame):
        unique_columns(piece, "a Parquet file")
        try:
            return pa.Table.from_pandas(piece, preserve_index=False)
        except ARROW_ERRORS as err:
            raise _arrow_error(err, start) from err
    return records_to_table(piece, start)


def conform(table: pa.Table, schema: pa.Schema, start: int) -> pa.Table:
    """Return ``table`` with exactly ``schema``'s columns and types (missing ones null).

    Raises:
        ValidationError: ``table`` has a column ``schema`` lacks, or a value does not convert.
    """
    if table.schema.equals(schema, check_metadata=False):
        return table
    new = [name for name in table.column_names if schema.get_field_index(name) < 0]
    if new:
        raise new_columns_error(new, start, "Parquet")
    arrays = []
    for field in schema:
        if field.name not in table.column_names:
            arrays.append(pa.nulls(table.num_rows, field.type))
            continue
        column = table[field.name]
        if column.type != field.type:
            try:
                column = column.cast(field.type)
            except ARROW_ERRORS as err:
                raise ValidationError(
                    f"Column {field.name!r} in the rows from row {start:,} holds "
                    f"{column.type} values that do not convert to the file's {field.type}: "
                    f"{err}.",
                    "Keep one type per column across pages, or pass schema= with the wider "
                    "type (the first row group fixed it otherwise).",
                    SCHEMA_EXAMPLE,
                ) from err
        arrays.append(column)
    return pa.Table.from_arrays(arrays, schema=schema)


def write_parquet(
    path: Path, data: pd.DataFrame | list[Any] | Iterator[Any], **kwargs: Any
) -> None:
    """Write ``data`` as Parquet with pyarrow.

    Args:
        path: The file to create.
        data: A DataFrame (``DataFrame.to_parquet``, index kept as pandas does), a list of
            dicts, or a stream of pages (``ParquetWriter``, one row group per batch).
        **kwargs: ``schema`` (a ``pyarrow.Schema`` every page is converted to),
            ``row_group_size`` (rows after which a stream's row group is cut), and any option of
            ``pyarrow.parquet.ParquetWriter`` (``compression``, ``use_dictionary`` ...).
    """
    try:
        _write_parquet(path, data, kwargs)
    except pa.ArrowException as err:
        if isinstance(err, OSError):  # a disk problem: write_atomically reports it
            raise
        raise ValidationError(
            f"pyarrow cannot write the Parquet file with these options: {err}.",
            "Check the options passed to save() (compression=, schema=, row_group_size= ...).",
            'handler.save(df, "output", "orders.parquet", compression="zstd")',
        ) from err


def _schema_option(schema: Any) -> tuple[pa.Schema | None, dict[str, pa.DataType]]:
    """``schema=`` as (a whole schema, or None; the types of named columns)."""
    if schema is None or isinstance(schema, pa.Schema):
        return schema, {}
    if isinstance(schema, Mapping):
        return None, column_types(schema)
    raise ValidationError(
        f"schema= is a {type(schema).__name__}: it takes a pyarrow.Schema (every column) or a "
        "map of column names to types (those columns only).",
        "Pass a dict of column types, or build a pyarrow.Schema.",
        MAP_EXAMPLE,
    )


def with_types(table: pa.Table, types: Mapping[str, pa.DataType], start: int) -> pa.Table:
    """``table`` with each column named in ``types`` converted to its type.

    Raises:
        ValidationError: A value does not convert (the column, its type and the target named).
    """
    for name, target in types.items():
        index = table.schema.get_field_index(name)
        if index < 0 or table.schema.field(index).type == target:
            continue
        column = table.column(index)
        try:
            converted = cast_column(column, target)
        except ARROW_ERRORS as err:
            raise ValidationError(
                f"Column {name!r} in the rows from row {start:,} holds {column.type} values "
                f"that do not convert to {target} (schema=): {err}.",
                "Fix the values, or give the column a type they fit (ISO 8601 text for "
                "timestamps and dates, digits for decimals).",
                MAP_EXAMPLE,
            ) from err
        table = table.set_column(index, pa.field(name, target), converted)
    return table


def _check_named(types: Mapping[str, pa.DataType], columns: list[str]) -> None:
    unknown = [name for name in types if name not in columns]
    if unknown:
        raise ValidationError(
            f"schema= names column(s) {unknown} that the data does not have (its first rows "
            f"have: {', '.join(map(str, columns))}).",
            "Correct the column names in schema=, or drop the ones the data never has.",
            MAP_EXAMPLE,
        )


def _write_parquet(
    path: Path, data: pd.DataFrame | list[Any] | Iterator[Any], kwargs: dict[str, Any]
) -> None:
    schema, types = _schema_option(kwargs.pop("schema", None))
    if isinstance(data, pd.DataFrame):
        unique_columns(data, "a Parquet file")
        try:
            if not types:
                data.to_parquet(path, engine="pyarrow", schema=schema, **kwargs)
                return
            _check_named(types, [str(c) for c in data.columns])
            table = pa.Table.from_pandas(data, preserve_index=kwargs.pop("index", None))
        except ARROW_ERRORS as err:
            raise _arrow_error(err, 0) from err
        pq.write_table(with_types(table, types, 0), path, **kwargs)
        return
    group_rows = int(kwargs.pop("row_group_size", None) or PARQUET_ROW_GROUP_ROWS)
    kwargs.pop("index", None)
    if isinstance(data, list):
        table = records_to_table(data) if data else pa.table({})
        if types:
            _check_named(types, table.column_names)
            table = with_types(table, types, 0)
        pq.write_table(conform(table, schema, 0) if schema is not None else table, path, **kwargs)
        return
    _write_parquet_stream(path, data, schema, types, group_rows, kwargs)


def _write_parquet_stream(
    path: Path,
    pages: Iterator[Any],
    schema: pa.Schema | None,
    types: Mapping[str, pa.DataType],
    group_rows: int,
    options: dict[str, Any],
) -> None:
    writer: pq.ParquetWriter | None = None
    pending: list[pa.Table] = []
    pending_rows = pending_start = pending_bytes = 0
    try:
        for start, piece in iter_pieces(pages, LOOSE_RECORDS_BATCH):
            table = with_types(_piece_table(piece, start), types, start)
            del piece  # its records are in the table now; not held during the next fetch
            if writer is not None or schema is not None:
                table = conform(table, writer.schema if writer else schema, start)
            if not pending:
                pending_start = start
            pending.append(table)
            pending_rows += table.num_rows
            pending_bytes += table.nbytes
            if pending_rows < group_rows and pending_bytes < PARQUET_ROW_GROUP_BYTES:
                continue
            group = _concat(pending, pending_start)
            if writer is None:
                _check_named(types, group.column_names)
                writer = pq.ParquetWriter(path, group.schema, **options)
            writer.write_table(group)
            pending, pending_rows, pending_bytes = [], 0, 0
        if writer is None:
            group = _concat(pending, pending_start) if pending else None
            if group is not None:
                _check_named(types, group.column_names)
            empty = schema if schema is not None else pa.schema(list(types.items()))
            writer = pq.ParquetWriter(path, group.schema if group else empty, **options)
            if group is None:
                writer.write_table(pa.Table.from_batches([], schema=empty))
        elif pending:
            group = _concat(pending, pending_start)
        else:
            group = None
        if group is not None:
            writer.write_table(group)
    finally:
        if writer is not None:
            writer.close()


def _concat(tables: list[pa.Table], start: int) -> pa.Table:
    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except ARROW_ERRORS as err:
        raise _arrow_error(err, start) from err
