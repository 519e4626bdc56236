"""Each output's role and loss, and the one loop trained and distilled per output."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from keras_squeeze.core.models import input_specs
from keras_squeeze.data.labels import output_specs
from keras_squeeze.distillation import losses as kd
from keras_squeeze.distillation.config import Distill
from keras_squeeze.errors import RecipeError
from keras_squeeze.training import data as train_data
from keras_squeeze.training import tasks, trainer
from tests.conftest import FLAVOURS, keras

N = 16


def _two_output(flavour, seed=0):
    k = keras(flavour)
    k.utils.set_random_seed(seed)
    x = k.Input((6,), name="x")
    h = k.layers.Dense(8, activation="relu", name="fc")(x)
    return k.Model(x, [k.layers.Dense(3, name="classes")(h), k.layers.Dense(2, name="box")(h)])


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, 6)).astype(np.float32)
    return x, rng.integers(0, 3, N), rng.normal(size=(N, 2)).astype(np.float32)


def test_loss_roles_from_names_and_objects():
    import keras

    assert tasks.loss_role("mse") == tasks.labels_mod.REGRESSION
    assert tasks.loss_role(keras.losses.MeanAbsoluteError()) == tasks.labels_mod.REGRESSION
    assert tasks.loss_role(keras.losses.Huber()) == tasks.labels_mod.REGRESSION
    assert tasks.loss_role(keras.losses.get("mae")) == tasks.labels_mod.REGRESSION
    assert tasks.loss_role("sparse_categorical_crossentropy") == tasks.labels_mod.CLASSIFICATION
    assert (
        tasks.loss_role(keras.losses.CategoricalCrossentropy()) == tasks.labels_mod.CLASSIFICATION
    )
    assert tasks.loss_role(lambda y, p: y - p) is None  # says nothing: the labels decide


def test_a_loss_per_output():
    names = ["classes", "box"]
    assert tasks.per_output(None, names) == [None, None]
    assert tasks.per_output("mse", names) == ["mse", "mse"]  # one loss for every output
    assert tasks.per_output(["a", None], names) == ["a", None]
    assert tasks.per_output({"box": "mae"}, names) == [None, "mae"]  # missing: the default
    with pytest.raises(
        RecipeError,
        match=r"loss gives 3 losses for a model with 2 output\(s\)\. Expected one loss per "
        r"output, in order \['classes', 'box'\].*Received: 3 losses",
    ):
        tasks.per_output(["mse", "mse", "mse"], names)
    with pytest.raises(
        RecipeError,
        match=r"loss is keyed by names that are not outputs of the model: \['boxes'\]\. "
        r"Expected keys among the model's outputs \['classes', 'box'\]",
    ):
        tasks.per_output({"boxes": "mse"}, names)
    with pytest.raises(RecipeError, match=r"loss for output 'box' is not a loss.*Received: int"):
        tasks.per_output(["mse", 3], names)
    model = _two_output("keras3")
    with pytest.raises(RecipeError, match=r"Unknown loss\..*Received: loss='squared_wrongness'"):
        tasks.check_loss(["sparse_categorical_crossentropy", "squared_wrongness"], model)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_roles_and_losses_from_compile_labels_and_the_loss_given(flavour):
    k = keras(flavour)
    model = _two_output(flavour)
    _, ids, boxes = _data()
    # No compile, no labels: a (batch, k >= 2) output counts as a classifier.
    assert [t.classifier for t in tasks.output_tasks(model)] == [True, True]
    # The labels tell the box from the classes.
    got = tasks.output_tasks(model, [ids, boxes])
    assert [t.classifier for t in got] == [True, False] and got[1].loss is None  # built-in MSE
    # The compiled loss, per output: mae for the box is used as it is.
    model.compile("adam", loss={"classes": "sparse_categorical_crossentropy", "box": "mae"})
    got = tasks.output_tasks(model)
    assert [t.classifier for t in got] == [True, False]
    assert got[0].loss is None and got[1].loss_name == "mae"
    np.testing.assert_allclose(float(tf.reduce_mean(got[1].loss(boxes, boxes + 1.0))), 1.0)
    # A loss given wins over the compiled one for its output.
    got = tasks.output_tasks(model, loss={"box": k.losses.Huber()})
    assert got[1].loss_name == "huber_loss" and got[1].loss is not None


def _loss_of(student, teacher, x, y, distill, outputs_given=None):
    specs = input_specs(student)
    train = train_data.prepare((x, y), specs, batch_size=len(x), outputs=output_specs(student))
    task = trainer.make_task(student, train, distill, outputs_given)
    cls = trainer._trainer_class("keras3")
    kind = trainer.resolve_teacher_kind(distill, teacher) if teacher is not None else None
    t = cls(student, teacher, distill if teacher is not None else None, task, [], kind)
    ys = tuple(tf.constant(v) for v in y) if isinstance(y, list) else y
    loss, _ = t._ks_loss(tf.constant(x), ys, training=False)
    return float(loss)


def _ce(logits, ids):
    z = logits - logits.max(-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return float(-np.mean(log_p[np.arange(len(ids)), ids]))


def test_distillation_per_output_matches_the_reference():
    """alpha * (KD on the classes + MSE to the teacher's box) + (1 - alpha) * task losses."""
    x, ids, boxes = _data()
    student, teacher = _two_output("keras3", 0), _two_output("keras3", 1)
    s_cls, s_box = (np.asarray(o, np.float64) for o in student(x))
    t_cls, t_box = (np.asarray(o, np.float64) for o in teacher(x))
    cfg = Distill(alpha=0.3, temperature=2.0)
    soft = kd.kd_loss_np(t_cls, s_cls, 2.0) + np.mean((t_box - s_box) ** 2)
    task = _ce(s_cls, ids) + np.mean((boxes - s_box) ** 2)
    got = _loss_of(student, teacher, x, [ids, boxes], cfg)
    assert got == pytest.approx(0.3 * soft + 0.7 * task, rel=1e-4)
    # Without a teacher: the sum of the task losses.
    assert _loss_of(student, None, x, [ids, boxes], None) == pytest.approx(task, rel=1e-4)


def test_one_output_regression_targets_keep_their_shape():
    """(n,) targets for a (n, 1) output: the mean squared error, not a broadcast (n, n)."""
    k = keras("keras3")
    k.utils.set_random_seed(0)
    inp = k.Input((6,), name="x")
    model = k.Model(inp, k.layers.Dense(1, name="value")(inp))
    x, _, boxes = _data()
    y = boxes[:, 0]
    pred = np.asarray(model(x)).reshape(-1)
    assert _loss_of(model, None, x, y, None) == pytest.approx(np.mean((pred - y) ** 2), rel=1e-5)


def test_training_data_yields_a_tuple_per_output_in_output_order():
    model = _two_output("keras3")
    x, ids, boxes = _data()
    specs = input_specs(model)
    outputs = output_specs(model)
    forms = [
        (x, {"box": boxes, "classes": ids}),
        tf.data.Dataset.from_tensor_slices((x, {"box": boxes, "classes": ids})).batch(8),
        lambda: iter([(x[:8], (ids[:8], boxes[:8])), (x[8:], (ids[8:], boxes[8:]))]),
    ]
    for data in forms:
        prepared = train_data.prepare(data, specs, batch_size=8, outputs=outputs)
        _, y = next(iter(prepared.dataset))
        assert isinstance(y, tuple) and [tuple(v.shape) for v in y] == [(8,), (8, 2)]
        assert prepared.one_hot is False and isinstance(prepared.label_sample, list)


def test_fine_tune_trains_every_output():
    model = _two_output("tf_keras")
    x, ids, boxes = _data()
    specs = input_specs(model)
    prepared = train_data.prepare(
        (x, [ids, boxes]), specs, batch_size=8, outputs=output_specs(model)
    )
    history = trainer.fine_tune(model, prepared, 2, verbose=0, learning_rate=1e-2)
    assert sorted(history.history) == ["box_mse", "classes_accuracy", "loss"]
    assert history.history["loss"][1] < history.history["loss"][0]


def test_compiled_loss_weights_weigh_each_output():
    x, ids, boxes = _data()
    student = _two_output("keras3")
    student.compile("adam", loss=["sparse_categorical_crossentropy", "mse"], loss_weights=[1, 10])
    s_cls, s_box = (np.asarray(o, np.float64) for o in student(x))
    task = _ce(s_cls, ids) + 10 * np.mean((boxes - s_box) ** 2)
    assert _loss_of(student, None, x, [ids, boxes], None) == pytest.approx(task, rel=1e-4)
