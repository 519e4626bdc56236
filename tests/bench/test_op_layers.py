"""Profiled ops back to Keras layer names, on real converter tensor names and recorded profiles."""

from __future__ import annotations

import pathlib

import pytest

from keras_squeeze.bench.benchmark_output import parse_output
from keras_squeeze.bench.op_layers import layers_of_tensor, map_layers, time_by_layer
from keras_squeeze.bench.results import OpTiming
from keras_squeeze.export import tflite as tflite_export
from keras_squeeze.report.tflite_reader import read_tflite
from tests.bench.conftest import tiny_cnn

DATA = pathlib.Path(__file__).parent / "data"
EXPECTED = ["conv_a", "bn", "dw", "pool", "head", None]  # softmax's tensor is the model output


def _rows(content: bytes, with_names: bool) -> list[OpTiming]:
    """Profile rows as benchmark_model names them: "[output tensors]:node" (with_names), or
    only the node index, as rows of delegate kernels carry."""
    model = read_tflite(content)
    return [
        OpTiming(
            node_type=op.opcode,
            first_ms=1.0,
            avg_ms=float(op.index + 1),
            percent=0.0,
            times_called=1,
            name="",
            tensors=[model.tensors[i].name for i in op.outputs] if with_names else [],
            node_index=op.index,
        )
        for op in model.operators
    ]


@pytest.mark.parametrize("with_names", [True, False], ids=["tensor-names", "node-index"])
def test_real_converter_names_map_to_layers_in_both_flavours(flavour, with_names):
    model = tiny_cnn(flavour)
    content = tflite_export.convert(model, "float32")
    rows = map_layers(_rows(content, with_names), tflite=content, model=model)
    assert [r.layers[0] if r.layers else None for r in rows] == EXPECTED


def test_keras3_trace_suffix_is_removed_only_once():
    names = ["block", "block_1"]
    assert layers_of_tensor("m_1/block_1/Relu", names, "m") == ["block"]
    assert layers_of_tensor("m_1/block_1_1/Relu", names, "m") == ["block_1"]
    assert layers_of_tensor("m/block_1/Relu", names, "m") == ["block_1"]  # tf_keras: no suffix
    assert layers_of_tensor("m_1/a_1/Relu;m_1/a_1/BiasAdd", ["a"], "m") == ["a"]


def test_nested_model_maps_to_the_innermost_layer():
    names = ["backbone", "block_1_expand", "head"]
    tensor = "outer_1/backbone_1/block_1_expand_1/Conv2D"
    assert layers_of_tensor(tensor, names, "outer") == ["block_1_expand"]


def test_without_layer_names_the_scope_after_the_model_is_reported():
    assert layers_of_tensor("model/tf.reshape_2/Reshape") == ["tf.reshape_2"]
    assert layers_of_tensor("Identity_2") == []


def test_recorded_keras_profile_maps_delegate_nodes_to_several_layers():
    ops = parse_output((DATA / "lp6m_android_nnapi_op_profiling.txt").read_text()).op_profile
    map_layers(ops)
    assert ops[0].layers == ["tf.strided_slice"]
    assert ops[6].layers == ["tf.math.multiply_23", "tf.math.multiply_38", "tf.math.multiply_49"]
    assert ops[-1].layers == []
    by_layer = dict(time_by_layer(ops))
    assert by_layer["tf.math.multiply_23 + tf.math.multiply_38 + tf.math.multiply_49"] == 83.75
    assert by_layer["(unmapped)"] == pytest.approx(2.418 + 0.586 + 0.146)
    assert next(iter(by_layer)) == "tf.math.multiply_23 + tf.math.multiply_38 + tf.math.multiply_49"


def test_time_by_layer_counts_every_call():
    op = OpTiming("Convolution (NHWC, QC8) DWConv", 0.4, 0.051, 4.3, 13, "x:1", [], 1, ["dw"])
    assert time_by_layer([op]) == [("dw", pytest.approx(0.663))]
