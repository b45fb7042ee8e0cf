"""fsutil.atomic_path: all or nothing under the final name; a failed write names the final path."""

from __future__ import annotations

from pathlib import Path

import pytest

from deepcart.errors import InputError
from deepcart.fsutil import atomic_path, atomic_write_text

needs_proc = pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")


def test_success_renames_and_failure_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "a.txt"
    atomic_write_text(out, "one")
    with pytest.raises(RuntimeError), atomic_path(out) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert out.read_text() == "one"
    assert sorted(p.name for p in out.parent.iterdir()) == ["a.txt"]


@needs_proc
@pytest.mark.parametrize("name", ["x.html", "nope/x.html"])
def test_unwritable_folder_names_the_final_path(name: str) -> None:
    final = Path("/proc") / name  # no file can be created in /proc, even by root
    with pytest.raises(InputError) as exc, atomic_path(final) as tmp:
        tmp.write_text("never")
    assert str(exc.value) == f"cannot write {final}: No such file or directory"


def test_rename_onto_a_directory_names_the_final_path(tmp_path: Path) -> None:
    final = tmp_path / "taken"
    final.mkdir()
    with pytest.raises(InputError) as exc:
        atomic_write_text(final, "x")
    assert str(exc.value) == f"cannot write {final}: Is a directory"
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]  # the temporary file is gone


def test_other_files_errors_pass_through(tmp_path: Path) -> None:
    missing = tmp_path / "input.txt"
    with pytest.raises(FileNotFoundError) as exc, atomic_path(tmp_path / "out.txt"):
        missing.read_text()
    assert exc.value.filename == str(missing)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("sub", ["x.txt", "deeper/x.txt"])
def test_a_file_in_place_of_a_folder_is_named(tmp_path: Path, sub: str) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    final = blocker / sub
    with pytest.raises(InputError) as exc:
        atomic_write_text(final, "x")
    assert str(exc.value) == f"cannot write {final}: {blocker} exists and is not a directory"
    assert blocker.read_text() == "not a folder"
