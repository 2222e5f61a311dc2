"""Atomic saves: a failure, Ctrl-C, SIGTERM or SIGKILL never leaves a partial file.

Also the memory bound of streaming saves, measured in a real subprocess.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
import xlsxwriter.worksheet

from utils import _record_streams, atomic_write, json_encoding, run_stats
from utils.exceptions import FileOperationError
from utils.load_n_save import TxoDataHandler

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
