"""Several outputs and regression heads: every training recipe against the float model.

Two families, trained a few epochs on data with a learnable rule:
- "classifier + box": a small CNN on 16x16 images holding one shape (a filled
  square, a ring or a plus) at a random place and size; output `classes` is
  the shape, output `box` its centre and size (x, y, w, h in [0, 1]);
- "MLP regression": y = sin(x0) + x1 x2 - 0.5 x3 + 0.3 x4^2 from 8 Gaussian
  features.

For each training recipe, the compressed .tflite's task metric on held-out
data against the float Keras model's: accuracy points for a classification
output, relative MSE points for a regression output (relative MSE = MSE /
variance of the targets, i.e. 1 - R^2; a 2-point rise is R^2 dropping by
0.02). The target: within 2 points of float, or a report warning saying not.

python benchmarks/run.py outputs
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks import common
from benchmarks.common import Table

RECIPES = ["prune", "prune-2:4", "cluster", "qat", "prune-cluster-qat", "channel-prune"]
# A --quick run takes each recipe on one of the two families (each compress() is ~5 s of
# fine-tuning set-up whatever the data): the costlier fine-tunings on the small MLP.
QUICK_RECIPES = {
    "classifier + box": ["prune", "prune-2:4", "channel-prune"],
    "MLP regression": ["cluster", "qat", "prune-cluster-qat"],
}
MAX_DROP = 0.02
# float training epochs of the two families; --quick trains them shorter (at full length
# the classifier + box's float fit alone is ~24 s here), so its figures say that the code
# runs
BOX_EPOCHS, MLP_EPOCHS = common.quick((12, 30), (4, 10))


def shapes_data(n: int, seed: int, size: int = 16):
    """Images of one shape each: (x, classes, boxes)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.05, (n, size, size, 1)).astype(np.float32)
    classes = rng.integers(0, 3, n)
    boxes = np.zeros((n, 4), np.float32)
    for i in range(n):
        s = int(rng.integers(5, 10))
        r, c = (int(v) for v in rng.integers(0, size - s + 1, 2))
        patch = np.zeros((s, s), np.float32)
        if classes[i] == 0:
            patch[:] = 1.0
        elif classes[i] == 1:
            patch[[0, -1], :] = patch[:, [0, -1]] = 1.0
        else:
            patch[s // 2, :] = patch[:, s // 2] = 1.0
        x[i, r : r + s, c : c + s, 0] += patch
        boxes[i] = [(c + s / 2) / size, (r + s / 2) / size, s / size, s / size]
    return x, classes, boxes


def regression_data(n: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype(np.float32)
    y = np.sin(x[:, 0]) + x[:, 1] * x[:, 2] - 0.5 * x[:, 3] + 0.3 * x[:, 4] ** 2
    return x, y.astype(np.float32)


def classifier_and_box(epochs: int = BOX_EPOCHS):
    import keras

    keras.utils.set_random_seed(0)
    image = keras.Input((16, 16, 1), name="image")
    h = keras.layers.Conv2D(16, 3, activation="relu", name="conv1")(image)
    h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Conv2D(32, 3, activation="relu", name="conv2")(h)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dense(64, activation="relu", name="fc")(h)
    model = keras.Model(
        image,
        [keras.layers.Dense(3, name="classes")(h), keras.layers.Dense(4, name="box")(h)],
        name="classifier_and_box",
    )
    model.compile(
        keras.optimizers.Adam(2e-3),
        loss=[keras.losses.SparseCategoricalCrossentropy(from_logits=True), "mse"],
        loss_weights=[1.0, 10.0],
    )
    x, c, b = shapes_data(3000, 1)
    model.fit(x, [c, b], epochs=epochs, batch_size=64, verbose=0)
    return model, (x, [c, b]), shapes_data(600, 2)


def mlp_regression(epochs: int = MLP_EPOCHS):
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((8,), name="features")
    h = keras.layers.Dense(64, activation="relu", name="hidden1")(inp)
    h = keras.layers.Dense(64, activation="relu", name="hidden2")(h)
    model = keras.Model(inp, keras.layers.Dense(1, name="value")(h), name="mlp_regression")
    model.compile(keras.optimizers.Adam(2e-3), loss="mse")
    x, y = regression_data(4000, 1)
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
    return model, (x, y), regression_data(800, 2)


def _metrics(report) -> list[tuple[str, float, float, float]]:
    """(what, float, .tflite, drop in points) per output; drop > 0 means worse."""
    rows = []
    acc, reg = report.accuracy, report.regression
    if acc:
        for name, v in (acc.get("per_output") or {acc.get("output") or "": acc}).items():
            rows.append((f"{name} accuracy", v["original"], v["compressed"]))
    if reg:
        per_output = reg.get("per_output") or {reg["output"]: {"relative_mse": reg["relative_mse"]}}
        for name, v in per_output.items():
            rel = v["relative_mse"]
            rows.append((f"{name} relative MSE", rel["original"], rel["compressed"]))
    return [
        (what, before, after, (before - after) if "accuracy" in what else (after - before))
        for what, before, after in rows
    ]


def run() -> list[Table]:
    import keras_squeeze as ks

    table = Table(
        "Several outputs and regression heads: each training recipe against float",
        [
            "family",
            "recipe",
            "task metric",
            "float Keras",
            "compressed .tflite",
            "drop (points)",
            "within 2 points",
            "report warning",
            "bytes ratio",
            "seconds",
        ],
    )
    families = {
        "classifier + box": classifier_and_box,
        "MLP regression": mlp_regression,
    }
    for family, build in families.items():
        model, train, test = build()
        validation = (test[0], list(test[1:])) if len(test) == 3 else test
        for recipe in common.quick(RECIPES, QUICK_RECIPES[family]):
            start = time.perf_counter()
            result = ks.compress(
                model, recipe, train_data=train, validation_data=validation, epochs=2, verbose=0
            )
            seconds = time.perf_counter() - start
            report = result.report
            rows = _metrics(report)
            for what, before, after, drop in rows:
                name, metric = what.split(" ", 1)
                warned = any(
                    f"{metric} " in w
                    and "points" in w
                    and (f"output '{name}'" in w or len(rows) == 1)
                    for w in report.warnings
                )
                table.add(
                    family,
                    recipe,
                    what,
                    f"{before:.4f}",
                    f"{after:.4f}",
                    f"{100 * drop:+.1f}",
                    "yes" if drop <= MAX_DROP else "no",
                    "yes" if warned else "no",
                    f"{report.size_ratio:.3f}",
                    f"{seconds:.0f}",
                )
    table.notes += [
        "drop: float minus .tflite accuracy, or .tflite minus float relative MSE (MSE / "
        "variance of the targets), in points (x100); positive is worse",
        "every recipe at its preset settings, 2 epochs of fine-tuning, distillation from the "
        "original model on (the default); validation on held-out data"
        + common.quick(
            "",
            "; --quick: each recipe on one family ("
            + "; ".join(f"{f}: {', '.join(r)}" for f, r in QUICK_RECIPES.items())
            + ")",
        ),
        "a drop over 2 points comes with a report warning (report.warnings), as the target asks",
    ]
    print(table.text())
    return [table]
