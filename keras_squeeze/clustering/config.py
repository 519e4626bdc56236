"""Clustering settings: a small validated stage object for ks.Recipe."""

from __future__ import annotations

import dataclasses

from keras_squeeze.errors import RecipeError
from keras_squeeze.layer_plan import check_selection

INITS = {
    "kmeans++": "KMEANS_PLUS_PLUS",
    "linear": "LINEAR",
    "density": "DENSITY_BASED",
    "random": "RANDOM",
}
DEFAULT_CLUSTERS = 16
DEFAULT_MIN_WEIGHTS = 1024
# Centroids start from trained weights and only move to fit them: smaller steps.
DEFAULT_LEARNING_RATE_SCALE = 0.3
AUTO = "auto"


@dataclasses.dataclass(frozen=True)
class Cluster:
    """Weight clustering settings (the engine is tfmot's cluster_weights).

    Each clustered kernel ends with at most `num_clusters` distinct values
    (per output channel with `per_channel`), which the .tflite stores as
    repeated int8 values that compress far better.

    Args:
        num_clusters: centroids per kernel (or per channel), >= 2 (default 16).
        init: centroid initialization: "kmeans++" (default; fits the weights
            best), "linear" (evenly spaced between min and max: most weights
            fall in the few central clusters, so the .tflite gzips smaller;
            the "cluster" preset uses it), "density" (by the weights' CDF:
            clusters used equally often, so gzip gains least) or "random".
        per_channel: cluster each output channel of a Conv2D separately
            (default True): int8 kernels are scaled per channel in the .tflite
            anyway, so this keeps <= num_clusters values per channel while
            fitting each channel better. Other layers cluster per tensor.
        preserve_sparsity: keep pruned zeros at zero: True, False, or "auto"
            (on when a pruning stage ran before; default).
        layers: per-layer number of clusters {key: n or None (leave as it
            is)}; a key is a layer name, class name or regular expression.
        skip: layer names, class names or patterns to leave unclustered.
        keep_first_layer: leave the first weighted layer unclustered (default True).
        min_weights: kernels with fewer weights are left alone (default 1024).
        learning_rate_scale: the stage fine-tunes at this multiple of the
            run's learning rate (default 0.3: the centroids start from
            trained weights and only move to fit them; benchmarks/RESULTS.md
            compares it with the training rate).

    Example:
        >>> ks.Recipe(cluster=ks.Cluster(num_clusters=16, init="linear"), quantization="int8")
    """

    num_clusters: int = DEFAULT_CLUSTERS
    init: str = "kmeans++"
    per_channel: bool = True
    preserve_sparsity: bool | str = AUTO
    layers: dict = dataclasses.field(default_factory=dict)
    skip: tuple[str, ...] = ()
    keep_first_layer: bool = True
    min_weights: int = DEFAULT_MIN_WEIGHTS
    learning_rate_scale: float = DEFAULT_LEARNING_RATE_SCALE

    def __post_init__(self):
        n = self.num_clusters
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            raise RecipeError(
                "Clustering needs at least 2 clusters. Expected an integer >= 2. "
                f"Received: num_clusters={n!r}"
            )
        if self.init not in INITS:
            raise RecipeError(
                f"Unknown centroid initialization. Expected one of {list(INITS)}. "
                f"Received: init={self.init!r}"
            )
        if self.preserve_sparsity not in (True, False, AUTO):
            raise RecipeError(
                "preserve_sparsity must be True, False or 'auto'. "
                f"Received: preserve_sparsity={self.preserve_sparsity!r}"
            )
        check_selection(
            self,
            maps_to="a number of clusters (or None)",
            valid=lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 2,
            value_rule=(
                "A per-layer number of clusters is an integer >= 2, or None (leave as it is)"
            ),
        )

    def get_config(self) -> dict:
        config = dataclasses.asdict(self)
        config["skip"] = list(self.skip)
        return config

    @classmethod
    def from_config(cls, config: dict) -> Cluster:
        config = dict(config)
        config["skip"] = tuple(config.get("skip", ()))
        return cls(**config)
