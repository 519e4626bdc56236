"""Each export's verifier, fed an artifact that must fail it: the checks are not only absent.

Every case is a real file made by the real exporter, checked against a model
it was not made from (or damaged), so the verifier has to catch it.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import keras_squeeze as ks
from keras_squeeze.core import models
from keras_squeeze.data.inputs import synthetic_samples
from keras_squeeze.errors import VerificationError
from keras_squeeze.export import onnx as onnx_export
from keras_squeeze.export import saved_model as saved_model_export
from keras_squeeze.export import tflite as tflite_export
from keras_squeeze.export.runtime import TFLiteRunner, onnx_outputs
from keras_squeeze.report.metrics import compare
from tests.conftest import keras


def _dense_model(seed: int, log: bool = False):
    k = keras("keras3")
    k.utils.set_random_seed(seed)
    inputs = k.Input((6,), name="x")
    x = k.layers.Dense(4, name="d")(inputs)
    if log:  # log of a negative number: NaN outputs from finite weights
        x = k.layers.Lambda(lambda t: k.ops.log(t - 100.0), name="log")(x)
    return k.Model(inputs, x)


@pytest.fixture(scope="module")
def pair():
    """Two models of one architecture with different weights, and check samples."""
    a, b = _dense_model(0), _dense_model(1)
    return a, b, synthetic_samples(models.input_specs(a), 16)


def test_tflite_that_does_not_run(pair):
    a, _, samples = pair
    with pytest.raises(VerificationError, match=r"could not be run by ai_edge_litert"):
        tflite_export.verify(b"TFL3 not a model", a, samples)


def test_float_tflite_of_another_model(pair):
    a, b, samples = pair
    content = tflite_export.convert(a)
    tflite_export.verify(content, a, samples)  # its own model passes
    with pytest.raises(VerificationError, match=r"float32 \.tflite does not reproduce the Keras"):
        tflite_export.verify(content, b, samples)


def test_tflite_with_non_finite_outputs():
    model = _dense_model(0, log=True)
    samples = synthetic_samples(models.input_specs(model), 8)
    content = tflite_export.convert(model)
    with pytest.raises(VerificationError, match=r"\.tflite model produced NaN or Inf \(output 0\)"):
        tflite_export.verify(content, model, samples)


def test_onnx_that_does_not_run(pair, tmp_path):
    a, _, samples = pair
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"\x08\x07not onnx")
    with pytest.raises(VerificationError, match=r"could not be run by onnxruntime"):
        onnx_export.verify(path, a, samples)


def test_float_onnx_of_another_model(pair, tmp_path):
    a, b, samples = pair
    path = tmp_path / "a.onnx"
    path.write_bytes(onnx_export.from_keras(a))
    onnx_export.verify(path, a, samples)
    with pytest.raises(VerificationError, match=r"float ONNX model does not reproduce the Keras"):
        onnx_export.verify(path, b, samples)


def test_onnx_that_departs_from_its_tflite(pair, tmp_path):
    a, b, samples = pair
    tflite_a = tflite_export.convert(a, "int8", samples, "float32", "float32")
    tflite_b = tflite_export.convert(b, "int8", samples, "float32", "float32")
    path = tmp_path / "a_int8.onnx"
    path.write_bytes(onnx_export.from_tflite(tflite_a, ["x"], models.output_names(a)))
    with pytest.raises(VerificationError, match=r"ONNX model does not reproduce the \.tflite"):
        onnx_export.verify(path, a, samples, TFLiteRunner(content=tflite_b))


def _saturating_int8_onnx(tmp_path):
    """An int8 Dense with float inputs whose weights all sit at +127 and whose inputs fill
    the int8 range: sums of two products reach 2 * 255 * 127, past a 16-bit accumulator."""
    k = keras("keras3")
    inputs = k.Input((8,), name="x")
    model = k.Model(inputs, k.layers.Dense(2, name="d", kernel_initializer="ones")(inputs))
    samples = synthetic_samples(models.input_specs(model), 16)
    tflite = tflite_export.convert(model, "int8", samples, "float32", "float32")
    path = tmp_path / "saturating.onnx"
    path.write_bytes(onnx_export.from_tflite(tflite, ["x"], ["d"]))
    return model, samples, TFLiteRunner(content=tflite), path


def test_onnx_whose_fused_kernels_depart_warns(tmp_path):
    """A faithful conversion that onnxruntime's fused integer kernels run differently on
    this CPU is a warning naming the cause, not a failure; where they do not depart
    (CPUs whose kernels do not saturate), it passes silently."""
    model, samples, runner, path = _saturating_int8_onnx(tmp_path)
    in_q, out_q = runner.input_quant(["x"]), runner.output_quant(["d"])
    expected = runner.run(samples, ["x"], ["d"])[0]
    unfused = onnx_outputs(str(path), samples, ["x"], in_q, out_q, fuse=False)[0]
    fused = onnx_outputs(str(path), samples, ["x"], in_q, out_q)[0]
    np.testing.assert_allclose(unfused, expected, atol=1e-6)  # the conversion is faithful
    departs = compare([expected], [fused], ["d"], "x").sqnr_db < onnx_export.TFLITE_MIN_SQNR_DB
    found: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, agreement = onnx_export.verify(path, model, samples, runner, warnings_out=found)
    messages = [
        str(w.message) for w in caught if onnx_export.FUSED_KERNELS_DEPART in str(w.message)
    ]
    if departs:  # x86 without VNNI: this machine
        assert agreement.sqnr_db < onnx_export.TFLITE_MIN_SQNR_DB
        assert messages == found and len(found) == 1
        assert "ORT_ENABLE_BASIC" in found[0] and "SQNR exact" in found[0]
    else:
        assert not messages and not found


def test_compress_reports_fused_kernel_departure(tmp_path):
    """save() keeps an ONNX file whose fused kernels depart and puts the departure among
    the report's warnings (and only then)."""
    model, samples, _, _ = _saturating_int8_onnx(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = ks.compress(
            model,
            "int8",
            representative_data=samples.inputs[0],
            inference_input_type="float32",  # float inputs: the kernels that saturate
            inference_output_type="float32",
            verbose=0,
        )
        out = result.save(tmp_path / "out", formats=("onnx",))
    report = json.loads((out / "report.json").read_text())
    onnx = report["exports"]["onnx"]
    noted = [w for w in report["warnings"] if onnx_export.FUSED_KERNELS_DEPART in w]
    warned = [w for w in caught if onnx_export.FUSED_KERNELS_DEPART in str(w.message)]
    assert (out / "model.onnx").stat().st_size == onnx["bytes"]
    departs = float(onnx["agreement"]["sqnr_db"]) < onnx_export.TFLITE_MIN_SQNR_DB
    assert len(noted) == len(warned) == (1 if departs else 0)


def test_saved_model_that_does_not_load(pair, tmp_path):
    a, _, samples = pair
    (tmp_path / "saved_model.pb").write_bytes(b"not a protobuf")
    with pytest.raises(VerificationError, match=r"SavedModel could not be loaded and run"):
        saved_model_export.verify(tmp_path, a, samples)


def test_saved_model_of_another_model(pair, tmp_path):
    a, b, samples = pair
    path = tmp_path / "1"
    saved_model_export.write(a, path)
    saved_model_export.verify(path, a, samples)
    with pytest.raises(VerificationError, match=r"The SavedModel does not reproduce the Keras"):
        saved_model_export.verify(path, b, samples)
