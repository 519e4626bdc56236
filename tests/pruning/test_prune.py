"""Pruning end to end with the real engine (tfmot) and converter, on tf_keras models."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import keras_squeeze as ks
from keras_squeeze.errors import DataError, RecipeError
from keras_squeeze.pruning.config import Prune
from keras_squeeze.report.tflite_reader import read_tflite
from tests.conftest import assert_weights_equal, warnings_besides_task_drop, weights_snapshot

N_TRAIN = 320  # 10 steps per epoch at batch 32


@pytest.fixture(scope="module")
def data(digits8):
    (x, y), (xt, yt) = digits8
    return (x[:N_TRAIN], y[:N_TRAIN]), (xt[:128], yt[:128])


@pytest.fixture(scope="module")
def pruned(trained_models, data):
    """The "prune" preset on the tf_keras example CNN, 2 epochs, distilled."""
    model = trained_models["tf_keras"]
    before = weights_snapshot(model)
    (x, y), (xt, yt) = data
    result = ks.compress(
        model, "prune", train_data=(x, y), validation_data=(xt, yt), epochs=2, verbose=0
    )
    return model, before, result


def test_prune_reaches_the_target_in_the_tflite(pruned):
    _, _, result = pruned
    rows = {r.name: r for r in result.report.layers}
    targeted = [r for r in rows.values() if r.targets.get("sparsity") is not None]
    assert {r.name for r in targeted} == {"conv2d_1", "conv2d_2", "dense", "logits"}
    for row in targeted:
        assert row.targets["sparsity"] == 0.8
        assert abs(row.sparsity - 0.8) < 0.01, row  # measured in the .tflite's int8 kernel
        assert row.quantized.startswith("int8")
    first = rows["conv2d"]
    assert "prune: first layer kept as it is" in first.reason and first.sparsity < 0.1
    assert not warnings_besides_task_drop(result.report)


def test_prune_never_changes_the_users_model(pruned):
    model, before, result = pruned
    assert_weights_equal(before, model)
    assert result.model is not model
    # The returned model is stripped: plain layers, sparse kernels.
    assert not any("prune_low_magnitude" in layer.name for layer in result.model.layers)
    kernel = result.model.get_layer("dense").get_weights()[0]
    assert abs((kernel == 0).mean() - 0.8) < 0.01


def test_prune_report_has_the_stage(pruned):
    _, _, result = pruned
    report = result.report.to_dict()
    (stage,) = report["stages"]
    assert stage["name"] == "prune" and stage["epochs"] == 2 and stage["steps"] == 20
    assert stage["layers"]["dense"] == {"setting": 0.8, "reason": None}
    assert "masks updated every" in stage["notes"][0]
    assert stage["tflite_gzip_bytes"] == report["compressed"]["tflite_gzip_bytes"]
    assert 0 <= stage["accuracy"] <= 1
    assert report["training"]["distill"]["temperature"] == 1.0
    assert report["training"]["distill"]["alpha"] == 0.5
    assert report["training"]["teacher"] == "original model"
    assert report["gzip_ratio"] < 0.2  # 80% zeros + int8 gzip far below float
    assert "## Training stages" in result.report.to_markdown()


def test_pruned_artifacts_save_and_run(pruned, tmp_path):
    _, _, result = pruned
    out = result.save(tmp_path / "p", formats=["tflite", "saved_model"])
    loaded = tf.saved_model.load(str(out / "saved_model" / "1")).signatures["serving_default"]
    (x,) = [np.zeros((2, 8, 8, 1), np.float32)]
    assert loaded(image=tf.constant(x))["logits"].shape == (2, 10)


def test_two_four_sparsity_pattern_holds_in_the_tflite(trained_models, data):
    (x, y), _ = data
    result = ks.compress(
        trained_models["tf_keras"],
        "prune-2:4",
        train_data=(x, y),
        epochs=1,
        distill=False,
        verbose=0,
    )
    rows = [r for r in result.report.layers if r.targets.get("m_by_n")]
    assert {r.name for r in rows} == {"conv2d_1", "conv2d_2", "dense", "logits"}
    for row in rows:
        assert row.targets["m_by_n"] == "2:4" and row.measured["m_by_n_blocks"] == 1.0
        assert row.sparsity >= 0.5


def test_per_layer_targets_skip_and_blocks(trained_models, data):
    (x, y), _ = data
    recipe = ks.Recipe(
        prune=Prune(layers={"dense": 0.9, "conv2d_1": 0.5}, skip=["logits"], block_size=(4, 1)),
        quantization="float32",
    )
    result = ks.compress(
        trained_models["tf_keras"], recipe, train_data=(x, y), epochs=2, distill=False, verbose=0
    )
    rows = {r.name: r for r in result.report.layers}
    assert abs(rows["dense"].sparsity - 0.9) < 0.01 and abs(rows["conv2d_1"].sparsity - 0.5) < 0.01
    assert rows["logits"].sparsity == 0 and "prune: in the skip list" in rows["logits"].reason
    kernel = result.model.get_layer("dense").get_weights()[0]  # (inputs, units)
    blocks = (kernel.reshape(-1, 4, kernel.shape[1]) == 0).all(axis=1)
    assert abs(blocks.mean() - 0.9) < 0.01  # zeros come in whole 4-input blocks


def test_bad_pruning_input(trained_models, data):
    (x, y), _ = data
    model = trained_models["tf_keras"]
    with pytest.raises(
        DataError, match=r"fine-tunes the model\. Expected train_data=.*Received: train_data=None"
    ):
        ks.compress(model, "prune", representative_data=x, verbose=0)
    with pytest.raises(DataError, match=r"one-shot generator"):
        ks.compress(
            model,
            "prune",
            train_data=((x[i : i + 32], y[i : i + 32]) for i in range(0, 320, 32)),
            verbose=0,
        )
    with pytest.raises(RecipeError, match=r"A skip entry names no layer.*Received: 'nope'"):
        ks.compress(model, ks.Recipe(prune=Prune(skip=["nope"])), train_data=(x, y), verbose=0)
    with pytest.raises(RecipeError, match=r"not a mask-update step"):
        ks.compress(
            model, ks.Recipe(prune=Prune(end_step=19, frequency=100)), train_data=(x, y), verbose=0
        )
    with pytest.raises(RecipeError, match=r"XNNPACK's sparse inference"):
        ks.compress(
            model,
            ks.Recipe(prune=Prune(xnnpack_sparse=True), quantization="float32"),
            train_data=(x, y),
            verbose=0,
        )


class _Scale(tf_keras.layers.Layer):
    """A custom layer with weights and no pruning support."""

    def build(self, shape):
        self.w = self.add_weight(
            name="kernel", shape=(shape[-1], shape[-1]), initializer="glorot_uniform"
        )

    def call(self, x):
        return tf.matmul(x, self.w)


class _PrunableScale(_Scale):
    """The same layer opting in to pruning."""

    def get_prunable_weights(self):
        return [self.w]


@pytest.mark.parametrize("layer_cls, pruned_custom", [(_Scale, False), (_PrunableScale, True)])
def test_custom_layers_are_left_alone_or_opt_in(layer_cls, pruned_custom, data):
    (x, y), _ = data
    inp = tf_keras.Input((8, 8, 1))
    h = tf_keras.layers.Flatten()(inp)
    h = tf_keras.layers.Dense(64, activation="relu", name="hidden")(h)
    h = layer_cls(name="custom")(h)
    model = tf_keras.Model(inp, tf_keras.layers.Dense(10, name="out")(h))
    recipe = ks.Recipe(prune=Prune(keep_first_layer=False), quantization="float32")
    result = ks.compress(model, recipe, train_data=(x, y), epochs=1, distill=False, verbose=0)
    (stage,) = result.report.stages
    decision = stage["layers"]["custom"]
    if pruned_custom:
        assert decision["setting"] == 0.8
        assert abs((result.model.get_layer("custom").get_weights()[0] == 0).mean() - 0.8) < 0.01
    else:
        assert (
            decision["setting"] is None
            and "not supported by the pruning engine" in decision["reason"]
        )
        assert stage["layers"]["hidden"]["setting"] == 0.8  # the rest was still pruned
        with pytest.raises(
            RecipeError, match=r"'custom' \(_Scale\) was named for pruning but cannot take it"
        ):
            ks.compress(
                model, ks.Recipe(prune=Prune(layers={"custom": 0.5})), train_data=(x, y), verbose=0
            )


def _mobilenet_like():
    """The smallest model tfmot's XNNPACK policy accepts."""
    k = tf_keras.layers
    inp = tf_keras.Input((16, 16, 3))
    h = k.ZeroPadding2D(((1, 1), (1, 1)))(inp)
    h = k.Conv2D(8, 3, strides=2, padding="valid")(h)
    h = k.ReLU()(h)
    h = k.DepthwiseConv2D(3, padding="same", name="depthwise")(h)
    h = k.Conv2D(32, 1, name="pointwise_1")(h)
    h = k.ReLU()(h)
    h = k.Conv2D(32, 1, name="pointwise_2")(h)
    h = k.GlobalAveragePooling2D(keepdims=True)(h)
    h = k.Flatten()(h)
    return tf_keras.Model(inp, k.Dense(10, name="dense")(h))


def test_xnnpack_sparse_prunes_1x1_convs_and_stores_them_sparse():
    model = _mobilenet_like()
    rng = np.random.default_rng(0)
    x, y = rng.random((64, 16, 16, 3), dtype=np.float32), rng.integers(0, 10, 64)
    recipe = ks.Recipe(
        prune=Prune(xnnpack_sparse=True, keep_first_layer=False, min_weights=0),
        quantization="float32",
    )
    result = ks.compress(model, recipe, train_data=(x, y), epochs=2, distill=False, verbose=0)
    (stage,) = result.report.stages
    chosen = {n for n, d in stage["layers"].items() if d["setting"] is not None}
    assert chosen == {"pointwise_1", "pointwise_2"}
    assert (
        "XNNPACK sparse inference runs only 1x1 convolutions" in stage["layers"]["dense"]["reason"]
    )
    sparse = [t for t in read_tflite(result.tflite).tensors if t.sparse]
    assert len(sparse) == 2  # the two pruned 1x1 kernels are stored sparse
    rows = {r.name: r for r in result.report.layers}
    assert abs(rows["pointwise_1"].sparsity - 0.8) < 0.01  # read back through the sparse format


def test_depthwise_kernels_are_left_dense_with_the_engines_reason():
    """tfmot wraps DepthwiseConv2D but masks none of its weights: planning it as pruned
    would report a target the .tflite never shows."""
    model = _mobilenet_like()
    rng = np.random.default_rng(0)
    x, y = rng.random((64, 16, 16, 3), dtype=np.float32), rng.integers(0, 10, 64)
    recipe = ks.Recipe(prune=Prune(min_weights=0, keep_first_layer=False), quantization="float32")
    result = ks.compress(model, recipe, train_data=(x, y), epochs=2, distill=False, verbose=0)
    (stage,) = result.report.stages
    depthwise = stage["layers"]["depthwise"]
    assert depthwise["setting"] is None
    assert "prunes no weights of DepthwiseConv2D" in depthwise["reason"]
    assert stage["layers"]["pointwise_1"]["setting"] == 0.8
    assert not warnings_besides_task_drop(result.report)  # no target the .tflite falls short of


@pytest.mark.parametrize("engine", ["tfmot", "native"])
def test_a_kernel_too_small_for_blocks_is_pruned_per_weight_with_a_note(engine):
    """Was: the 'prune' preset's 4x1 blocks on a one-unit Dense kernel raised tfmot's
    ValueError "factorized_pool() accepts tensors of rank 2 only" midway through training."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8,))
    hidden = keras.layers.Dense(1100, activation="relu", name="wide")(inputs)  # first: dense
    outputs = keras.layers.Dense(1, name="head")(hidden)  # a 1100x1 kernel
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(0).normal(size=(16, 8)).astype(np.float32)
    recipe = ks.Recipe(prune=Prune(block_size=(4, 1), engine=engine), quantization="float32")
    result = ks.compress(model, recipe, train_data=x, epochs=1, batch_size=8, verbose=0)
    (stage,) = result.report.stages
    assert (
        "layer 'head' pruned per weight, not in 4x1 blocks: its 1100x1 kernel holds a single "
        "block along an axis (blocks need two or more along each)"
    ) in stage["notes"]
    assert stage["layers"]["head"]["setting"] == 0.8
    rows = {r.name: r for r in result.report.layers}
    assert abs(rows["head"].sparsity - 0.8) < 0.01  # measured in the .tflite


def test_keras3_model_is_pruned_through_the_bridge_and_comes_back_keras3(trained_models, data):
    import keras

    model = trained_models["keras3"]
    before, config = weights_snapshot(model), model.get_config()
    (x, y), (xt, yt) = data
    result = ks.compress(
        model, "prune", train_data=(x, y), validation_data=(xt, yt), epochs=2, verbose=0
    )
    assert_weights_equal(before, model)
    assert model.get_config() == config
    assert isinstance(result.model, keras.Model)  # the flavour the user passed in
    assert [la.name for la in result.model.layers] == [la.name for la in model.layers]
    # the hidden Dense by its prefix: Keras numbers unnamed layers across a session ("dense_10")
    (hidden,) = [la for la in result.model.layers if la.name.startswith("dense")]
    kernel = hidden.get_weights()[0]
    assert abs((kernel == 0).mean() - 0.8) < 0.01
    bridges = result.report.training["bridge"]
    assert [b["direction"] for b in bridges] == ["keras3->tf_keras", "tf_keras->keras3"]
    assert all(b["agreement"]["relative"] <= 1e-5 for b in bridges)
    rows = {r.name: r for r in result.report.layers}
    assert abs(rows[hidden.name].sparsity - 0.8) < 0.01


def test_subclassed_model_prunes_natively_refuses_qat_and_quantizes(digits8):
    import keras

    class Tiny(keras.Model):
        def __init__(self):
            super().__init__()
            self.flat = keras.layers.Flatten()
            self.out = keras.layers.Dense(10)

        def call(self, x):
            return self.out(self.flat(x))

    (x, y), _ = digits8
    model = Tiny()
    model(x[:2])
    with pytest.raises(ks.RecipeError, match=r"(?i)subclassed.*post-training 'int8'"):
        ks.compress(model, "qat", train_data=(x, y), verbose=0)
    recipe = ks.Recipe(prune=ks.Prune(keep_first_layer=False, min_weights=0))
    pruned = ks.compress(model, recipe, train_data=(x[:128], y[:128]), epochs=1, verbose=0)
    assert pruned.report.stages[0]["settings"]["engine"] == "native"
    assert abs(pruned.report.layers[-1].sparsity - 0.8) < 0.01
    result = ks.compress(model, "int8", representative_data=x, verbose=0)
    assert result.report.fidelity.top1_agreement >= 0.9
