"""Tiny .tflite models (built once per session) and a private adb server for the bench tests."""

from __future__ import annotations

import shutil
import socket
import subprocess

import flatbuffers
import numpy as np
import pytest

from keras_squeeze.bench.sources import EDGETPU_CUSTOM_OP


def tiny_cnn(flavour: str = "keras3", name: str = "tiny"):
    from tests.conftest import keras

    k = keras(flavour)
    k.utils.set_random_seed(0)
    inputs = k.Input((16, 16, 3), name="image")
    x = k.layers.Conv2D(8, 3, activation="relu", name="conv_a")(inputs)
    x = k.layers.BatchNormalization(name="bn")(x)
    x = k.layers.DepthwiseConv2D(3, name="dw")(x)
    x = k.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = k.layers.Dense(10, activation="softmax", name="head")(x)
    return k.Model(inputs, outputs, name=name)


@pytest.fixture(scope="session")
def tiny_model():
    return tiny_cnn()


@pytest.fixture(scope="session")
def calibration_images():
    return np.random.default_rng(0).uniform(-1, 1, size=(32, 16, 16, 3)).astype(np.float32)


@pytest.fixture(scope="session")
def float_tflite(tiny_model) -> bytes:
    from keras_squeeze.export import to_tflite

    return to_tflite(tiny_model).content


@pytest.fixture(scope="session")
def int8_artifact(tiny_model, calibration_images):
    from keras_squeeze.export import to_tflite

    return to_tflite(tiny_model, quantization="int8", representative_data=calibration_images)


@pytest.fixture(scope="session")
def int8_tflite(int8_artifact) -> bytes:
    return int8_artifact.content


def with_custom_op(content: bytes, custom_code: str) -> bytes:
    """The .tflite with its first operator code turned into a custom op (as edgetpu_compiler
    leaves a model: the compiled graph behind one custom op)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(content, 0)
    code = model.operatorCodes[0]
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    code.customCode = custom_code.encode()
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@pytest.fixture(scope="session")
def edgetpu_tflite(float_tflite) -> bytes:
    return with_custom_op(float_tflite, EDGETPU_CUSTOM_OP)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def adb_port():
    """A private adb server port (started by the first adb call, killed at the end), so the
    tests neither use nor disturb an adb server the user runs."""
    path = shutil.which("adb")
    if path is None:
        pytest.skip(
            "adb is not installed: install the Android platform tools (apt-get install -y adb) "
            "to test device discovery and error handling against the real adb"
        )
    port = _free_port()
    yield port
    subprocess.run([path, "-P", str(port), "kill-server"], capture_output=True, timeout=30)


@pytest.fixture(scope="session")
def int8_result(tiny_model, calibration_images):
    """A real CompressionResult (ks.compress) of the tiny model."""
    from keras_squeeze.api.compress import compress

    return compress(tiny_model, "int8", representative_data=calibration_images, verbose=0)
