"""compress(edgetpu=True) and save(): the Edge TPU path up to the compiler.

edgetpu_compiler cannot be installed here; with it absent, save() writes the
batch-1 model and says so. The compiler run itself is tested with a stand-in
executable on PATH that writes a recorded real compiler log (this tests our
process handling and file placement, not the compiler).
"""

from __future__ import annotations

import json
import os
import pathlib
import stat

import pytest

import keras_squeeze as ks
from keras_squeeze.errors import RecipeError
from keras_squeeze.report.tflite_reader import read_tflite
from tests.conftest import assert_saved_files


@pytest.fixture(scope="module")
def int8_edgetpu(trained_models, digits8):
    (x, _), _ = digits8
    return ks.compress(
        trained_models["keras3"],
        "int8",
        representative_data=x,
        edgetpu=True,
        inference_input_type="uint8",
        inference_output_type="uint8",
        verbose=0,
    )


def test_batch_one_model_and_readiness_in_the_report(int8_edgetpu):
    result = int8_edgetpu
    assert result.edgetpu_tflite == result.tflite  # model.tflite is batch 1 already
    tfl = read_tflite(result.edgetpu_tflite)
    assert tfl.tensors[tfl.inputs[0]].shape_signature[0] == 1  # static batch
    e = result.report.edgetpu
    assert e["model"] == "model.tflite" and e["ops_on_cpu"] == 0 and e["first_cpu_op"] is None
    assert e["compilable"] is True


def test_a_free_batch_gets_a_batch_one_copy_for_the_edgetpu(trained_models, digits8):
    (x, _), _ = digits8
    result = ks.compress(
        trained_models["keras3"],  # Keras 3's Flatten becomes a run-time reshape
        "int8",
        representative_data=x,
        edgetpu=True,
        dynamic_batch=True,
        verbose=0,
    )
    free, fixed = read_tflite(result.tflite), read_tflite(result.edgetpu_tflite)
    assert free.tensors[free.inputs[0]].shape_signature[0] == -1
    assert {"SHAPE", "PACK"} <= {op.opcode for op in free.operators}  # run-time reshape
    assert fixed.tensors[fixed.inputs[0]].shape_signature[0] == 1
    assert "SHAPE" not in {op.opcode for op in fixed.operators}
    assert result.report.edgetpu["model"] == "batch-1 copy"
    assert result.report.edgetpu["compilable"] is True


def test_save_without_the_compiler(int8_edgetpu, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    out = int8_edgetpu.save(tmp_path / "e", formats=["tflite"])
    assert_saved_files(out, ["model.tflite", "model_for_edgetpu.tflite"])
    report = json.loads((out / "report.json").read_text())
    assert report["edgetpu"]["compiled"] is False
    assert "edgetpu_compiler is not on PATH" in report["edgetpu"]["compiler_note"]
    assert report["edgetpu"]["input_fidelity"]["top1_agreement"] >= 0.95


def test_save_with_a_stand_in_compiler(int8_edgetpu, tmp_path, monkeypatch):
    recorded = (
        pathlib.Path(__file__).parent.parent / "edgetpu" / "data" / "v16_efficientdet_stdout.txt"
    )
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "edgetpu_compiler"
    fake.write_text(
        "#!/usr/bin/env python3\n"
        "import pathlib, shutil, sys\n"
        "args = sys.argv[1:]\n"
        "out = pathlib.Path(args[args.index('--out_dir') + 1])\n"
        "src = pathlib.Path(args[-1])\n"
        "shutil.copy(src, out / (src.stem + '_edgetpu.tflite'))\n"
        f"sys.stdout.write(open({str(recorded)!r}).read())\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}/usr/bin:/bin")
    out = int8_edgetpu.save(tmp_path / "c", formats=["tflite"])
    assert (out / "model_edgetpu.tflite").read_bytes() == int8_edgetpu.edgetpu_tflite
    report = json.loads((out / "report.json").read_text())
    assert report["edgetpu"]["compiled"] is True
    log = report["edgetpu"]["compiler_log"]
    assert log["compiler_version"].startswith("16.0") and log["succeeded"] is True


def test_edgetpu_needs_a_full_integer_recipe(trained_models):
    with pytest.raises(
        RecipeError, match=r"quantize first.*'int8' recipe.*'qat'.*Received: recipe 'float16'"
    ):
        ks.compress(trained_models["keras3"], "float16", edgetpu=True, verbose=0)


def test_every_int8_result_gets_readiness(trained_models, digits8):
    (x, _), _ = digits8
    result = ks.compress(trained_models["tf_keras"], "int8", representative_data=x, verbose=0)
    assert result.report.edgetpu["model"] == "model.tflite"
    # batch 1 by default: the reshape folds into a constant, every op maps
    assert result.report.edgetpu["compilable"] is True and result.report.edgetpu["ops_on_cpu"] == 0
    assert ks.compress(trained_models["tf_keras"], "dynamic", verbose=0).report.edgetpu is None
