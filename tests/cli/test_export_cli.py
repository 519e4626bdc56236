"""keras-squeeze-export: the library run(), main() under its flags, and the script end to end."""

from __future__ import annotations

import json

import numpy as np

from keras_squeeze.cli import export, export_lib
from keras_squeeze.errors import ExportError
from tests.cli.helpers import error_lines, native_noise, run_main, script

PROGRAM = export.PROGRAM


def test_int8_to_every_format(model_path, trained_models, tmp_path, capsys, digits8):
    out = tmp_path / "exported"
    artifacts = export_lib.run(
        str(model_path),
        formats=("tflite", "onnx", "saved_model"),
        output_dir=str(out),
        quantization="int8",
        data="digits",
        inference_input_type="uint8",
        verbose=0,
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "export.json",
        "model.onnx",
        "model.tflite",
        "saved_model",
    ]
    record = json.loads((out / "export.json").read_text())
    assert record["quantization"] == "int8" and set(record["artifacts"]) == set(artifacts)
    assert record["artifacts"]["saved_model"]["path"] == str(out / "saved_model" / "1")
    assert "QDQ form" in " ".join(artifacts["onnx"].notes)
    assert artifacts["onnx"].agreement.sqnr_db > 30  # the ONNX file reproduces the .tflite
    assert artifacts["tflite"].fidelity.top1_agreement > 0.9

    # Each file, loaded back here in its own runtime, classifies like the Keras model.
    import onnxruntime as ort
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    _, (x, _) = digits8
    x = x[:32]
    keras_top1 = trained_models["keras3"].predict(x, verbose=0).argmax(-1)
    interpreter = Interpreter(model_path=str(out / "model.tflite"))
    runner = interpreter.get_signature_runner()
    ((name, detail),) = runner.get_input_details().items()
    assert detail["dtype"] == np.uint8 and detail["shape_signature"][0] == 1  # batch 1
    scale, zero = detail["quantization"]
    q = np.clip(np.round(x / scale + zero), 0, 255).astype(np.uint8)
    one = range(len(x))
    tflite_top1 = np.concatenate([next(iter(runner(**{name: q[i : i + 1]}).values())) for i in one])
    tflite_top1 = tflite_top1.argmax(-1)
    session = ort.InferenceSession(str(out / "model.onnx"))
    onnx_in = session.get_inputs()[0]
    feed = q if onnx_in.type == "tensor(uint8)" else x
    onnx_top1 = np.concatenate([session.run(None, {onnx_in.name: feed[i : i + 1]})[0] for i in one])
    onnx_top1 = onnx_top1.argmax(-1)
    served = tf.saved_model.load(str(out / "saved_model" / "1")).signatures["serving_default"]
    sm_top1 = next(iter(served(**{"image": tf.constant(x)}).values())).numpy().argmax(-1)
    for top1 in (tflite_top1, onnx_top1):
        assert np.mean(top1 == keras_top1) >= 0.9
    np.testing.assert_array_equal(sm_top1, keras_top1)

    printed = capsys.readouterr().out
    assert "SQNR vs Keras" in printed and f"artifacts in {out}" in printed

    # A new SavedModel version lands next to the first (TF Serving's versions).
    export_lib.run(
        str(model_path),
        formats=("saved_model",),
        output_dir=str(out),
        saved_model_version=2,
        verbose=0,
    )
    assert sorted(p.name for p in (out / "saved_model").iterdir()) == ["1", "2"]


def test_a_failing_format_leaves_no_file(model_path, tmp_path, monkeypatch, capsys):
    import keras_squeeze.export as ks_export

    def fail(*args, **kwargs):
        raise ExportError("The SavedModel could not be written. Expected ... Received: disk full")

    monkeypatch.setattr(ks_export, "to_saved_model", fail)
    out = tmp_path / "exported"
    code = run_main(
        export,
        f"--model={model_path}",
        "--formats=tflite",
        "--formats=onnx",
        "--formats=saved_model",
        f"--output_dir={out}",
    )
    assert code == 1
    err = capsys.readouterr().err
    assert error_lines(err, PROGRAM) == [
        f"{PROGRAM}: error: The SavedModel could not be written. Expected ... Received: disk full"
    ]
    assert list(tmp_path.iterdir()) == []  # not even the output directory


def test_corrupt_model_exits_1(tmp_path, capsys):
    (tmp_path / "junk.h5").write_bytes(b"\x89HDF\r\n\x1a\n but nothing after")
    assert (
        run_main(export, f"--model={tmp_path / 'junk.h5'}", f"--output_dir={tmp_path / 'o'}") == 1
    )
    err = capsys.readouterr().err
    (line,) = error_lines(err, PROGRAM)
    assert "junk.h5' could not be read by the HDF5 library (h5py)" in line
    assert "Expected an intact HDF5 file" in line and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.h5"]


def test_script_end_to_end_with_a_flagfile(model_path, tmp_path):
    flagfile = tmp_path / "export.flags"
    flagfile.write_text(
        f"--model={model_path}\n--formats=tflite\n--formats=onnx\n--quantization=float16\n"
        "--output_dir=out\n"
    )
    proc = script("export", f"--flagfile={flagfile}", cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert native_noise(proc.stderr) == []
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "export.json",
        "model.onnx",
        "model.tflite",
    ]
    assert "keras_squeeze: converting to .tflite ('float16')" in proc.stdout
    assert "SQNR vs Keras" in proc.stdout


def test_script_usage_error_is_one_line(tmp_path):
    proc = script("export", "--model=missing.keras", "--quantization=int8", cwd=tmp_path)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith(f"{PROGRAM}: error: ") and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []
