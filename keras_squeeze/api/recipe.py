"""Recipes: which compression stages run, with what settings.

Named presets are strings (`compress(model, recipe="int8")`); `Recipe(...)`
builds a custom one. Recipes are small validated objects that round-trip
through get_config / from_config. The built-in stages have their own keyword
(`prune=ks.Prune()`); every stage, built-in or registered elsewhere, is
known to the recipe through the stage registry (`keras_squeeze.stages`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from keras_squeeze.channel_pruning.settings import ChannelPruning
from keras_squeeze.clustering.config import Cluster
from keras_squeeze.depth_pruning.settings import BlockRemoval
from keras_squeeze.distillation.config import Distill
from keras_squeeze.errors import RecipeError
from keras_squeeze.pruning.config import Prune
from keras_squeeze.quantization import ptq
from keras_squeeze.quantization.qat_config import QAT
from keras_squeeze.stages import registry


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A combination of compression stages.

    Training stages run in a fixed order, each fine-tuned on `train_data`
    and each preserving what the earlier ones produced: block removal, channel pruning,
    magnitude pruning, clustering, quantization-aware training (then any
    registered stage at its own place: `keras_squeeze.stages.order_text()`).
    Post-training quantization happens at conversion.

    Args:
        quantization: post-training quantization applied at conversion:
            "float32" (none), "dynamic", "float16", "int8", "int16x8",
            "int4-weights" (int4 blockwise weights by ai-edge-quantizer, float
            activations) or "int8-mixed" (int8 with the most sensitive ops kept
            float32 until a measured bound holds). See
            `keras_squeeze.quantization.ptq.PTQ_MODES` for each exact scheme.
        block_removal: a `ks.BlockRemoval` stage (removes whole residual
            blocks and layers that do little: a shallower model), or None.
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
        stages: configs of registered stages that have no keyword of their
            own, by stage name (see `keras_squeeze.stages.register_stage`).

    Example:
        >>> recipe = ks.Recipe(prune=ks.Prune(target_sparsity=0.5), quantization="int8")
        >>> ks.Recipe.from_config(recipe.get_config()) == recipe
        True
    """

    quantization: str = "int8"
    name: str | None = None
    block_removal: BlockRemoval | None = None
    channel_prune: ChannelPruning | None = None
    prune: Prune | None = None
    cluster: Cluster | None = None
    qat: QAT | None = None
    distill: Distill | bool = True
    stages: Mapping = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        ptq.get_mode(self.quantization)
        self._check_stages()
        for stage in registry.stages():
            value = self.config_of(stage.name)
            if value is None:
                continue
            cls = stage.config_class
            if not isinstance(value, cls):
                public = (
                    f"ks.{cls.__name__}"
                    if cls.__module__.startswith("keras_squeeze.")
                    else (cls.__name__)
                )
                raise RecipeError(
                    f"The {stage.name} stage must be a {public}. Expected {public}(...) or None. "
                    f"Received: {type(value).__name__}"
                )
            stage.check_recipe(value, self)
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
            object.__setattr__(self, "name", "+".join([*self.training_stages, self.quantization]))

    def _check_stages(self) -> None:
        if not isinstance(self.stages, Mapping):
            raise RecipeError(
                "stages maps a registered stage's name to its config. Expected a dict such as "
                f"{{'my_stage': MyConfig()}}. Received: {type(self.stages).__name__}"
            )
        known = {s.name for s in registry.stages()}
        for name in self.stages:
            if name in _FIELDS:
                raise RecipeError(
                    f"The {name} stage has a keyword of its own. Expected "
                    f"ks.Recipe({name}=...). Received: stages={{{name!r}: ...}}"
                )
            if name not in known:
                raise RecipeError(
                    f"stages names a stage that is not registered. Expected one of "
                    f"{sorted(known - _FIELDS)} (register it with "
                    f"keras_squeeze.stages.register_stage). Received: {name!r}"
                )
        object.__setattr__(self, "stages", {k: v for k, v in self.stages.items() if v is not None})

    def config_of(self, stage: str):
        """The config of the stage called `stage` in this recipe, or None."""
        return getattr(self, stage) if stage in _FIELDS else self.stages.get(stage)

    def with_stage(self, stage: str, config) -> Recipe:
        """This recipe (same name) with the config of the stage called `stage` replaced."""
        if stage in _FIELDS:
            return dataclasses.replace(self, **{stage: config})
        return dataclasses.replace(self, stages={**self.stages, stage: config})

    @property
    def training_stages(self) -> list[str]:
        """The training stages this recipe runs, in order."""
        return [s.name for s in registry.stages() if self.config_of(s.name) is not None]

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
        for stage in _FIELDS:
            value = getattr(self, stage)
            config[stage] = value.get_config() if value is not None else None
        config["distill"] = (
            self.distill.get_config() if isinstance(self.distill, Distill) else self.distill
        )
        if self.stages:
            config["stages"] = {name: c.get_config() for name, c in self.stages.items()}
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
        for stage in _FIELDS:
            if isinstance(config.get(stage), dict):
                config[stage] = registry.get_stage(stage).config_class.from_config(config[stage])
        if isinstance(config.get("stages"), Mapping):
            config["stages"] = {
                name: registry.get_stage(name).config_class.from_config(c)
                if isinstance(c, dict)
                else c
                for name, c in config["stages"].items()
            }
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
            f"Unknown recipe. Expected one of {', '.join(map(repr, RECIPES))} or a ks.Recipe "
            "(compress() also takes 'auto', a search among them). "
            f"Received: recipe={identifier!r}"
        )


# The built-in stages with a keyword of their own (public API); the registry
# knows every stage's config class, order and checks.
_FIELDS = frozenset({"block_removal", "channel_prune", "prune", "cluster", "qat"})

RECIPES: dict[str, Recipe] = {
    "dynamic": Recipe(quantization="dynamic"),
    "float16": Recipe(quantization="float16"),
    "int8": Recipe(quantization="int8"),
    "int16x8": Recipe(quantization="int16x8"),
    "float32": Recipe(quantization="float32"),
    # For memory-bound models (transformers, MLPs): 4.5 bits per Dense weight
    # (quantization.int4 says why blocks of 32).
    "int4-weights": Recipe(quantization="int4-weights", name="int4-weights"),
    # Full int8 where int8 holds, float32 for the ops it does not (quantization.mixed).
    "int8-mixed": Recipe(quantization="int8-mixed", name="int8-mixed"),
    # Dense kernels lose whole 4-input blocks: the same 80% zeros, stored contiguously, so
    # a smaller gzip at the same accuracy (benchmarks/RESULTS.md, pruning).
    "prune": Recipe(prune=Prune(block_size=(4, 1)), quantization="int8", name="prune"),
    "prune-2:4": Recipe(prune=Prune(m_by_n=(2, 4)), quantization="int8", name="prune-2:4"),
    "qat": Recipe(qat=QAT(), quantization="int8", name="qat"),
    # Linear centroids leave most weights in a few central clusters: a smaller gzip than
    # k-means++ at the same accuracy (benchmarks/RESULTS.md, clustering).
    "cluster": Recipe(cluster=Cluster(init="linear"), quantization="int8", name="cluster"),
    # 60% zeros and linear centroids: smaller than tfmot's guide settings (50%, k-means++)
    # at the same accuracy (benchmarks/RESULTS.md, clustering).
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
    "depth-prune": Recipe(block_removal=BlockRemoval(), quantization="int8", name="depth-prune"),
}
