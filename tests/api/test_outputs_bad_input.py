"""Labels and losses that do not fit a model's outputs: one KerasSqueezeError, nothing written.

Also the report's warning when a result falls behind the original on an
output's task metric, made to fire on a badly calibrated .tflite.
"""

from __future__ import annotations

import numpy as np
import pytest

import keras_squeeze as ks
from keras_squeeze.errors import DataError, KerasSqueezeError, ModelError, RecipeError
from tests.conftest import keras


@pytest.fixture(scope="module")
def two_output():
    k = keras("keras3")
    k.utils.set_random_seed(0)
    image = k.Input((8, 8, 1), name="image")
    h = k.layers.Dense(16, activation="relu", name="fc")(k.layers.Flatten()(image))
    model = k.Model(image, [k.layers.Dense(3, name="classes")(h), k.layers.Dense(4, name="box")(h)])
    rng = np.random.default_rng(0)
    x = rng.random((128, 8, 8, 1), dtype=np.float32)
    ids = x.reshape(128, 64)[:, :3].argmax(-1)  # learnable: the brightest of three pixels
    boxes = x.reshape(128, 64)[:, 3:7]  # learnable: four pixels
    model.compile(
        k.optimizers.Adam(0.01),
        loss=[k.losses.SparseCategoricalCrossentropy(from_logits=True), "mse"],
    )
    model.fit(x, [ids, boxes], epochs=30, verbose=0)
    return model, x, ids, boxes


CASES = {
    "labels list too long": (
        lambda ids, boxes: {"train_data": lambda x: (x, [ids, boxes, boxes])},
        DataError,
        r"train_data gives 3 label arrays for a model with 2 output\(s\)\. Expected one array "
        r"per output, in order \['classes', 'box'\]",
    ),
    "unknown output name": (
        lambda ids, boxes: {"train_data": lambda x: (x, {"classes": ids, "bbox": boxes})},
        DataError,
        r"train_data has labels keyed by names that are not outputs of the model: \['bbox'\]\. "
        r"Expected keys among the model's outputs \['classes', 'box'\]",
    ),
    "box labels of the wrong shape": (
        lambda ids, boxes: {"validation_data": lambda x: (x, [ids, boxes[:, :2]])},
        DataError,
        r"validation_data's labels for output 'box' do not match its shape\. Expected labels "
        r"of shape \(n, 4\).*Received: an array of shape \(128, 2\)",
    ),
    "one array for two outputs": (
        lambda ids, boxes: {"validation_data": lambda x: (x, ids)},
        DataError,
        r"validation_data gives one label array to a model with 2 outputs",
    ),
    "loss list of the wrong length": (
        lambda ids, boxes: {"train_data": lambda x: (x, [ids, boxes]), "loss": ["mse"]},
        RecipeError,
        r"loss gives 1 losses for a model with 2 output\(s\)\. Expected one loss per output, "
        r"in order \['classes', 'box'\]",
    ),
    "loss dict with an unknown output": (
        lambda ids, boxes: {"train_data": lambda x: (x, [ids, boxes]), "loss": {"boxes": "mae"}},
        RecipeError,
        r"loss is keyed by names that are not outputs of the model: \['boxes'\]",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_labels_and_losses_that_do_not_fit_the_outputs(two_output, tmp_path, monkeypatch, case):
    model, x, ids, boxes = two_output
    make, error, match = CASES[case]
    kwargs = {
        name: (value(x) if callable(value) and name.endswith("_data") else value)
        for name, value in make(ids, boxes).items()
    }
    kwargs.setdefault("train_data", (x, [ids, boxes]))
    monkeypatch.chdir(tmp_path)
    before = [np.array(w) for w in model.get_weights()]
    with pytest.raises(error, match=match) as info:
        ks.compress(model, "prune", epochs=1, verbose=0, **kwargs)
    assert isinstance(info.value, KerasSqueezeError)
    assert list(tmp_path.iterdir()) == []  # nothing written
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_task_metric_that_falls_behind_is_a_warning(two_output):
    """int8 calibrated on zeros: both outputs fall far behind, and the report says so."""
    model, x, ids, boxes = two_output
    with pytest.warns(UserWarning, match=r"accuracy on output 'classes' is .*points under"):
        result = ks.compress(
            model,
            "int8",
            representative_data=np.zeros((16, 8, 8, 1), np.float32),
            validation_data=(x, [ids, boxes]),
            verbose=0,
        )
    warnings = result.report.warnings
    assert any(
        "relative MSE on output 'box' (MSE / variance of the targets)" in w and "points over" in w
        for w in warnings
    ), warnings
    assert result.report.accuracy["per_output"]["classes"]["original"] > 0.8
    assert result.report.regression["relative_mse"]["original"] < 1.0


def test_a_model_that_cannot_be_copied_is_a_model_error():
    """A custom layer whose config cannot rebuild it, in a model compiled with a custom loss
    that is not registered: neither clone_model nor from_config copies it."""
    k = keras("keras3")

    class Scale(k.layers.Layer):
        def __init__(self, factor, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x):
            return x * self.factor

        def get_config(self):
            return {"name": self.name}  # no factor: from_config cannot rebuild the layer

    def distance(y_true, y_pred):
        return (y_true - y_pred) ** 2

    x_in = k.Input((4,))
    student = k.Model(x_in, Scale(2.0)(k.layers.Dense(2)(x_in)))
    student.compile("adam", loss=distance)
    teacher = k.Model(x_in, k.layers.Dense(2)(x_in))
    x = np.random.default_rng(0).random((8, 4), dtype=np.float32)
    with pytest.raises(ModelError, match=r"The model cannot be copied\. Expected a Sequential"):
        ks.distill(teacher, student, x, epochs=1)
