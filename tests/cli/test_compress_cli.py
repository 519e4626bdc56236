"""keras-squeeze-compress: the library run() and the script end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from keras_squeeze.cli import compress_lib
from keras_squeeze.errors import DataError
from tests.cli.helpers import native_noise, script
from tests.conftest import assert_saved_files


def _script(*args, cwd, timeout=600):
    return script("compress", *args, cwd=cwd, timeout=timeout)


def test_run_with_a_model_file_and_npz(trained_models, digits8, tmp_path):
    (x, y), (xt, yt) = digits8
    model_path = tmp_path / "m.keras"
    trained_models["keras3"].save(model_path)
    data = tmp_path / "d.npz"
    np.savez(data, x_train=x, y_train=y, x_test=xt, y_test=yt)
    result = compress_lib.run(
        model=str(model_path),
        recipe="float16",
        output_dir=str(tmp_path / "out"),
        data=str(data),
        formats=("tflite", "onnx"),
        verbose=0,
    )
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["recipe"] == "float16" and report["accuracy"]["samples"] == 397
    assert result.report.fidelity.top1_agreement == 1.0


def test_digits_follow_the_model_input(trained_models):
    from keras_squeeze.core.models import input_specs

    (x, _), _ = compress_lib.load_data("digits", input_specs(trained_models["keras3"]))
    assert x.shape[1:] == (8, 8, 1)
    with pytest.raises(DataError, match=r"Unknown data source.*Received: 'nope\.csv'"):
        compress_lib.load_data("nope.csv", input_specs(trained_models["keras3"]))


def test_script_default_job_end_to_end(tmp_path):
    proc = _script("--epochs=1", "--formats=tflite", "--formats=onnx", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert native_noise(proc.stderr) == []  # training, calibration, LiteRT and tf2onnx: quiet
    out = tmp_path / "squeezed"
    assert_saved_files(out, ["model.onnx", "model.tflite"], ("size", "accuracy"))
    assert (
        "top-1 agreement" in proc.stdout
        and "keras_squeeze: training the example CNN" in proc.stdout
    )
    report = json.loads((out / "report.json").read_text())
    assert report["recipe"] == "int8" and report["size_ratio"] < 0.3


@pytest.mark.parametrize(
    "args, message",
    [
        (["--recipe=int4"], "flag --recipe=int4"),
        (["--epochs=0"], "--epochs"),
        (["--recipe=float16", "--inference_input_type=int8"], "do not fit --recipe"),
    ],
)
def test_bad_flags_exit_2_with_one_line(tmp_path, args, message):
    proc = _script(*args, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_failure_exits_1_with_one_line_and_no_output(tmp_path):
    (tmp_path / "junk.keras").write_text("junk")
    proc = _script("--model=junk.keras", cwd=tmp_path, timeout=120)
    assert proc.returncode == 1
    lines = [
        ln for ln in proc.stderr.splitlines() if ln.startswith("keras-squeeze-compress: error:")
    ]
    assert len(lines) == 1 and "not a Keras model" in lines[0]
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.keras"]
