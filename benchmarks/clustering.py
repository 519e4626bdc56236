"""Weight clustering and collaborative optimization: plain tfmot (as its guides
script it) vs keras_squeeze, same float models, data and epochs, 3 seeds."""

from __future__ import annotations

import statistics
import time

import keras_squeeze as ks
from benchmarks import common
from benchmarks.common import Table

CLUSTERS = 16


def _fit(model, x, y, epochs, callbacks=(), lr=1e-5):
    import tf_keras

    model.compile(
        optimizer=tf_keras.optimizers.Adam(learning_rate=lr),
        loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, callbacks=list(callbacks))


def _tfmot_cluster(model, x, y, epochs: int | None = None):
    """The clustering guide: cluster_weights(16, k-means++), Adam 1e-5, strip, int8."""
    from keras_squeeze import _compat

    cl = _compat.import_tfmot().clustering.keras
    clustered = cl.cluster_weights(
        model,
        number_of_clusters=CLUSTERS,
        cluster_centroids_init=cl.CentroidInitialization.KMEANS_PLUS_PLUS,
    )
    _fit(clustered, x, y, epochs or common.FINE_TUNE_EPOCHS)
    return common.tflite_int8(cl.strip_clustering(clustered), x)


def _tfmot_pcqat(model, x, y, epochs: int | None = None):
    """The collaborative-optimization guide: 50% constant sparsity, sparsity-preserving
    clustering (16), PCQAT with the cluster-preserving scheme, int8."""
    from keras_squeeze import _compat

    tfmot = _compat.import_tfmot()
    epochs = epochs or common.FINE_TUNE_EPOCHS
    sp, cl, q = tfmot.sparsity.keras, tfmot.clustering.keras, tfmot.quantization.keras
    pruned = sp.prune_low_magnitude(
        model, pruning_schedule=sp.ConstantSparsity(0.5, begin_step=0, frequency=100)
    )
    _fit(pruned, x, y, epochs, [sp.UpdatePruningStep()], lr=1e-3)
    stripped = sp.strip_pruning(pruned)
    clustered = cl.cluster_weights(
        stripped,
        number_of_clusters=CLUSTERS,
        cluster_centroids_init=cl.CentroidInitialization.KMEANS_PLUS_PLUS,
        preserve_sparsity=True,
    )
    _fit(clustered, x, y, epochs)
    stripped = cl.strip_clustering(clustered)
    annotated = q.quantize_annotate_model(stripped)
    pcqat = q.quantize_apply(
        annotated,
        tfmot.experimental.combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True),
    )
    _fit(pcqat, x, y, epochs, lr=1e-3)
    return common.tflite_int8(pcqat, x)


VARIANTS = {
    "cluster 16 + int8": {
        "plain tfmot (guide script)": _tfmot_cluster,
        "keras_squeeze 'cluster', labels only": dict(recipe="cluster", distill=False),
        "keras_squeeze 'cluster', distilled": dict(recipe="cluster", distill=True),
        "keras_squeeze Cluster(init='kmeans++'), labels only": dict(
            recipe=ks.Recipe(cluster=ks.Cluster(), quantization="int8"), distill=False
        ),
        "keras_squeeze 'cluster' at the training rate, distilled": dict(
            recipe=ks.Recipe(
                cluster=ks.Cluster(init="linear", learning_rate_scale=1.0), quantization="int8"
            ),
            distill=True,
        ),
    },
    "prune + cluster 16 + QAT int8": {
        "plain tfmot (guide script, 50% zeros)": _tfmot_pcqat,
        "keras_squeeze 'prune-cluster-qat' (60% zeros), labels only": dict(
            recipe="prune-cluster-qat", distill=False
        ),
        "keras_squeeze 'prune-cluster-qat' (60% zeros), distilled": dict(
            recipe="prune-cluster-qat", distill=True
        ),
        "keras_squeeze 'prune-cluster-qat' at the training rate, distilled": dict(
            recipe=ks.Recipe(
                prune=ks.Prune(target_sparsity=0.6),
                cluster=ks.Cluster(init="linear", learning_rate_scale=1.0),
                qat=ks.QAT(learning_rate_scale=1.0),
                quantization="int8",
            ),
            distill=True,
        ),
    },
}
TARGETS = {
    "cluster 16 + int8": (0.14, 0.958),
    "prune + cluster 16 + QAT int8": (0.09, 0.966),
}


def run() -> list[Table]:
    import tf_keras

    start = time.perf_counter()
    (x, y), (xt, yt) = ks.data.load_digits(common.CNN_IMAGE_SIZE)
    results = {(g, n): [] for g, vs in VARIANTS.items() for n in vs}
    float_acc = []
    for seed in common.SEEDS:
        model = common.float_cnn(seed)
        float_bytes = ks.export.tflite.convert(model, "float32")
        float_gzip = ks.report.metrics.gzip_size(float_bytes)
        float_acc.append(common.tflite_accuracy(float_bytes, xt, yt))
        for group, variants in VARIANTS.items():
            for name, v in variants.items():
                if callable(v):
                    tf_keras.utils.set_random_seed(seed)
                    content = v(common.clone_tf_keras(model), x, y)
                    measured = (
                        common.tflite_accuracy(content, xt, yt),
                        ks.report.metrics.gzip_size(content) / float_gzip,
                    )
                else:
                    measured = common.compressed(
                        model, v["recipe"], (x, y), (xt, yt), v["distill"], seed
                    )
                results[(group, name)].append(measured)
    tables = []
    for group, variants in VARIANTS.items():
        max_gzip, min_acc = TARGETS[group]
        table = Table(
            f"{group} on the benchmark CNN (3 seeds)",
            ["variant", ".tflite accuracy mean (min-max)", "gzip / float gzip", "target met"],
            notes=[
                f"float .tflite accuracy {common.mean_min_max(float_acc)}; "
                f"{common.FINE_TUNE_EPOCHS} fine-tuning epochs per stage for every variant",
                f"target: gzip <= {max_gzip} of float with accuracy >= {min_acc}",
                "keras_squeeze stages fine-tune at learning_rate_scale x the model's compiled "
                "Adam 1e-3: prune 1.0, cluster and QAT 0.3 (the defaults); 'at the training "
                "rate' rows set every stage to 1.0",
            ],
        )
        for name in variants:
            accs = [a for a, _ in results[(group, name)]]
            gz = statistics.fmean(g for _, g in results[(group, name)])
            met = gz <= max_gzip and statistics.fmean(accs) >= min_acc
            table.add(name, common.mean_min_max(accs), f"{gz:.4f}", "yes" if met else "no")
        tables.append(table)
    tables[-1].notes.append(f"section time {time.perf_counter() - start:.0f} s")
    return tables
