"""The native clustering engine: subclassed models of either flavour and functional ones
(engine="native"), checked against the .tflite as the tfmot engine is."""

from __future__ import annotations

import pytest

import keras_squeeze as ks
from keras_squeeze.clustering import native
from tests import subclassed
from tests.conftest import assert_weights_equal, warnings_besides_task_drop, weights_snapshot

N = subclassed.SAMPLES


def _rows(result):
    return {row.name: row for row in result.report.layers}


@pytest.fixture(scope="module")
def cnn(digits8):
    (x, y), _ = digits8
    return subclassed.trained(subclassed.cnn("keras3"), (x, y))


def test_a_subclassed_model_is_clustered_natively(cnn, digits8):
    (x, y), (xt, yt) = digits8
    before = weights_snapshot(cnn)
    result = ks.compress(
        cnn, "cluster", train_data=(x[:N], y[:N]), validation_data=(xt, yt), epochs=1, verbose=0
    )
    assert_weights_equal(before, cnn)
    (stage,) = result.report.stages
    assert stage["settings"]["engine"] == "native" and native.ENGINE_NOTE in stage["notes"]
    rows = _rows(result)
    conv, hidden = rows[cnn.conv.name], rows[cnn.hidden.name]
    # A convolution without a bias clusters per channel here (tfmot's falls back to per tensor).
    assert conv.measured["clusters_per"] == "channel" and 8 <= conv.clusters <= 16
    assert hidden.measured["clusters_per"] == "tensor" and 8 <= hidden.clusters <= 16
    assert hidden.quantized == "int8 per-tensor"
    assert not warnings_besides_task_drop(result.report)
    accuracy = result.report.accuracy
    assert accuracy["compressed"] > accuracy["original"] - 0.05, accuracy


def test_pruned_then_clustered_natively_in_tf_keras(digits8):
    (x, y), _ = digits8
    model = subclassed.trained(subclassed.cnn("tf_keras", seed=1), (x, y))
    recipe = ks.Recipe(prune=ks.Prune(target_sparsity=0.6), cluster=ks.Cluster(init="linear"))
    result = ks.compress(model, recipe, train_data=(x[:N], y[:N]), epochs=1, verbose=0)
    assert [s["settings"]["engine"] for s in result.report.stages] == ["native", "native"]
    assert result.report.stages[1]["settings"]["preserve_sparsity"] is True
    for layer in (model.conv, model.hidden):
        row = _rows(result)[layer.name]
        assert abs(row.sparsity - 0.6) < 0.01  # the zeros survive clustering
        assert row.clusters <= 17  # 16 centroids and the zeros
    assert not warnings_besides_task_drop(result.report)
    assert type(result.model).__module__.startswith(type(model).__module__)


def test_a_functional_model_with_the_native_engine(trained_models, digits8):
    """Both native stages on a Keras 3 functional model: no tf_keras rebuild at all."""
    (x, y), _ = digits8
    model = trained_models["keras3"]
    recipe = ks.Recipe(prune=ks.Prune(engine="native"), cluster=ks.Cluster(engine="native"))
    result = ks.compress(model, recipe, train_data=(x[:N], y[:N]), epochs=1, verbose=0)
    assert result.report.training["bridge"] == []
    assert type(result.model).__module__.startswith("keras.")
    assert [la.name for la in result.model.layers] == [la.name for la in model.layers]
    for row in result.report.layers:
        if "sparsity" in row.targets:
            assert abs(row.sparsity - 0.8) < 0.01 and row.clusters <= 17, row
    assert not warnings_besides_task_drop(result.report)
