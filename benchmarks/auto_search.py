"""compress(model, "auto") at max_accuracy_drop=0.01 against the fixed presets (issue 17).

- The benchmark CNN (the example model, about 580K parameters) and the compact
  residual CNN of benchmarks/sensitivity.py (`depth.residual_cnn` at width 8),
  trained on the built-in digits (16x16) for the benchmarks' float epochs.
- The search sees the first 1,100 training digits (fine-tuning, calibration) and
  the last 300 (validation: its budget); the 397 test digits are for this table
  only. Each fixed preset runs with the same data and fine-tuning epochs, seeded.
- "meets 0.01 on test": the .tflite's test accuracy is at most one point under the
  float model's. The figure: auto's gzip bytes against the smallest fixed preset
  that meets it on test.
"""

from __future__ import annotations

import time
import warnings

import keras
import numpy as np

import keras_squeeze as ks
from benchmarks import common, depth
from benchmarks.common import Table
from keras_squeeze.api import auto

BUDGET = 0.01
SEED = 0
FIT = 1100
FIXED = (*auto.POST_TRAINING, "prune", "cluster", "prune-cluster-qat")


def _float_accuracy(model, x, y) -> float:
    return float((np.argmax(np.asarray(model.predict(x, verbose=0)), -1) == y).mean())


POST_TRAINING_AUTO = "auto, post-training only"


def _test_accuracy(content: bytes, x, y) -> float:
    """Top-1 accuracy of a batch-1 classifier .tflite (compress()'s default), one sample a run."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=content).get_signature_runner()
    ((name, d_in),) = runner.get_input_details().items()
    ((out_name, _),) = runner.get_output_details().items()
    scale, zero = d_in["quantization"]
    feed = x if not scale else np.clip(np.round(x / scale + zero), -128, 127)
    feed = feed.astype(d_in["dtype"])
    hits = [runner(**{name: feed[i : i + 1]})[out_name].argmax() == y[i] for i in range(len(x))]
    return float(np.mean(hits))


def _run(model, recipe, train, validation):
    keras.utils.set_random_seed(SEED)
    start = time.perf_counter()
    trains = recipe == auto.AUTO or (
        recipe != POST_TRAINING_AUTO and bool(ks.Recipe.get(recipe).training_stages)
    )
    if recipe == POST_TRAINING_AUTO:
        recipe = auto.AUTO
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = ks.compress(
            model,
            recipe,
            train_data=train if trains else None,
            representative_data=train[0],
            validation_data=validation,
            epochs=common.FINE_TUNE_EPOCHS if trains else None,
            max_accuracy_drop=BUDGET,
            verbose=0,
        )
    return result, time.perf_counter() - start


def _table(name, model, train, validation, test) -> Table:
    base = _float_accuracy(model, *test)
    table = Table(
        f"auto at max_accuracy_drop={BUDGET:g} on the {name} ({model.count_params():,} "
        f"parameters; float test accuracy {base:.4f})",
        [
            "recipe",
            "gzip bytes",
            "validation drop (points)",
            "test accuracy",
            "test drop (points)",
            "meets 0.01 on test",
            "seconds",
        ],
    )
    rows = []
    for recipe in (auto.AUTO, POST_TRAINING_AUTO, *FIXED):
        result, seconds = _run(model, recipe, train, validation)
        acc = _test_accuracy(result.tflite, *test)
        gz = result.report.compressed.tflite_gzip_bytes
        label = recipe
        if recipe in (auto.AUTO, POST_TRAINING_AUTO):
            search = result.report.search
            label = f"{recipe} (chose {search['chosen']})"
            if recipe == auto.AUTO:
                tried = sum(r["status"] == "tried" for r in search["candidates"])
        val_drop = result.report.accuracy_budget["drop"]
        meets = base - acc <= BUDGET
        rows.append((recipe, gz, meets, seconds))
        table.add(
            label,
            f"{gz:,}",
            f"{100 * val_drop:+.2f}",
            f"{acc:.4f}",
            f"{100 * (base - acc):+.2f}",
            "yes" if meets else "no",
            f"{seconds:.0f}",
        )
    auto_row = rows[0]
    post_auto = rows[1]
    fixed = [r for r in rows[2:] if r[2]]
    int8_seconds = next(r[3] for r in rows if r[0] == "int8")
    if fixed:
        smallest = min(fixed, key=lambda r: r[1])
        table.notes.append(
            f"smallest fixed preset meeting the budget on test: {smallest[0]} "
            f"({smallest[1]:,} gzip bytes); auto is {auto_row[1] / smallest[1]:.2f}x of it "
            f"({'meets' if auto_row[2] else 'misses'} the budget on test)"
        )
    else:
        table.notes.append("no fixed preset meets the budget on test")
    table.notes.append(
        f"auto tried {tried} candidates in {auto_row[3]:.0f} s ({auto_row[3] / int8_seconds:.1f}x "
        f"one 'int8' compress, training candidates at {common.FINE_TUNE_EPOCHS} epochs included); "
        f"post-training only: {post_auto[3]:.0f} s ({post_auto[3] / int8_seconds:.1f}x)"
    )
    return table


def run() -> list[Table]:
    (x, y), (xt, yt) = ks.data.load_digits(common.CNN_IMAGE_SIZE)
    train, validation = (x[:FIT], y[:FIT]), (x[FIT:], y[FIT:])
    cnn = common.float_cnn(SEED, "keras3")
    compact = depth.residual_cnn(SEED, width=8)
    keras.utils.set_random_seed(SEED)
    compact.fit(x, y, batch_size=32, epochs=depth.FLOAT_EPOCHS, verbose=0, shuffle=True)
    return [
        _table(name, model, train, validation, (xt, yt))
        for name, model in (("benchmark CNN", cnn), ("compact residual CNN", compact))
    ]
