"""compress(model, "auto") at max_accuracy_drop=0.01 against the fixed presets (issue 17).

- The benchmark CNN (the example model, about 580K parameters) and the compact
  residual CNN of benchmarks/sensitivity.py (`depth.residual_cnn` at width 8),
  trained on the built-in digits (16x16) for the benchmarks' float epochs.
- The search sees the first 1,100 training digits (fine-tuning, calibration) and
  the last 300 (validation: its budget); the 397 test digits are for this table
  only. Each fixed preset runs with the same data and fine-tuning epochs, seeded.
- A transformer text encoder (Keras 3: Embedding, one block of MultiHeadAttention,
  LayerNormalization and a Dense feed-forward, pooled, a Dense head; about 17K
  parameters) on synthetic byte-token sequences whose class is the vocabulary
  quarter most of their tokens fall in (`mixed._sequences`): trained on 1,400
  sequences, split 1,100 / 300 for the search as above, tested on 400 others.
- "meets 0.01 on test": the .tflite's test accuracy is at most one point under the
  float model's. The figure: auto's gzip bytes against the smallest fixed preset
  that meets it on test.
- Latency: objective="latency" (post-training candidates only), and a p50 column:
  every row's .tflite timed in one interleaved run after the table's compresses
  (`ks.bench.benchmark` with the search's own settings, `auto_latency.SETTINGS`),
  on one test sample. The machine is shared, so the figures are this run's.
"""

from __future__ import annotations

import time
import warnings

import keras
import numpy as np

import keras_squeeze as ks
from benchmarks import common, depth, families, mixed
from benchmarks.common import Table
from keras_squeeze.api import auto, auto_latency

BUDGET = 0.01
SEED = 0
FIT = 1100
FIXED = common.quick(
    (*auto.POST_TRAINING, "prune", "cluster", "prune-cluster-qat"), ("int8", "prune")
)


def _float_accuracy(model, x, y) -> float:
    return float((np.argmax(np.asarray(model.predict(x, verbose=0)), -1) == y).mean())


# --quick stops the size searches after this many seconds (the candidate under way finishes)
QUICK_SEARCH_S = common.quick(None, 20.0)
# and the latency search after its first candidate (one always starts), which it still
# times and chooses by: timing every candidate is the slow part of that search
QUICK_LATENCY_SEARCH_S = common.quick(None, 1.0)
POST_TRAINING_AUTO = "auto, post-training only"
LATENCY_AUTO = "auto, objective=latency, post-training only"
# --quick leaves out the post-training-only size search: the latency row runs the same
# post-training-only search, and each search is several compress() calls
SEARCHES = common.quick((auto.AUTO, POST_TRAINING_AUTO, LATENCY_AUTO), (auto.AUTO, LATENCY_AUTO))
ENCODER_WIDTH, ENCODER_EPOCHS, ENCODER_FIT, ENCODER_TEST = 32, 12, 1400, 400


def _run(model, recipe, train, validation):
    keras.utils.set_random_seed(SEED)
    start = time.perf_counter()
    searches = (POST_TRAINING_AUTO, LATENCY_AUTO)
    trains = recipe == auto.AUTO or (
        recipe not in searches and bool(ks.Recipe.get(recipe).training_stages)
    )
    search = {"objective": "latency"} if recipe == LATENCY_AUTO else {}
    if recipe in (auto.AUTO, *searches):
        # --quick: the search's code, not its reach
        search["time_budget_s"] = (
            QUICK_LATENCY_SEARCH_S if recipe == LATENCY_AUTO else QUICK_SEARCH_S
        )
    if recipe in searches:
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
            **search,
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
            "p50 ms (interleaved)",
            "seconds",
        ],
    )
    rows, cells, contents = [], [], {}
    for recipe in (*SEARCHES, *FIXED):
        result, seconds = _run(model, recipe, train, validation)
        acc = common.tflite_accuracy(result.tflite, *test)
        gz = result.report.compressed.tflite_gzip_bytes
        label = recipe
        if recipe in SEARCHES:
            search = result.report.search
            label = f"{recipe} (chose {search['chosen']})"
            if recipe == auto.AUTO:
                tried = sum(r["status"] == "tried" for r in search["candidates"])
            if recipe == LATENCY_AUTO:
                timed = search
        val_drop = result.report.accuracy_budget["drop"]
        meets = base - acc <= BUDGET
        rows.append((recipe, gz, meets, seconds))
        contents[recipe] = result.tflite
        cells.append(
            [
                label,
                f"{gz:,}",
                f"{100 * val_drop:+.2f}",
                f"{acc:.4f}",
                f"{100 * (base - acc):+.2f}",
                "yes" if meets else "no",
                None,
                f"{seconds:.0f}",
            ]
        )
    p50 = _latencies(contents, test[0][:1])
    for row, cell in zip(rows, cells, strict=True):
        cell[6] = f"{p50[row[0]]:.4g}"
        table.add(*cell)
    auto_row = rows[0]
    post_auto = next((r for r in rows if r[0] == POST_TRAINING_AUTO), None)
    fixed = [r for r in rows if r[0] in FIXED and r[2]]
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
        f"one 'int8' compress, training candidates at {common.FINE_TUNE_EPOCHS} epochs included)"
        + (
            f"; post-training only: {post_auto[3]:.0f} s ({post_auto[3] / int8_seconds:.1f}x)"
            if post_auto
            else ""
        )
    )
    table.notes.append(_latency_note(rows, p50, timed))
    return table


def _latencies(contents: dict[str, bytes], sample) -> dict[str, float]:
    """The p50 ms of every row's .tflite, timed together, interleaved (one run)."""
    result = ks.benchmark(contents, inputs=sample, measure_memory=False, **auto_latency.SETTINGS)
    return {name: result[name].latency.p50_ms for name in contents}


def _latency_note(rows, p50, search) -> str:
    timed = [r for r in search["candidates"] if r.get("latency_ms") is not None]
    inside = ", ".join(
        f"{r['candidate']} {r['latency_ms']:.4g} ({r['latency_spread_ms'][0]:.4g}-"
        f"{r['latency_spread_ms'][1]:.4g})"
        for r in timed
        if r["within_budget"]
    )
    meeting = [r for r in rows if r[0] in FIXED and r[2]]
    quickest = min(meeting, key=lambda r: p50[r[0]]) if meeting else None
    fastest = (
        f"; the fastest fixed preset meeting the budget on test in the p50 column: "
        f"{quickest[0]} ({p50[quickest[0]]:.4g} ms), auto (latency) "
        f"{p50[LATENCY_AUTO] / p50[quickest[0]]:.2f}x of it"
        if quickest
        else "; no fixed preset meets the budget on test"
    )
    return (
        f"objective=latency chose {search['chosen']} among the candidates within the budget on "
        f"validation, p50 ms (spread of block medians) in its own timing: {inside or 'none'}"
        f"{fastest}; tied within the spread: {', '.join(search['latency']['tied'])}"
    )


def _encoder():
    """The transformer text encoder and its token task (module docstring): (model,
    (x, y) of its first ENCODER_FIT sequences, (x, y) of ENCODER_TEST others)."""
    x, y = mixed._sequences(ENCODER_FIT + ENCODER_TEST, SEED)
    keras.utils.set_random_seed(SEED)
    ids = keras.Input((mixed.LENGTH,), dtype="int32", name="tokens")
    h = keras.layers.Embedding(mixed.VOCAB, ENCODER_WIDTH, name="embed")(ids)
    h = families._encoder_block(keras.layers, h, ENCODER_WIDTH)
    model = keras.Model(ids, keras.layers.Dense(mixed.CLASSES, name="logits")(h), name="encoder")
    model.compile(
        keras.optimizers.Adam(3e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    fit = (x[:ENCODER_FIT], y[:ENCODER_FIT])
    model.fit(*fit, epochs=ENCODER_EPOCHS, batch_size=32, verbose=0, shuffle=True)
    return model, fit, (x[ENCODER_FIT:], y[ENCODER_FIT:])


def run() -> list[Table]:
    (x, y), (xt, yt) = ks.data.load_digits(common.CNN_IMAGE_SIZE)
    train, validation = (x[:FIT], y[:FIT]), (x[FIT:], y[FIT:])
    cnn = common.float_cnn(SEED, "keras3")
    if common.QUICK:  # the benchmark CNN's table alone
        return [_table("benchmark CNN", cnn, train, validation, (xt, yt))]
    compact = depth.residual_cnn(SEED, width=8)
    keras.utils.set_random_seed(SEED)
    compact.fit(x, y, batch_size=32, epochs=depth.FLOAT_EPOCHS, verbose=0, shuffle=True)
    tables = [
        _table(name, model, train, validation, (xt, yt))
        for name, model in (("benchmark CNN", cnn), ("compact residual CNN", compact))
    ]
    encoder, (xe, ye), test = _encoder()
    split = (xe[:FIT], ye[:FIT]), (xe[FIT:], ye[FIT:])
    return [*tables, _table("transformer text encoder", encoder, *split, test)]
