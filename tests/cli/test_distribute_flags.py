"""--strategy and --tensorboard_dir of keras-squeeze-compress."""

from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pytest

from keras_squeeze.cli import compress, compress_lib
from keras_squeeze.errors import DependencyError
from tests.cli.helpers import flags_of

HAS_TENSORBOARD = importlib.util.find_spec("tensorboard") is not None


def test_flags_parse():
    with flags_of(compress, "--strategy=mirrored", "--tensorboard_dir=logs") as flags:
        assert (flags.strategy, flags.tensorboard_dir) == ("mirrored", "logs")
    with flags_of(compress) as flags:
        assert (flags.strategy, flags.tensorboard_dir) == ("default", None)


@pytest.fixture
def files(trained_models, digits8, tmp_path):
    (x, y), (xt, yt) = digits8
    model_path = tmp_path / "m.keras"
    trained_models["keras3"].save(model_path)
    data = tmp_path / "d.npz"
    np.savez(data, x_train=x[:128], y_train=y[:128], x_test=xt[:64], y_test=yt[:64])
    return {"model": str(model_path), "data": str(data), "output_dir": str(tmp_path / "out")}


def _run(files, **extra):
    return compress_lib.run(
        **files, recipe="prune", epochs=1, formats=("tflite",), verbose=0, **extra
    )


def test_mirrored_prune(files, tmp_path):
    _run(files, strategy="mirrored")
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    # MirroredStrategy over the local devices: this machine's one CPU.
    assert report["training"]["distribute"] == {"strategy": "MirroredStrategy", "replicas": 1}


def test_tensorboard_dir_needs_tensorboard(files, tmp_path, monkeypatch):
    # the package made unimportable, as on a machine without it (it is in the dev extras)
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    with pytest.raises(DependencyError, match=r"tensorboard package.*not installed"):
        _run(files, tensorboard_dir=str(tmp_path / "tb"))
    assert not (tmp_path / "out").exists()  # refused before any work


@pytest.mark.skipif(not HAS_TENSORBOARD, reason="needs the tensorboard package")
def test_tensorboard_dir_logs_each_stage(files, tmp_path):
    _run(files, tensorboard_dir=str(tmp_path / "tb"))
    events = list((tmp_path / "tb" / "prune" / "train").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
