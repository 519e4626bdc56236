"""Weight clustering and collaborative optimization as the tfmot guides script them.

The significance section measures these against keras_squeeze's "cluster" and
"prune-cluster-qat" (and their settings) on the same float models, data and
fine-tuning budget: 2,000 test digits, 5 seeds, paired tests.
"""

from __future__ import annotations

from benchmarks import common

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
