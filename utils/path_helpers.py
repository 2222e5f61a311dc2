"""Project folders: resolve ``(category, filename)`` to a path that cannot escape its folder."""

from __future__ import annotations

import os
from pathlib import Path

from utils.exceptions import FileOperationError

# The project root is the folder that holds utils/. Tests may monkeypatch it.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

CATEGORIES = ("config", "data", "output", "logs", "tmp", "schemas", "state")
# schemas/ ships with the code; a missing one is a broken install, not a folder to create.
NOT_CREATED = frozenset({"schemas"})


def _unknown_category(category: object) -> FileOperationError:
    return FileOperationError(
        f"Unknown folder category {category!r}.",
        f"Use one of: {', '.join(CATEGORIES)}.",
        'get_path("output", "report.csv")',
    )


def get_category_dir(category: str) -> Path:
    """Return the folder of ``category``, creating it when missing (not ``schemas``).

    Raises:
        FileOperationError: ``category`` is not one of :data:`CATEGORIES`, or the folder
            cannot be created.
    """
    if category not in CATEGORIES:
        raise _unknown_category(category)
    folder = Path(PROJECT_ROOT) / category  # Path(): a test may patch in a str
    if category not in NOT_CREATED:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise FileOperationError(
                f"Cannot create the {category}/ folder at {folder}: {err.strerror}.",
                f"Check that {PROJECT_ROOT} is writable, or mount a writable {category}/ there.",
            ) from err
    return folder


def check_path(category: str, filename: str) -> Path:
    """Return the path :func:`get_path` would return, without creating any folder.

    Used to reject a bad name before anything touches the disk.

    Raises:
        FileOperationError: As :func:`get_path`.
    """
    if not isinstance(category, str) or category not in CATEGORIES:
        raise _unknown_category(category)
    name = os.fspath(filename) if isinstance(filename, os.PathLike) else filename
    if not isinstance(name, str) or not name.strip() or "\x00" in name:
        raise FileOperationError(
            f"Invalid file name {filename!r} for the {category}/ folder.",
            "Give a non-empty relative file name.",
            f'get_path("{category}", "report.csv")',
        )
    if os.path.isabs(name) or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise FileOperationError(
            f"File name {name!r} is an absolute path; {category}/ files are named relative "
            "to their folder.",
            f"Pass only the name inside {category}/ and let get_path find the folder.",
            f'get_path("{category}", "report.csv")',
        )
    folder = os.path.normpath(Path(PROJECT_ROOT) / category)
    target = os.path.normpath(os.path.join(folder, name))
    candidates = [target]
    if "\\" in name:  # a separator on Windows: "..\\x" must not pass here and escape there
        candidates.append(os.path.normpath(os.path.join(folder, name.replace("\\", "/"))))
    inside = folder.rstrip(os.sep) + os.sep
    if any(t != folder and not t.startswith(inside) for t in candidates):
        raise FileOperationError(
            f"File name {name!r} escapes the {category}/ folder.",
            f"Remove '..' from the name: files must stay inside {category}/.",
            f'get_path("{category}", "report.csv")',
        )
    if target == folder:
        raise FileOperationError(
            f"File name {name!r} names the {category}/ folder itself, not a file in it.",
            "Give the name of a file inside the folder.",
            f'get_path("{category}", "report.csv")',
        )
    return Path(target)


def get_path(category: str, filename: str) -> Path:
    """Return the path of ``filename`` inside the project folder ``category``.

    ``filename`` may contain sub-folders (``"2024/report.csv"``) but must stay inside its
    category folder. The category folder is created when missing (except ``schemas``);
    sub-folders are not (``save()`` creates them). The check is on the name, not on the disk:
    a symbolic link that an operator placed (``output/`` itself, or a folder inside it, linked
    to a share) is followed, while a name can never climb out with ``..`` or be absolute.

    Args:
        category: One of ``config``, ``data``, ``output``, ``logs``, ``tmp``, ``schemas``.
        filename: A relative file name (``str`` or path-like).

    Returns:
        The absolute path under the project root.

    Raises:
        FileOperationError: Unknown category, empty or absolute filename, a filename that
            escapes its folder (``..``, with ``/`` or ``\\``) or names the folder itself.

    Example:
        >>> get_path("output", "acme-prod-report.xlsx").name
        'acme-prod-report.xlsx'
    """
    target = check_path(category, filename)
    get_category_dir(category)
    return target
