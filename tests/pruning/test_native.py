"""The native pruning engine: subclassed models (chosen for them) and functional ones
(engine="native"), with the tfmot engine's plan, schedule, report rows and .tflite check."""

from __future__ import annotations

import numpy as np
import pytest

import keras_squeeze as ks
from keras_squeeze.errors import ModelError, RecipeError
from keras_squeeze.layer_plan import plan
from keras_squeeze.pruning import apply as prune_apply
from keras_squeeze.pruning import native
from tests import subclassed
from tests.conftest import assert_weights_equal, warnings_besides_task_drop, weights_snapshot

N = subclassed.SAMPLES


@pytest.fixture(scope="module")
def cnn(digits8):
    (x, y), _ = digits8
    return subclassed.trained(subclassed.cnn("keras3"), (x, y))


@pytest.fixture(scope="module")
def pruned(cnn, digits8):
    (x, y), (xt, yt) = digits8
    before = weights_snapshot(cnn)
    result = ks.compress(
        cnn, "prune", train_data=(x[:N], y[:N]), validation_data=(xt, yt), epochs=1, verbose=0
    )
    assert_weights_equal(before, cnn)  # the user's model is never changed
    return result


def test_a_subclassed_model_is_pruned_natively(cnn, pruned):
    report = pruned.report
    (stage,) = report.stages
    assert stage["settings"]["engine"] == "native"
    assert native.ENGINE_NOTE in stage["notes"]
    assert stage["notes"][0].startswith("polynomial schedule over 16 steps")
    model = pruned.model
    assert type(model) is type(cnn) and model is not cnn
    assert [la.name for la in model.layers] == [la.name for la in cnn.layers]
    rows = {row.name: row for row in report.layers}
    chosen = [n for n, d in stage["layers"].items() if d["setting"] is not None]
    assert chosen == [cnn.conv.name, cnn.hidden.name]
    for name in chosen:
        assert rows[name].targets == {"sparsity": 0.8}
        assert abs(rows[name].sparsity - 0.8) < 0.01  # measured in the .tflite
    assert "first layer kept as it is" in rows[cnn.stem.name].reason
    assert "under 1,024 weights" in rows[cnn.logits.name].reason
    assert not warnings_besides_task_drop(report)
    accuracy = report.accuracy  # 80% of the weights gone after 16 steps: a few points
    assert accuracy["compressed"] > accuracy["original"] - 0.06, accuracy
    zeros = (model.hidden.get_weights()[0] == 0).reshape(-1, 4, 64)  # the preset's 4-input blocks
    assert (zeros.all(axis=1) | ~zeros.any(axis=1)).mean() > 0.999


def test_m_by_n_on_a_model_with_dict_inputs(digits8):
    (x, y), _ = digits8
    model = subclassed.trained(subclassed.dict_input_classifier(), (subclassed.with_meta(x), y), 1)
    data = (subclassed.with_meta(x[:256]), y[:256])
    result = ks.compress(model, "prune-2:4", train_data=data, epochs=1, verbose=0)
    rows = {row.name: row for row in result.report.layers}
    hidden = rows[model.hidden.name]
    assert hidden.targets == {"sparsity": 0.5, "m_by_n": "2:4"}
    assert hidden.measured["m_by_n_blocks"] == 1.0
    assert "input signature from train_data: image (None, 8, 8, 1) float32, meta (None, 5)" in (
        " ".join(result.report.notes)
    )
    assert not warnings_besides_task_drop(result.report)


def test_the_native_plan_is_the_tfmot_engines(trained_models):
    """The same layers, weights, support and reasons as the tfmot engine on the same model."""
    model = trained_models["tf_keras"]
    for config in (ks.Prune(), ks.Prune(m_by_n=(2, 4)), ks.Prune(layers={"logits": 0.5})):
        ours = native.layer_infos(model, config)
        theirs = prune_apply.layer_infos(model, config)
        assert [(i.name, i.type, i.weights, i.supported, i.first) for i in ours] == [
            (i.name, i.type, i.weights, i.supported, i.first) for i in theirs
        ]
        decide = dict(technique="pruning", per_layer=config.layers, keep_first_layer=True)
        assert {n: d.setting for n, d in plan(ours, 0.8, **decide, min_weights=1024).items()} == {
            n: d.setting for n, d in plan(theirs, 0.8, **decide, min_weights=1024).items()
        }


def test_engine_settings():
    config = ks.Prune(engine="native")
    assert ks.Prune.from_config(config.get_config()) == config
    assert ks.Prune().engine == ks.Cluster().engine == "auto"
    recipe = ks.Recipe(prune=config, cluster=ks.Cluster(engine="tfmot"))
    assert ks.Recipe.from_config(recipe.get_config()) == recipe
    for cls in (ks.Prune, ks.Cluster):
        with pytest.raises(RecipeError, match=r"engine chooses how the stage runs\. Expected one "):
            cls(engine="jax")


def test_what_needs_a_layer_graph_is_refused_before_training(cnn, digits8):
    (x, y), _ = digits8
    data = (x[:64], y[:64])
    with pytest.raises(RecipeError, match=r"The tfmot pruning engine wraps the layers of a layer"):
        ks.compress(cnn, ks.Recipe(prune=ks.Prune(engine="tfmot")), train_data=data, verbose=0)
    with pytest.raises(RecipeError, match=r"The tfmot clustering engine wraps the layers"):
        ks.compress(cnn, ks.Recipe(cluster=ks.Cluster(engine="tfmot")), train_data=data, verbose=0)
    sparse = ks.Recipe(prune=ks.Prune(xnnpack_sparse=True), quantization="float32")
    with pytest.raises(RecipeError, match=r"xnnpack_sparse prunes by tfmot's XNNPACK latency"):
        ks.compress(cnn, sparse, train_data=data, verbose=0)
    with pytest.raises(ModelError, match=r"Channel pruning needs the model's layer graph"):
        ks.compress(cnn, "channel-prune", train_data=data, verbose=0)
    # QAT after a native stage: refused before the pruning stage trains.
    both = ks.Recipe(prune=ks.Prune(), qat=ks.QAT())
    with pytest.raises(RecipeError, match=r"Quantization-aware training cannot run on a subclass"):
        ks.compress(cnn, both, train_data=data, verbose=0)


def test_duplicate_layer_names_are_refused(digits8):
    from tests.conftest import keras

    k = keras("keras3")

    class Twins(k.Model):
        def __init__(self):
            super().__init__()
            self.a = k.layers.Dense(40, name="twin")
            self.b = k.layers.Dense(10, name="twin")

        def call(self, x):
            return self.b(self.a(x))

    model = Twins()
    model(np.zeros((1, 64), np.float32))
    with pytest.raises(RecipeError, match=r"Two layers of the model are named 'twin'"):
        native.layer_infos(model, ks.Prune())


def test_a_registered_tfmot_stage_needs_a_layer_graph(cnn, digits8):
    import dataclasses

    from keras_squeeze.stages import TF_KERAS

    @dataclasses.dataclass(frozen=True)
    class NoopConfig:
        def get_config(self) -> dict:
            return {}

        @classmethod
        def from_config(cls, config):
            return cls()

    class Noop(ks.Stage):
        name, title, config_class, order, engine = "noop", "no-op", NoopConfig, 97, TF_KERAS

    (x, y), _ = digits8
    ks.register_stage(Noop())
    try:
        with pytest.raises(
            ModelError, match=r"The no-op stage \(through tfmot\) needs the model's layer graph"
        ):
            recipe = ks.Recipe(stages={"noop": NoopConfig()})
            ks.compress(cnn, recipe, train_data=(x[:64], y[:64]), verbose=0)
    finally:
        ks.unregister_stage("noop")
