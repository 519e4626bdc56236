"""compress() on models with several inputs or outputs, and with regression heads.

Tiny models trained a few steps on data with a learnable rule: a classifier +
box model (both Keras flavours), a two-input classifier, an MLP regression and
an embedding-output model, each through every post-training mode and every
training recipe (1 epoch of 2 steps); labels as a list, a dict or (one output)
an array; the saved files loaded back in their own runtimes.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

import keras_squeeze as ks
from keras_squeeze.report.summary import output_table_text, stage_table_text, terminal_summary
from tests.conftest import FLAVOURS, assert_saved_files, keras

TRAINING = ["prune", "prune-2:4", "cluster", "qat", "prune-cluster-qat", "channel-prune"]
POST_TRAINING = ["dynamic", "float16", "int8", "int16x8"]
CLASSES, BOX = "classes", "box"
N = 64  # training samples: 2 steps of 32


def _images(n, seed):
    """8x8 images; the class is the brightest third of the columns, the box the mean
    brightness of each quadrant: rules a small CNN learns."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 8, 8, 1), dtype=np.float32)
    thirds = [x[:, :, a:b].mean((1, 2, 3)) for a, b in ((0, 3), (3, 5), (5, 8))]
    cls = np.stack(thirds, -1).argmax(-1)
    quadrants = [x[:, r : r + 4, c : c + 4].mean((1, 2, 3)) for r in (0, 4) for c in (0, 4)]
    box = np.stack(quadrants, -1)
    return x, cls.astype(np.int64), box.astype(np.float32)


def _fit(model, x, y):
    model.fit(x, y, epochs=3, batch_size=32, verbose=0)
    return model


def _two_output(flavour):
    k = keras(flavour)
    k.utils.set_random_seed(0)
    image = k.Input((8, 8, 1), name="image")
    h = k.layers.Conv2D(8, 3, activation="relu", name="conv")(image)
    h = k.layers.Flatten()(h)
    h = k.layers.Dense(16, activation="relu", name="fc")(h)
    model = k.Model(
        image, [k.layers.Dense(3, name=CLASSES)(h), k.layers.Dense(4, name=BOX)(h)], name="two"
    )
    model.compile("adam", loss=[k.losses.SparseCategoricalCrossentropy(from_logits=True), "mse"])
    x, cls, box = _images(256, 1)
    return _fit(model, x, [cls, box])


def _two_input():
    k = keras("keras3")
    k.utils.set_random_seed(0)
    image = k.Input((8, 8, 1), name="image")
    meta = k.Input((3,), name="meta")
    h = k.layers.Flatten()(k.layers.Conv2D(8, 3, activation="relu", name="conv")(image))
    h = k.layers.Concatenate()([h, k.layers.Dense(8, activation="relu", name="meta_fc")(meta)])
    h = k.layers.Dense(16, activation="relu", name="fc")(h)
    model = k.Model([image, meta], k.layers.Dense(3, name=CLASSES)(h), name="two_in")
    model.compile("adam", loss=k.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, cls, _ = _images(256, 1)
    return _fit(model, [x, _meta(x)], cls)


def _meta(x):
    return np.stack([x.mean((1, 2, 3)), x.std((1, 2, 3)), x.max((1, 2, 3))], -1)


def _regression_data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype(np.float32)
    y = (np.sin(x[:, 0]) + x[:, 1] * x[:, 2] - 0.5 * x[:, 3]).astype(np.float32)
    return x, y


def _mlp():
    k = keras("keras3")
    k.utils.set_random_seed(0)
    x_in = k.Input((8,), name="features")
    h = k.layers.Dense(32, activation="relu", name="hidden1")(x_in)
    h = k.layers.Dense(32, activation="relu", name="hidden2")(h)
    model = k.Model(x_in, k.layers.Dense(1, name="value")(h), name="mlp")
    model.compile("adam", loss="mse")
    x, y = _regression_data(512, 1)
    return _fit(model, x, y)


def _embedding_data(n, seed):
    """A 16-wide embedding of 8x8 images (a fixed random projection): targets, not classes."""
    x, _, _ = _images(n, seed)
    w = np.random.default_rng(7).normal(size=(64, 16)).astype(np.float32) / 8
    return x, np.tanh(x.reshape(n, 64) @ w).astype(np.float32)


def _embedder():
    k = keras("keras3")
    k.utils.set_random_seed(0)
    image = k.Input((8, 8, 1), name="image")
    h = k.layers.Flatten()(k.layers.Conv2D(8, 3, activation="relu", name="conv")(image))
    h = k.layers.Dense(32, activation="relu", name="fc")(h)
    model = k.Model(image, k.layers.Dense(16, name="embedding")(h), name="embedder")
    # A loss whose name says nothing: the float targets tell it is no classifier.
    model.compile("adam", loss=embedding_distance)
    x, e = _embedding_data(256, 1)
    return _fit(model, x, e)


def embedding_distance(y_true, y_pred):
    return tf.reduce_mean(tf.square(tf.cast(y_true, y_pred.dtype) - y_pred), axis=-1)


@pytest.fixture(scope="module")
def models():
    return {
        "two_output_keras3": _two_output("keras3"),
        "two_output_tf_keras": _two_output("tf_keras"),
        "two_input": _two_input(),
        "mlp": _mlp(),
        "embedder": _embedder(),
    }


def _case(name, labels_as):
    """(train_data, validation_data) of one model, labels in the form asked."""
    if name.startswith("two_output"):
        (x, c, b), (xv, cv, bv) = _images(N, 2), _images(32, 3)
        if labels_as == "dict":
            return (x, {BOX: b, CLASSES: c}), (xv, {CLASSES: cv, BOX: bv})
        return (x, [c, b]), (xv, (cv, bv))
    if name == "two_input":
        (x, c, _), (xv, cv, _) = _images(N, 2), _images(32, 3)
        if labels_as == "dict":
            return ({"image": x, "meta": _meta(x)}, c), ({"image": xv, "meta": _meta(xv)}, [cv])
        return ([x, _meta(x)], c), ([xv, _meta(xv)], cv)
    if name == "mlp":
        return _regression_data(N, 2), _regression_data(32, 3)
    return _embedding_data(N, 2), _embedding_data(32, 3)


TASKS = {
    "two_output_keras3": {CLASSES: "classification", BOX: "regression"},
    "two_output_tf_keras": {CLASSES: "classification", BOX: "regression"},
    "two_input": {CLASSES: "classification"},
    "mlp": {"value": "regression"},
    "embedder": {"embedding": "regression"},
}


def _check_report(report, name, trained: bool):
    tasks = TASKS[name]
    assert report.tasks == tasks
    fidelity = {o.name: o for o in report.fidelity.outputs}
    assert set(fidelity) == set(tasks)
    for out, task in tasks.items():
        # top-1 agreement for classification outputs only (not for a box or an embedding)
        assert (fidelity[out].top1_agreement is not None) == (task == "classification"), out
    classifiers = [o for o, t in tasks.items() if t == "classification"]
    regressions = [o for o, t in tasks.items() if t == "regression"]
    acc, reg = report.accuracy, report.regression
    assert (acc is not None) == bool(classifiers) and (reg is not None) == bool(regressions)
    if acc:
        assert 0 <= acc["compressed"] <= 1 and acc["samples"] == 32
    if reg:
        assert reg["compressed"] >= 0 and reg["mae"]["compressed"] >= 0
        assert reg["relative_mse"]["original"] < 1.0  # the trained model beats the mean
    if len(tasks) > 1:
        assert acc["output"] == CLASSES and set(acc["per_output"]) == {CLASSES}
        assert reg["output"] == BOX and set(reg["per_output"]) == {BOX}
    d = report.to_dict()
    assert d["tasks"] == tasks and d["regression"] == reg
    text = terminal_summary(report)
    if regressions:
        assert "MSE" in text and "MAE" in text
    if len(tasks) > 1:
        assert "accuracy (classes)" in text and "MSE (box)" in text
        table = output_table_text(report)
        assert "classification" in table and "regression" in table and " → " in table
        assert "## Per output" in report.to_markdown()
    if trained:
        for stage in report.stages:
            assert (stage["accuracy"] is not None) == bool(classifiers), stage["name"]
            assert (stage["mse"] is not None) == bool(regressions), stage["name"]
            if len(tasks) > 1:
                assert set(stage["per_output"]) == set(tasks)
        if regressions:
            assert "MSE" in stage_table_text(report)


def _tflite_outputs(content):
    runner = Interpreter(model_content=content).get_signature_runner()
    return runner.get_output_details()


@pytest.mark.parametrize("recipe", TRAINING)
@pytest.mark.parametrize("name", list(TASKS))
def test_every_training_recipe(models, name, recipe):
    model = models[name]
    labels_as = "dict" if TRAINING.index(recipe) % 2 else "list"
    train, validation = _case(name, labels_as)
    before = [np.array(w) for w in model.get_weights()]
    result = ks.compress(
        model, recipe, train_data=train, validation_data=validation, epochs=1, verbose=0
    )
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # the user's model is never changed
    _check_report(result.report, name, trained=True)
    assert len(_tflite_outputs(result.tflite)) == len(TASKS[name])
    assert result.report.training["labels"] == (
        {CLASSES: "class ids", BOX: "targets"}
        if name.startswith("two_output")
        else ("class ids" if name == "two_input" else "targets")
    )


@pytest.mark.parametrize("name", list(TASKS))
def test_every_post_training_mode(models, name):
    train, validation = _case(name, "list")
    for mode in POST_TRAINING:
        result = ks.compress(
            models[name],
            mode,
            representative_data=train[0],
            validation_data=validation,
            verbose=0,
        )
        _check_report(result.report, name, trained=False)
        assert result.report.fidelity.sqnr_db > 10, (name, mode)


def _interpreter_outputs(path, feeds):
    """Runs a .tflite file sample by sample with ai_edge_litert; outputs by name (dequantized)."""
    runner = Interpreter(model_path=str(path)).get_signature_runner()
    details_in, details_out = runner.get_input_details(), runner.get_output_details()
    outs = {n: [] for n in details_out}
    for i in range(len(next(iter(feeds.values())))):
        feed = {}
        for n, d in details_in.items():
            v = feeds[n][i : i + 1]
            s, z = d["quantization"]
            feed[n] = np.clip(np.round(v / s + z), -128, 127).astype(d["dtype"]) if s else v
        for n, v in runner(**feed).items():
            s, z = details_out[n]["quantization"]
            outs[n].append((v.astype(np.float32) - z) * s if s else v)
    return {n: np.concatenate(v) for n, v in outs.items()}


def test_two_outputs_saved_files_load_back(models, tmp_path):
    model = models["two_output_keras3"]
    (x, c, b), (xv, cv, bv) = _images(N, 2), _images(32, 3)
    result = ks.compress(
        model, "qat", train_data=(x, [c, b]), validation_data=(xv, [cv, bv]), epochs=1, verbose=0
    )
    out = result.save(tmp_path / "out")
    assert_saved_files(out, ["model.onnx", "model.tflite", "saved_model"], ("size", "mse"))
    ref_cls, ref_box = (np.asarray(o) for o in model(xv, training=False))
    tfl = _interpreter_outputs(out / "model.tflite", {"image": xv})
    assert len(tfl) == 2
    by_width = {v.shape[-1]: v for v in tfl.values()}
    assert (by_width[3].argmax(-1) == ref_cls.argmax(-1)).mean() >= 0.8
    assert np.abs(by_width[4] - ref_box).mean() < 0.1
    sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    assert len(sess.get_outputs()) == 2
    sig = tf.saved_model.load(str(out / "saved_model" / "1")).signatures["serving_default"]
    served = sig(image=tf.constant(xv))
    assert sorted(served) == [BOX, CLASSES]
    html = (out / "report.html").read_text()
    assert "Per output" in html and "regression" in html


def test_regression_saved_tflite_is_the_reported_error(models, tmp_path):
    model = models["mlp"]
    (x, _), (xv, yv) = _regression_data(N, 2), _regression_data(32, 3)
    result = ks.compress(model, "int8", representative_data=x, validation_data=(xv, yv), verbose=0)
    out = result.save(tmp_path / "out", formats=("tflite",))
    (pred,) = _interpreter_outputs(out / "model.tflite", {"features": xv}).values()
    mse = float(np.mean((pred.reshape(-1) - yv) ** 2))
    assert result.report.regression["compressed"] == pytest.approx(mse, rel=1e-4)
    assert result.report.accuracy is None


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_labels_from_a_dataset_and_a_generator(models, flavour):
    """tf.data with dict labels and a callable yielding (x, (classes, boxes)) batches."""
    model = models[f"two_output_{flavour}"]
    (x, c, b), (xv, cv, bv) = _images(N, 2), _images(32, 3)
    dataset = tf.data.Dataset.from_tensor_slices((x, {CLASSES: c, BOX: b})).batch(32)

    def batches():
        for i in range(0, N, 32):
            yield x[i : i + 32], (c[i : i + 32], b[i : i + 32])

    for train in (dataset, batches):
        result = ks.compress(
            model, "prune", train_data=train, validation_data=(xv, [cv, bv]), epochs=1, verbose=0
        )
        _check_report(result.report, f"two_output_{flavour}", trained=True)
