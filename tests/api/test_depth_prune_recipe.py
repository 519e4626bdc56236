"""The "depth-prune" recipe inside compress(): alone, chained with channel pruning, bad input."""

from __future__ import annotations

import numpy as np
import pytest

import keras_squeeze as ks
from keras_squeeze import _compat
from keras_squeeze.errors import DataError, KerasSqueezeError
from tests.conftest import assert_weights_equal, keras, weights_snapshot
from tests.depth_pruning.builders import randomize_bn, residual_cnn


@pytest.fixture(scope="module")
def digits():
    (x, y), (xt, yt) = ks.data.load_digits(8)
    return (x[:192], y[:192]), (xt[:64], yt[:64])


def test_depth_prune_recipe_end_to_end(flavour, digits, tmp_path):
    (x, y), (xt, yt) = digits
    model = randomize_bn(residual_cnn(flavour))
    before, config = weights_snapshot(model), model.get_config()
    result = ks.compress(
        model, "depth-prune", train_data=(x, y), validation_data=(xt, yt), epochs=1, verbose=0
    )
    assert_weights_equal(before, model)
    assert model.get_config() == config
    assert _compat.keras_flavour(result.model) == flavour
    report = result.report
    (stage,) = report.stages
    assert stage["name"] == "block_removal"
    details = stage["details"]
    assert details["flops_ratio"] <= 0.7 and details["depth_after"] < details["depth_before"]
    removed = set(details["removed"])
    assert "drop" in removed and len(removed) >= 2
    assert any(note.startswith("removed residual") for note in stage["notes"])
    # kept while the run's loop fine-tuned, re-estimated on the run's training data, folded
    assert any(
        "BatchNormalization layer(s) re-estimated on 192 samples from train_data" in note
        for note in stage["notes"]
    ), stage["notes"]
    rows = {r.name: r for r in report.layers}
    assert not removed & set(rows)  # the removed layers are gone from the model
    kept = [u for u in details["units"] if u["kind"] == "residual" and not u["removed"]]
    first = kept[0]["layers"][0]
    assert rows[first].targets == {"folded": first.replace("conv", "bn")}
    assert f"residual unit '{kept[0]['name']}' kept (importance" in rows[first].reason
    assert "chain unit 'stem' cannot be removed: it changes the shape" in rows["stem"].reason
    assert report.compressed.params < report.original.params
    assert report.fidelity.inputs and report.accuracy["compressed"] is not None
    result.save(tmp_path / "out")
    assert "folded target" in (tmp_path / "out" / "report.md").read_text()


def test_depth_prune_then_channel_prune(digits):
    (x, y), _ = digits
    recipe = ks.Recipe(
        block_removal=ks.BlockRemoval(target=0.6, metric="blocks", importance_samples=16),
        channel_prune=ks.ChannelPruning(target=0.7, round_to=4),
        quantization="float32",
    )
    result = ks.compress(
        randomize_bn(residual_cnn("keras3")), recipe, train_data=(x, y), epochs=1, verbose=0
    )
    assert [s["name"] for s in result.report.stages] == ["block_removal", "channel_prune"]
    import keras as keras3

    assert isinstance(result.model, keras3.Model)
    rows = {r.name: r for r in result.report.layers}
    narrowed = [r for r in rows.values() if "channels" in r.targets]
    assert narrowed and any("folded" in r.targets for r in narrowed)


def test_unlabelled_training_data(digits):
    (x, _), _ = digits
    model = residual_cnn("tf_keras", blocks=1)
    with pytest.raises(
        DataError,
        match=r"The 'bypass-loss' block removal criterion compares the task loss, which needs "
        r"labels\. .*criterion='output-distance'.* Received: train_data without labels",
    ):
        ks.compress(model, "depth-prune", train_data=x, epochs=1, verbose=0)
    recipe = ks.Recipe(
        block_removal=ks.BlockRemoval(criterion="output-distance", importance_samples=16),
        quantization="float32",
    )
    result = ks.compress(model, recipe, train_data=x, epochs=1, verbose=0)  # distilled
    stage = result.report.stages[0]
    assert stage["details"]["removed"]
    assert any("re-estimated on" in note for note in stage["notes"]), stage["notes"]


def test_a_subclassed_model_is_refused_before_anything_is_written(tmp_path):
    k = keras("keras3")

    class Net(k.Model):
        def __init__(self):
            super().__init__()
            self.dense = k.layers.Dense(4)

        def call(self, x):
            return x + self.dense(x)

    net = Net()
    x = np.zeros((8, 4), np.float32)
    net(x)
    with pytest.raises(KerasSqueezeError, match="needs the model's layer graph"):
        ks.compress(net, "depth-prune", train_data=(x, np.zeros(8, int)), verbose=0)
    assert list(tmp_path.iterdir()) == []
