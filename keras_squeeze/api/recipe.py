"""Recipes: which compression stages run, with what settings.

Named presets are strings (`compress(model, recipe="int8")`); `Recipe(...)`
builds a custom one. Recipes are small validated objects that round-trip
through get_config / from_config.
"""

from __future__ import annotations

import dataclasses

from keras_squeeze.errors import RecipeError
from keras_squeeze.quantization import ptq


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A combination of compression stages.

    Args:
        quantization: post-training quantization applied at conversion:
            "float32" (none), "dynamic", "float16", "int8" or "int16x8". See
            `keras_squeeze.quantization.ptq.PTQ_MODES` for each exact scheme.
        name: a label for reports; defaults to the quantization mode.

    Example:
        >>> recipe = ks.Recipe(quantization="float16")
        >>> ks.Recipe.from_config(recipe.get_config()) == recipe
        True
    """

    quantization: str = "int8"
    name: str | None = None

    def __post_init__(self):
        ptq.get_mode(self.quantization)
        if self.name is not None and (not isinstance(self.name, str) or not self.name):
            raise RecipeError(
                f"A recipe name must be a non-empty string. Expected e.g. 'my-int8'. "
                f"Received: name={self.name!r}"
            )
        if self.name is None:
            object.__setattr__(self, "name", self.quantization)

    @property
    def ptq_mode(self) -> ptq.PTQMode:
        return ptq.get_mode(self.quantization)

    @property
    def needs_calibration(self) -> bool:
        return self.ptq_mode.needs_calibration

    def get_config(self) -> dict:
        return {"name": self.name, "quantization": self.quantization}

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
}
