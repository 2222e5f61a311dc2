"""get_path: every category, folder creation, and no way out of the folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from utils import path_helpers
from utils.exceptions import FileOperationError
from utils.path_helpers import CATEGORIES, get_path


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(path_helpers, "PROJECT_ROOT", tmp_path)
    return tmp_path


@pytest.mark.parametrize("category", ["config", "data", "output", "logs", "tmp"])
def test_resolves_under_the_project_root_and_creates_the_folder(root: Path, category: str) -> None:
    path = get_path(category, "file.json")
    assert path == root / category / "file.json"
    assert (root / category).is_dir()
    assert not path.exists()


def test_schemas_folder_is_not_created(root: Path) -> None:
    assert get_path("schemas", "s.json") == root / "schemas" / "s.json"
    assert not (root / "schemas").exists()


def test_default_root_is_the_folder_holding_utils() -> None:
    assert (path_helpers.PROJECT_ROOT / "utils" / "path_helpers.py").is_file()
    assert get_path("schemas", "x.json").parent == path_helpers.PROJECT_ROOT / "schemas"


def test_categories_are_exactly_the_documented_ones() -> None:
    assert set(CATEGORIES) == {"config", "data", "output", "logs", "tmp", "schemas", "state"}


def test_subfolders_inside_the_category_are_allowed(root: Path) -> None:
    assert (
        get_path("output", "2024/q1/report.csv") == root / "output" / "2024" / "q1" / "report.csv"
    )


def test_dot_segments_that_stay_inside_are_normalised(root: Path) -> None:
    assert get_path("output", "a/../b.csv") == root / "output" / "b.csv"


@pytest.mark.parametrize("category", ["secrets", "", "Output", "../config", "src"])
def test_unknown_category_is_rejected(root: Path, category: str) -> None:
    with pytest.raises(FileOperationError) as info:
        get_path(category, "x.json")
    assert "config, data, output, logs, tmp, schemas" in info.value.how_to_fix


@pytest.mark.parametrize(
    "filename",
    [
        "../x.json",
        "../../etc/passwd",
        "a/../../x.json",
        "..",
        "sub/../../config/x.json",
        "./..",
    ],
)
def test_escaping_the_folder_is_rejected(root: Path, filename: str) -> None:
    with pytest.raises(FileOperationError) as info:
        get_path("output", filename)
    assert "escapes" in info.value.what_went_wrong


@pytest.mark.parametrize("filename", [".", "./", "sub/.."])
def test_a_name_for_the_folder_itself_is_rejected(root: Path, filename: str) -> None:
    with pytest.raises(FileOperationError) as info:
        get_path("output", filename)
    assert "folder itself" in info.value.what_went_wrong


@pytest.mark.parametrize(
    "filename", ["/etc/passwd", "/tmp/x.csv", "\\\\server\\share\\x", "C:\\x.csv"]
)
def test_absolute_filename_is_rejected(root: Path, filename: str) -> None:
    with pytest.raises(FileOperationError) as info:
        get_path("output", filename)
    assert "absolute" in info.value.what_went_wrong


@pytest.mark.parametrize("filename", ["", "   ", "a\x00b"])
def test_empty_or_nul_filename_is_rejected(root: Path, filename: str) -> None:
    with pytest.raises(FileOperationError):
        get_path("output", filename)


def test_rejection_creates_nothing_outside(root: Path) -> None:
    with pytest.raises(FileOperationError):
        get_path("output", "../escaped.txt")
    assert not (root / "escaped.txt").exists()


def test_accepts_a_pathlike_filename(root: Path) -> None:
    assert get_path("data", Path("in.csv")) == root / "data" / "in.csv"  # type: ignore[arg-type]
