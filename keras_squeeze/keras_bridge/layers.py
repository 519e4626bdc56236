"""One Keras 3 layer -> the equivalent tf_keras layer, with the same name.

Built-in layers use the tf_keras class of the same name, their config put
through the generic rules of `keras_bridge.configs`; the classes whose
configs need more (wrappers holding a layer, Lambda) have a builder in
`_BUILDERS`. Custom layers need a registration (`register_layer`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from keras_squeeze import _compat
from keras_squeeze.errors import BridgeError
from keras_squeeze.keras_bridge import configs, registry

_KERAS3_BUILTIN_PREFIX = "keras.src."


def _where(layer) -> str:
    return f"layer '{layer.name}' ({type(layer).__name__})"


def is_builtin(layer) -> bool:
    """True for a layer class that Keras 3 itself defines."""
    return type(layer).__module__.startswith(_KERAS3_BUILTIN_PREFIX)


def _tf_keras_twin(layer):
    import tf_keras

    cls = getattr(tf_keras.layers, type(layer).__name__, None)
    return cls if isinstance(cls, type) and issubclass(cls, tf_keras.layers.Layer) else None


# Keras 3 config keys that tf_keras spells differently, per class.
_RENAMED_KEYS = {"LeakyReLU": {"negative_slope": "alpha"}}


def translate_config(layer, tf_keras_cls, notes: list[str], drop_unused: bool = True) -> dict:
    """The Keras 3 layer's config as `tf_keras_cls.from_config` takes it."""
    where = _where(layer)
    renames = _RENAMED_KEYS.get(type(layer).__name__, {})
    config = {renames.get(k, k): v for k, v in layer.get_config().items()}
    config = configs.translate_values(config, where, notes)
    if config.get("data_format") == "channels_last" and "data_format" not in (
        configs.accepted_keys(tf_keras_cls) or {"data_format"}
    ):
        del config["data_format"]  # tf_keras' version only works channels-last
    if drop_unused:
        config = configs.drop_unused_keys(config, type(layer), tf_keras_cls, where)
    return config


def _from_config(layer, tf_keras_cls, config: dict, direct: bool = False):
    try:
        return tf_keras_cls(**config) if direct else tf_keras_cls.from_config(config)
    except BridgeError:
        raise
    except Exception as e:
        raise BridgeError(
            f"The config of {_where(layer)} could not be read by tf_keras "
            f"{tf_keras_cls.__name__}. Expected a config the tf_keras class takes (register a "
            "translation with keras_squeeze.keras_bridge.register_layer). "
            f"Received: {type(e).__name__}: {str(e)[:300]}"
        ) from e


def _generic(layer, notes):
    tf_keras_cls = _tf_keras_twin(layer)
    return _from_config(layer, tf_keras_cls, translate_config(layer, tf_keras_cls, notes))


def _direct(layer, notes):
    """For classes whose tf_keras from_config expects build shapes Keras 3 does not
    write (MultiHeadAttention): the constructor, built on the first call."""
    tf_keras_cls = _tf_keras_twin(layer)
    config = translate_config(layer, tf_keras_cls, notes)
    return _from_config(layer, tf_keras_cls, config, direct=True)


def _time_distributed(layer, notes):
    import tf_keras

    inner = build(layer.layer, notes)
    return tf_keras.layers.TimeDistributed(inner, name=layer.name, trainable=layer.trainable)


def _bidirectional(layer, notes):
    import tf_keras

    forward = build(layer.forward_layer, notes)
    backward = build(layer.backward_layer, notes)
    return tf_keras.layers.Bidirectional(
        forward,
        merge_mode=layer.merge_mode,
        backward_layer=backward,
        name=layer.name,
        trainable=layer.trainable,
    )


_PUBLIC_FUNCTION_MODULES = ("keras.src.ops.", "keras.src.activations.", "tensorflow.")


def public_function(fn) -> bool:
    """True for a function of Keras' or TensorFlow's own API, found again by module and name."""
    module = getattr(fn, "__module__", None) or ""
    name = getattr(fn, "__name__", "")
    if not module.startswith(_PUBLIC_FUNCTION_MODULES) or name == "<lambda>":
        return False
    return getattr(sys.modules.get(module), name, None) is fn


def _lambda(layer, notes):
    import tf_keras

    fn = layer.function
    if not public_function(fn):
        raise BridgeError(
            f"The Lambda {_where(layer)} wraps a Python function the bridge cannot translate. "
            "Expected a Lambda of a public Keras or TensorFlow op (e.g. keras.ops.relu); for "
            "your own code, use a custom layer registered with "
            "keras_squeeze.keras_bridge.register_layer. "
            f"Received: {getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)}"
        )
    notes.append(f"{_where(layer)}: runs {fn.__module__}.{fn.__name__} in a tf_keras Lambda")
    config = layer.get_config()
    return tf_keras.layers.Lambda(
        fn,
        output_shape=config.get("output_shape"),
        arguments=dict(layer.arguments or {}),
        name=layer.name,
        trainable=layer.trainable,
    )


_BUILDERS: dict[str, Callable] = {
    "MultiHeadAttention": _direct,
    "TimeDistributed": _time_distributed,
    "Bidirectional": _bidirectional,
    "Lambda": _lambda,
}


def _registered(layer, entry: registry.Registration, notes):
    import tf_keras

    if entry.tf_keras_cls is None:
        try:
            built = entry.translate(layer)
        except BridgeError:
            raise
        except Exception as e:
            raise BridgeError(
                f"The registered builder for {_where(layer)} failed. Expected it to return a "
                f"tf_keras layer. Received: {type(e).__name__}: {str(e)[:300]}"
            ) from e
        if not isinstance(built, tf_keras.layers.Layer):
            raise BridgeError(
                f"The registered builder for {_where(layer)} did not return a tf_keras layer. "
                f"Expected a tf_keras.layers.Layer. Received: {type(built).__name__}"
            )
        if built.name != layer.name:
            raise BridgeError(
                f"The registered builder for {_where(layer)} named its layer differently. "
                f"Expected name='{layer.name}' (names map settings and reports). "
                f"Received: '{built.name}'"
            )
        return built
    config = translate_config(layer, entry.tf_keras_cls, notes, drop_unused=False)
    if entry.translate is not None:
        config = entry.translate(config)
    return _from_config(layer, entry.tf_keras_cls, config)


def build(layer, notes: list[str]):
    """The tf_keras layer equivalent to a Keras 3 layer (unbuilt, same name).

    Raises:
        BridgeError: a layer of another flavour, a class that is neither
            built-in nor registered, or a config that cannot be translated.
    """
    flavour = _compat.keras_flavour(layer)
    if flavour != _compat.KERAS3:
        raise BridgeError(
            f"The {_where(layer)} is not a Keras 3 layer. Expected only Keras 3 layers in a "
            "Keras 3 model (do not mix tf_keras and Keras 3 objects). "
            f"Received: a {flavour or 'non-Keras'} {type(layer).__module__}.{type(layer).__name__}"
        )
    entry = registry.lookup(type(layer))
    if entry is not None:
        return _registered(layer, entry, notes)
    if not is_builtin(layer):
        raise BridgeError(
            f"The {_where(layer)} is a custom layer the bridge does not know. Expected a built-in "
            "Keras layer, or a class registered with "
            "keras_squeeze.keras_bridge.register_layer(keras3_cls, tf_keras_cls). Received: "
            f"{type(layer).__module__}.{type(layer).__qualname__}"
        )
    builder = _BUILDERS.get(type(layer).__name__)
    if builder is not None:
        return builder(layer, notes)
    if _tf_keras_twin(layer) is None:
        raise BridgeError(
            f"The {_where(layer)} has no tf_keras equivalent. Expected a Keras layer that "
            "tf_keras also has, or a translation registered with "
            "keras_squeeze.keras_bridge.register_layer. Received: "
            f"keras.layers.{type(layer).__name__}"
        )
    return _generic(layer, notes)
