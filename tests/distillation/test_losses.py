from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from keras_squeeze.distillation import losses
from keras_squeeze.distillation.config import Distill
from keras_squeeze.errors import RecipeError

RNG = np.random.default_rng(0)
T_LOGITS = RNG.normal(size=(8, 5)).astype(np.float32) * 3
S_LOGITS = RNG.normal(size=(8, 5)).astype(np.float32)


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("temperature", [1.0, 4.0, 10.0])
def test_kd_loss_matches_the_reference(temperature):
    got = float(losses.kd_loss(T_LOGITS, S_LOGITS, temperature, "logits", "logits"))
    assert got == pytest.approx(losses.kd_loss_np(T_LOGITS, S_LOGITS, temperature), rel=1e-5)
    assert float(
        losses.kd_loss(T_LOGITS, T_LOGITS, temperature, "logits", "logits")
    ) == pytest.approx(0, abs=1e-5)


def test_probability_outputs_soften_like_their_logits():
    # A teacher that outputs probabilities must give the same loss as one giving logits.
    probs = _softmax(T_LOGITS)
    from_probs = float(losses.kd_loss(probs, S_LOGITS, 4.0, "probabilities", "logits"))
    from_logits = float(losses.kd_loss(T_LOGITS, S_LOGITS, 4.0, "logits", "logits"))
    assert from_probs == pytest.approx(from_logits, rel=1e-4)
    # Treating probabilities as logits (the silent bug) gives a very different loss.
    wrong = float(losses.kd_loss(probs, S_LOGITS, 4.0, "logits", "logits"))
    assert abs(wrong - from_logits) > 0.1 * from_logits


def test_feature_loss():
    a = tf.ones((2, 3, 3, 4))
    assert float(losses.feature_loss(a, a * 3)) == pytest.approx(4.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"temperature": 0}, r"temperature must be positive.*Received: temperature=0"),
        ({"temperature": -1.0}, r"Received: temperature=-1\.0"),
        ({"alpha": 1.5}, r"alpha must lie in \[0, 1\].*Received: alpha=1\.5"),
        ({"alpha": -0.1}, r"Received: alpha=-0\.1"),
        ({"teacher_outputs": "softmax"}, r"Unknown output kind.*teacher_outputs='softmax'"),
        ({"features": [("a",)]}, r"features must be \(teacher_layer, student_layer\) name pairs"),
    ],
)
def test_bad_distill_settings(kwargs, match):
    with pytest.raises(RecipeError, match=match):
        Distill(**kwargs)


def test_distill_round_trip():
    d = Distill(temperature=2.0, alpha=0.5, features=[("t1", "s1")])
    assert Distill.from_config(d.get_config()) == d
