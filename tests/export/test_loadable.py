"""int8 files LiteRT would abort the process on are refused before any interpreter loads them.

A LayerNormalization over an axis of size 1 always outputs its beta (0): calibrated,
its final ADD gets an output scale near 0, and LiteRT's integer ADD asserts its
rescaling multiplier is below 1 while preparing: SIGABRT, the whole process gone.
Found by the random-graph campaign of the robustness benchmark.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import keras_squeeze as ks
from keras_squeeze.errors import ExportError
from keras_squeeze.export.loadable import unloadable_ops
from tests.conftest import keras


def _model(batch_size=None):
    k = keras("keras3")
    k.utils.set_random_seed(0)
    inputs = k.Input((7,), batch_size=batch_size, name="x")
    h = k.layers.Dense(32, activation="tanh", name="hidden")(inputs)
    h = k.layers.Reshape((32, 1))(h)
    h = k.layers.LayerNormalization(name="norm_over_one")(h)  # always 0 (its beta)
    outputs = k.layers.Dense(4, name="logits")(k.layers.Flatten()(h))
    return k.Model(inputs, outputs)


@pytest.fixture(scope="module")
def constant_layernorm():
    x = np.random.default_rng(0).uniform(-1, 1, (16, 7)).astype(np.float32)
    return _model(), x


def _raw_int8(x) -> bytes:
    """The converter's file of the model at batch 1 (its ops are prepared when tensors are
    allocated), as TFLite's guide makes it: no keras_squeeze check."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(_model(batch_size=1))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x[i : i + 1]] for i in range(len(x)))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


def test_the_file_aborts_litert_and_the_check_finds_its_op(constant_layernorm, tmp_path):
    _, x = constant_layernorm
    content = _raw_int8(x)
    (bad,) = unloadable_ops(content)
    assert bad["op"] == "ADD" and "norm_over_one" in bad["output"]
    assert bad["multiplier"] > 1.0
    # Why the check exists: loading this file ends the process, here a child's.
    path = tmp_path / "bad.tflite"
    path.write_bytes(content)
    load = (
        "import sys; from ai_edge_litert.interpreter import Interpreter; "
        "Interpreter(model_path=sys.argv[1]).allocate_tensors()"
    )
    child = subprocess.run([sys.executable, "-c", load, str(path)], capture_output=True)
    assert child.returncode == -6, (child.returncode, "LiteRT loads it: relax the check?")


def test_compress_refuses_it_with_the_op_and_writes_nothing(
    constant_layernorm, tmp_path, monkeypatch
):
    model, x = constant_layernorm
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        ExportError,
        match=r"The 'int8' \.tflite cannot be run: its ADD op with output '.*norm_over_one.*' has "
        r"an output scale of .* which LiteRT's integer kernel cannot rescale .*constant on the "
        r"calibration data",
    ):
        ks.compress(model, "int8", representative_data=x, verbose=0)
    assert list(tmp_path.iterdir()) == []
