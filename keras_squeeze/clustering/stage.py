"""The weight clustering stage: `ks.Cluster` in a recipe, layer by layer.

Two engines, the same plan, report rows and .tflite check: tfmot's wrappers on
a tf_keras working copy of a layer graph, or the native engine
(`clustering.native`) on a copy in the model's own flavour, for subclassed
models (chosen for them) and for functional ones with `engine="native"`.
"""

from __future__ import annotations

import warnings

from keras_squeeze.clustering import apply as cluster_apply
from keras_squeeze.clustering import native
from keras_squeeze.clustering.config import AUTO, Cluster
from keras_squeeze.core import models
from keras_squeeze.core.progress import say
from keras_squeeze.errors import RecipeError
from keras_squeeze.layer_plan import plan
from keras_squeeze.stages import NATIVE, TF_KERAS, Stage, chosen_layers, register_stage
from keras_squeeze.stages.base import choose_engine
from keras_squeeze.training import distribute


class ClusterStage(Stage):
    """Weight clustering of every layer the plan selects, fine-tuned, then stripped.

    After a stage that leaves zeros (pruning) it keeps them (sparsity-preserving
    clustering) unless the config says otherwise.
    """

    name = "cluster"
    title, verb = "clustering", "clusters"
    config_class = Cluster
    order = 60
    engine = TF_KERAS
    wrappers = {"ClusterWeights": "wrapped for clustering"}
    settings = {"clusters": "num_clusters"}
    produces = ("clusters",)

    def engine_for(self, model, config: Cluster) -> str:
        return choose_engine(model, config.engine)

    def check_strategy(self, model, config: Cluster, replicas: int) -> None:
        if self.engine_for(model, config) == NATIVE:
            distribute.refuse_step_hooks(self.title, replicas, model)

    def check_model(self, model, config: Cluster) -> None:
        if config.engine == "tfmot" and not models.is_graph_model(model):
            raise RecipeError(
                "The tfmot clustering engine wraps the layers of a layer graph, which a "
                "subclassed model does not have. Expected engine='auto' or 'native' (centroids "
                "updated after every optimizer step). Received: engine='tfmot' on "
                f"{type(model).__name__}"
            )

    def run(self, model, config: Cluster, ctx):
        engine = self.engine_for(model, config)
        if engine == NATIVE:
            model = self.native_copy(ctx, model)
        apply = native if engine == NATIVE else cluster_apply
        zeros = "sparsity" in ctx.produced
        preserve = zeros if config.preserve_sparsity == AUTO else bool(config.preserve_sparsity)
        notes = []
        if preserve and not zeros:
            notes.append(
                "preserve_sparsity is on but no pruning stage ran before: few zeros to keep"
            )
            warnings.warn(notes[-1], stacklevel=4)
        decisions = plan(
            apply.layer_infos(model, config),
            config.num_clusters,
            technique="clustering",
            per_layer=config.layers,
            skip=config.skip,
            keep_first_layer=config.keep_first_layer,
            min_weights=config.min_weights,
            too_small=apply.too_small_rule(model, config),
        )
        chosen = chosen_layers(decisions, "clustered", "clusterable")
        how = f"{config.num_clusters} clusters ({config.init}"
        how += ", per channel for convolutions" if config.per_channel else ""
        how += ", sparsity preserved)" if preserve else ")"
        notes.insert(0, how)
        fallback = (
            [] if engine == NATIVE else cluster_apply.per_tensor_fallbacks(model, decisions, config)
        )
        if fallback:
            notes.append(
                f"clustered per tensor: {', '.join(fallback)} (convolutions without a bias: the "
                "engine's per-channel clustering leaves them unclustered)"
            )
        say(ctx.verbose, f"clustering {len(chosen)} of {len(decisions)} weighted layers to {how}")
        settings = {
            **config.get_config(),
            "preserve_sparsity": preserve,
            "engine": "native" if engine == NATIVE else "tfmot",
        }
        if engine == NATIVE:
            clusterer = native.Clusterer(model, decisions, config, preserve)
            note, seconds = self.timed_fine_tune(
                ctx, model, config, after_step=[clusterer.apply], state=clusterer.variables
            )
            notes += [native.ENGINE_NOTE, note]
            record = self.record(
                ctx, settings, seconds, model, decisions, notes, details={"per_tensor": []}
            )
            return model, record
        # The engine's wrappers take over the layers they wrap (their kernels move into the
        # wrapper): wrap a copy, so the model handed in (an earlier stage's result) stays whole.
        clustered = cluster_apply.wrap(cluster_apply.copy(model), decisions, config, preserve)
        note, seconds = self.timed_fine_tune(ctx, clustered, config)
        notes.append(note)
        stripped = cluster_apply.strip(clustered)
        record = self.record(
            ctx, settings, seconds, stripped, decisions, notes, details={"per_tensor": fallback}
        )
        return stripped, record

    def converter_options(self, config: Cluster, quantization: str) -> dict:
        # Dense kernels clustered per tensor keep one int8 code per centroid only
        # with one scale per kernel (see quantization.ptq.configure_converter).
        return {"per_tensor_dense": True}

    def annotate(self, report, row, decision, tensors, record) -> None:
        """Distinct kernel values in the .tflite, per channel where the kernel is per-channel."""
        clusters = decision.setting
        preserve = record.settings.get("preserve_sparsity")
        fallback = row.name in (record.details or {}).get("per_tensor", ())
        per_channel = record.settings.get("per_channel") and row.type == "Conv2D" and not fallback
        row.targets["clusters"] = clusters
        counts = []
        for t in tensors:
            axis = t.quantized_dimension if t.per_channel else (0 if per_channel else None)
            counts.append(cluster_apply.unique_values(t.values(), axis))
        if not counts:
            return
        row.clusters = max(counts)
        row.measured["clusters_per"] = (
            "channel" if per_channel or any(t.per_channel for t in tensors) else "tensor"
        )
        allowed = clusters + (1 if preserve else 0)  # pruned zeros stay besides the centroids
        if row.clusters > allowed:
            report.warnings.append(
                f"layer '{row.name}' has {row.clusters} distinct kernel values per "
                f"{row.measured['clusters_per']} in the .tflite, more than its {clusters} clusters"
            )


STAGE = register_stage(ClusterStage())
