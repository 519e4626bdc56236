"""Magnitude pruning: plain tfmot (as its guide scripts it) vs keras_squeeze, 3 seeds.

Same float models, data and fine-tuning epochs for every variant. Also:
coverage on keras.applications models, and XNNPACK sparse inference latency.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

import keras_squeeze as ks
from benchmarks import common
from benchmarks.common import Table
from keras_squeeze.pruning.config import Prune

TARGET_GZIP = 0.09
SPARSITY = 0.8


def _tfmot_script(model, x, y, seed: int) -> bytes:
    """The tfmot pruning guide: whole-model prune_low_magnitude, PolynomialDecay
    0.50 -> 0.80 ending at the last step, default frequency, Adam, strip, int8."""
    import tf_keras

    from keras_squeeze import _compat

    tfmot = _compat.import_tfmot()
    tf_keras.utils.set_random_seed(seed)
    batch_size = 32
    end_step = int(np.ceil(len(x) / batch_size)) * common.FINE_TUNE_EPOCHS
    params = {
        "pruning_schedule": tfmot.sparsity.keras.PolynomialDecay(
            initial_sparsity=0.50, final_sparsity=SPARSITY, begin_step=0, end_step=end_step
        )
    }
    pruned = tfmot.sparsity.keras.prune_low_magnitude(model, **params)
    pruned.compile(
        optimizer="adam",
        loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    pruned.fit(
        x,
        y,
        batch_size=batch_size,
        epochs=common.FINE_TUNE_EPOCHS,
        verbose=0,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep()],
    )
    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    return common.tflite_int8(stripped, x)


VARIANTS = {
    "keras_squeeze 'prune' (unstructured), labels only": dict(recipe="prune", distill=False),
    "keras_squeeze 'prune' (unstructured), distilled": dict(recipe="prune", distill=True),
    "keras_squeeze Prune(block_size=(4, 1)), distilled": dict(
        recipe=ks.Recipe(prune=Prune(block_size=(4, 1)), quantization="int8"), distill=True
    ),
}


def _comparison() -> list[Table]:
    (x, y), (xt, yt) = ks.data.load_digits(common.CNN_IMAGE_SIZE)
    rows: dict[str, list[tuple[float, float]]] = {"plain tfmot (guide script)": []}
    rows.update({name: [] for name in VARIANTS})
    float_acc = []
    for seed in common.SEEDS:
        model = common.float_cnn(seed)
        float_bytes = ks.export.tflite.convert(model, "float32")
        float_gzip = ks.report.metrics.gzip_size(float_bytes)
        float_acc.append(common.tflite_accuracy(float_bytes, xt, yt))
        content = _tfmot_script(common.clone_tf_keras(model), x, y, seed)
        rows["plain tfmot (guide script)"].append(
            (
                common.tflite_accuracy(content, xt, yt),
                ks.report.metrics.gzip_size(content) / float_gzip,
            )
        )
        for name, v in VARIANTS.items():
            rows[name].append(
                common.compressed(model, v["recipe"], (x, y), (xt, yt), v["distill"], seed)
            )
    table = Table(
        "80% sparsity + int8 on the benchmark CNN (3 seeds)",
        ["variant", ".tflite accuracy mean (min-max)", "gzip / float gzip", "target met"],
        notes=[
            f"float .tflite accuracy {common.mean_min_max(float_acc)}; digits 16x16, ~580K-param "
            f"CNN trained {common.CNN_FLOAT_EPOCHS} epochs, {common.FINE_TUNE_EPOCHS} fine-tuning "
            "epochs for every variant, accuracy on the last 397 digits",
            f"target: gzip <= {TARGET_GZIP} of float with no accuracy loss against the float model",
            "Prune(block_size=(4, 1)): Dense kernels pruned in blocks of 4 consecutive inputs "
            "(contiguous in TFLite's layout); convolutions unstructured; same 80% sparsity",
        ],
    )
    fmean = statistics.fmean(float_acc)
    for name, results in rows.items():
        accs = [a for a, _ in results]
        gz = statistics.fmean(g for _, g in results)
        met = gz <= TARGET_GZIP and statistics.fmean(accs) >= fmean
        table.add(name, common.mean_min_max(accs), f"{gz:.4f}", "yes" if met else "no")
    return [table]


def run() -> list[Table]:
    start = time.perf_counter()
    tables = _comparison()
    tables[0].notes.append(f"section time {time.perf_counter() - start:.0f} s")
    return tables
