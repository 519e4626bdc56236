"""The Edge TPU rules as plain functions, on small hand-built models (no converter).

Each model is a `TFLiteModel` as the reader returns it, so every rule of the
supported-operations table is exercised exactly, including cases the TFLite
converter rarely produces (dilations, batch-axis reductions, large softmaxes).
"""

from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema

from keras_squeeze.edgetpu import check_edgetpu, checks, table
from keras_squeeze.errors import ModelError
from keras_squeeze.report.tflite_reader import Operator, Tensor, TFLiteModel


def T(i, shape, dtype="int8", data=None, sig=None):
    if data is not None:
        data = np.asarray(data, dtype=dtype).reshape(shape)
    return Tensor(i, f"t{i}", tuple(shape), tuple(sig or shape), dtype, data, None, None, 0)


def Op(i, opcode, inputs, outputs, version=1, **options):
    code = getattr(schema.BuiltinOperator, opcode, schema.BuiltinOperator.CUSTOM)
    return Operator(i, opcode, version, list(inputs), list(outputs), code, dict(options))


def model(tensors, ops, inputs=(0,), outputs=None):
    outputs = outputs if outputs is not None else (ops[-1].outputs[0],)
    return TFLiteModel(list(tensors), list(ops), list(inputs), list(outputs), 1)


def conv(dilation=(1, 1), weights="int8", bias="int32", const=True, opcode="CONV_2D", act="int8"):
    ts = [
        T(0, (1, 8, 8, 4), act),
        T(1, (8, 3, 3, 4), weights, np.ones(8 * 9 * 4) if const else None),
        T(2, (8,), bias, np.zeros(8)),
        T(3, (1, 8, 8, 8), act),
    ]
    op = Op(0, opcode, [0, 1, 2], [3], 3, dilationHFactor=dilation[0], dilationWFactor=dilation[1])
    return model(ts, [op]), op


def single(opcode, in_shape, out_shape, params=(), **options):
    """An op with one activation input, constant int32 parameter inputs, one output."""
    ts = [T(0, in_shape)]
    for values, shape in params:
        ts.append(T(len(ts), shape, "int32", values))
    ts.append(T(len(ts), out_shape))
    op = Op(0, opcode, list(range(len(ts) - 1)), [len(ts) - 1], **options)
    return model(ts, [op]), op


def limits(m, op, runtime=14):
    return checks.check_limitations(m, op, runtime)


def test_shape_helpers():
    assert checks.effective_shape((1, 1, 10)) == (10,)
    assert checks.effective_shape((1, 4, 1, 10)) == (4, 1, 10)
    assert checks.effective_shape((1,)) == (1,)
    assert not checks.exceeds_rank((1, 8, 8, 3))
    assert checks.exceeds_rank((2, 8, 8, 3))
    assert not checks.exceeds_rank((8, 3))


def test_versions_the_compiler_loads():
    assert checks.check_loadable(Op(0, "CONV_2D", [], [], version=5)) == []
    (reason,) = checks.check_loadable(Op(0, "CONV_2D", [], [], version=6))
    assert (
        "version 6 is newer than edgetpu_compiler 16.0.384591198 loads (up to version 5" in reason
    )
    assert "Didn't find op for builtin opcode 'CONV_2D' version '6'" in reason
    (reason,) = checks.check_loadable(Op(0, "GELU", [], [], version=1))
    assert "Op builtin_code out of range: 150" in reason
    (reason,) = checks.check_loadable(Op(0, "CONCAT_EMBEDDINGS", [], []))
    assert "unknown to edgetpu_compiler" in reason and "'CONCAT_EMBEDDINGS' version '1'" in reason
    assert checks.check_loadable(Op(0, "MyCustomOp", [], [])) == []


def test_supported_operation_table_and_runtime_version():
    assert checks.check_supported(Op(0, "CONV_2D", [], []), 14) == []
    (reason,) = checks.check_supported(Op(0, "LEAKY_RELU", [], []), 14)
    assert reason.startswith("LEAKY_RELU is not an Edge TPU operation")
    (reason,) = checks.check_supported(Op(0, "TRANSPOSE", [], []), 13)
    assert reason == "Transpose needs Edge TPU runtime 14 or newer; compiling for runtime 13"
    assert checks.check_supported(Op(0, "TRANSPOSE", [], []), 14) == []
    (reason,) = checks.check_supported(Op(0, "MyCustomOp", [], []), 14)
    assert "custom op 'MyCustomOp' runs on the CPU" in reason
    # Every table row names a real builtin operator the compiler can load.
    assert set(table.EDGETPU_OPS) <= set(table.COMPILER_MAX_VERSIONS)


def test_data_types():
    m, op = conv()
    assert checks.check_types(m, op) == []
    m, op = conv(act="int16")
    (reason,) = checks.check_types(m, op)
    assert "input 't0' is int16" in reason and "output 't3' is int16" in reason
    assert checks.DATA_TYPE_STATUS in reason
    m, op = conv(bias="float32")
    assert "input 't2' is float32" in checks.check_types(m, op)[0]
    m, op = conv(weights="float32", bias="float32", act="float32")
    assert "input 't1' is float32" in checks.check_types(m, op)[0]
    m, op = single("RESHAPE", (1, 4, 4, 2), (1, 32), [([1, 32], (2,))])
    assert checks.check_types(m, op) == []  # an int32 shape constant is fine


def test_static_sizes_and_rank():
    ts = [T(0, (1, 8, 8, 3), sig=(-1, 8, 8, 3)), T(1, (1, 8, 8, 3), sig=(-1, 8, 8, 3))]
    m = model(ts, [Op(0, "RELU", [0], [1])])
    assert checks.check_static(m, m.operators[0]) == []  # a dynamic batch is compiled as 1
    ts = [T(0, (1, 8, 8, 3), sig=(1, -1, -1, 3)), T(1, (1, 8, 8, 3))]
    m = model(ts, [Op(0, "RELU", [0], [1])])
    assert "dynamic tensor size" in checks.check_static(m, m.operators[0])[0]
    ts = [T(0, (2, 8, 8, 3)), T(1, (2, 8, 8, 3))]
    m = model(ts, [Op(0, "RELU", [0], [1])])
    (reason,) = checks.check_rank(m, m.operators[0])
    assert "'t0' (2, 8, 8, 3)" in reason and checks.RANK_STATUS in reason
    m, op = conv()  # the 4-D filter is a constant, not an activation
    assert checks.check_rank(m, op) == []


def test_parameters_must_be_constant():
    m, op = conv(const=False)
    (reason,) = checks.check_parameters(m, op)
    assert "input 1 't1'" in reason and "constant at compile time" in reason
    ts = [T(0, (1, 4, 4, 2)), T(1, (2,), "int32"), T(2, (1, 32))]
    m = model(ts, [Op(0, "RESHAPE", [0, 1], [2])])
    assert "input 1 't1'" in checks.check_parameters(m, m.operators[0])[0]


def test_fused_activation_on_pooling_and_concatenation():
    m, op = single("MAX_POOL_2D", (1, 8, 8, 4), (1, 4, 4, 4), fusedActivationFunction=1)
    assert limits(m, op) == ["fused RELU activation (the Edge TPU needs none here)"]
    m, op = single("AVERAGE_POOL_2D", (1, 8, 8, 4), (1, 4, 4, 4), fusedActivationFunction=3)
    assert "fused RELU6" in limits(m, op)[0]
    m, op = single("MAX_POOL_2D", (1, 8, 8, 4), (1, 4, 4, 4), fusedActivationFunction=0)
    assert limits(m, op) == []


@pytest.mark.parametrize(
    "values, n_inputs, ok",
    [(np.zeros(16), 2, True), (np.ones(16), 2, False), (np.zeros(16), 3, False)],
)
def test_concatenation_constant_input_must_be_a_zero_pad(values, n_inputs, ok):
    ts = [T(0, (1, 4, 4, 1)), T(1, (1, 4, 4, 1), "int8", values), T(2, (1, 4, 4, 1))]
    ts.append(T(3, (1, 4, 4, n_inputs)))
    op = Op(0, "CONCATENATION", [0, 1, 2][:n_inputs], [3], axis=3)
    assert (limits(model(ts, [op]), op) == []) is ok


def test_convolution_dilation():
    assert limits(*conv(dilation=(2, 2))) == []
    assert limits(*conv(dilation=(2, 1))) == ["different dilation in y and x (2 vs 1)"]
    m, op = conv(dilation=(2, 2), opcode="DEPTHWISE_CONV_2D")
    assert limits(m, op, 14) == []
    assert "needs Edge TPU runtime 13" in limits(m, op, 12)[0]


def test_fully_connected_output_and_weights_format():
    ts = [T(0, (1, 16)), T(1, (10, 16), "int8", np.ones(160)), T(2, (10,), "int32", np.zeros(10))]
    ok = model([*ts, T(3, (1, 10))], [Op(0, "FULLY_CONNECTED", [0, 1, 2], [3], 4)])
    assert limits(ok, ok.operators[0]) == []
    keep = model([*ts, T(3, (1, 5, 10))], [Op(0, "FULLY_CONNECTED", [0, 1, 2], [3], 4)])
    assert limits(keep, keep.operators[0]) == ["output (1, 5, 10) is not one-dimensional"]
    shuffled = Op(0, "FULLY_CONNECTED", [0, 1, 2], [3], 4, weightsFormat=1)
    assert limits(ok, shuffled) == ["weights are not in the default format"]


@pytest.mark.parametrize(
    "axes, channels, runtime, expected",
    [
        ([1, 2], 6, 14, []),
        ([3], 8, 14, []),
        ([-1], 6, 14, ["z-reduction over 6 channels (must be a multiple of 4)"]),
        ([0], 8, 14, ["reduces the batch axis (axes [0])"]),
        ([1, 2], 6, 12, []),
        ([3], 8, 12, ["reduces axes [3]; runtime 12 reduces along x/y only"]),
    ],
)
def test_mean_axes(axes, channels, runtime, expected):
    m, op = single("MEAN", (1, 4, 4, channels), (1, channels), [(axes, (len(axes),))])
    assert limits(m, op, runtime) == expected


def test_sum_and_reduce_max_not_on_the_batch_axis():
    m, op = single("SUM", (1, 4, 4, 6), (1, 6), [([0, 1], (2,))])
    assert limits(m, op) == ["reduces the batch axis (axes [0, 1])"]
    m, op = single("REDUCE_MAX", (1, 4, 4, 6), (1, 6), [([1, 2], (2,))])
    assert limits(m, op) == []


def test_pad():
    xy = [[0, 0], [1, 1], [1, 1], [0, 0]]
    m, op = single("PAD", (1, 4, 4, 3), (1, 6, 6, 3), [(xy, (4, 2))])
    assert limits(m, op, 14) == limits(m, op, 12) == []
    z = [[0, 0], [0, 0], [0, 0], [0, 1]]
    m, op = single("PAD", (1, 4, 4, 3), (1, 4, 4, 4), [(z, (4, 2))])
    assert limits(m, op, 14) == []
    assert limits(m, op, 12) == ["pads axes [3]; runtime 12 pads along x/y only"]
    batch = [[1, 0], [0, 0], [0, 0], [0, 0]]
    m, op = single("PAD", (1, 4, 4, 3), (2, 4, 4, 3), [(batch, (4, 2))])
    assert limits(m, op, 14) == ["pads the batch axis"]


def test_softmax_is_1d_up_to_16000_elements():
    m, op = single("SOFTMAX", (1, 10), (1, 10))
    assert limits(m, op) == []
    m, op = single("SOFTMAX", (1, 16001), (1, 16001))
    assert limits(m, op) == ["input (16001,) is not 1-D with at most 16,000 elements"]
    m, op = single("SOFTMAX", (1, 4, 10), (1, 4, 10))
    assert limits(m, op) == ["input (4, 10) is not 1-D with at most 16,000 elements"]


def test_strided_slice():
    params = [([0, 0, 0, 0], (4,)), ([1, 4, 4, 2], (4,))]
    m, op = single("STRIDED_SLICE", (1, 4, 4, 4), (1, 4, 4, 2), [*params, ([1, 1, 1, 1], (4,))])
    assert limits(m, op) == []
    m, op = single("STRIDED_SLICE", (1, 4, 4, 4), (1, 2, 4, 2), [*params, ([1, 2, 1, 1], (4,))])
    assert limits(m, op) == ["strides [1, 2, 1, 1] (all must be 1)"]
    m, op = single(
        "STRIDED_SLICE", (1, 4, 4, 4), (1, 4, 4, 2), [*params, ([1, 1, 1, 1], (4,))], ellipsisMask=1
    )
    assert limits(m, op) == ["ellipsis mask is set"]


def test_resize_prelu_split_pack_squeeze():
    m, op = single("RESIZE_BILINEAR", (1, 4, 4, 3), (1, 8, 8, 3), [([8, 8], (2,))])
    assert limits(m, op) == []
    m, op = single("RESIZE_BILINEAR", (2, 4, 4, 3), (2, 8, 8, 3), [([8, 8], (2,))])
    assert "not 3-dimensional" in limits(m, op)[0]
    ts = [T(0, (1, 4, 4, 4)), T(1, (1, 1, 4), "int8", np.ones(4)), T(2, (1, 4, 4, 4))]
    assert limits(model(ts, [op := Op(0, "PRELU", [0, 1], [2])]), op) == []
    ts[1] = T(1, (4, 4), "int8", np.ones(16))
    assert "shared_axes=[1, 2]" in limits(model(ts, [op]), op)[0]
    ts = [T(0, (1,), "int32", [0]), T(1, (2, 4)), T(2, (1, 4)), T(3, (1, 4))]
    assert limits(model(ts, [op := Op(0, "SPLIT", [0, 1], [2, 3])], inputs=(1,)), op) == [
        "splits along the batch axis"
    ]
    ts = [T(0, (1, 4)), T(1, (1, 4)), T(2, (2, 1, 4))]
    assert limits(model(ts, [op := Op(0, "PACK", [0, 1], [2], axis=0)]), op) == [
        "packs along the batch axis"
    ]
    assert limits(model(ts, [op := Op(0, "PACK", [0, 1], [2], axis=1)]), op) == []
    m, op = single("SQUEEZE", (1, 5, 1, 10), (1, 5, 10), squeezeDims=[2])
    assert limits(m, op, 14) == []
    assert "non-leading axes [2]" in limits(m, op, 12)[0]


def test_malformed_op_is_reported_not_raised():
    m, op = single("MEAN", (1, 4, 4, 4), (1, 4))  # no axis input
    assert limits(m, op) == []
    broken = Op(0, "SOFTMAX", [], [1])
    assert "does not have the inputs" in limits(m, broken)[0]


def _float_io_chain(middle="LEAKY_RELU"):
    """float -> QUANTIZE -> CONV -> middle -> CONV -> DEQUANTIZE -> float."""
    ts = [T(0, (1, 8, 8, 4), "float32"), T(1, (1, 8, 8, 4))]
    ts += [T(2, (4, 1, 1, 4), "int8", np.ones(16)), T(3, (4,), "int32", np.zeros(4))]
    ts += [
        T(4, (1, 8, 8, 4)),
        T(5, (1, 8, 8, 4)),
        T(6, (1, 8, 8, 4)),
        T(7, (1, 8, 8, 4), "float32"),
    ]
    ops = [
        Op(0, "QUANTIZE", [0], [1]),
        Op(1, "CONV_2D", [1, 2, 3], [4], 3),
        Op(2, middle, [4], [5]),
        Op(3, "CONV_2D", [5, 2, 3], [6], 3),
        Op(4, "DEQUANTIZE", [6], [7], 2),
    ]
    return model(ts, ops, inputs=(0,), outputs=(7,))


def test_the_compiler_cuts_at_the_first_cpu_op():
    report = check_edgetpu(_float_io_chain("LEAKY_RELU"))
    where = [(op.opcode, op.on_edgetpu, op.edge, op.after_cut) for op in report.ops]
    assert where == [
        ("QUANTIZE", False, True, False),
        ("CONV_2D", True, False, False),
        ("LEAKY_RELU", False, False, False),
        ("CONV_2D", False, False, True),  # supported, but after the cut
        ("DEQUANTIZE", False, True, False),
    ]
    assert report.first_cpu_op.index == 2 and report.first_cpu_op.opcode == "LEAKY_RELU"
    assert (report.ops_on_edgetpu, report.ops_on_cpu) == (1, 4)
    assert report.compilable and not report.fully_mapped
    assert "More than one subgraph is not supported" in report.ops[3].why
    assert any("float model inputs/outputs" in n for n in report.notes)
    assert "cut at op 2 LEAKY_RELU" in report.summary()


def test_float_io_edges_do_not_cut():
    report = check_edgetpu(_float_io_chain("RELU"))
    assert report.first_cpu_op is None
    assert [op.on_edgetpu for op in report.ops] == [False, True, True, True, False]
    assert report.input_types == ("float32",) and report.output_types == ("float32",)


def test_an_unloadable_version_blocks_the_whole_model():
    m = _float_io_chain("RELU")
    m.operators[1] = Op(1, "CONV_2D", [1, 2, 3], [4], version=6)
    report = check_edgetpu(m)
    assert not report.compilable
    assert report.blockers[0].startswith("op 1: CONV_2D version 6 is newer")
    assert report.first_cpu_op.index == 1
    assert "would refuse the model" in report.summary()


def test_runtime_reshape_is_a_blocker_with_the_fix():
    ts = [T(0, (1, 4, 4, 2), sig=(-1, 4, 4, 2)), T(1, (2,), "int32"), T(2, (1, 32), sig=(-1, 32))]
    report = check_edgetpu(model(ts, [Op(0, "RESHAPE", [0, 1], [2])]))
    (blocker,) = report.blockers
    assert "static-sized tensors" in blocker and "with_batch_size(model, 1)" in blocker
    assert report.notes[0].startswith("dynamic batch size on input(s) ['t0']")


def test_compiled_model_is_refused():
    ts = [T(0, (1, 8)), T(1, (1, 8))]
    m = model(ts, [Op(0, "edgetpu-custom-op", [0], [1])])
    with pytest.raises(
        ModelError, match=r"already compiled for the Edge TPU.*Received: a \*_edgetpu"
    ):
        check_edgetpu(m)
