"""Knowledge distillation: a quarter-size student distilled vs trained on labels,
and compression fine-tuning with vs without the original model as teacher.

Both halves change one thing only: the loss. The student comparison runs the
same ks.distill training loop with alpha=0 (labels alone) and the default
alpha; the compression comparison runs the same recipe with distill=False and
distill=True. 3 seeds, side by side in one run.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

import keras_squeeze as ks
from benchmarks import common
from benchmarks.common import Table

STUDENT_EPOCHS = common.CNN_FLOAT_EPOCHS


def student_cnn(seed: int, image_size: int = common.CNN_IMAGE_SIZE):
    """The example CNN at half width (conv16-bn-relu, conv32-bn-relu, maxpool,
    conv32-relu, flatten, dense64, dense10): about a quarter of its parameters."""
    import tf_keras

    layers = tf_keras.layers

    def init(i):
        return tf_keras.initializers.GlorotUniform(seed=seed + i)

    inputs = tf_keras.Input((image_size, image_size, 1), name="image")
    x = layers.Conv2D(16, 3, padding="same", use_bias=False, kernel_initializer=init(0))(inputs)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    x = layers.Conv2D(32, 3, padding="same", use_bias=False, kernel_initializer=init(1))(x)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu", kernel_initializer=init(2))(x)
    x = layers.Flatten()(x)
    x = layers.Dense(64, activation="relu", kernel_initializer=init(3))(x)
    outputs = layers.Dense(10, kernel_initializer=init(4), name="logits")(x)
    model = tf_keras.Model(inputs, outputs, name="digits_student")
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-3))
    return model


def _keras_accuracy(model, x, y) -> float:
    return float((np.asarray(model.predict(x, verbose=0)).argmax(-1) == y).mean())


def _students(x, y, xt, yt):
    import tf_keras

    rows = {"labels only (alpha=0)": [], f"distilled (alpha={ks.Distill().alpha})": []}
    teacher_acc, ratio = [], None
    for seed in common.SEEDS:
        teacher = common.float_cnn(seed)
        teacher_acc.append(_keras_accuracy(teacher, xt, yt))
        for name, alpha in zip(rows, (0.0, ks.Distill().alpha), strict=True):
            tf_keras.utils.set_random_seed(seed)
            student = student_cnn(seed)
            ratio = student.count_params() / teacher.count_params()
            trained = ks.distill(
                teacher, student, (x, y), epochs=STUDENT_EPOCHS, alpha=alpha, verbose=0
            ).model
            rows[name].append(_keras_accuracy(trained, xt, yt))
    labels_mean, distilled_mean = (statistics.fmean(v) for v in rows.values())
    table = Table(
        "A student at a quarter of the teacher's parameters: distilled vs labels only (3 seeds)",
        ["student training", "test accuracy mean (min-max)", "target", "met"],
        notes=[
            f"teacher: the benchmark CNN ({common.CNN_FLOAT_EPOCHS} epochs), test accuracy "
            f"{common.mean_min_max(teacher_acc)}; student/teacher parameters {ratio:.3f}",
            f"{STUDENT_EPOCHS} epochs each from the same initial weights, the same ks.distill loop "
            f"(Adam 1e-3, batch 32, T={ks.Distill().temperature}); labels only is alpha=0",
        ],
    )
    names = list(rows)
    table.add(names[0], common.mean_min_max(rows[names[0]]), "", "")
    met = "yes" if distilled_mean >= labels_mean else "no"
    table.add(names[1], common.mean_min_max(rows[names[1]]), ">= labels only", met)
    return table


COMPRESSION = {
    "prune 80% + int8": "prune",
    "qat int8": "qat",
}


def _compression(x, y, xt, yt):
    results = {(g, d): [] for g in COMPRESSION for d in (False, True)}
    for seed in common.SEEDS:
        model = common.float_cnn(seed)
        for group, recipe in COMPRESSION.items():
            for distill in (False, True):
                results[(group, distill)].append(
                    common.compressed(model, recipe, (x, y), (xt, yt), distill, seed)
                )
    table = Table(
        "Compression fine-tuning with vs without distillation from the original (3 seeds)",
        ["recipe", "fine-tuning", ".tflite accuracy mean (min-max)", "gzip / float gzip", "met"],
        notes=[
            f"the benchmark CNN; {common.FINE_TUNE_EPOCHS} fine-tuning epochs, same seed and "
            "optimizer for both; distilled = the recipe's default ks.Distill() with the original "
            "float model as teacher",
            "target: distilled mean >= labels-only mean",
        ],
    )
    for group, recipe in COMPRESSION.items():
        plain, distilled = results[(group, False)], results[(group, True)]
        means = [statistics.fmean(a for a, _ in r) for r in (plain, distilled)]
        for label, r, met in (
            ("labels only", plain, ""),
            ("distilled", distilled, "yes" if means[1] >= means[0] else "no"),
        ):
            table.add(
                f"'{recipe}'",
                label,
                common.mean_min_max(a for a, _ in r),
                f"{statistics.fmean(g for _, g in r):.4f}",
                met,
            )
    return table


def run() -> list[Table]:
    start = time.perf_counter()
    (x, y), (xt, yt) = ks.data.load_digits(common.CNN_IMAGE_SIZE)
    tables = [_students(x, y, xt, yt), _compression(x, y, xt, yt)]
    tables[-1].notes.append(f"section time {time.perf_counter() - start:.0f} s")
    return tables
