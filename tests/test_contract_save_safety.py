"""DESIGN §3 contract: atomic writes, project paths, output names and the error classes.

A failed or killed save leaves the previous file byte-identical and no temporary file; a name
can never leave its folder; ``timestamped_filename`` is exact and in UTC; every
``HelpfulError`` renders its three parts and keeps its context.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import pickle
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import xlsxwriter

from tests.support_files import every_file
from utils import path_helpers, run_stats
from utils.exceptions import (
    ApiAuthenticationError,
    ApiOperationError,
    ApiRateLimitError,
    ApiTimeoutError,
    CircuitOpenError,
    ConfigurationError,
    FileOperationError,
    HelpfulError,
    ValidationError,
)
from utils.load_n_save import TxoDataHandler, timestamped_filename
from utils.path_helpers import get_path

REPO = Path(__file__).resolve().parent.parent
CATEGORIES = ["config", "data", "output", "logs", "tmp", "schemas"]
STREAMED = [".csv", ".parquet", ".jsonl"]


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project root one level down, so that an escape would land in ``tmp_path``."""
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.setattr(path_helpers, "PROJECT_ROOT", project)
    run_stats.reset()
    return project


def previous(root: Path, name: str, handler: TxoDataHandler) -> tuple[Path, bytes]:
    """Save a first version of ``name`` and return its path and bytes."""
    path = handler.save([{"id": 0, "version": "old"}], "output", name)
    return path, path.read_bytes()


# --- paths --------------------------------------------------------------------------------


@pytest.mark.parametrize("category", CATEGORIES)
def test_every_category_resolves_under_the_project_root(root: Path, category: str) -> None:
    assert get_path(category, "a/b.json") == root / category / "a" / "b.json"
    assert (root / category).is_dir() == (category != "schemas")


@pytest.mark.parametrize("category", ["src", "utils", "Output", "", "output/sub", "../output"])
def test_a_directory_that_is_not_a_category_is_a_file_operation_error(
    tmp_path: Path, root: Path, handler: TxoDataHandler, category: str
) -> None:
    with pytest.raises(FileOperationError) as info:
        handler.save({"a": 1}, category, "x.json")
    assert "output" in str(info.value)  # the categories are listed
    for call in (handler.exists, handler.load_json, get_path):
        with pytest.raises(FileOperationError):
            call(category, "x.json")
    assert every_file(tmp_path) == []


@pytest.mark.parametrize(
    "filename",
    [
        "../x.json",
        "../../x.json",
        "a/../../x.json",
        "./../x.json",
        "..\\x.json",
        "a/b/../../../x.json",
    ],
)
def test_a_name_escaping_its_folder_is_refused_and_nothing_is_written(
    tmp_path: Path, root: Path, handler: TxoDataHandler, filename: str
) -> None:
    with pytest.raises(FileOperationError, match="escapes"):
        handler.save({"a": 1}, "output", filename)
    assert every_file(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"]


def test_an_absolute_name_is_refused_and_nothing_is_written(
    tmp_path: Path, root: Path, handler: TxoDataHandler
) -> None:
    target = tmp_path / "elsewhere.json"
    with pytest.raises(FileOperationError, match="absolute"):
        handler.save({"a": 1}, "output", str(target))
    with pytest.raises(FileOperationError):
        handler.save({"a": 1}, "output", target)  # type: ignore[arg-type]
    assert not target.exists()
    assert every_file(tmp_path) == []


def test_dot_dot_inside_the_folder_is_fine_and_sub_folders_are_created(
    root: Path, handler: TxoDataHandler
) -> None:
    assert get_path("output", "a/../b.json") == root / "output" / "b.json"
    path = handler.save({"a": 1}, "output", "2024/03/report.json")
    assert path == root / "output" / "2024" / "03" / "report.json" and path.is_file()


def test_a_symlinked_category_folder_is_followed(
    tmp_path: Path, root: Path, handler: TxoDataHandler
) -> None:
    share = tmp_path / "share"
    share.mkdir()
    (root / "output").symlink_to(share, target_is_directory=True)
    handler.save({"a": 1}, "output", "x.json")
    assert (share / "x.json").is_file()


# --- atomicity ----------------------------------------------------------------------------


def failing_pages(exc: BaseException) -> Iterator[list[dict[str, Any]]]:
    yield [{"id": i, "version": "new"} for i in range(5_000)]
    yield [{"id": i, "version": "new"} for i in range(5_000, 30_000)]
    raise exc


@pytest.mark.parametrize("ext", STREAMED)
@pytest.mark.parametrize(
    "exc",
    [
        ValueError("page 3 failed"),
        ConnectionError("the API went away"),  # an OSError, yet not a disk problem
        KeyboardInterrupt(),
        SystemExit(143),
    ],
    ids=repr,
)
def test_a_stream_failing_midway_leaves_the_previous_file_and_no_temporary_file(
    root: Path, handler: TxoDataHandler, ext: str, exc: BaseException
) -> None:
    path, before = previous(root, f"s{ext}", handler)
    with pytest.raises(type(exc)) as info:
        handler.save(failing_pages(exc), "output", f"s{ext}")
    assert info.value is exc  # the caller's own exception, unchanged
    assert path.read_bytes() == before
    assert every_file(root) == [f"output/s{ext}"]
    assert run_stats.get(run_stats.FILES_WRITTEN) == 1  # the first save only


def test_a_writer_failing_on_disk_full_is_a_file_operation_error_and_changes_nothing(
    root: Path, handler: TxoDataHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, before = previous(root, "f.csv", handler)

    def disk_full(self: pd.DataFrame, *args: Any, **kwargs: Any) -> None:
        handle = args[0] if args else kwargs["path_or_buf"]
        handle.write("id,version\n1,partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", disk_full)
    with pytest.raises(FileOperationError, match="No space left"):
        handler.save(pd.DataFrame({"id": [1]}), "output", "f.csv")
    assert path.read_bytes() == before
    assert every_file(root) == ["output/f.csv"]


def test_an_excel_writer_crashing_changes_nothing(
    root: Path, handler: TxoDataHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = handler.save(pd.DataFrame({"id": [1]}), "output", "w.xlsx")
    before = path.read_bytes()

    def crash(self: Any) -> None:
        raise RuntimeError("writer crashed")

    monkeypatch.setattr(xlsxwriter.Workbook, "close", crash)
    with pytest.raises(RuntimeError, match="writer crashed"):
        handler.save(pd.DataFrame({"id": [2]}), "output", "w.xlsx")
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in (root / "output").iterdir()] == ["w.xlsx"]


def test_a_rejected_save_leaves_the_previous_file(root: Path, handler: TxoDataHandler) -> None:
    path, before = previous(root, "r.json", handler)
    with pytest.raises(ValidationError):
        handler.save({"x": object()}, "output", "r.json")
    with pytest.raises(ValidationError):
        handler.save("text", "output", "r.json")
    assert path.read_bytes() == before
    assert every_file(root) == ["output/r.json"]


def test_concurrent_saves_of_one_target_end_with_one_whole_file(
    root: Path, handler: TxoDataHandler
) -> None:
    rows = 2_000
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def save(writer: int) -> None:
        frame = pd.DataFrame({"writer": [writer] * rows, "row": range(rows)})
        try:
            barrier.wait()
            for _ in range(3):
                handler.save(frame, "output", "shared.csv")
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=save, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    loaded = handler.load_csv("output", "shared.csv")
    assert len(loaded) == rows and loaded["writer"].nunique() == 1
    assert loaded["row"].tolist() == list(range(rows))
    assert every_file(root) == ["output/shared.csv"]
    assert run_stats.get(run_stats.FILES_WRITTEN) == 18


KILLED_WRITER = textwrap.dedent(
    """
    import itertools, sys
    from pathlib import Path
    from utils import path_helpers
    path_helpers.PROJECT_ROOT = Path(sys.argv[1])
    from utils.load_n_save import TxoDataHandler

    handler = TxoDataHandler()
    for generation in itertools.count():
        pages = ([{"gen": generation, "row": p * 1000 + i, "pad": "x" * 50} for i in range(1000)]
                 for p in range(200))
        handler.save(pages, "output", "big.csv")
        print(generation, flush=True)
    """
)


def test_a_process_killed_mid_write_never_leaves_a_partial_target(root: Path) -> None:
    output = root / "output"
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(root)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert process.stdout is not None
        process.stdout.readline()  # one whole file exists; the next one is being written
        deadline = time.monotonic() + 30
        while not any(p.name.startswith(".big.csv.") for p in output.iterdir()):
            assert time.monotonic() < deadline, "the writer never started its second file"
            time.sleep(0.002)
        time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
    frame = pd.read_csv(output / "big.csv")
    assert frame["row"].tolist() == list(range(200_000))
    assert frame["gen"].nunique() == 1
    # The kill landed mid-write (its temporary file is left: SIGKILL cannot clean up), and
    # nothing but that hidden file sits beside the whole target.
    names = sorted(p.name for p in output.iterdir())
    assert names[-1] == "big.csv" and len(names) == 2
    assert re.fullmatch(r"\.big\.csv\.[0-9a-f]+\.tmp", names[0]), names


# --- timestamped_filename -----------------------------------------------------------------

CONFIG = {"_org_id": "acme", "_env_type": "prod"}


def minute_stamps(start: dt.datetime, end: dt.datetime) -> set[str]:
    stamps = set()
    moment = start.replace(second=0, microsecond=0)
    while moment <= end:
        stamps.add(moment.strftime("%Y-%m-%dT%H%MZ"))
        moment += dt.timedelta(minutes=1)
    return stamps


@pytest.mark.parametrize("ext", ["xlsx", ".xlsx"])
def test_timestamped_filename_is_exact_and_in_utc(
    root: Path, monkeypatch: pytest.MonkeyPatch, ext: str
) -> None:
    monkeypatch.setenv("TZ", "Asia/Kathmandu")  # UTC+05:45: a local clock would show
    time.tzset()
    try:
        before = dt.datetime.now(dt.timezone.utc)
        name = timestamped_filename(CONFIG, "customers", ext)
        after = dt.datetime.now(dt.timezone.utc)
    finally:
        monkeypatch.undo()
        time.tzset()
    match = re.fullmatch(r"acme-prod-customers_(\d{4}-\d{2}-\d{2}T\d{4}Z)\.xlsx", name)
    assert match, name
    assert match.group(1) in minute_stamps(before, after)


def test_timestamped_filename_without_org_and_env_is_a_configuration_error(root: Path) -> None:
    with pytest.raises(ConfigurationError):
        timestamped_filename({}, "customers", "csv")


def test_a_timestamped_name_saves_into_output(root: Path, handler: TxoDataHandler) -> None:
    path = handler.save([{"a": 1}], "output", timestamped_filename(CONFIG, "orders", "csv"))
    assert path.parent == root / "output" and path.name.startswith("acme-prod-orders_")


# --- errors -------------------------------------------------------------------------------

SUBCLASSES = [
    ConfigurationError,
    ValidationError,
    FileOperationError,
    ApiAuthenticationError,
    ApiOperationError,
    ApiTimeoutError,
    ApiRateLimitError,
    CircuitOpenError,
]


@pytest.mark.parametrize("cls", [HelpfulError, *SUBCLASSES])
def test_every_error_renders_its_three_parts_exactly(cls: type[HelpfulError]) -> None:
    full = cls("Config missing", "Copy the example", "cp a b")
    assert (
        str(full) == "❌ Problem: Config missing\n✅ Solution: Copy the example\n📝 Example: cp a b"
    )
    short = cls("Config missing", "Copy the example")
    assert str(short) == "❌ Problem: Config missing\n✅ Solution: Copy the example"
    assert (full.what_went_wrong, full.how_to_fix, full.example) == (
        "Config missing",
        "Copy the example",
        "cp a b",
    )
    assert short.example is None
    assert isinstance(full, HelpfulError) and isinstance(full, Exception)


def test_every_subclass_is_caught_as_a_helpful_error() -> None:
    for cls in SUBCLASSES:
        with pytest.raises(HelpfulError):
            raise cls("w", "h")


def test_api_operation_error_keeps_status_url_and_method() -> None:
    by_keyword = ApiOperationError("w", "h", status_code=503, url="https://x/y", method="GET")
    by_position = ApiOperationError("w", "h", None, 503, "https://x/y", "GET")
    for err in (by_keyword, by_position):
        assert (err.status_code, err.url, err.method) == (503, "https://x/y", "GET")
    bare = ApiOperationError("w", "h")
    assert bare.status_code is None and isinstance(bare.url, str) and isinstance(bare.method, str)


def test_rate_limit_error_keeps_retry_after() -> None:
    err = ApiRateLimitError("w", "h", retry_after=120.0, url="https://x", method="POST")
    assert err.retry_after == 120.0
    assert ApiRateLimitError("w", "h").retry_after is None
    assert (err.url, err.method) == ("https://x", "POST")


def test_circuit_open_error_is_an_api_operation_error() -> None:
    err = CircuitOpenError("open", "wait", status_code=None, url="https://x", method="GET")
    assert isinstance(err, ApiOperationError)
    assert err.url == "https://x"


def test_errors_survive_pickling_with_their_context() -> None:
    err = ApiRateLimitError("w", "h", "e", retry_after=3.5, status_code=429, url="u", method="GET")
    copy = pickle.loads(pickle.dumps(err))
    assert str(copy) == str(err)
    assert (copy.retry_after, copy.status_code, copy.url, copy.method) == (3.5, 429, "u", "GET")
