"""Recipes: which compression stages run, with what settings.

Named presets are strings (`compress(model, recipe="int8")`); `Recipe(...)`
builds a custom one. Recipes are small validated objects that round-trip
through get_config / from_config.
"""

from __future__ import annotations

import dataclasses

from keras_squeeze.channel_pruning.settings import ChannelPruning
from keras_squeeze.clustering.config import Cluster
from keras_squeeze.distillation.config import Distill
from keras_squeeze.errors import RecipeError
from keras_squeeze.pruning.config import Prune
from keras_squeeze.quantization import ptq
from keras_squeeze.quantization.qat_config import QAT

# Training stages in the fixed order they run; each later stage preserves what
# the earlier ones produced.
STAGES = {"channel_prune": ChannelPruning, "prune": Prune, "cluster": Cluster, "qat": QAT}


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A combination of compression stages.

    Training stages run in a fixed order (prune, then quantization at
    conversion), each fine-tuned on `train_data`; post-training quantization
    happens at conversion.

    Args:
        quantization: post-training quantization applied at conversion:
            "float32" (none), "dynamic", "float16", "int8" or "int16x8". See
            `keras_squeeze.quantization.ptq.PTQ_MODES` for each exact scheme.
        channel_prune: a `ks.ChannelPruning` stage (removes whole filters and
            the channels coupled to them: a smaller dense model), or None.
        prune: a `ks.Prune` stage (magnitude pruning), or None.
        cluster: a `ks.Cluster` stage (weight clustering), or None. After
            pruning it keeps the zeros (sparsity-preserving clustering).
        qat: a `ks.QAT` stage (quantization-aware training; needs
            quantization="int8"), or None. After pruning and/or clustering
            it preserves the sparsity and centroids (PQAT, CQAT, PCQAT).
        distill: fine-tune training stages against the original model's
            outputs: True (default settings), a `ks.Distill`, or False.
        name: a label for reports; defaults to the stages' names.

    Example:
        >>> recipe = ks.Recipe(prune=ks.Prune(target_sparsity=0.5), quantization="int8")
        >>> ks.Recipe.from_config(recipe.get_config()) == recipe
        True
    """

    quantization: str = "int8"
    name: str | None = None
    channel_prune: ChannelPruning | None = None
    prune: Prune | None = None
    cluster: Cluster | None = None
    qat: QAT | None = None
    distill: Distill | bool = True

    def __post_init__(self):
        ptq.get_mode(self.quantization)
        for stage, cls in STAGES.items():
            value = getattr(self, stage)
            if value is not None and not isinstance(value, cls):
                raise RecipeError(
                    f"The {stage} stage must be a ks.{cls.__name__}. Expected "
                    f"ks.{cls.__name__}(...) or None. Received: {type(value).__name__}"
                )
        if self.qat is not None and self.quantization != "int8":
            raise RecipeError(
                "Quantization-aware training produces a full-integer model. Expected "
                f"quantization='int8' with qat. Received: quantization={self.quantization!r}"
            )
        float_only = self.prune is not None and self.quantization != "float32"
        if float_only and (self.prune.sparse_encoding is True or self.prune.xnnpack_sparse):
            raise RecipeError(
                "Sparse weight storage and XNNPACK's sparse inference work for float32 weights "
                "only (quantized sparse weights gzip worse and XNNPACK cannot run them). Expected "
                "quantization='float32' with sparse_encoding=True or xnnpack_sparse=True. "
                f"Received: quantization={self.quantization!r}"
            )
        if not isinstance(self.distill, (bool, Distill)):
            raise RecipeError(
                f"distill must be True, False or a ks.Distill. Received: distill={self.distill!r}"
            )
        if self.name is not None and (not isinstance(self.name, str) or not self.name):
            raise RecipeError(
                f"A recipe name must be a non-empty string. Expected e.g. 'my-int8'. "
                f"Received: name={self.name!r}"
            )
        if self.name is None:
            parts = [stage for stage in STAGES if getattr(self, stage) is not None]
            object.__setattr__(self, "name", "+".join([*parts, self.quantization]))

    @property
    def training_stages(self) -> list[str]:
        """The training stages this recipe runs, in order."""
        return [stage for stage in STAGES if getattr(self, stage) is not None]

    @property
    def distill_config(self) -> Distill | None:
        if self.distill is False:
            return None
        return Distill() if self.distill is True else self.distill

    @property
    def ptq_mode(self) -> ptq.PTQMode:
        return ptq.get_mode(self.quantization)

    @property
    def needs_calibration(self) -> bool:
        return self.ptq_mode.needs_calibration

    def get_config(self) -> dict:
        config = {"name": self.name, "quantization": self.quantization}
        for stage in STAGES:
            value = getattr(self, stage)
            config[stage] = value.get_config() if value is not None else None
        config["distill"] = (
            self.distill.get_config() if isinstance(self.distill, Distill) else self.distill
        )
        return config

    @classmethod
    def from_config(cls, config: dict) -> Recipe:
        if not isinstance(config, dict):
            raise RecipeError(
                f"A recipe config must be a dict. Expected Recipe.get_config() output. "
                f"Received: {type(config).__name__}"
            )
        unknown = sorted(set(config) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise RecipeError(
                f"Unknown recipe config keys. Expected keys from "
                f"{[f.name for f in dataclasses.fields(cls)]}. Received: {unknown}"
            )
        config = dict(config)
        for stage, stage_cls in STAGES.items():
            if isinstance(config.get(stage), dict):
                config[stage] = stage_cls.from_config(config[stage])
        if isinstance(config.get("distill"), dict):
            config["distill"] = Distill.from_config(config["distill"])
        return cls(**config)

    @classmethod
    def get(cls, identifier) -> Recipe:
        """A Recipe from a preset name, a config dict or a Recipe.

        Raises:
            RecipeError: an unknown preset name (the valid ones are listed).
        """
        if isinstance(identifier, Recipe):
            return identifier
        if isinstance(identifier, dict):
            return cls.from_config(identifier)
        if isinstance(identifier, str) and identifier in RECIPES:
            return RECIPES[identifier]
        raise RecipeError(
            f"Unknown recipe. Expected one of {', '.join(map(repr, RECIPES))} or a ks.Recipe. "
            f"Received: recipe={identifier!r}"
        )


RECIPES: dict[str, Recipe] = {
    "dynamic": Recipe(quantization="dynamic"),
    "float16": Recipe(quantization="float16"),
    "int8": Recipe(quantization="int8"),
    "int16x8": Recipe(quantization="int16x8"),
    "float32": Recipe(quantization="float32"),
    # Dense kernels lose whole 4-input blocks: the same 80% zeros, a smaller gzip (measured
    # 0.077 of float vs 0.092 unstructured on the benchmark CNN, at the same accuracy).
    "prune": Recipe(prune=Prune(block_size=(4, 1)), quantization="int8", name="prune"),
    "prune-2:4": Recipe(prune=Prune(m_by_n=(2, 4)), quantization="int8", name="prune-2:4"),
    "qat": Recipe(qat=QAT(), quantization="int8", name="qat"),
    # Linear centroids: measured on the benchmark CNN, gzip 0.10 of float vs 0.15 with
    # k-means++ at the same accuracy (benchmarks/RESULTS.md, clustering).
    "cluster": Recipe(cluster=Cluster(init="linear"), quantization="int8", name="cluster"),
    # 60% zeros and linear centroids: gzip <= 0.09 of float on the benchmark CNN, where
    # tfmot's guide settings (50%, k-means++) give about 0.10.
    "prune-cluster-qat": Recipe(
        prune=Prune(target_sparsity=0.6),
        cluster=Cluster(init="linear"),
        qat=QAT(),
        quantization="int8",
        name="prune-cluster-qat",
    ),
    "channel-prune": Recipe(
        channel_prune=ChannelPruning(target=0.5), quantization="int8", name="channel-prune"
    ),
}
