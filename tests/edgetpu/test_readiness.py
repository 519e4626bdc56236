"""Edge TPU readiness of real converter output (TF 2.21 converter, ai_edge_litert schema).

Models: the example CNN (8x8 digits) as int8 with a dynamic and a fixed batch,
with uint8 and float I/O, as float32 and dynamic-range; MobileNetV2 (alpha
0.35, 96x96, a known Edge TPU-compatible family); and small CNNs with an op
the Edge TPU lacks in the middle. Verdicts are checked against the table
independently of the code under test, and against recorded compiler logs
where one exists for the same situation.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from keras_squeeze import _compat
from keras_squeeze.data import load_digits, train_example_model
from keras_squeeze.edgetpu import (
    check_edgetpu,
    edgetpu_readiness,
    parse_compiler_log,
    table,
    with_batch_size,
)
from keras_squeeze.errors import ConfigError, ModelError
from keras_squeeze.export import to_tflite
from keras_squeeze.report.tflite_reader import read_tflite
from tests.conftest import assert_weights_equal, weights_snapshot

DATA = pathlib.Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def example():
    model = train_example_model(epochs=1, image_size=8)
    (x, _), _ = load_digits(8)
    return model, x[:64]


@pytest.fixture(scope="session")
def tflites(example):
    """{name: .tflite bytes} of the example CNN, converted once per test session."""
    model, x = example
    before = weights_snapshot(model)
    fixed = with_batch_size(model, 1)
    out = {}
    for name, m, quantization, io in [
        ("int8_dynamic_batch", model, "int8", None),
        ("int8", fixed, "int8", None),
        ("uint8_io", fixed, "int8", "uint8"),
        ("float_io", fixed, "int8", "float32"),
        ("float32", model, "float32", None),
        ("dynamic", model, "dynamic", None),
    ]:
        kw = {"representative_data": x} if quantization == "int8" else {}
        art = to_tflite(
            m,
            quantization=quantization,
            inference_input_type=io,
            inference_output_type=io,
            dynamic_batch=m is model,  # the free batch the user's model has
            **kw,
        )
        out[name] = art.content
    assert_weights_equal(before, model)  # the user's model is untouched
    assert model.inputs[0].shape[0] is None
    return out


def _independent_verdict(content):
    """Per op: (opcode, in the table, version loadable, all activations 8-bit)."""
    m = read_tflite(content)
    rows = []
    for op in m.operators:
        acts = [m.tensors[i] for i in op.inputs + op.outputs if i >= 0]
        eight = all(t.dtype in ("int8", "uint8") for t in acts if not t.is_constant)
        loadable = op.version <= table.COMPILER_MAX_VERSIONS.get(op.opcode, 0)
        rows.append((op.opcode, op.opcode in table.EDGETPU_OPS, loadable, eight))
    return rows


def test_fixed_batch_int8_example_maps_entirely(tflites):
    report = check_edgetpu(tflites["int8"])
    assert [op.opcode for op in report.ops] == [
        "CONV_2D", "CONV_2D", "MAX_POOL_2D", "CONV_2D", "RESHAPE",
        "FULLY_CONNECTED", "FULLY_CONNECTED",
    ]  # fmt: skip
    assert report.fully_mapped and report.compilable
    assert report.first_cpu_op is None and report.blockers == () and report.notes == ()
    assert report.summary() == "7 of 7 ops on the Edge TPU, 0 on the CPU"
    # Right against the table: every op is listed, loadable and 8-bit.
    assert all(all(row[1:]) for row in _independent_verdict(tflites["int8"]))
    assert report.input_types == ("int8",) and report.output_types == ("int8",)


def test_uint8_io_maps_the_requantize_ops_too(tflites):
    report = check_edgetpu(tflites["uint8_io"])
    assert report.fully_mapped
    assert [op.opcode for op in report.ops].count("QUANTIZE") == 2
    assert report.input_types == ("uint8",) and report.output_types == ("uint8",)


def test_dynamic_batch_cuts_at_the_runtime_shape_arithmetic(tflites):
    report = check_edgetpu(tflites["int8_dynamic_batch"])
    opcodes = [op.opcode for op in report.ops]
    assert opcodes[4:8] == ["SHAPE", "STRIDED_SLICE", "PACK", "RESHAPE"]
    assert report.first_cpu_op.index == 4 and report.first_cpu_op.opcode == "SHAPE"
    assert [op.on_edgetpu for op in report.ops] == [True] * 4 + [False] * 6
    assert [op.after_cut for op in report.ops][8:] == [True, True]  # the dense layers
    assert "is int32" in report.ops[5].why
    (blocker,) = report.blockers
    assert "RESHAPE" in blocker and "fix the batch size to 1" in blocker
    assert not report.compilable
    # Independent check: SHAPE is not in the table, and works on int32.
    assert _independent_verdict(tflites["int8_dynamic_batch"])[4] == ("SHAPE", False, True, False)


def test_float_io_leaves_quantize_and_dequantize_on_the_cpu_without_a_cut(tflites):
    report = check_edgetpu(tflites["float_io"])
    assert report.ops[0].opcode == "QUANTIZE" and report.ops[-1].opcode == "DEQUANTIZE"
    assert [op.on_edgetpu for op in report.ops] == [False] + [True] * 7 + [False]
    assert report.ops[0].edge and report.ops[-1].edge
    assert report.first_cpu_op is None and report.compilable
    assert (report.ops_on_edgetpu, report.ops_on_cpu) == (7, 2)
    assert any("inference_input_type='uint8'" in n for n in report.notes)
    # A recorded compiler log of a float-I/O model shows the same split.
    recorded = parse_compiler_log((DATA / "v15_mnist4_float_io_edgetpu.log").read_text())
    for opcode, statuses in recorded.statuses().items():
        ours = {op.on_edgetpu for op in report.ops if op.opcode == opcode}
        if ours:
            assert ours == {"Mapped to Edge TPU" in statuses}, opcode


@pytest.mark.parametrize("name, kind", [("float32", "float32"), ("dynamic", "dynamic-range")])
def test_unquantized_models_are_told_to_quantize_first(tflites, name, kind):
    with pytest.raises(
        ModelError,
        match=rf"not quantized for the Edge TPU: it is a {kind} model.*Expected a full-integer int8 "
        r"\.tflite: quantize first with keras_squeeze's 'int8' post-training recipe.*'qat' recipe.*"
        rf"Received: a {kind} \.tflite",
    ):
        check_edgetpu(tflites[name])
    d = edgetpu_readiness(tflites[name])
    assert d["quantized"] is False and d["compilable"] is False and "quantize first" in d["message"]


def test_report_dict_is_json(tflites):
    d = edgetpu_readiness(tflites["int8_dynamic_batch"])
    json.dumps(d)
    assert d["ops_total"] == 10 and d["ops_on_edgetpu"] == 4 and d["ops_on_cpu"] == 6
    assert d["first_cpu_op"]["op"] == "SHAPE" and d["first_cpu_op"]["index"] == 4
    assert d["compiler"] == "16.0.384591198" and d["sources"]["ops"].startswith("https://coral.ai")


def test_bytes_and_path_agree(tflites, tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(tflites["int8"])
    assert check_edgetpu(path) == check_edgetpu(tflites["int8"])
    assert check_edgetpu(str(path)).fully_mapped


def test_not_a_tflite(tmp_path, example):
    text = tmp_path / "notes.txt"
    text.write_text("not a model")
    with pytest.raises(ModelError, match=r"not a TFLite model.*'TFL3'.*Received: 11 bytes"):
        check_edgetpu(text)
    with pytest.raises(ModelError, match=r"does not exist.*Received: '.*missing\.tflite'"):
        check_edgetpu(tmp_path / "missing.tflite")
    with pytest.raises(ModelError, match=r"takes a \.tflite.*Received: Functional"):
        check_edgetpu(example[0])


def test_with_batch_size_arguments_and_tf_keras():
    k = _compat.keras_module(_compat.TF_KERAS)
    m = k.Sequential([k.Input((4,)), k.layers.Dense(3)])
    fixed = with_batch_size(m, 2)
    assert tuple(fixed.inputs[0].shape) == (2, 4) and m.inputs[0].shape[0] is None
    assert _compat.keras_flavour(fixed) == _compat.TF_KERAS
    with pytest.raises(ConfigError, match=r"batch_size must be a positive integer.*Received: 0"):
        with_batch_size(m, 0)
    with pytest.raises(ModelError, match=r"takes a Keras model.*Received: str"):
        with_batch_size("model.keras")


# --- other architectures -----------------------------------------------------


@pytest.fixture(scope="session")
def mobilenet_v2():
    import keras

    model = keras.applications.MobileNetV2(
        input_shape=(96, 96, 3), alpha=0.35, weights=None, classes=10
    )
    x = np.random.default_rng(0).uniform(-1, 1, (8, 96, 96, 3)).astype(np.float32)
    return to_tflite(model, quantization="int8", representative_data=x, dynamic_batch=True).content


def test_mobilenet_v2_int8_maps_entirely(mobilenet_v2):
    report = check_edgetpu(mobilenet_v2)
    assert report.fully_mapped and len(report.ops) == 65
    assert {op.opcode for op in report.ops} == {
        "CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED", "SOFTMAX",
    }  # fmt: skip
    assert all(all(row[1:]) for row in _independent_verdict(mobilenet_v2))
    # Only a note: the dynamic batch alone does not stop the compiler (no run-time shapes).
    assert len(report.notes) == 1 and report.notes[0].startswith("dynamic batch size")


def _with_middle(layer_fn):
    """Conv -> <layer> -> Conv -> GAP -> Dense at batch 1, int8."""
    import keras

    inp = keras.Input(shape=(8, 8, 3), batch_size=1)
    h = keras.layers.Conv2D(8, 3, padding="same")(inp)
    h = keras.layers.Conv2D(4, 1)(layer_fn(h))
    out = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(h))
    x = np.random.default_rng(0).uniform(-1, 1, (16, 8, 8, 3)).astype(np.float32)
    art = to_tflite(keras.Model(inp, out), quantization="int8", representative_data=x)
    return art.content


def test_unsupported_op_in_the_middle_cuts_there():
    import keras

    report = check_edgetpu(_with_middle(keras.layers.LeakyReLU(0.1)))
    assert [op.opcode for op in report.ops] == [
        "CONV_2D", "LEAKY_RELU", "CONV_2D", "MEAN", "FULLY_CONNECTED",
    ]  # fmt: skip
    assert report.first_cpu_op.opcode == "LEAKY_RELU" and report.first_cpu_op.index == 1
    assert "not an Edge TPU operation" in report.first_cpu_op.why
    assert [op.on_edgetpu for op in report.ops] == [True, False, False, False, False]
    assert [op.after_cut for op in report.ops] == [False, False, True, True, True]
    assert report.compilable  # the compiler loads it and leaves the tail on the CPU


def test_float_op_in_the_middle_cuts_at_its_dequantize():
    import keras

    # The converter has no int8 ELU: it dequantizes, runs ELU in float, requantizes.
    report = check_edgetpu(_with_middle(keras.layers.ELU()))
    assert [op.opcode for op in report.ops][:4] == ["CONV_2D", "DEQUANTIZE", "ELU", "QUANTIZE"]
    assert report.first_cpu_op.opcode == "DEQUANTIZE" and not report.first_cpu_op.edge
    assert "is float32" in report.ops[3].why  # the QUANTIZE of a float tensor mid-model
    assert report.ops_on_edgetpu == 1 and report.ops_on_cpu == len(report.ops) - 1


def test_op_version_the_compiler_cannot_load():
    import keras

    report = check_edgetpu(_with_middle(keras.layers.Lambda(lambda z: keras.ops.exp(z))))
    exp = report.ops[1]
    assert (exp.opcode, exp.version) == ("EXP", 2)
    assert not report.compilable
    # Our prediction quotes the message compiler 16 printed for this very case.
    recorded = parse_compiler_log((DATA / "v16_exp_v2_not_parsed.txt").read_text())
    quoted = recorded.errors[0].split(". An older")[0].removeprefix("ERROR: ")
    assert quoted in report.blockers[0]


def test_builtin_newer_than_the_compiler():
    import keras

    report = check_edgetpu(_with_middle(keras.layers.Activation("gelu")))
    assert report.ops[1].opcode == "GELU"
    assert "Op builtin_code out of range: 150" in report.blockers[0]
