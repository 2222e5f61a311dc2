"""Replace a file whole or not at all: temporary file, fsync, rename.

The data goes to a hidden temporary file in the target's own folder (``.{name}.{random}.tmp``,
so the rename never crosses a file system), is flushed to disk with fsync, and is renamed over
the target with ``os.replace`` (atomic on POSIX and Windows). On any failure,
``KeyboardInterrupt`` and the exception ``run_script`` raises on SIGTERM included, the
temporary file is removed and an existing target is left untouched. A process killed with
SIGKILL cannot clean up: it may leave a hidden ``.{name}.*.tmp`` file behind (safe to delete),
never a partial target.

The folder itself is not fsynced after the rename: that costs a journal commit per file, and
after a power cut right after ``save()`` returned it can only mean finding the previous
version of the file, still whole.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

from utils.exceptions import FileOperationError

TEMP_SUFFIX = ".tmp"
RANDOM_BYTES = 6
# File systems limit a name to 255 bytes. The temporary name adds 18 bytes to the target's
# name, and the xlsx writer's parts folder a few more to that: 200 bytes of the target's name
# leave room for both, however many bytes its characters take in UTF-8.
MAX_NAME_PART = 200
NEW_FILE_MODE = 0o666  # before the umask, like open(..., "w")


def temp_path_for(target: Path) -> Path:
    """Return a fresh hidden temporary path beside ``target`` (not created)."""
    raw = target.name.encode("utf-8", "surrogateescape")[:MAX_NAME_PART]
    stem = raw.decode("utf-8", "ignore")  # never cut a character in half
    return target.with_name(f".{stem}.{secrets.token_hex(RANDOM_BYTES)}{TEMP_SUFFIX}")


def _create_temp(target: Path) -> Path:
    while True:
        tmp = temp_path_for(target)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, NEW_FILE_MODE)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp


def _fsync(path: Path) -> int:
    """Flush ``path`` to disk; return its size."""
    fd = os.open(path, os.O_RDWR)
    try:
        os.fsync(fd)
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def write_atomically(target: Path, write: Callable[[Path], None]) -> int:
    """Call ``write(temporary_path)``, then move the finished file to ``target``.

    A new file gets the usual permissions (``0o666`` less the umask); a replaced file keeps
    the permission bits it had.

    Args:
        target: The final path; missing parent folders are created.
        write: Writes the complete content to the path it is given.

    Returns:
        The size of the written file in bytes.

    Raises:
        FileOperationError: The folder or file could not be created or written (disk full,
            permissions, a folder in the way ...): any ``OSError`` out of ``write``.
        BaseException: Whatever else ``write`` raised, after the temporary file is removed.
    """
    tmp: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = _create_temp(target)
        write(tmp)
        size = _fsync(tmp)
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, stat.S_IMODE(os.stat(target).st_mode))
        os.replace(tmp, target)
        tmp = None
    except BaseException as err:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(err, OSError):
            reason = err.strerror or str(err)
            raise FileOperationError(
                f"Cannot write {target}: {reason}.",
                "Check that the folder is writable, that the disk has free space and that "
                "no folder or locked file is in the way; the previous file, if any, is "
                "unchanged.",
            ) from err
        raise
    return size
