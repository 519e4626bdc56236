"""Choosing layers for a technique: per-layer keys, skips, and the reasons why.

Plain functions over `LayerInfo` records, shared by pruning, clustering and
quantization-aware training; no Keras here. `check_selection` validates the
layer-selection fields their configs share (`layers`, `skip`,
`keep_first_layer`, `min_weights`, `learning_rate_scale`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence

from keras_squeeze.errors import RecipeError
from keras_squeeze.training import rate


@dataclasses.dataclass(frozen=True)
class LayerInfo:
    """What a plan needs to know about one layer.

    Attributes:
        name, type: layer name and class name.
        weights: number of scalars in the weights the technique acts on.
        supported: whether the engine can apply the technique to it.
        first: whether it is the first weighted layer after the model input.
        unsupported_reason: why the engine cannot, when not supported.
    """

    name: str
    type: str
    weights: int
    supported: bool
    first: bool = False
    unsupported_reason: str = "not supported by the engine"


@dataclasses.dataclass
class Decision:
    """A layer's fate: its setting (None = left as it is) and the reason."""

    setting: object
    reason: str | None


def check_skip(skip, what: str = "layer names") -> tuple[str, ...]:
    """`skip` (a string or a sequence of strings) as a tuple.

    Raises:
        RecipeError: an entry that is not a string.
    """
    entries = (skip,) if isinstance(skip, str) else skip
    try:
        entries = tuple(entries)
    except TypeError:
        entries = (entries,)
    if not all(isinstance(s, str) for s in entries):
        raise RecipeError(
            f"skip lists {what}. Expected a string or a sequence of strings. Received: "
            f"skip={skip!r}"
        )
    return entries


def check_selection(config, *, maps_to: str, valid, value_rule: str) -> None:
    """Validates, and normalises in place, the selection fields of a frozen stage config.

    `layers` maps keys to values `valid(value)` accepts (or None); `skip` is a
    string or a sequence of strings (stored as a tuple); and, where the config
    has them, `keep_first_layer` is a bool, `min_weights` an integer >= 0 and
    `learning_rate_scale` a number in (0, 10].

    Args:
        config: the config (its `__post_init__` calls this).
        maps_to: what `layers` maps keys to, for the message ("a sparsity (or None)").
        valid: whether a per-layer value (not None) is allowed.
        value_rule: the message for a value that is not ("A per-layer sparsity
            must lie in [0, 1) or be None (keep dense)").

    Raises:
        RecipeError: the field that is wrong, what was expected and what was received.
    """
    layers = config.layers
    if not isinstance(layers, dict):
        raise RecipeError(
            f"layers must map a layer name, class or pattern to {maps_to}. Expected a dict. "
            f"Received: {type(layers).__name__}"
        )
    for key, value in layers.items():
        if value is not None and not valid(value):
            raise RecipeError(f"{value_rule}. Received: layers[{key!r}]={value!r}")
    object.__setattr__(
        config, "skip", check_skip(config.skip, "layer names, class names or patterns")
    )
    keep = getattr(config, "keep_first_layer", False)
    if not isinstance(keep, bool):
        raise RecipeError(
            f"keep_first_layer must be True or False. Received: keep_first_layer={keep!r}"
        )
    minimum = getattr(config, "min_weights", 0)
    if isinstance(minimum, bool) or not isinstance(minimum, int) or minimum < 0:
        raise RecipeError(f"min_weights must be an integer >= 0. Received: min_weights={minimum!r}")
    if hasattr(config, "learning_rate_scale"):
        object.__setattr__(
            config, "learning_rate_scale", rate.check_scale(config.learning_rate_scale)
        )


def key_matches(key: str, layer: LayerInfo) -> bool:
    """A key names the layer, its class, or is a regular expression over names."""
    if key in (layer.name, layer.type):
        return True
    try:
        return re.fullmatch(key, layer.name) is not None
    except re.error:
        return False


def _check_keys(keys: Iterable[str], layers: Sequence[LayerInfo], argument: str) -> None:
    for key in keys:
        if not any(key_matches(key, layer) for layer in layers):
            raise RecipeError(
                f"{argument} names no layer of the model. Expected a layer name, class name or "
                f"regular expression matching one of {[layer.name for layer in layers][:12]}"
                f"{'...' if len(layers) > 12 else ''}. Received: {key!r}"
            )


def plan(
    layers: Sequence[LayerInfo],
    default,
    *,
    technique: str,
    per_layer: Mapping[str, object] | None = None,
    skip: Sequence[str] = (),
    keep_first_layer: bool = False,
    min_weights: int = 0,
    too_small=None,
) -> dict[str, Decision]:
    """Decides, for each layer with weights, the setting to apply or why not.

    Order: an explicit skip wins; then a per-layer key (first matching key in
    the mapping's order) sets the layer's value, None meaning "leave as it
    is"; then the defaults: unsupported layers, the first layer, and layers
    under `min_weights` are left alone with their reason.

    Args:
        too_small: optional callable(layer) -> reason or None, for
            technique-specific size rules (e.g. fewer weights than clusters).

    Raises:
        RecipeError: a key or skip entry matches no layer, or a layer named
            explicitly (by name or pattern, not by class) cannot take the technique.
    """
    per_layer = dict(per_layer or {})
    _check_keys(skip, layers, "A skip entry")
    _check_keys(per_layer, layers, f"A {technique} per-layer key")
    decisions: dict[str, Decision] = {}
    for layer in layers:
        if layer.weights == 0:
            continue
        if any(key_matches(k, layer) for k in skip):
            decisions[layer.name] = Decision(None, "in the skip list")
            continue
        key = next((k for k in per_layer if key_matches(k, layer)), None)
        if key is not None:
            value = per_layer[key]
            if value is None:
                decisions[layer.name] = Decision(None, f"kept as it is by layers[{key!r}]")
                continue
            if not layer.supported:
                if key != layer.type:
                    raise RecipeError(
                        f"The layer '{layer.name}' ({layer.type}) was named for {technique} but "
                        f"cannot take it: {layer.unsupported_reason}. Expected a layer the engine "
                        f"supports. Received: layers[{key!r}]={value!r}"
                    )
                decisions[layer.name] = Decision(None, layer.unsupported_reason)
                continue
            decisions[layer.name] = Decision(value, None)
            continue
        if not layer.supported:
            decisions[layer.name] = Decision(None, layer.unsupported_reason)
        elif keep_first_layer and layer.first:
            decisions[layer.name] = Decision(None, "first layer kept as it is (sees raw inputs)")
        elif layer.weights < min_weights:
            decisions[layer.name] = Decision(None, f"under {min_weights:,} weights: little to gain")
        elif too_small is not None and (reason := too_small(layer)):
            decisions[layer.name] = Decision(None, reason)
        else:
            decisions[layer.name] = Decision(default, None)
    return decisions
