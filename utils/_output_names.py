"""Output names no other run has: each name is reserved in its folder before it is handed out.

``timestamped_filename`` stamps names to the minute, so two runs that start in the same minute
(a re-run after a failure, two cron entries, two pods) would compute the same name and the
second would silently replace the first one's report. Here a name is free only when

1. a hidden reservation ``.{name}.reserved`` can be created beside it with
   ``O_CREAT | O_EXCL`` (atomic: of two processes, or two threads, exactly one succeeds), and
2. after that, no file (or folder, or link) called ``{name}`` exists.

Otherwise the next candidate is tried: ``{stem}.{ext}``, then ``{stem}_2.{ext}``,
``{stem}_3.{ext}`` and so on. The order of the two steps matters: a run removes its
reservations only when the process ends, after its files are written, so a reservation that
can be created means the file it guarded is already there to be seen.

The reservation is a separate hidden file, not an empty placeholder under the real name: a run
that dies before saving leaves no empty ``.xlsx`` that looks like a report. Reservations are
removed when the process exits (normally, on an error, on Ctrl-C or SIGTERM as ``run_script``
handles them). A process killed with SIGKILL leaves its hidden ``.{name}.reserved`` files
behind (a few bytes each, naming the process): they only ever make a later run in that same
minute pick the next suffix, and any older than :data:`RESERVATION_MAX_AGE` are removed the
next time a name is reserved in that folder.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import itertools
import logging
import os
import threading
import time
from pathlib import Path

from utils.exceptions import FileOperationError

log = logging.getLogger(__name__)

RESERVED_SUFFIX = ".reserved"
# A name holds its minute; a reservation older than this guards a minute long gone.
RESERVATION_MAX_AGE = 24 * 60 * 60  # seconds
FIRST_SUFFIX = 2
RESERVATION_MODE = 0o644

_held: dict[Path, int] = {}  # reservation → the process that made it
_swept: set[Path] = set()
_lock = threading.Lock()
_exit_hook_registered = False


def reservation_for(path: Path) -> Path:
    """Return the hidden reservation file that guards ``path``."""
    return path.with_name(f".{path.name}{RESERVED_SUFFIX}")


def is_reservation(name: str) -> bool:
    """Return whether a file name is a reservation (hidden, ``.reserved``)."""
    return name.startswith(".") and name.endswith(RESERVED_SUFFIX)


def candidates(stem: str, ext: str) -> itertools.chain[str]:
    """Yield ``{stem}.{ext}``, ``{stem}_2.{ext}``, ``{stem}_3.{ext}`` ... without end."""
    return itertools.chain(
        [f"{stem}.{ext}"], (f"{stem}_{n}.{ext}" for n in itertools.count(FIRST_SUFFIX))
    )


def reserve(folder: Path, stem: str, ext: str) -> str:
    """Reserve and return the first name of :func:`candidates` that no run has.

    Args:
        folder: The existing folder the file will be saved in.
        stem: The name without suffix and extension.
        ext: The extension, without its dot.

    Raises:
        FileOperationError: A reservation cannot be created (folder not writable, name too
            long ...).
    """
    with _lock:
        _sweep(folder)
        for name in candidates(stem, ext):
            marker = reservation_for(folder / name)
            try:
                fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, RESERVATION_MODE)
            except FileExistsError:
                continue  # another run (or this one) holds the name
            except OSError as err:
                raise FileOperationError(
                    f"Cannot reserve the output name {name!r} in {folder}: {err.strerror or err}.",
                    "Check that the folder is writable (the file will be saved there) and "
                    "that the name is not too long.",
                ) from err
            if os.path.lexists(folder / name):  # an earlier run wrote it
                os.close(fd)
                with contextlib.suppress(OSError):
                    os.unlink(marker)
                continue
            started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
            try:  # for a person who finds it; the file's existence is the reservation
                os.write(fd, f"reserved by process {os.getpid()} at {started}\n".encode())
            except OSError:
                pass
            finally:
                os.close(fd)
            _hold(marker)
            if name != f"{stem}.{ext}":
                log.info("Output name %s taken by an earlier run: using %s", stem, name)
            return name
    raise AssertionError("unreachable: candidates() never ends")


def _hold(marker: Path) -> None:
    global _exit_hook_registered
    _held[marker] = os.getpid()
    if not _exit_hook_registered:
        atexit.register(release_all)
        _exit_hook_registered = True


def release_all() -> None:
    """Remove this process's reservations (run at exit; the files they guarded stay).

    A forked child inherits the list but not the reservations: it leaves them to its parent.
    """
    with _lock:
        for marker, owner in list(_held.items()):
            if owner == os.getpid():
                with contextlib.suppress(OSError):
                    os.unlink(marker)
            del _held[marker]


def _sweep(folder: Path) -> None:
    """Remove reservations older than :data:`RESERVATION_MAX_AGE` (once per folder)."""
    if folder in _swept:
        return
    _swept.add(folder)
    limit = time.time() - RESERVATION_MAX_AGE
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            if is_reservation(entry.name) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    if entry.stat(follow_symlinks=False).st_mtime < limit:
                        os.unlink(entry.path)
                        log.debug("Removed a stale output-name reservation %s", entry.path)
