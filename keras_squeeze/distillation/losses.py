"""Distillation losses: TF ops used in training, numpy references used to test them.

Logits distillation (Hinton et al., 2015): with temperature T,
    KD = T^2 * KL( softmax(t / T) || softmax(s / T) )
averaged over the batch, where t and s are teacher and student logits
(log-probabilities for models that output probabilities). The total loss is
    alpha * KD + (1 - alpha) * task_loss + feature_weight * feature_loss.
"""

from __future__ import annotations

import numpy as np

from keras_squeeze.training.losses import as_logits


def kd_loss(teacher_out, student_out, temperature: float, teacher_kind: str, student_kind: str):
    """T^2-scaled KL divergence between softened teacher and student distributions (TF)."""
    import tensorflow as tf

    t = as_logits(tf.cast(teacher_out, tf.float32), teacher_kind) / temperature
    s = as_logits(tf.cast(student_out, tf.float32), student_kind) / temperature
    p_teacher = tf.nn.softmax(t)
    kl = tf.reduce_sum(p_teacher * (tf.nn.log_softmax(t) - tf.nn.log_softmax(s)), axis=-1)
    return tf.reduce_mean(kl) * (temperature**2)


def feature_loss(teacher_feature, student_feature):
    """Mean squared difference of two feature maps of the same shape (TF)."""
    import tensorflow as tf

    return tf.reduce_mean(tf.square(tf.cast(teacher_feature, tf.float32) - student_feature))


def regression_loss(teacher_out, student_out):
    """For non-classifier outputs: mean squared difference to the teacher (TF)."""
    return feature_loss(teacher_out, student_out)


# --- numpy references -------------------------------------------------------


def _log_softmax_np(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def kd_loss_np(teacher_logits: np.ndarray, student_logits: np.ndarray, temperature: float) -> float:
    """Reference KD loss on logits, float64."""
    t = np.asarray(teacher_logits, np.float64) / temperature
    s = np.asarray(student_logits, np.float64) / temperature
    log_pt, log_ps = _log_softmax_np(t), _log_softmax_np(s)
    return float(np.mean(np.sum(np.exp(log_pt) * (log_pt - log_ps), axis=-1)) * temperature**2)
