"""compress() on models with several inputs or outputs, and with regression heads.

Tiny models trained on data with a learnable rule: a classifier + box model and
an MLP regression through "float32", "int8", "prune", "qat", "cluster" and
"channel-prune" (training recipes distil from the original model by default;
1 epoch of 2 steps), the .tflite run back in ai_edge_litert and checked output
by output against the report; the classifier + box model as tf_keras, a
two-input classifier and an embedding-output model once each; labels as a
list, a dict or (one output) an array, from arrays, tf.data and generators;
the saved files loaded back in their own runtimes.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

import keras_squeeze as ks
from keras_squeeze.core.models import output_names
from keras_squeeze.report import metrics
from keras_squeeze.report.summary import output_table_text, stage_table_text, terminal_summary
from tests.conftest import assert_saved_files, keras

TRAINING = ["prune", "qat", "cluster", "channel-prune"]
RECIPES = ["float32", "int8", *TRAINING]
CLASSES, BOX = "classes", "box"
N = 64  # training samples: 2 steps of 32


def _images(n, seed):
    """8x8 images; the class is the bright band of columns (one of three), the box the
    mean brightness of each quadrant (scaled): rules a small CNN learns."""
    rng = np.random.default_rng(seed)
    cls = rng.integers(0, 3, n)
    x = 0.5 * rng.random((n, 8, 8, 1), dtype=np.float32)
    for c, (a, b) in enumerate(((0, 3), (3, 5), (5, 8))):
        x[cls == c, :, a:b] += 0.5
    quadrants = [x[:, r : r + 4, c : c + 4].mean((1, 2, 3)) for r in (0, 4) for c in (0, 4)]
    box = 5 * (np.stack(quadrants, -1) - 0.5)
    return x, cls.astype(np.int64), box.astype(np.float32)


def _fit(model, x, y):
    model.fit(x, y, epochs=10, batch_size=32, verbose=0)
    model.optimizer.learning_rate = 1e-3  # trained fast; fine-tuned at a usual rate
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
    model.compile(
        k.optimizers.Adam(0.01),
        loss=[k.losses.SparseCategoricalCrossentropy(from_logits=True), "mse"],
    )
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
    model.compile(
        k.optimizers.Adam(0.01), loss=k.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
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
    model.compile(k.optimizers.Adam(0.01), loss="mse")
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
    model.compile(k.optimizers.Adam(0.01), loss=embedding_distance)
    x, e = _embedding_data(256, 1)
    return _fit(model, x, e)


def embedding_distance(y_true, y_pred):
    return tf.reduce_mean(tf.square(tf.cast(y_true, y_pred.dtype) - y_pred), axis=-1)


@pytest.fixture(scope="module")
def models():
    return {
        "two_output": _two_output("keras3"),
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
    "two_output": {CLASSES: "classification", BOX: "regression"},
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
        assert acc["original"] > 0.6  # the trained model learnt the rule
    if reg:
        assert reg["compressed"] >= 0 and reg["mae"]["compressed"] >= 0
        assert reg["relative_mse"]["original"] < 0.8  # the trained model beats the mean
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


def _run_tflite(content, feeds):
    """Runs a .tflite sample by sample in ai_edge_litert; its outputs, dequantized, in
    signature order."""
    runner = Interpreter(model_content=bytes(content)).get_signature_runner()
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
    return [np.concatenate(v) for v in outs.values()]


def _keras_outputs(model, x) -> dict:
    out = model(x, training=False)
    out = out if isinstance(out, (list, tuple)) else [out]
    return dict(zip(output_names(model), (np.asarray(o) for o in out), strict=True))


def _by_width(tflite_outputs, reference: dict) -> dict:
    """The .tflite's outputs under the Keras output names (matched by width)."""
    widths = {v.shape[-1]: n for n, v in reference.items()}
    assert len(widths) == len(reference) == len(tflite_outputs)
    return {
        widths[v.shape[-1]]: v.reshape(reference[widths[v.shape[-1]]].shape) for v in tflite_outputs
    }


def _check_run_back(result, original, name, validation):
    """The .tflite run back: each output's fidelity and task metric are the report's, and
    each output reproduces the compressed Keras model."""
    xv, yv = validation
    report = result.report
    assert "validation_data" in report.fidelity.inputs
    feed = {"image" if name == "two_output" else "features": xv}
    reference = _keras_outputs(original, xv)
    tfl = _by_width(_run_tflite(result.tflite, feed), reference)
    own = dict(zip(reference, _keras_outputs(result.model, xv).values(), strict=True))
    reported = {o.name: o for o in report.fidelity.outputs}
    for out, ref in reference.items():
        sqnr = metrics.sqnr_db(ref, tfl[out])
        if reported[out].sqnr_db > 60:
            assert sqnr > 60, out
        else:
            assert sqnr == pytest.approx(reported[out].sqnr_db, abs=0.5), out
        # the .tflite reproduces its own Keras model, output by output
        assert metrics.sqnr_db(own[out], tfl[out]) > 12, (out, report.recipe)
    if name == "two_output":
        cv, bv = (yv[CLASSES], yv[BOX]) if isinstance(yv, dict) else yv
        agreement = metrics.top1_agreement(reference[CLASSES], tfl[CLASSES])
        assert agreement == pytest.approx(reported[CLASSES].top1_agreement, abs=1.01 / 32)
        acc = metrics.accuracy(tfl[CLASSES], cv)
        assert acc == pytest.approx(report.accuracy["compressed"], abs=1.01 / 32)
        target = bv
    else:
        target = yv
    (reg_out,) = [o for o, t in TASKS[name].items() if t == "regression"]
    mse = float(np.mean((tfl[reg_out].reshape(-1) - np.reshape(target, -1)) ** 2))
    assert report.regression["compressed"] == pytest.approx(mse, rel=1e-3, abs=1e-6)


@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize("name", ["two_output", "mlp"])
def test_recipes_output_by_output(models, name, recipe):
    model = models[name]
    labels_as = "dict" if RECIPES.index(recipe) % 2 else "list"
    train, validation = _case(name, labels_as)
    before = [np.array(w) for w in model.get_weights()]
    if recipe in TRAINING:
        data = {"train_data": train, "epochs": 1}
    elif recipe == "int8":
        data = {"representative_data": train[0]}
    else:
        data = {}
    result = ks.compress(model, recipe, validation_data=validation, verbose=0, **data)
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # the user's model is never changed
    trained = recipe in TRAINING
    _check_report(result.report, name, trained=trained)
    _check_run_back(result, model, name, validation)
    if trained:
        training = result.report.training
        # distillation is on by default: per output, from the original model
        assert training["distill"] is not None and training["teacher"] == "original model"
        assert training["labels"] == (
            {CLASSES: "class ids", BOX: "targets"} if name == "two_output" else "targets"
        )
    else:
        assert result.report.stages == []


def test_the_default_recipe(models):
    """compress(model, train_data=...) with no recipe: the default ("int8") calibrates on
    train_data and measures each output on validation_data."""
    train, validation = _case("two_output", "list")
    result = ks.compress(
        models["two_output"], train_data=train, validation_data=validation, verbose=0
    )
    assert result.report.recipe == "int8"
    _check_report(result.report, "two_output", trained=False)
    _check_run_back(result, models["two_output"], "two_output", validation)


@pytest.mark.parametrize(("name", "recipe"), [("two_input", "qat"), ("embedder", "prune")])
def test_other_heads(models, name, recipe):
    """A two-input classifier (inputs as a list, labels as a one-element list) and an
    embedding head whose compiled loss says nothing of its task."""
    train, validation = _case(name, "dict" if name == "two_input" else "list")
    result = ks.compress(
        models[name], recipe, train_data=train, validation_data=validation, epochs=1, verbose=0
    )
    _check_report(result.report, name, trained=True)
    assert result.report.training["labels"] == ("class ids" if name == "two_input" else "targets")
    outputs = Interpreter(model_content=result.tflite).get_signature_runner().get_output_details()
    assert len(outputs) == 1


def test_two_outputs_saved_files_load_back(models, tmp_path):
    model = models["two_output"]
    (x, c, b), (xv, cv, bv) = _images(N, 2), _images(32, 3)
    result = ks.compress(
        model, "qat", train_data=(x, [c, b]), validation_data=(xv, [cv, bv]), epochs=1, verbose=0
    )
    out = result.save(tmp_path / "out")
    assert_saved_files(out, ["model.onnx", "model.tflite", "saved_model"], ("size", "mse"))
    reference = _keras_outputs(model, xv)
    tfl = _by_width(_run_tflite((out / "model.tflite").read_bytes(), {"image": xv}), reference)
    assert metrics.top1_agreement(reference[CLASSES], tfl[CLASSES]) >= 0.8
    assert np.abs(tfl[BOX] - reference[BOX]).mean() < 0.3
    sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    assert len(sess.get_outputs()) == 2
    sig = tf.saved_model.load(str(out / "saved_model" / "1")).signatures["serving_default"]
    served = sig(image=tf.constant(xv))
    assert sorted(served) == [BOX, CLASSES]
    html = (out / "report.html").read_text()
    assert "Per output" in html and "regression" in html


@pytest.mark.parametrize(
    ("name", "source"), [("two_output", "dataset"), ("two_output_tf_keras", "generator")]
)
def test_labels_from_a_dataset_and_a_generator(models, name, source):
    """tf.data with dict labels, or a callable yielding (x, (classes, boxes)) batches."""
    (x, c, b), (xv, cv, bv) = _images(N, 2), _images(32, 3)

    def batches():
        for i in range(0, N, 32):
            yield x[i : i + 32], (c[i : i + 32], b[i : i + 32])

    train = (
        tf.data.Dataset.from_tensor_slices((x, {CLASSES: c, BOX: b})).batch(32)
        if source == "dataset"
        else batches
    )
    result = ks.compress(
        models[name], "prune", train_data=train, validation_data=(xv, [cv, bv]), epochs=1, verbose=0
    )
    _check_report(result.report, name, trained=True)


def test_the_command_line_table_has_a_row_per_output(models, tmp_path, capsys):
    """keras-squeeze-compress on a two-output .keras file and a .npz of y_<output name>."""
    from keras_squeeze.cli import compress_lib

    path = tmp_path / "two.keras"
    models["two_output"].save(path)
    x, c, b = _images(80, 4)
    np.savez(tmp_path / "data.npz", x=x, y_classes=c, y_box=b)
    out = tmp_path / "out"
    compress_lib.run(
        model=str(path),
        recipe="int8",
        data=str(tmp_path / "data.npz"),
        output_dir=str(out),
        formats=("tflite",),
        verbose=0,
    )
    text = capsys.readouterr().out
    assert "accuracy (classes)" in text and "MSE (box)" in text and "MAE (box)" in text
    rows = {line.split()[0]: line for line in text.splitlines() if line.split()}
    assert "classification" in rows[CLASSES] and "dB" in rows[CLASSES] and "%" in rows[CLASSES]
    assert "regression" in rows[BOX] and "dB" in rows[BOX] and "%" not in rows[BOX]
    assert (out / "model.tflite").exists()
