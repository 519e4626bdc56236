"""The native engine's pruning maths (plain numpy) against tfmot's own mask and schedule code."""

from __future__ import annotations

import numpy as np
import pytest

from keras_squeeze import _compat
from keras_squeeze.pruning import masks
from keras_squeeze.pruning.schedule import derive
from keras_squeeze.pruning.verify import m_by_n_fraction

RNG = np.random.default_rng(0)


def _tfmot_mask(values, sparsity, block=(1, 1), m_by_n=None):
    """tfmot's pruning_impl on the same weights (its mask update, outside any wrapper)."""
    import tensorflow as tf

    tfmot = _compat.import_tfmot()
    from tensorflow_model_optimization.python.core.sparsity.keras import pruning_impl

    weights = tf.Variable(values)
    mask = tf.Variable(tf.ones_like(values))
    threshold = tf.Variable(0.0)
    pruning = pruning_impl.Pruning(
        training_step_fn=lambda: tf.constant(1, tf.int64),
        pruning_vars=[(weights, mask, threshold)],
        pruning_schedule=tfmot.sparsity.keras.ConstantSparsity(sparsity, 0, -1, 1),
        block_size=list(block),
        block_pooling_type="AVG",
        sparsity_m_by_n=m_by_n,
    )
    return np.asarray(pruning._maybe_update_block_mask(weights)[1])


def test_magnitude_mask_zeros_the_smallest_weights():
    values = RNG.normal(size=(30, 20)).astype(np.float32)
    mask = masks.magnitude_mask(values, 0.8)
    assert mask.dtype == np.float32 and set(np.unique(mask)) == {0.0, 1.0}
    assert mask.sum() == 120  # round(600 * 0.2)
    assert np.abs(values[mask == 1]).min() > np.abs(values[mask == 0]).max()
    assert masks.magnitude_mask(values, 0.0).all()
    assert masks.magnitude_mask(values, 0.9999).sum() == 1  # at least one weight stays
    ties = np.ones((4, 4), np.float32)
    assert masks.magnitude_mask(ties, 0.5).all()  # ties at the threshold are kept


@pytest.mark.parametrize("shape", [(3, 3, 8, 16), (64, 24)])
def test_magnitude_mask_is_tfmots(shape):
    values = RNG.normal(size=shape).astype(np.float32)
    np.testing.assert_array_equal(masks.magnitude_mask(values, 0.7), _tfmot_mask(values, 0.7))


def test_block_mask_keeps_or_zeros_whole_blocks_as_tfmot_does():
    values = RNG.normal(size=(30, 12)).astype(np.float32)  # 30 rows: a partial last block
    mask = masks.magnitude_mask(values, 0.75, block=(4, 1))
    blocks = np.concatenate([mask, np.repeat(mask[-1:], 2, axis=0)]).reshape(8, 4, 12)
    assert (blocks.min(axis=1) == blocks.max(axis=1)).all()  # 4 consecutive inputs together
    whole = RNG.normal(size=(32, 12)).astype(np.float32)
    np.testing.assert_array_equal(
        masks.magnitude_mask(whole, 0.75, block=(4, 1)), _tfmot_mask(whole, 0.75, block=(4, 1))
    )
    with pytest.raises(ValueError, match="blocks need a rank-2 kernel"):
        masks.magnitude_mask(np.ones((3, 3, 2, 2)), 0.5, block=(4, 1))


@pytest.mark.parametrize(
    "shape, block, blocks",
    [
        ((1548, 1), (4, 1), False),  # one unit: tfmot squeezes the kernel to rank 1
        ((1, 1100), (4, 1), False),  # one input
        ((3, 400), (4, 1), False),  # a single block tall: the grid of scores squeezes
        ((4, 300), (4, 1), False),
        ((300, 4), (1, 4), False),
        ((2, 2), (2, 2), False),
        ((5, 300), (4, 1), True),
        ((300, 5), (1, 4), True),
        ((8, 200), (4, 1), True),
        ((3, 3, 8, 16), (4, 1), False),  # not a rank-2 kernel
    ],
)
def test_blocks_apply_where_tfmot_can_prune_in_them(shape, block, blocks):
    """Was: ValueError "factorized_pool() accepts tensors of rank 2 only" from tfmot's
    train_function on a 1548x1 Dense kernel under the 'prune' preset's 4x1 blocks."""
    assert masks.block_for([shape], block) == (block if blocks else (1, 1))
    values = RNG.normal(size=shape).astype(np.float32)
    if blocks:  # tfmot prunes in blocks here (its partial blocks differ: sparsity is close)
        for mask in masks.magnitude_mask(values, 0.75, block), _tfmot_mask(values, 0.75, block):
            assert mask.shape == shape and 0.7 < 1 - mask.mean() < 0.85
    elif len(shape) == 2:
        with pytest.raises(ValueError, match="rank 2"):
            _tfmot_mask(values, 0.75, block)
    # one block for all of a layer's weights: each must take it
    assert masks.block_for([(8, 200), shape], block) == (block if blocks else (1, 1))
    assert masks.block_for([], block) == (1, 1)


@pytest.mark.parametrize("shape", [(3, 3, 10, 8), (18, 6)])
def test_m_by_n_mask_holds_the_pattern_along_input_channels_as_tfmot_does(shape):
    values = RNG.normal(size=shape).astype(np.float32)
    mask = masks.m_by_n_mask(values, 2, 4)
    tflite_layout = np.moveaxis(values * mask, -1, 0)  # (out, ..., in)
    if len(shape) == 2:
        tflite_layout = (values * mask).T
    assert m_by_n_fraction(tflite_layout, 2, 4) == 1.0
    np.testing.assert_array_equal(mask, _tfmot_mask(values, 0.5, m_by_n=(2, 4)))
    with pytest.raises(ValueError, match="M:N needs a kernel of rank >= 2"):
        masks.m_by_n_mask(np.ones(8), 2, 4)


def test_schedule_steps_and_sparsity_are_tfmots():
    tfmot = _compat.import_tfmot()
    schedule = derive(100)
    reference = tfmot.sparsity.keras.PolynomialDecay(
        0.0, 0.8, schedule.begin_step, schedule.end_step, frequency=schedule.frequency
    )
    for step in range(100):
        update, sparsity = reference(step)
        assert schedule.updates_at(step) == bool(update), step
        assert schedule.sparsity_at(step, 0.8) == pytest.approx(float(sparsity), abs=1e-6)
    assert schedule.updates_at(schedule.final_update_step(100))
    assert schedule.sparsity_at(schedule.end_step, 0.8) == pytest.approx(0.8)
    constant = derive(40, "constant")
    assert constant.sparsity_at(0, 0.5) == 0.5 and constant.updates_at(39 - 39 % constant.frequency)
