from __future__ import annotations

import pytest

from keras_squeeze.core import atomic
from keras_squeeze.errors import OutputError


def test_write_bytes_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "a.bin"
    atomic.write_bytes(target, b"one")
    atomic.write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert [p.name for p in target.parent.iterdir()] == ["a.bin"]


def test_staging_dir_is_removed_on_failure(tmp_path):
    with pytest.raises(RuntimeError), atomic.staging_dir(tmp_path) as stage:
        (stage / "half.tflite").write_bytes(b"x")
        raise RuntimeError("converter failed")
    assert list(tmp_path.iterdir()) == []


def test_move_into_place_replaces_a_directory_whole(tmp_path):
    target = tmp_path / "saved_model"
    (target / "1").mkdir(parents=True)
    (target / "1" / "old.pb").write_text("old")
    with atomic.staging_dir(tmp_path) as stage:
        new = stage / "saved_model"
        (new / "1").mkdir(parents=True)
        (new / "1" / "saved_model.pb").write_text("new")
        atomic.move_into_place(new, target)
    assert [p.name for p in (target / "1").iterdir()] == ["saved_model.pb"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved_model"]


def test_check_writable_dir(tmp_path):
    assert atomic.check_writable_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # checking creates nothing
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(OutputError, match=r"output directory is a file.*Received: '.*file.txt'"):
        atomic.check_writable_dir(blocker)
    with pytest.raises(OutputError, match=r"cannot be written.*'.*file.txt' is not writable"):
        atomic.check_writable_dir(blocker / "out")
