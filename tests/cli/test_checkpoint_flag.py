"""--checkpoint_dir and --strategy=multi_worker of keras-squeeze-compress (the runs that
resume are in tests/training/test_checkpoint.py, the two workers in tests/distribute/)."""

from __future__ import annotations

import pytest

from keras_squeeze.cli import compress, compress_lib
from keras_squeeze.errors import ConfigError, OutputError
from tests.cli.helpers import flags_of


def test_flags_parse():
    with flags_of(compress, "--checkpoint_dir=ckpt", "--strategy=multi_worker") as flags:
        assert (flags.checkpoint_dir, flags.strategy) == ("ckpt", "multi_worker")
    with flags_of(compress) as flags:
        assert flags.checkpoint_dir is None


def test_unknown_strategy_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"Unknown strategy.*Received: strategy='many'"):
        compress_lib.run(recipe="prune", output_dir=str(tmp_path / "out"), strategy="many")


def test_unwritable_checkpoint_dir_refused_before_work(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match=r"The checkpoint_dir cannot be written"):
        compress_lib.run(
            recipe="prune", output_dir=str(tmp_path / "out"), checkpoint_dir=str(blocker / "c")
        )
    assert not (tmp_path / "out").exists()
