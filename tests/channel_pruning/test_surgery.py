"""Surgery: removing channels that do not matter leaves the outputs unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from keras_squeeze import _compat
from keras_squeeze.channel_pruning import (
    ChannelPruning,
    analyze,
    count_flops,
    graph_view,
    importance,
    prune_channels,
    scoring,
    selection,
    surgery,
)
from keras_squeeze.channel_pruning import flops as flops_module
from keras_squeeze.errors import ModelError
from tests.channel_pruning.builders import (
    exact_cnn,
    extras,
    integer_images,
    zero_removed_inputs,
    zoo,
)
from tests.conftest import keras

ZEROED = np.arange(0, 16, 2)  # channels made exactly zero in the exact CNN's 16-channel groups


def _zero_channels(model, channels):
    """Zeroes filters, BN gamma/beta, depthwise kernels and biases of `channels`.

    Group c1 + c2 (tied by the residual Add), group b and group c3 then output
    exactly 0 on those channels after their activation.
    """
    for name in ("c1", "bn1", "dw", "c2", "b", "c3"):
        layer = model.get_layer(name)
        weights = layer.get_weights()
        for i, w in enumerate(weights):
            if name == "dw" and w.ndim == 4:
                w[..., channels, :] = 0.0
            elif name == "bn1" and i >= 2:
                continue  # moving mean and variance stay; gamma = beta = 0 zeroes the output
            elif name == "bn1" and i == 0:
                w[w == 0] = 0.5  # only the zeroed channels have gamma 0 (for "bn_scale")
                w[..., channels] = 0.0
            else:
                w[..., channels] = 0.0
        layer.set_weights(weights)
    return model


@pytest.mark.parametrize("criterion", ["l1", "l2", "bn_scale", "taylor"])
def test_pruning_zero_channels_gives_bit_identical_outputs(flavour, criterion):
    model = _zero_channels(exact_cnn(flavour), ZEROED)
    x = integer_images(32)
    expected = np.asarray(model(x, training=False))
    settings = ChannelPruning(target={"c1": 0.5, "b": 0.5, "c3": 0.5}, criterion=criterion)
    labels = np.random.default_rng(0).integers(0, 4, 64)
    result = prune_channels(
        model,
        settings,
        importance_data=(integer_images(64, seed=1), labels),
        loss=keras(flavour).losses.SparseCategoricalCrossentropy(from_logits=True),
        verbose=0,
    )
    assert result.kept == {"c1": 8, "c2": 8, "b": 8, "c3": 8}
    np.testing.assert_array_equal(np.asarray(result.model(x, training=False)), expected)
    kept = np.setdiff1d(np.arange(16), ZEROED)
    # exactly the non-zero filters were kept (c1 reads the unpruned image)
    np.testing.assert_array_equal(
        result.model.get_layer("c1").get_weights()[0],
        model.get_layer("c1").get_weights()[0][..., kept],
    )
    # Flatten -> Dense: every kept channel keeps its 4x4 rows, in NHWC order
    fc_rows = model.get_layer("fc").get_weights()[0].reshape(16, 16, 16)[:, kept]
    np.testing.assert_array_equal(
        result.model.get_layer("fc").get_weights()[0], fc_rows.reshape(-1, 16)
    )


def _pruned_and_reference(model, ratio, criterion="l1"):
    """Prunes `model` by `ratio` per group, and returns a copy with the removed inputs zeroed."""
    analysis = analyze(graph_view(model))
    groups = analysis.prunable
    sizes = np.array([g.size for g in groups])
    keep = selection.ratio_keep(sizes, np.full(len(sizes), ratio), 8)
    scores, _ = scoring.group_scores(analysis, groups, criterion)
    kept = {
        g.id: importance.top_components(scores[g.id], int(n))
        for g, n in zip(groups, keep, strict=True)
    }
    plans = surgery.plan_layers(analysis, analysis.kept_elements(kept))
    pruned = surgery.rebuild(model, analysis, plans)
    k = _compat.keras_module(_compat.keras_flavour(model))
    reference = k.models.clone_model(model)
    reference.set_weights(model.get_weights())
    return pruned, zero_removed_inputs(reference, analysis, plans), analysis, keep


@pytest.mark.parametrize("build", [zoo, extras], ids=["zoo", "extras"])
def test_pruned_model_equals_the_original_ignoring_removed_channels(flavour, build):
    model = build(flavour)
    pruned, reference, _, _ = _pruned_and_reference(model, 0.5)
    assert type(pruned).__module__.split(".")[0] == type(model).__module__.split(".")[0]
    x = np.random.default_rng(0).normal(size=(8, *model.inputs[0].shape[1:])).astype(np.float32)
    want = np.asarray(reference(x, training=False))
    got = np.asarray(pruned(x, training=False))
    # float32 sums over fewer channels may round differently: equal to 1e-5 of the scale
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    assert np.abs(want - np.asarray(model(x, training=False))).max() > 1e-3  # channels mattered


def test_counts_match_the_cost_model_before_and_after(flavour):
    model = zoo(flavour)
    pruned, _, analysis, keep = _pruned_and_reference(model, 0.5)
    sizes = np.array([g.size for g in analysis.prunable])
    before, after = count_flops(model), count_flops(pruned)
    for metric, b, a in (
        ("flops", before.macs, after.macs),
        ("params", before.params, after.params),
    ):
        cost = flops_module.cost_model(analysis, analysis.prunable, metric)
        assert cost(sizes) == b and cost(keep) == a
    assert before.params == model.count_params() and after.params == pruned.count_params()
    assert after.macs < 0.5 * before.macs


def test_count_flops_by_hand(flavour):
    k = keras(flavour)
    L = k.layers
    inputs = k.Input((8, 8, 3))
    x = L.Conv2D(4, 3, strides=2, padding="same")(inputs)  # 4*4 * 9*3*4 = 1728
    x = L.BatchNormalization()(x)  # 0 MACs, 16 params
    x = L.DepthwiseConv2D(3, padding="same")(x)  # 4*4 * 9*4 = 576
    x = L.SeparableConv2D(6, 1)(x)  # 4*4*1*4 + 4*4*4*6 = 448
    x = L.Conv2DTranspose(2, 2, strides=2)(x)  # 4*4 (input) * 4*6*2 = 768
    x = L.Dense(3)(x)  # 8*8 positions * 2*3 = 384
    x = L.Flatten()(x)
    outputs = L.Dense(5)(x)  # 192 * 5 = 960
    count = count_flops(k.Model(inputs, outputs))
    assert count.macs == 1728 + 576 + 448 + 768 + 384 + 960
    assert count.flops == 2 * count.macs
    assert count.params == k.Model(inputs, outputs).count_params()
    assert [r.macs for r in count.layers if r.type == "BatchNormalization"] == [0]


def test_dynamic_input_size_prunes_by_params_only(flavour):
    k = keras(flavour)
    inputs = k.Input((None, None, 3))
    x = k.layers.Conv2D(16, 3, activation="relu", name="conv")(inputs)
    x = k.layers.GlobalAveragePooling2D()(x)
    model = k.Model(inputs, k.layers.Dense(4, name="out")(x))
    with pytest.raises(
        ModelError, match=r"Counting FLOPs needs static tensor shapes.*metric='params'"
    ):
        count_flops(model)
    with pytest.raises(ModelError, match=r"Counting FLOPs needs static tensor shapes"):
        prune_channels(model, ChannelPruning(target=0.5), verbose=0)
    with pytest.warns(UserWarning, match=r"target 0\.5 of the params cannot be reached.* 0\.504"):
        result = prune_channels(model, ChannelPruning(target=0.5, metric="params"), verbose=0)
    assert result.kept == {"conv": 8}  # 16 -> 8 is as far as the multiple of 8 allows
    assert result.report.macs_before is None and result.report.params_ratio < 0.6
    result = prune_channels(model, ChannelPruning(target={"conv": 0.5}), verbose=0)
    assert result.kept == {"conv": 8} and result.report.flops_ratio is None
    assert "MACs unknown (no static input size)" in result.report.summary()
