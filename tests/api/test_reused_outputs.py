"""save() checks its files against the model as it was when compress() made the .tflite."""

from __future__ import annotations

import numpy as np

import keras_squeeze as ks
from tests.conftest import keras


def test_save_checks_against_the_outputs_compress_verified_with(digits8, tmp_path):
    (x, _), _ = digits8
    k = keras("keras3")
    k.utils.set_random_seed(0)
    inputs = k.Input((8, 8, 1))
    outputs = k.layers.Dense(10)(k.layers.Flatten()(k.layers.Conv2D(4, 3)(inputs)))
    model = k.Model(inputs, outputs)
    result = ks.compress(model, "int8", representative_data=x[:40], verbose=0)
    assert result.outputs  # the Keras outputs of the verification
    # the user goes on to change their model after compress(): the .tflite was made before
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    result.save(tmp_path / "out", formats=("tflite",))
    saved = result.report.exports["tflite"]["fidelity"]
    assert saved["sqnr_db"] == result.report.fidelity.to_dict()["sqnr_db"]
    assert saved["top1_agreement"] == result.report.fidelity.top1_agreement
