"""Subclassed models: no graph, so the bridge (training-time recipes) refuses them,
while the post-training recipes work through the converter."""

from __future__ import annotations

import numpy as np
import pytest

import keras_squeeze as ks
from keras_squeeze.core import models
from keras_squeeze.errors import BridgeError, ModelError
from keras_squeeze.keras_bridge import to_tf_keras
from tests.conftest import assert_weights_equal, keras, weights_snapshot

X = np.random.default_rng(0).uniform(0, 1, (64, 8, 8, 1)).astype("float32")


def _subclassed(flavour, call=True):
    k = keras(flavour)

    class Classifier(k.Model):
        def __init__(self):
            super().__init__(name="classifier")
            self.conv = k.layers.Conv2D(32, 3, activation="relu")
            self.pool = k.layers.Flatten()
            self.head = k.layers.Dense(3, activation="softmax")

        def call(self, x):
            return self.head(self.pool(self.conv(x)))

    model = Classifier()
    if call:
        model(X[:2])
    return model


def test_the_bridge_refuses_a_subclassed_model_and_points_to_post_training():
    with pytest.raises(
        BridgeError,
        match=r"The model 'classifier' is a subclassed model: it has no layer graph to rebuild in "
        r"tf_keras, which training-time recipes \(pruning, clustering, quantization-aware "
        r"training\) need\. Expected a functional or Sequential model \(built on keras\.Input\)\. "
        r"Received: a Classifier subclass of keras\.Model\. The post-training recipes \('dynamic', "
        r"'float16', 'int8', 'int16x8'\) work on subclassed models\.",
    ):
        to_tf_keras(_subclassed("keras3"))


def test_inputs_come_from_the_first_call(flavour):
    model = _subclassed(flavour)
    (spec,) = models.input_specs(model)
    assert spec.shape == (8, 8, 1) and spec.dtype == "float32"
    assert models.output_names(model) == ["output_0"]


def test_a_subclassed_model_never_called_has_no_inputs(flavour):
    with pytest.raises(
        ModelError,
        match=r"The model 'classifier' has no defined inputs\. Expected a Sequential or "
        r"functional model built on keras\.Input.*or a subclassed model called once on a batch "
        r"of data\. Received: a Classifier without inputs",
    ):
        models.input_specs(_subclassed(flavour, call=False))


# An untrained model's near-uniform scores flip under int8 more than a trained one's.
@pytest.mark.filterwarnings("ignore:the 'int8' .tflite agrees with the float model")
def test_post_training_int8_works_on_a_subclassed_model(flavour, tmp_path):
    model = _subclassed(flavour)
    before = weights_snapshot(model)
    result = ks.compress(model, "int8", representative_data=X, verbose=0)
    assert result.report.fidelity.top1_agreement >= 0.9
    assert result.report.compressed.tflite_bytes < result.report.original.tflite_bytes
    assert result.model is model
    assert_weights_equal(before, model)
    if flavour == "keras3":  # the exports too (ONNX, SavedModel), once
        result.save(tmp_path)
        assert {p.name for p in tmp_path.iterdir()} >= {
            "model.tflite",
            "model.onnx",
            "saved_model",
            "report.json",
        }
