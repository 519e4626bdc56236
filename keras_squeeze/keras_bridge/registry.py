"""Custom layers: telling the bridge how to rebuild a Keras 3 layer class in tf_keras."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable

from keras_squeeze import _compat
from keras_squeeze.errors import BridgeError


@dataclasses.dataclass(frozen=True)
class Registration:
    """How one Keras 3 layer class is rebuilt (see `register_layer`)."""

    keras3_cls: type
    tf_keras_cls: type | None
    translate: Callable | None


_lock = threading.Lock()
_registry: dict[type, Registration] = {}


def _describe(cls) -> str:
    return f"{cls.__module__}.{cls.__qualname__}" if isinstance(cls, type) else repr(cls)


def register_layer(keras3_cls, tf_keras_cls=None, translate=None) -> None:
    """Tells the bridge how to rebuild a custom Keras 3 layer class in tf_keras.

    Three forms:

    - `register_layer(K3Layer, TFKLayer)`: the tf_keras twin takes the Keras 3
      layer's config after the generic translation (dtype policies,
      initializers, regularizers, constraints, activations; see
      `keras_bridge.configs`): `TFKLayer.from_config(config)`.
    - `register_layer(K3Layer, TFKLayer, translate=fn)`: as above, with
      `fn(config) -> config` applied to the translated config first (rename or
      drop keys the tf_keras class does not take).
    - `register_layer(K3Layer, translate=build)`: `build(layer)` returns the
      tf_keras layer for the Keras 3 layer instance `layer`; it must carry the
      same name (`name=layer.name`).

    The rebuilt layer's weights are then set from the Keras 3 layer's, matched
    by name and shape, and the whole model is checked numerically as usual.
    Registering a class again replaces the earlier registration; the exact
    class is looked up (a subclass needs its own registration).

    Args:
        keras3_cls: the Keras 3 layer class (a subclass of `keras.layers.Layer`).
        tf_keras_cls: its tf_keras twin (a subclass of `tf_keras.layers.Layer`).
        translate: a config -> config function (with `tf_keras_cls`), or a
            layer -> tf_keras layer builder (without it).

    Raises:
        BridgeError: a class of the wrong flavour, or neither `tf_keras_cls`
            nor `translate` given.

    Example:
        >>> class Scale(keras.layers.Layer): ...          # Keras 3
        >>> class TFScale(tf_keras.layers.Layer): ...     # tf_keras twin
        >>> ks.register_layer(Scale, TFScale)
    """
    import keras
    import tf_keras

    if not (
        isinstance(keras3_cls, type)
        and issubclass(keras3_cls, keras.layers.Layer)
        and _compat.keras_flavour(keras3_cls) == _compat.KERAS3
    ):
        flavour = _compat.keras_flavour(keras3_cls) or "not a Keras class"
        raise BridgeError(
            "register_layer takes a Keras 3 layer class first. Expected a subclass of "
            f"keras.layers.Layer. Received: {_describe(keras3_cls)} ({flavour})"
        )
    if tf_keras_cls is not None and not (
        isinstance(tf_keras_cls, type) and issubclass(tf_keras_cls, tf_keras.layers.Layer)
    ):
        raise BridgeError(
            "register_layer's tf_keras_cls must be a tf_keras layer class. Expected a subclass "
            f"of tf_keras.layers.Layer. Received: {_describe(tf_keras_cls)}"
        )
    if tf_keras_cls is None and translate is None:
        raise BridgeError(
            f"register_layer needs a tf_keras class or a builder for {keras3_cls.__name__}. "
            "Expected tf_keras_cls=..., or translate=fn(layer) -> tf_keras layer. "
            "Received: neither"
        )
    if translate is not None and not callable(translate):
        raise BridgeError(
            "register_layer's translate must be callable. Expected fn(config) -> config or "
            f"fn(layer) -> tf_keras layer. Received: {translate!r}"
        )
    with _lock:
        _registry[keras3_cls] = Registration(keras3_cls, tf_keras_cls, translate)


def unregister_layer(keras3_cls) -> None:
    """Removes a registration made with `register_layer` (no error if there is none)."""
    with _lock:
        _registry.pop(keras3_cls, None)


def lookup(keras3_cls) -> Registration | None:
    with _lock:
        return _registry.get(keras3_cls)
