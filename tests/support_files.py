"""Small helpers for tests that look at what was written to disk."""

from __future__ import annotations

from pathlib import Path


def every_file(folder: Path) -> list[str]:
    """Every file under ``folder``, hidden temporary files included, as sorted relative paths."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
