"""Project folders: resolve ``(category, filename)`` to a path that cannot escape its folder."""

from __future__ import annotations

import os
from pathlib import Path

from utils.exceptions import FileOperationError

# The project root is the folder that holds utils/. Tests may monkeypatch it.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

CATEGORIES = ("config", "data", "output", "logs", "tmp", "schemas")
# schemas/ ships with the code; a missing one is a broken install, not a folder to create.
NOT_CREATED = frozenset({"schemas"})


def get_category_dir(category: str) -> Path:
    """Return the folder of ``category``, creating it when missing (not ``schemas``).

    Raises:
        FileOperationError: ``category`` is not one of :data:`CATEGORIES`.
    """
    if category not in CATEGORIES:
        raise FileOperationError(
            f"Unknown folder category {category!r}.",
            f"Use one of: {', '.join(CATEGORIES)}.",
            'get_path("output", "report.csv")',
        )
    folder = PROJECT_ROOT / category
    if category not in NOT_CREATED:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise FileOperationError(
                f"Cannot create the {category}/ folder at {folder}: {err.strerror}.",
                f"Check that {PROJECT_ROOT} is writable, or mount a writable {category}/ there.",
            ) from err
    return folder


def get_path(category: str, filename: str) -> Path:
    """Return the path of ``filename`` inside the project folder ``category``.

    ``filename`` may contain sub-folders (``"2024/report.csv"``) but must stay inside its
    category folder. The category folder is created when missing (except ``schemas``).

    Args:
        category: One of ``config``, ``data``, ``output``, ``logs``, ``tmp``, ``schemas``.
        filename: A relative file name.

    Returns:
        The absolute path under the project root.

    Raises:
        FileOperationError: Unknown category, empty or absolute filename, or a filename that
            escapes its folder (``..``).

    Example:
        >>> get_path("output", "acme-prod-report.xlsx").name
        'acme-prod-report.xlsx'
    """
    name = str(filename) if isinstance(filename, os.PathLike) else filename
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
    folder = get_category_dir(category)
    target = os.path.normpath(os.path.join(folder, name))
    if os.path.commonpath([target, os.path.normpath(folder)]) != os.path.normpath(folder) or (
        target == os.path.normpath(folder)
    ):
        raise FileOperationError(
            f"File name {name!r} escapes the {category}/ folder.",
            f"Remove '..' from the name: files must stay inside {category}/.",
            f'get_path("{category}", "report.csv")',
        )
    return Path(target)
