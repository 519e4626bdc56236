"""Atomically written files get the mode a plain open() would give them, not mkstemp's 0600."""

from __future__ import annotations

import os
import stat

from keras_squeeze.core import atomic


def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        path = atomic.write_bytes(tmp_path / "model.tflite", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    path = atomic.write_text(tmp_path / "report.md", "y")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~old
