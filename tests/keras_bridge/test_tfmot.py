"""The bridge's output is what tfmot takes, and tfmot's stripped output comes back.

A trained Keras 3 CNN (tests/conftest.py) -> tf_keras -> tfmot (prune, cluster,
QAT) -> strip -> Keras 3 copy of the user's architecture.
"""

from __future__ import annotations

import numpy as np
import pytest

from keras_squeeze import _compat
from keras_squeeze.errors import BridgeError
from keras_squeeze.keras_bridge import to_keras3, to_tf_keras
from tests.conftest import assert_weights_equal, weights_snapshot


@pytest.fixture(scope="module")
def tfmot():
    return _compat.import_tfmot()


@pytest.fixture
def source(trained_models, digits8):
    (x, y), _ = digits8
    model = trained_models["keras3"]
    return model, x[:256], y[:256], weights_snapshot(model), model.get_config()


def _fine_tune(model, x, y, callbacks=()):
    import tf_keras

    model.compile(
        optimizer=tf_keras.optimizers.Adam(1e-3),
        loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x, y, epochs=1, batch_size=64, verbose=0, callbacks=list(callbacks))


def _zeros(layer) -> float:
    kernel = np.asarray(layer.kernel)
    return float((kernel == 0).mean())


def test_prune_strip_and_back_to_keras3(tfmot, source):
    model, x, y, weights, config = source
    tfk, _ = to_tf_keras(model, x[:32])
    sparsity = tfmot.sparsity.keras
    pruned = sparsity.prune_low_magnitude(
        tfk, pruning_schedule=sparsity.ConstantSparsity(0.5, begin_step=0, frequency=1)
    )
    _fine_tune(pruned, x, y, [sparsity.UpdatePruningStep()])
    with pytest.raises(BridgeError, match=r"still holds tfmot wrappers.*Expected a stripped model"):
        to_keras3(pruned, like=model)
    stripped = sparsity.strip_pruning(pruned)
    back, report = to_keras3(stripped, like=model, sample_inputs=x[:32])
    assert _compat.keras_flavour(back) == _compat.KERAS3
    assert report.agreement.ok
    for name in ("conv2d", "logits"):
        layer = next(layer for layer in back.layers if layer.name.startswith(name))
        assert _zeros(layer) == pytest.approx(0.5, abs=0.02)
    np.testing.assert_allclose(back(x[:16]), stripped(x[:16]), rtol=1e-5, atol=1e-5)
    assert_weights_equal(weights, model)
    assert model.get_config() == config


def test_cluster_strip_and_back_to_keras3(tfmot, source):
    model, x, y, weights, _ = source
    tfk, _ = to_tf_keras(model, x[:32])
    clustering = tfmot.clustering.keras
    clustered = clustering.cluster_weights(
        tfk,
        number_of_clusters=8,
        cluster_centroids_init=clustering.CentroidInitialization.KMEANS_PLUS_PLUS,
    )
    _fine_tune(clustered, x, y)
    back, report = to_keras3(
        clustering.strip_clustering(clustered), like=model, sample_inputs=x[:32]
    )
    assert report.agreement.ok
    assert len(np.unique(np.asarray(back.get_layer("logits").kernel))) <= 8
    assert_weights_equal(weights, model)


def test_quantization_aware_training_takes_the_rebuild_and_stays_tf_keras(tfmot, source):
    model, x, y, weights, _ = source
    tfk, _ = to_tf_keras(model, x[:32])
    qat = tfmot.quantization.keras.quantize_model(tfk)
    _fine_tune(qat, x, y)
    assert np.isfinite(np.asarray(qat(x[:16], training=False))).all()
    wrapped = {
        layer.name for layer in qat.layers if type(layer).__name__.startswith("QuantizeWrapper")
    }
    kernels = [layer.name for layer in model.layers if type(layer).__name__ in ("Conv2D", "Dense")]
    assert len(kernels) == 5
    assert {f"quant_{name}" for name in kernels} <= wrapped
    with pytest.raises(
        BridgeError,
        match=r"a quantization-aware-trained model stays tf_keras.*Received: wrapped layers",
    ):
        to_keras3(qat, like=model)
    assert_weights_equal(weights, model)


def test_tfmot_wraps_layers_of_an_inlined_backbone(tfmot, multi_io_model, multi_io_inputs):
    """Per-layer pruning, as for models with layers tfmot cannot wrap (TFOpLambda here)."""
    import tf_keras

    tfk, _ = to_tf_keras(multi_io_model, multi_io_inputs)
    prune = tfmot.sparsity.keras.prune_low_magnitude

    def clone(layer):
        if isinstance(layer, (tf_keras.layers.Conv2D, tf_keras.layers.Dense)):
            return prune(layer)
        return layer.__class__.from_config(layer.get_config())

    pruned = tf_keras.models.clone_model(tfk, clone_function=clone)
    wrapped = [layer.name for layer in pruned.layers if type(layer).__name__ == "PruneLowMagnitude"]
    assert "prune_low_magnitude_Conv1" in wrapped  # inside the MobileNetV2 backbone
    assert "prune_low_magnitude_head_dense" in wrapped  # inside the nested Sequential


def test_qat_by_annotation_works_around_tfmot_op_layer_bug(tfmot):
    """quantize_model fails on a squeeze-excite block's op layers (tfmot issue #867, natively
    too); annotating the supported layers and calling quantize_apply works."""
    import keras
    import tf_keras

    layers = keras.layers
    x = keras.Input((8, 8, 16), name="features")
    y = layers.Conv2D(16, 1, name="expand")(x)
    s = layers.Conv2D(16, 1, name="squeeze")(layers.GlobalAveragePooling2D(keepdims=True)(y))
    s = layers.ReLU(6.0)(s + 3.0) * (1.0 / 6.0)  # MobileNetV3's hard-sigmoid
    y = layers.Conv2D(16, 1, name="project")(layers.Multiply()([y, s]))
    model = keras.Model(x, layers.BatchNormalization(name="project_bn")(y))
    tfk, report = to_tf_keras(model)
    assert len(report.op_layers) == 2
    quantization = tfmot.quantization.keras
    with pytest.raises(ValueError, match=r"(?s)project_bn.*Shape must be rank 4 but is rank 6"):
        quantization.quantize_model(tfk)

    def annotate(layer):
        if isinstance(layer, tf_keras.layers.Conv2D):
            return quantization.quantize_annotate_layer(layer)
        return layer.__class__.from_config(layer.get_config())

    annotated = tf_keras.models.clone_model(tfk, clone_function=annotate)
    qat = quantization.quantize_apply(annotated)
    assert qat.output_shape == (None, 8, 8, 16)
    assert {"quant_expand", "quant_squeeze", "quant_project"} <= {
        layer.name for layer in qat.layers
    }
