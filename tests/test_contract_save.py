"""DESIGN §3 contract of saving and loading: every extension against every kind of data.

Written from the contract, not from the implementation: ``save()`` picks the format from the
extension, checks it against the data (a mismatch is a ``ValidationError`` naming the accepted
types, and nothing is written), encodes JSON exactly, streams iterators of pages, and loads
everything back. Atomicity, paths and errors are in ``test_contract_save_safety.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.support_files import every_file
from utils import run_stats
from utils.exceptions import ValidationError
from utils.load_n_save import TxoDataHandler

REPO = Path(__file__).resolve().parent.parent
ROWS = [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Lin"}]
FRAME_COLUMNS = ["id", "name"]


def strict_json(text: str) -> Any:
    """Parse ``text`` as standard JSON: NaN and Infinity are not JSON."""

    def refuse(token: str) -> Any:
        raise AssertionError(f"bare {token} in the JSON text")

    return json.loads(text, parse_constant=refuse)


def pages_of(rows: int, size: int, frames: bool = False) -> Iterator[Any]:
    for start in range(0, rows, size):
        page = [{"id": i, "name": f"n{i}"} for i in range(start, min(start + size, rows))]
        yield pd.DataFrame(page) if frames else page


# --- what each extension accepts ----------------------------------------------------------

ACCEPTED_CASES: list[tuple[str, Callable[[], Any]]] = [
    (".json", lambda: {"a": 1}),
    (".json", lambda: [1, "two", None]),
    (".jsonl", lambda: list(ROWS)),
    (".jsonl", lambda: pages_of(5, 2)),
    (".csv", lambda: pd.DataFrame(ROWS)),
    (".csv", lambda: list(ROWS)),
    (".csv", lambda: pages_of(5, 2)),
    (".csv", lambda: pages_of(5, 2, frames=True)),
    (".parquet", lambda: pd.DataFrame(ROWS)),
    (".parquet", lambda: list(ROWS)),
    (".parquet", lambda: pages_of(5, 2)),
    (".parquet", lambda: pages_of(5, 2, frames=True)),
    (".xlsx", lambda: pd.DataFrame(ROWS)),
    (".xlsx", lambda: list(ROWS)),
    (".xlsx", lambda: {"One": pd.DataFrame(ROWS), "Two": pd.DataFrame(ROWS)}),
    (".txt", lambda: "hello\n"),
]


@pytest.mark.parametrize(("ext", "make"), ACCEPTED_CASES)
def test_each_accepted_type_is_written_and_counted(
    root: Path, handler: TxoDataHandler, ext: str, make: Callable[[], Any]
) -> None:
    path = handler.save(make(), "output", f"data{ext}")
    assert path == root / "output" / f"data{ext}"
    assert path.is_file() and path.stat().st_size > 0
    assert every_file(root) == [f"output/data{ext}"]
    assert run_stats.get(run_stats.FILES_WRITTEN) == 1


# What the ValidationError must name, per extension, so the user knows what fits.
MUST_NAME = {
    ".json": ("dict", "list"),
    ".jsonl": ("list", "iterator"),
    ".csv": ("DataFrame", "list of dicts", "iterator"),
    ".parquet": ("DataFrame", "list of dicts", "iterator"),
    ".xlsx": ("DataFrame", "list of dicts", "dict of DataFrames"),
    ".txt": ("str",),
}

REJECTED_CASES: list[tuple[str, Callable[[], Any]]] = [
    (".json", lambda: "text"),
    (".json", lambda: 42),
    (".json", lambda: None),
    (".json", lambda: b"bytes"),
    (".json", lambda: pages_of(2, 1)),
    (".jsonl", lambda: {"a": 1}),
    (".jsonl", lambda: "text"),
    (".jsonl", lambda: 42),
    (".csv", lambda: {"a": [1, 2]}),
    (".csv", lambda: "a,b\n1,2\n"),
    (".csv", lambda: [1, 2, 3]),
    (".csv", lambda: [{"a": 1}, "not a row"]),
    (".csv", lambda: None),
    (".parquet", lambda: {"a": [1, 2]}),
    (".parquet", lambda: [[1, 2], [3, 4]]),
    (".parquet", lambda: b"PAR1"),
    (".xlsx", lambda: pages_of(2, 1)),
    (".xlsx", lambda: {"Sheet": 5}),
    (".xlsx", lambda: {"Sheet": "text"}),
    (".xlsx", lambda: {"Good": pd.DataFrame(ROWS), "Bad": [1, 2]}),
    (".xlsx", lambda: "text"),
    (".xlsx", lambda: pd.Series([1, 2])),
    (".txt", lambda: b"bytes"),
    (".txt", lambda: ["a", "b"]),
    (".txt", lambda: {"a": 1}),
    (".txt", lambda: 3.5),
    (".txt", lambda: None),
]


@pytest.mark.parametrize(("ext", "make"), REJECTED_CASES)
def test_a_mismatch_is_a_validation_error_naming_the_accepted_types_and_writes_nothing(
    root: Path, handler: TxoDataHandler, ext: str, make: Callable[[], Any]
) -> None:
    with pytest.raises(ValidationError) as info:
        handler.save(make(), "output", f"data{ext}")
    message = str(info.value)
    for accepted in MUST_NAME[ext]:
        assert accepted in message
    assert every_file(root) == []
    assert run_stats.get(run_stats.FILES_WRITTEN) == 0


@pytest.mark.parametrize("name", ["DATA.CSV", "Data.Csv", "data.JSON", "x.XLSX", "x.Parquet"])
def test_the_extension_is_recognised_in_any_case_and_the_name_kept(
    root: Path, handler: TxoDataHandler, name: str
) -> None:
    path = handler.save(list(ROWS), "output", name)
    assert path.name == name
    assert every_file(root) == [f"output/{name}"]


@pytest.mark.parametrize("name", ["noextension", "data.xml", "data.json.gz", "data.", ".csv"])
def test_a_missing_or_unknown_extension_is_a_validation_error_listing_the_known_ones(
    root: Path, handler: TxoDataHandler, name: str
) -> None:
    with pytest.raises(ValidationError) as info:
        handler.save(list(ROWS), "output", name)
    for ext in (".json", ".jsonl", ".csv", ".xlsx", ".parquet", ".txt"):
        assert ext in info.value.how_to_fix
    assert every_file(root) == []


# --- JSON ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("0.1"), "0.1"),
        (Decimal("12.30"), "12.30"),
        (Decimal("-7.250"), "-7.250"),
        (Decimal("1E+2"), "1E+2"),
        (Decimal("0E-8"), "0E-8"),
        (
            Decimal("3.141592653589793238462643383279502884197"),
            "3.141592653589793238462643383279502884197",
        ),
        (Decimal("123456789012345678901234567890"), "123456789012345678901234567890"),
    ],
)
def test_json_writes_a_decimal_as_a_number_with_its_exact_digits(
    root: Path, handler: TxoDataHandler, value: Decimal, text: str
) -> None:
    path = handler.save({"amount": value}, "output", "d.json")
    body = path.read_text(encoding="utf-8")
    assert f'"amount": {text}' in body  # a number, not a string
    loaded = handler.load_json("output", "d.json", parse_float=Decimal, parse_int=Decimal)
    assert loaded["amount"] == value and str(loaded["amount"]) == str(value)


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")])
def test_json_writes_a_non_finite_decimal_as_null(
    root: Path, handler: TxoDataHandler, value: Decimal
) -> None:
    path = handler.save([value], "output", "d.json")
    assert strict_json(path.read_text(encoding="utf-8")) == [None]


AMSTERDAM = dt.timezone(dt.timedelta(hours=1))


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        (dt.datetime(2024, 3, 5, 14, 7, 9), "2024-03-05T14:07:09"),
        (
            dt.datetime(2024, 3, 5, 14, 7, 9, 500, tzinfo=dt.timezone.utc),
            "2024-03-05T14:07:09.000500+00:00",
        ),
        (dt.datetime(2024, 3, 5, 14, 7, tzinfo=AMSTERDAM), "2024-03-05T14:07:00+01:00"),
        (dt.date(2024, 2, 29), "2024-02-29"),
        (dt.time(8, 30), "08:30:00"),
        (pd.Timestamp("2024-03-05 14:07:09"), "2024-03-05T14:07:09"),
        (pd.Timestamp("2024-03-05 14:07", tz="UTC"), "2024-03-05T14:07:00+00:00"),
        (np.datetime64("2024-03-05T14:07:09"), "2024-03-05T14:07:09"),
    ],
)
def test_json_writes_datetimes_as_iso_8601(
    root: Path, handler: TxoDataHandler, value: Any, iso: str
) -> None:
    path = handler.save({"when": value}, "output", "t.json")
    assert strict_json(path.read_text(encoding="utf-8")) == {"when": iso}
    parsed = (dt.time if isinstance(value, dt.time) else dt.datetime).fromisoformat(iso)
    assert parsed is not None


def test_json_writes_numpy_and_pandas_scalars_as_plain_json(
    root: Path, handler: TxoDataHandler
) -> None:
    data = {
        "int64": np.int64(2**63 - 1),
        "int32": np.int32(-5),
        "uint8": np.uint8(255),
        "float64": np.float64(2.5),
        "float32": np.float32(0.1),
        "bool": np.bool_(True),
        "array": np.array([1, 2, 3]),
        "timedelta": pd.Timedelta(hours=36),
    }
    path = handler.save(data, "output", "n.json")
    assert strict_json(path.read_text(encoding="utf-8")) == {
        "int64": 2**63 - 1,
        "int32": -5,
        "uint8": 255,
        "float64": 2.5,
        "float32": 0.1,
        "bool": True,
        "array": [1, 2, 3],
        "timedelta": "P1DT12H0M0S",
    }


def test_json_has_no_bare_nan_every_missing_value_is_null(
    root: Path, handler: TxoDataHandler
) -> None:
    data = {
        "nan": float("nan"),
        "inf": float("inf"),
        "minus_inf": -math.inf,
        "np_nan": np.float64("nan"),
        "np_nan32": np.float32("nan"),
        "na": pd.NA,
        "nat": pd.NaT,
        "np_nat": np.datetime64("NaT"),
        "none": None,
        "nested": [{"deep": [float("nan"), {"x": pd.NA}]}],
        "text": "NaN and Infinity stay text",
        "NaN": "a key named NaN",
    }
    path = handler.save(data, "output", "nan.json")
    assert strict_json(path.read_text(encoding="utf-8")) == {
        **dict.fromkeys(["nan", "inf", "minus_inf", "np_nan", "np_nan32", "na", "nat"]),
        "np_nat": None,
        "none": None,
        "nested": [{"deep": [None, {"x": None}]}],
        "text": "NaN and Infinity stay text",
        "NaN": "a key named NaN",
    }


def test_json_round_trips_a_nested_structure(root: Path, handler: TxoDataHandler) -> None:
    data = {
        "org": "acme",
        "totals": {"EUR": Decimal("1234.50"), "USD": Decimal("0.05")},
        "rows": [{"id": i, "tags": ["a", "ü", "😀"], "ok": i % 2 == 0} for i in range(3)],
        "empty": {},
        "none": [],
    }
    handler.save(data, "output", "nested.json")
    assert handler.load_json("output", "nested.json", parse_float=Decimal) == data


def test_json_keeps_text_readable_and_is_utf8(root: Path, handler: TxoDataHandler) -> None:
    path = handler.save({"name": "Zoë 中文 😀"}, "output", "u.json")
    assert "Zoë 中文 😀" in path.read_bytes().decode("utf-8")


def test_json_of_an_unknown_object_is_a_validation_error_and_writes_nothing(
    root: Path, handler: TxoDataHandler
) -> None:
    with pytest.raises(ValidationError, match="object"):
        handler.save({"x": object()}, "output", "o.json")
    assert every_file(root) == []


# --- JSON Lines ---------------------------------------------------------------------------


def test_jsonl_writes_one_json_value_per_line_from_a_list(
    root: Path, handler: TxoDataHandler
) -> None:
    rows = [{"id": 1, "amount": Decimal("1.10"), "when": dt.date(2024, 1, 1)}, {"id": 2}]
    path = handler.save(rows, "output", "r.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [strict_json(line) for line in lines] == [
        {"id": 1, "amount": 1.1, "when": "2024-01-01"},
        {"id": 2},
    ]
    assert "1.10" in lines[0]
    assert handler.load_json("output", "r.jsonl") == [strict_json(line) for line in lines]


def test_jsonl_streams_a_generator_of_pages_while_it_is_consumed(
    root: Path, handler: TxoDataHandler
) -> None:
    seen_sizes: list[int] = []
    output = root / "output"

    def pages() -> Iterator[list[dict[str, Any]]]:
        for page in range(6):
            temps = [p for p in output.iterdir() if p.name.startswith(".")] if page else []
            seen_sizes.append(sum(p.stat().st_size for p in temps))
            yield [{"page": page, "row": i, "pad": "x" * 100} for i in range(500)]

    path = handler.save(pages(), "output", "stream.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3000
    assert json.loads(lines[-1]) == {"page": 5, "row": 499, "pad": "x" * 100}
    assert seen_sizes[-1] > 0  # earlier pages were on disk before the last was produced
    assert seen_sizes == sorted(seen_sizes)


# --- CSV and Parquet ----------------------------------------------------------------------


@pytest.mark.parametrize("ext", [".csv", ".parquet"])
@pytest.mark.parametrize(
    "make",
    [
        lambda: pd.DataFrame(ROWS),
        lambda: list(ROWS),
        lambda: iter([ROWS[:1], ROWS[1:]]),
        lambda: iter([pd.DataFrame(ROWS[:1]), pd.DataFrame(ROWS[1:])]),
        lambda: iter([ROWS[:1], pd.DataFrame(ROWS[1:])]),
    ],
    ids=["frame", "records", "pages-of-records", "pages-of-frames", "mixed-pages"],
)
def test_tables_round_trip(
    root: Path, handler: TxoDataHandler, ext: str, make: Callable[[], Any]
) -> None:
    handler.save(make(), "output", f"t{ext}")
    load = handler.load_csv if ext == ".csv" else handler.load_parquet
    loaded = load("output", f"t{ext}")
    assert list(loaded.columns) == FRAME_COLUMNS
    assert loaded.to_dict(orient="records") == ROWS


def test_csv_has_a_header_no_index_and_utf8(root: Path, handler: TxoDataHandler) -> None:
    path = handler.save([{"id": 1, "name": "Zoë"}], "output", "c.csv")
    assert path.read_bytes().decode("utf-8").splitlines() == ["id,name", "1,Zoë"]


@pytest.mark.parametrize("ext", [".csv", ".parquet"])
def test_a_stream_of_many_pages_is_written_in_bounded_memory(
    root: Path, handler: TxoDataHandler, ext: str
) -> None:
    rows, size = 200_000, 1_000
    pad = "p" * 40

    def pages() -> Iterator[list[dict[str, Any]]]:
        for start in range(0, rows, size):
            yield [{"id": i, "pad": pad, "value": i * 0.5} for i in range(start, start + size)]

    # The rows as Python objects all at once take about 250 bytes each (50 MB here).
    all_at_once = 250 * rows
    tracemalloc.start()
    try:
        path = handler.save(pages(), "output", f"big{ext}")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < all_at_once / 3, f"peak {peak:,} bytes for {rows:,} streamed rows"
    if ext == ".csv":
        assert sum(1 for _ in path.open(encoding="utf-8")) == rows + 1
    else:
        assert pq.ParquetFile(path).metadata.num_rows == rows


def test_a_stream_that_yields_nothing_writes_an_empty_file(
    root: Path, handler: TxoDataHandler
) -> None:
    handler.save(iter([]), "output", "e.csv")
    handler.save(iter([]), "output", "e.parquet")
    handler.save(iter([]), "output", "e.jsonl")
    assert handler.load_csv("output", "e.csv").empty
    assert handler.load_parquet("output", "e.parquet").empty
    assert handler.load_json("output", "e.jsonl") == []


# --- Excel --------------------------------------------------------------------------------


def test_xlsx_round_trips_a_frame_and_a_list_of_dicts(root: Path, handler: TxoDataHandler) -> None:
    handler.save(pd.DataFrame(ROWS), "output", "f.xlsx")
    handler.save(list(ROWS), "output", "l.xlsx")
    for name in ("f.xlsx", "l.xlsx"):
        loaded = handler.load_excel("output", name)
        assert isinstance(loaded, pd.DataFrame)
        assert loaded.to_dict(orient="records") == ROWS


def test_xlsx_from_a_dict_writes_one_sheet_each_and_loads_by_name_position_or_all(
    root: Path, handler: TxoDataHandler
) -> None:
    sheets = {
        "Customers": pd.DataFrame(ROWS),
        "Totals": pd.DataFrame({"total": [Decimal("1.5"), Decimal("2.25")]}),
    }
    handler.save(sheets, "output", "book.xlsx")
    assert handler.load_excel("output", "book.xlsx", sheet_name="Totals")["total"].tolist() == [
        1.5,
        2.25,
    ]
    second = handler.load_excel("output", "book.xlsx", sheet_name=1)
    assert isinstance(second, pd.DataFrame) and list(second.columns) == ["total"]
    everything = handler.load_excel("output", "book.xlsx", sheet_name=None)
    assert isinstance(everything, dict) and list(everything) == ["Customers", "Totals"]
    with pytest.raises(ValidationError, match="Customers, Totals"):
        handler.load_excel("output", "book.xlsx", sheet_name="Nope")


def test_xlsx_makes_sheet_names_valid_and_unique(root: Path, handler: TxoDataHandler) -> None:
    frame = pd.DataFrame(ROWS)
    long = "Quarterly revenue per customer and region"  # 41 characters
    keys = ["a/b:c*?[d]", long, long + " again", "", "SALES", "sales"]
    handler.save({key: frame for key in keys}, "output", "names.xlsx")
    names = list(handler.load_excel("output", "names.xlsx", sheet_name=None))
    assert len(names) == len(keys)
    assert len({n.casefold() for n in names}) == len(keys)
    for name in names:
        assert 0 < len(name) <= 31
        assert not set(name) & set("[]:*?/\\")
    assert names[0] == "a_b_c__d_" or set(names[0]) <= set("ab_cd")
    assert names[1] == long[:31]


# --- text ---------------------------------------------------------------------------------


def test_txt_writes_the_string_exactly(root: Path, handler: TxoDataHandler) -> None:
    text = "line 1\r\nline 2\nünïcödé 😀\n\n"
    path = handler.save(text, "output", "notes.txt")
    assert path.read_bytes() == text.encode("utf-8")


# --- options reach the writer -------------------------------------------------------------


def test_options_reach_each_writer(root: Path, handler: TxoDataHandler) -> None:
    frame = pd.DataFrame(ROWS)
    csv = handler.save(frame, "output", "k.csv", sep=";")
    assert csv.read_text(encoding="utf-8").splitlines()[0] == "id;name"
    js = handler.save({"b": 1, "a": 2}, "output", "k.json", sort_keys=True, indent=None)
    assert js.read_text(encoding="utf-8") == '{"a": 2, "b": 1}'
    pqt = handler.save(frame, "output", "k.parquet", compression="gzip")
    assert pq.ParquetFile(pqt).metadata.row_group(0).column(0).compression == "GZIP"
    handler.save(frame, "output", "k.xlsx", sheet_name="Data")
    assert list(handler.load_excel("output", "k.xlsx", sheet_name=None)) == ["Data"]
    txt = handler.save("é", "output", "k.txt", encoding="latin-1")
    assert txt.read_bytes() == b"\xe9"


def test_an_option_the_writer_does_not_take_is_a_validation_error(
    root: Path, handler: TxoDataHandler
) -> None:
    with pytest.raises(ValidationError, match="no_such_option"):
        handler.save(list(ROWS), "output", "k.csv", no_such_option=1)
    assert every_file(root) == []


# --- loading ------------------------------------------------------------------------------


def test_exists_tells_a_file_from_nothing(root: Path, handler: TxoDataHandler) -> None:
    assert handler.exists("output", "x.json") is False
    handler.save({"a": 1}, "output", "x.json")
    assert handler.exists("output", "x.json") is True
    assert handler.exists("data", "x.json") is False


def test_loaders_take_options(root: Path, handler: TxoDataHandler) -> None:
    handler.save(pd.DataFrame(ROWS), "output", "o.csv")
    handler.save(pd.DataFrame(ROWS), "output", "o.parquet")
    assert list(handler.load_csv("output", "o.csv", usecols=["name"]).columns) == ["name"]
    assert list(handler.load_parquet("output", "o.parquet", columns=["id"]).columns) == ["id"]


# --- start-up cost ------------------------------------------------------------------------


def test_importing_load_n_save_and_saving_json_or_csv_records_loads_no_dataframe_library() -> None:
    probe = (
        "import sys, tempfile, pathlib\n"
        "import utils.load_n_save as lns\n"
        "heavy = ('pandas', 'numpy', 'pyarrow', 'xlsxwriter', 'openpyxl')\n"
        "assert not [m for m in heavy if m in sys.modules], sys.modules.keys()\n"
        "from utils import path_helpers\n"
        "path_helpers.PROJECT_ROOT = pathlib.Path(tempfile.mkdtemp())\n"
        "import datetime as dt\n"
        "from decimal import Decimal\n"
        "row = {'a': Decimal('1.0'), 'd': dt.timedelta(hours=1), 't': dt.datetime(2024, 1, 1)}\n"
        "lns.TxoDataHandler().save(row, 'tmp', 'a.json')\n"
        "lns.TxoDataHandler().save([row], 'tmp', 'a.jsonl')\n"
        "lns.TxoDataHandler().save('text', 'tmp', 'a.txt')\n"
        "lns.TxoDataHandler().save([row], 'tmp', 'a.csv')\n"
        "lns.TxoDataHandler().save(iter([[row], [row]]), 'tmp', 'b.csv')\n"
        "assert not [m for m in heavy if m in sys.modules]\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
