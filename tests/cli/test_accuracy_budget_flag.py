"""keras-squeeze-compress --max_accuracy_drop: passed to compress(), bounded like the argument."""

from __future__ import annotations

import json

import numpy as np

from keras_squeeze.cli import compress as compress_script
from tests.cli.helpers import run_main


def test_command_line_flag(model_path, digits8, tmp_path):
    (x, y), (xt, yt) = digits8
    data = tmp_path / "d.npz"
    np.savez(data, x_train=x, y_train=y, x_test=xt, y_test=yt)
    out = tmp_path / "out"
    args = [f"--model={model_path}", f"--data={data}", f"--output_dir={out}", "--formats=tflite"]
    assert run_main(compress_script, *args, "--recipe=float16", "--max_accuracy_drop=0.2") == 0
    report = json.loads((out / "report.json").read_text())
    assert report["accuracy_budget"]["met"] is True and report["accuracy_budget"]["max_drop"] == 0.2
    assert run_main(compress_script, *args, "--max_accuracy_drop=1.0") == 2
