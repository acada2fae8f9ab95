"""Atomic writes: whole new content or the old one, and the permissions open() gives."""

import os

import pytest

from skmia._rundir import atomic_write_bytes, atomic_write_json, read_json


def test_atomic_write_gives_the_files_usual_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "report.html", b"<html></html>")
    finally:
        os.umask(mask)
    assert oct((tmp_path / "report.html").stat().st_mode & 0o777) == oct(0o644)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    atomic_write_json(tmp_path / "a.json", {"x": 1})
    with pytest.raises(TypeError):
        atomic_write_json(tmp_path / "a.json", {"x": object()})
    assert read_json(tmp_path / "a.json") == {"x": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
