"""keras-squeeze-compress --max_accuracy_drop (passed to compress(), bounded like the argument)
and --sensitivity_only (the per-layer table instead of a compressed model)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from keras_squeeze.cli import compress as compress_script
from tests.cli.helpers import run_main


@pytest.fixture
def args(model_path, digits8, tmp_path):
    (x, y), (xt, yt) = digits8
    data = tmp_path / "d.npz"
    np.savez(data, x_train=x, y_train=y, x_test=xt[:64], y_test=yt[:64])
    return [f"--model={model_path}", f"--data={data}", f"--output_dir={tmp_path / 'out'}"]


def test_max_accuracy_drop(args, tmp_path):
    out = tmp_path / "out"
    args = [*args, "--formats=tflite"]
    assert run_main(compress_script, *args, "--recipe=float16", "--max_accuracy_drop=0.2") == 0
    report = json.loads((out / "report.json").read_text())
    assert report["accuracy_budget"]["met"] is True and report["accuracy_budget"]["max_drop"] == 0.2
    assert run_main(compress_script, *args, "--max_accuracy_drop=1.0") == 2


def test_sensitivity_only(args, tmp_path, capsys):
    assert run_main(compress_script, *args, "--sensitivity_only", "--verbose=0") == 0
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["sensitivity.json", "sensitivity.png"]
    table = json.loads((out / "sensitivity.json").read_text())
    assert table["metric"] == "accuracy" and [r["type"] for r in table["layers"]] == [
        "Conv2D",
        "Conv2D",
        "Conv2D",
        "Dense",
        "Dense",
    ]
    printed = capsys.readouterr().out
    assert "int8 SQNR dB" in printed and f"sensitivity table in {out}" in printed
    both = [*args, "--sensitivity_only", "--max_accuracy_drop=0.1"]
    assert run_main(compress_script, *both) == 2
