"""Atomic saves: a failure, Ctrl-C, SIGTERM or SIGKILL never leaves a partial file.

Also the memory bound of streaming saves, measured in a real subprocess.
"""

from __future__ import annotations

import contextlib
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
import pyarrow.parquet as pq
import pytest
import xlsxwriter
import xlsxwriter.worksheet

from tests.support_files import every_file
from utils import (
    _atomic_write as atomic_write,
    _json_encoding as json_encoding,
    _record_streams,
    path_helpers,
    run_stats,
)
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
OLD = b"previous, complete content\n"
TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{12}\.tmp$")


class Terminated(BaseException):
    """Stands in for the exception run_script raises on SIGTERM (a BaseException)."""


@pytest.fixture
def root(root: Path) -> Path:
    """The shared project root, with its output/ folder made."""
    (root / "output").mkdir()
    return root


def previous(root: Path, name: str) -> Path:
    path = root / "output" / name
    path.write_bytes(OLD)
    return path


def assert_untouched(root: Path, name: str) -> None:
    assert (root / "output" / name).read_bytes() == OLD
    assert sorted(p.name for p in (root / "output").iterdir()) == [name]
    assert run_stats.get(run_stats.FILES_WRITTEN) == 0


def failing_pages(root: Path, error: BaseException, seen: list[int]) -> Iterator[Any]:
    """Yield 30 pages of 100 rows, note the temporary file's size, then raise ``error``."""
    for page in range(30):
        yield [{"id": page * 100 + i, "text": "row"} for i in range(100)]
    temps = [p for p in (root / "output").iterdir() if TEMP_NAME.match(p.name)]
    seen.extend(p.stat().st_size for p in temps)
    raise error


@pytest.mark.parametrize("ext", [".csv", ".parquet", ".jsonl"])
@pytest.mark.parametrize(
    "error", [RuntimeError("page fetch failed"), KeyboardInterrupt(), Terminated()]
)
def test_a_stream_failing_mid_write_leaves_the_previous_file_and_no_temp(
    root: Path,
    handler: TxoDataHandler,
    monkeypatch: pytest.MonkeyPatch,
    ext: str,
    error: BaseException,
) -> None:
    monkeypatch.setattr(_record_streams, "CSV_BATCH_ROWS", 100)
    monkeypatch.setattr(json_encoding, "JSONL_BATCH_ROWS", 100)
    previous(root, f"report{ext}")
    seen: list[int] = []
    with pytest.raises(type(error)):
        kwargs = {"row_group_size": 500} if ext == ".parquet" else {}
        handler.save(failing_pages(root, error, seen), "output", f"report{ext}", **kwargs)
    assert len(seen) == 1 and seen[0] > len(OLD)  # it really was mid-write
    assert_untouched(root, f"report{ext}")


def test_the_temporary_file_is_hidden_beside_the_target(
    root: Path, handler: TxoDataHandler
) -> None:
    listings: list[list[str]] = []

    def pages() -> Iterator[list[dict[str, int]]]:
        yield [{"a": 1}]
        listings.append(sorted(p.name for p in (root / "output" / "sub").iterdir()))

    handler.save(pages(), "output", "sub/new.csv")
    [[temp]] = listings
    match = TEMP_NAME.match(temp)
    assert match and match["name"] == "new.csv"
    assert sorted(p.name for p in (root / "output" / "sub").iterdir()) == ["new.csv"]


@pytest.mark.parametrize(
    ("ext", "data", "patch"),
    [
        (".csv", pd.DataFrame({"a": range(1000)}), ("to_csv", pd.DataFrame)),
        (".parquet", pd.DataFrame({"a": range(1000)}), ("to_parquet", pd.DataFrame)),
        (
            ".xlsx",
            pd.DataFrame({"a": ["x"] * 1000}),
            ("write_string", xlsxwriter.worksheet.Worksheet),
        ),
    ],
)
def test_a_writer_raising_mid_write_leaves_the_previous_file_and_no_temp(
    root: Path,
    handler: TxoDataHandler,
    monkeypatch: pytest.MonkeyPatch,
    ext: str,
    data: pd.DataFrame,
    patch: tuple[str, type],
) -> None:
    name, owner = patch
    real = getattr(owner, name)
    calls = {"n": 0}

    def partial_then_crash(self: Any, *args: Any, **kwargs: Any) -> Any:
        if name == "write_string":
            calls["n"] += 1
            if calls["n"] < 500:
                return real(self, *args, **kwargs)
        else:
            real(self.head(500), *args, **kwargs)  # part of the data reaches the file
        raise RuntimeError("writer crashed")

    monkeypatch.setattr(owner, name, partial_then_crash)
    previous(root, f"report{ext}")
    with pytest.raises(RuntimeError, match="writer crashed"):
        handler.save(data, "output", f"report{ext}")
    assert_untouched(root, f"report{ext}")  # xlsxwriter's part folder is gone too


def test_disk_full_is_a_file_operation_error_and_the_previous_file_stays(
    root: Path, handler: TxoDataHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(path: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic_write, "_fsync", disk_full)
    previous(root, "notes.txt")
    with pytest.raises(FileOperationError) as info:
        handler.save("new text", "output", "notes.txt")
    assert info.value.what_went_wrong == (
        f"Cannot write {root / 'output' / 'notes.txt'}: No space left on device."
    )
    assert_untouched(root, "notes.txt")


def test_a_failed_rename_leaves_the_previous_file_and_no_temp(
    root: Path, handler: TxoDataHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(src: Any, dst: Any) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(atomic_write.os, "replace", refuse)
    previous(root, "data.json")
    with pytest.raises(FileOperationError, match="Permission denied"):
        handler.save({"a": 1}, "output", "data.json")
    assert_untouched(root, "data.json")


def test_a_folder_in_the_way_is_a_file_operation_error(root: Path, handler: TxoDataHandler) -> None:
    (root / "output" / "taken.csv").mkdir()
    with pytest.raises(FileOperationError, match="Cannot write"):
        handler.save([{"a": 1}], "output", "taken.csv")
    assert sorted(p.name for p in (root / "output").iterdir()) == ["taken.csv"]


def test_a_replaced_file_keeps_its_permissions_and_a_new_one_follows_the_umask(
    root: Path, handler: TxoDataHandler
) -> None:
    old = previous(root, "kept.txt")
    old.chmod(0o640)
    handler.save("new", "output", "kept.txt")
    assert (old.stat().st_mode & 0o777, old.read_text()) == (0o640, "new")
    umask = os.umask(0o027)
    try:
        new = handler.save("x", "output", "fresh.txt")
    finally:
        os.umask(umask)
    assert new.stat().st_mode & 0o777 == 0o640


# --- a real process killed with SIGKILL --------------------------------------------------

WRITER = textwrap.dedent(
    """
    import itertools, sys
    from pathlib import Path
    from utils import path_helpers
    path_helpers.PROJECT_ROOT = Path(sys.argv[1])
    from utils.load_n_save import TxoDataHandler

    ext, rows = sys.argv[2], int(sys.argv[3])
    handler = TxoDataHandler()
    for generation in itertools.count():
        def pages(generation=generation):
            for page in range(rows // 1000):
                yield [{"generation": generation, "row": page * 1000 + i, "pad": "x" * 40}
                       for i in range(1000)]
        handler.save(pages(), "output", "big" + ext)
        print(generation, flush=True)
    """
)


@contextlib.contextmanager
def writer_process(root: Path, ext: str, rows: int) -> Iterator[subprocess.Popen[str]]:
    """Run the looping writer; it is SIGKILLed on exit whatever happened in between."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root), ext, str(rows)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def assert_whole(path: Path, rows: int) -> None:
    frame = pd.read_csv(path) if path.suffix == ".csv" else pq.read_table(path).to_pandas()
    assert frame["row"].tolist() == list(range(rows))
    assert frame["generation"].nunique() == 1


@pytest.mark.parametrize("ext", [".csv", ".parquet"])
def test_sigkill_mid_write_leaves_the_old_file_or_none_never_a_partial_one(
    root: Path, ext: str
) -> None:
    rows = 40_000
    target = root / "output" / f"big{ext}"
    # Killed during the very first save: no file at all.
    with writer_process(root, ext, rows):
        deadline = time.monotonic() + 30
        while not any(TEMP_NAME.match(p.name) for p in (root / "output").iterdir()):
            assert time.monotonic() < deadline, "the writer never started"
            time.sleep(0.005)
    assert not target.exists()
    # Killed while replacing a complete file, at several moments of the rewrite.
    killed_mid_write = 0
    for delay in (0.0, 0.03, 0.07, 0.11, 0.17):
        for stale in (root / "output").iterdir():
            stale.unlink()
        with writer_process(root, ext, rows) as process:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "0"  # one complete file exists
            time.sleep(delay)
        assert_whole(target, rows)
        killed_mid_write += any(TEMP_NAME.match(p.name) for p in (root / "output").iterdir())
    assert killed_mid_write >= 3  # SIGKILL cannot clean up: the temp file shows a write was cut


TERMINATED_SCRIPT = textwrap.dedent(
    """
    import itertools, sys
    from pathlib import Path
    from utils import path_helpers
    path_helpers.PROJECT_ROOT = Path(sys.argv[1])
    from utils.load_n_save import TxoDataHandler
    from utils.script_runner import run_script

    def main():
        def pages():
            for page in itertools.count():
                if page == 30:
                    print("writing", flush=True)
                yield [{"id": page * 1000 + i, "pad": "x" * 40} for i in range(1000)]
        TxoDataHandler().save(pages(), "output", "report" + sys.argv[2])

    run_script(main)
    """
)


@pytest.mark.parametrize("ext", [".csv", ".parquet"])
def test_sigterm_under_run_script_exits_143_and_leaves_the_previous_file(
    root: Path, ext: str
) -> None:
    previous(root, f"report{ext}")
    process = subprocess.Popen(
        [sys.executable, "-c", TERMINATED_SCRIPT, str(root), ext],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "writing"
        assert any(TEMP_NAME.match(p.name) for p in (root / "output").iterdir())
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 143, stderr
    assert_untouched(root, f"report{ext}")


# --- bounded memory ------------------------------------------------------------------------

MEMORY_PROBE = textwrap.dedent(
    """
    import re, resource, sys
    from pathlib import Path
    from utils import path_helpers
    path_helpers.PROJECT_ROOT = Path(sys.argv[1])
    from utils.load_n_save import TxoDataHandler

    ext, rows, mode = sys.argv[2], int(sys.argv[3]), sys.argv[4]

    def peak_rss():
        # Linux: VmHWM of this process image. ru_maxrss would also count the parent's size
        # carried over by fork + exec, hiding the growth when the test runner is large.
        try:
            status = Path("/proc/self/status").read_text()
            return int(re.search(r"VmHWM:\\s*(\\d+) kB", status).group(1)) * 1024
        except OSError:
            scale = 1 if sys.platform == "darwin" else 1024
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale

    def pages(count):
        for page in range(count // 1000):
            yield [{"id": i, "name": f"customer {i}", "email": f"user{i}@example.com",
                    "amount": i * 1.5, "city": "Amsterdam", "note": "n" * 60,
                    "active": i % 2 == 0, "created": "2024-01-01T00:00:00Z"}
                   for i in range(page * 1000, (page + 1) * 1000)]

    handler = TxoDataHandler()
    handler.save(pages(150_000), "output", "warm" + ext)  # imports, buffers, allocator arenas
    before = peak_rss()
    data = pages(rows) if mode == "stream" else [r for page in pages(rows) for r in page]
    handler.save(data, "output", "big" + ext)
    print(peak_rss() - before)
    """
)
MIB = 1024 * 1024
STREAM_ROWS = 200_000


def peak_growth(root: Path, ext: str, mode: str) -> int:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(root), ext, str(STREAM_ROWS), mode],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    return int(result.stdout)


@pytest.mark.parametrize("ext", [".csv", ".parquet"])
def test_streaming_200k_records_keeps_peak_memory_flat(root: Path, ext: str) -> None:
    growth = peak_growth(root, ext, "stream")
    assert growth < 40 * MIB, f"peak RSS grew {growth / MIB:.0f} MiB"
    path = root / "output" / f"big{ext}"
    count = len(pd.read_csv(path)) if ext == ".csv" else pq.ParquetFile(path).metadata.num_rows
    assert count == STREAM_ROWS


def test_the_memory_probe_sees_the_same_records_held_in_a_list(root: Path) -> None:
    # The control: the probe is sensitive enough to catch a save that holds the stream.
    assert peak_growth(root, ".csv", "list") > 100 * MIB


# ==== contract_save_safety: DESIGN §3 contract: atomic writes, project paths, output names and the error classes.
#
# A failed or killed save leaves the previous file byte-identical and no temporary file; a name
# can never leave its folder; ``timestamped_filename`` is exact and in UTC; every
# ``HelpfulError`` renders its three parts and keeps its context.
CATEGORIES = ["config", "data", "output", "logs", "tmp", "schemas"]
STREAMED = [".csv", ".parquet", ".jsonl"]


@pytest.fixture
def project_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project root one level down, so that an escape would land in ``tmp_path``."""
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.setattr(path_helpers, "PROJECT_ROOT", project)
    run_stats.reset()
    return project


def previous_file(project_root: Path, name: str, handler: TxoDataHandler) -> tuple[Path, bytes]:
    """Save a first version of ``name`` and return its path and bytes."""
    path = handler.save([{"id": 0, "version": "old"}], "output", name)
    return path, path.read_bytes()


# --- paths --------------------------------------------------------------------------------


@pytest.mark.parametrize("category", CATEGORIES)
def test_every_category_resolves_under_the_project_root(project_root: Path, category: str) -> None:
    assert get_path(category, "a/b.json") == project_root / category / "a" / "b.json"
    assert (project_root / category).is_dir() == (category != "schemas")


@pytest.mark.parametrize("category", ["src", "utils", "Output", "", "output/sub", "../output"])
def test_a_directory_that_is_not_a_category_is_a_file_operation_error(
    tmp_path: Path, project_root: Path, handler: TxoDataHandler, category: str
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
    tmp_path: Path, project_root: Path, handler: TxoDataHandler, filename: str
) -> None:
    with pytest.raises(FileOperationError, match="escapes"):
        handler.save({"a": 1}, "output", filename)
    assert every_file(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"]


def test_an_absolute_name_is_refused_and_nothing_is_written(
    tmp_path: Path, project_root: Path, handler: TxoDataHandler
) -> None:
    target = tmp_path / "elsewhere.json"
    with pytest.raises(FileOperationError, match="absolute"):
        handler.save({"a": 1}, "output", str(target))
    with pytest.raises(FileOperationError):
        handler.save({"a": 1}, "output", target)  # type: ignore[arg-type]
    assert not target.exists()
    assert every_file(tmp_path) == []


def test_dot_dot_inside_the_folder_is_fine_and_sub_folders_are_created(
    project_root: Path, handler: TxoDataHandler
) -> None:
    assert get_path("output", "a/../b.json") == project_root / "output" / "b.json"
    path = handler.save({"a": 1}, "output", "2024/03/report.json")
    assert path == project_root / "output" / "2024" / "03" / "report.json" and path.is_file()


def test_a_symlinked_category_folder_is_followed(
    tmp_path: Path, project_root: Path, handler: TxoDataHandler
) -> None:
    share = tmp_path / "share"
    share.mkdir()
    (project_root / "output").symlink_to(share, target_is_directory=True)
    handler.save({"a": 1}, "output", "x.json")
    assert (share / "x.json").is_file()


# --- atomicity ----------------------------------------------------------------------------


def failing_page_stream(exc: BaseException) -> Iterator[list[dict[str, Any]]]:
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
    project_root: Path, handler: TxoDataHandler, ext: str, exc: BaseException
) -> None:
    path, before = previous_file(project_root, f"s{ext}", handler)
    with pytest.raises(type(exc)) as info:
        handler.save(failing_page_stream(exc), "output", f"s{ext}")
    assert info.value is exc  # the caller's own exception, unchanged
    assert path.read_bytes() == before
    assert every_file(project_root) == [f"output/s{ext}"]
    assert run_stats.get(run_stats.FILES_WRITTEN) == 1  # the first save only


def test_a_writer_failing_on_disk_full_is_a_file_operation_error_and_changes_nothing(
    project_root: Path, handler: TxoDataHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, before = previous_file(project_root, "f.csv", handler)

    def disk_full(self: pd.DataFrame, *args: Any, **kwargs: Any) -> None:
        handle = args[0] if args else kwargs["path_or_buf"]
        handle.write("id,version\n1,partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", disk_full)
    with pytest.raises(FileOperationError, match="No space left"):
        handler.save(pd.DataFrame({"id": [1]}), "output", "f.csv")
    assert path.read_bytes() == before
    assert every_file(project_root) == ["output/f.csv"]


def test_an_excel_writer_crashing_changes_nothing(
    project_root: Path, handler: TxoDataHandler, monkeypatch: pytest.MonkeyPatch
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
    assert [p.name for p in (project_root / "output").iterdir()] == ["w.xlsx"]


def test_a_rejected_save_leaves_the_previous_file(
    project_root: Path, handler: TxoDataHandler
) -> None:
    path, before = previous_file(project_root, "r.json", handler)
    with pytest.raises(ValidationError):
        handler.save({"x": object()}, "output", "r.json")
    with pytest.raises(ValidationError):
        handler.save("text", "output", "r.json")
    assert path.read_bytes() == before
    assert every_file(project_root) == ["output/r.json"]


def test_concurrent_saves_of_one_target_end_with_one_whole_file(
    project_root: Path, handler: TxoDataHandler
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
    assert every_file(project_root) == ["output/shared.csv"]
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


def test_a_process_killed_mid_write_never_leaves_a_partial_target(project_root: Path) -> None:
    output = project_root / "output"
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(project_root)],
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
    project_root: Path, monkeypatch: pytest.MonkeyPatch, ext: str
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


def test_timestamped_filename_without_org_and_env_is_a_configuration_error(
    project_root: Path,
) -> None:
    with pytest.raises(ConfigurationError):
        timestamped_filename({}, "customers", "csv")


def test_a_timestamped_name_saves_into_output(project_root: Path, handler: TxoDataHandler) -> None:
    path = handler.save([{"a": 1}], "output", timestamped_filename(CONFIG, "orders", "csv"))
    assert path.parent == project_root / "output" and path.name.startswith("acme-prod-orders_")


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
