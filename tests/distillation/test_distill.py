"""ks.distill across Keras flavours, label formats and teacher output kinds."""

from __future__ import annotations

import numpy as np
import pytest

from keras_squeeze.distillation import distill, losses
from keras_squeeze.errors import ModelError, RecipeError
from keras_squeeze.training import data as train_data
from keras_squeeze.training import trainer
from tests.conftest import FLAVOURS, assert_weights_equal, keras, weights_snapshot


def _student(flavour, softmax=False):
    k = keras(flavour)
    return k.Sequential(
        [
            k.Input((8, 8, 1), name="image"),
            k.layers.Flatten(),
            k.layers.Dense(32, activation="relu"),
            k.layers.Dense(10, activation="softmax" if softmax else None),
        ]
    )


@pytest.mark.parametrize("teacher_flavour", FLAVOURS)
@pytest.mark.parametrize("student_flavour", FLAVOURS)
def test_distill_any_flavour_pair(trained_models, digits8, teacher_flavour, student_flavour):
    (x, y), (xt, yt) = digits8
    teacher = trained_models[teacher_flavour]
    student = _student(student_flavour)
    before = weights_snapshot(student)
    result = distill(teacher, student, (x, y), epochs=2, validation_data=(xt, yt), verbose=0)
    assert_weights_equal(before, student)  # a copy was trained
    report = result.report
    assert report["teacher_outputs"] == "logits" and report["student_outputs"] == "logits"
    assert report["labels"] == "class ids"
    assert report["history"]["loss"][1] < report["history"]["loss"][0]
    assert report["accuracy"]["student"] > 0.3  # learnt something in 88 steps (chance: 0.1)
    assert report["student_params"] < report["teacher_params"] / 3


def _batch_loss(teacher, student, x, y, distill_cfg):
    """The loss the real trainer computes on one batch."""
    specs = [
        s for s in __import__("keras_squeeze.core.models", fromlist=["x"]).input_specs(student)
    ]
    train = train_data.prepare((x, y), specs, batch_size=len(x))
    task = trainer.make_task(student, train, distill_cfg)
    cls = trainer._trainer_class("keras3")
    t = cls(
        student, teacher, distill_cfg, task, [], trainer.resolve_teacher_kind(distill_cfg, teacher)
    )
    loss, _ = t._ks_loss(x, y, training=False)
    return float(loss)


def test_teacher_probabilities_are_detected_and_softened_correctly(digits8):
    from keras_squeeze.distillation.config import Distill

    (x, y), _ = digits8
    x, y = x[:16], y[:16]
    k = keras("keras3")
    logits_teacher = _student("keras3")
    probs_teacher = k.Model(logits_teacher.inputs, k.layers.Softmax()(logits_teacher.outputs[0]))
    student = _student("keras3")
    cfg = Distill(alpha=1.0, temperature=3.0)
    assert trainer.resolve_teacher_kind(cfg, probs_teacher) == "probabilities"
    t_logits = np.asarray(logits_teacher(x))
    s_logits = np.asarray(student(x))
    expected = losses.kd_loss_np(t_logits, s_logits, 3.0)
    assert _batch_loss(logits_teacher, student, x, y, cfg) == pytest.approx(expected, rel=1e-4)
    assert _batch_loss(probs_teacher, student, x, y, cfg) == pytest.approx(expected, rel=1e-3)
    wrong = Distill(alpha=1.0, temperature=3.0, teacher_outputs="logits")
    assert _batch_loss(probs_teacher, student, x, y, wrong) != pytest.approx(expected, rel=0.05)


def test_one_hot_and_integer_labels_give_the_same_loss(digits8):
    from keras_squeeze.distillation.config import Distill

    (x, y), _ = digits8
    x, y = x[:16], y[:16]
    teacher, student = _student("keras3"), _student("keras3", softmax=True)
    cfg = Distill(alpha=0.5)
    a = _batch_loss(teacher, student, x, y, cfg)
    b = _batch_loss(teacher, student, x, np.eye(10, dtype=np.float32)[y], cfg)
    assert a == pytest.approx(b, rel=1e-5)


def test_distill_without_labels_learns_from_the_teacher_alone(trained_models, digits8):
    (x, _), _ = digits8
    result = distill(trained_models["keras3"], _student("keras3"), x[:320], epochs=2, verbose=0)
    assert result.report["labels"] is None
    assert result.report["history"]["loss"][1] < result.report["history"]["loss"][0]


def test_feature_distillation_with_a_projection(trained_models, digits8):
    (x, y), _ = digits8
    teacher = trained_models["keras3"]
    k = keras("keras3")
    inp = k.Input((8, 8, 1), name="image")
    h = k.layers.Conv2D(8, 3, padding="same", name="s_conv")(inp)  # 8 channels vs the teacher's 32
    h = k.layers.Flatten()(h)
    student = k.Model(inp, k.layers.Dense(10)(h))
    teacher_conv = next(la.name for la in teacher.layers if type(la).__name__ == "Conv2D")
    result = distill(
        teacher,
        student,
        (x[:128], y[:128]),
        epochs=1,
        features=[(teacher_conv, "s_conv")],
        verbose=0,
    )
    assert result.report["distill"]["features"] == [[teacher_conv, "s_conv"]]


def test_bad_distillation_input(trained_models, digits8):
    (x, y), _ = digits8
    teacher = trained_models["keras3"]
    k = keras("keras3")
    five_classes = k.Sequential([k.Input((8, 8, 1)), k.layers.Flatten(), k.layers.Dense(5)])
    with pytest.raises(
        ModelError, match=r"outputs differ in shape.*teacher \[\(10,\)\], student \[\(5,\)\]"
    ):
        distill(teacher, five_classes, (x, y), verbose=0)
    with pytest.raises(RecipeError, match=r"temperature must be positive.*Received: temperature=0"):
        distill(teacher, _student("keras3"), (x, y), temperature=0, verbose=0)
    with pytest.raises(RecipeError, match=r"alpha must lie in \[0, 1\].*Received: alpha=2"):
        distill(teacher, _student("keras3"), (x, y), alpha=2, verbose=0)
    with pytest.raises(ModelError, match=r"The teacher is the student itself"):
        distill(teacher, teacher, (x, y), verbose=0)
    with pytest.raises(RecipeError, match=r"No layer named 'nope' for feature distillation"):
        distill(teacher, _student("keras3"), (x, y), features=[("nope", "dense")], verbose=0)
