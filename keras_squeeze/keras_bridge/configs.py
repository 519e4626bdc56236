"""Translating Keras 3 layer configs into configs tf_keras classes accept.

Generic rules, applied to every built-in layer (and to registered custom
layers that name a tf_keras class):

- `dtype`: a Keras 3 dtype policy dict ({"class_name": "DTypePolicy",
  "config": {"name": "float32"}}) becomes its name ("float32",
  "mixed_float16", ...); quantized policies have no tf_keras equivalent.
- initializers, regularizers and constraints (Keras 3 writes them as
  {"module", "class_name", "config", "registered_name"}) become the tf_keras
  object of the same class. Regularizers and constraints change training, so
  one without a tf_keras twin is an error; initializers never run again (the
  weights are copied), so one without a twin is dropped with a note.
- activations: see `keras_bridge.activations`.
- a key the tf_keras class does not take is dropped when it holds the Keras 3
  default (a Keras 3 feature left unused, e.g. `lora_rank=None`,
  `rms_scaling=False`); otherwise the layer cannot be translated.
"""

from __future__ import annotations

import inspect

from keras_squeeze.errors import BridgeError
from keras_squeeze.keras_bridge import activations

_MISSING = object()
# tf_keras' base Layer takes these through **kwargs (tf_keras/src/engine/base_layer.py).
_TF_KERAS_LAYER_KWARGS = frozenset(
    {
        "input_dim",
        "input_shape",
        "batch_input_shape",
        "batch_size",
        "weights",
        "activity_regularizer",
        "autocast",
        "implementation",
    }
)
# tf_keras classes that take more keys than their signatures show (popped from **kwargs).
_TF_KERAS_POPPED_KWARGS = {"RNN": frozenset({"zero_output_for_mask"})}
# Keras 3 config keys outside the constructor's signature, at their inert value.
_KERAS3_INERT = {"rms_scaling": False}
_FLOAT_POLICIES = frozenset({"mixed_float16", "mixed_bfloat16"})
_OBJECT_KINDS = ("initializer", "regularizer", "constraint")
ACTIVATION_KEYS = ("activation", "recurrent_activation")


def _init_parameters(cls) -> tuple[dict, bool]:
    """{name: default} over `cls.__init__` and the bases its **kwargs reach."""
    params: dict = {}
    for base in cls.__mro__:
        init = base.__dict__.get("__init__")
        if init is None:
            continue
        try:
            signature = inspect.signature(init)
        except (TypeError, ValueError):
            return params, True
        takes_kwargs = False
        for p in list(signature.parameters.values())[1:]:
            if p.kind is p.VAR_KEYWORD:
                takes_kwargs = True
            elif p.kind is not p.VAR_POSITIONAL:
                params.setdefault(p.name, p.default if p.default is not p.empty else _MISSING)
        if not takes_kwargs:
            return params, False
    return params, True


def accepted_keys(tf_keras_cls) -> frozenset | None:
    """Config keys a tf_keras class's constructor takes (None: it takes anything)."""
    import tf_keras

    params, open_ended = _init_parameters(tf_keras_cls)
    keys = set(params)
    if issubclass(tf_keras_cls, tf_keras.layers.Layer):
        keys |= _TF_KERAS_LAYER_KWARGS
        for base in tf_keras_cls.__mro__:
            keys |= _TF_KERAS_POPPED_KWARGS.get(base.__name__, frozenset())
        open_ended = False
    return None if open_ended else frozenset(keys)


def keras3_defaults(keras3_cls) -> dict:
    """{argument: default} of a Keras 3 class's constructor."""
    return {k: v for k, v in _init_parameters(keras3_cls)[0].items() if v is not _MISSING}


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    try:
        return bool(a == b)
    except Exception:  # arrays and the like
        return False


def drop_unused_keys(config: dict, keras3_cls, tf_keras_cls, where: str) -> dict:
    """Drops keys tf_keras does not take when they hold the Keras 3 default.

    Raises:
        BridgeError: a key tf_keras does not take holds a non-default value.
    """
    accepted = accepted_keys(tf_keras_cls)
    if accepted is None:
        return dict(config)
    defaults = {**_KERAS3_INERT, **keras3_defaults(keras3_cls)}
    out = {}
    for key, value in config.items():
        unused = _same(value, defaults[key]) if key in defaults else value is None
        if key in accepted:
            out[key] = value
        elif not unused:
            expected = (
                f"'{key}' at its Keras 3 default ({defaults[key]!r})"
                if key in defaults
                else f"no '{key}' option"
            )
            raise BridgeError(
                f"The config of {where} cannot be translated to tf_keras: the option '{key}' has "
                f"no tf_keras equivalent in {tf_keras_cls.__name__}. Expected {expected}, or a "
                "translation registered with keras_squeeze.keras_bridge.register_layer. "
                f"Received: {key}={value!r}"
            )
    return out


def translate_dtype(value, where: str):
    """A Keras 3 dtype or dtype policy as a tf_keras dtype / policy name."""
    import tensorflow as tf

    if value is None:
        return None
    name = value
    if isinstance(value, dict):
        if value.get("class_name") not in ("DTypePolicy", "FloatDTypePolicy"):
            raise BridgeError(
                f"The dtype policy of {where} has no tf_keras equivalent. Expected a float dtype "
                f"policy (e.g. 'float32', 'mixed_float16'). Received: {value.get('class_name')} "
                f"{value.get('config')}"
            )
        name = (value.get("config") or {}).get("name")
    if name in _FLOAT_POLICIES:
        return name
    try:
        return tf.as_dtype(name).name
    except TypeError as e:
        raise BridgeError(
            f"The dtype of {where} is not a dtype tf_keras knows. Expected a TensorFlow dtype "
            f"name or a float dtype policy. Received: {value!r}"
        ) from e


def _object_kind(key: str) -> str | None:
    for kind in _OBJECT_KINDS:
        if key == kind or key.endswith("_" + kind):
            return kind
    return None


def translate_object(kind: str, value, where: str, notes: list[str]):
    """A Keras 3 initializer / regularizer / constraint as the tf_keras object.

    Returns:
        The tf_keras object, a name tf_keras resolves, None, or `_MISSING` for
        an initializer to leave at the tf_keras default (noted in `notes`).
    """
    import keras
    import tf_keras

    if value is None:
        return None
    k3_module = getattr(keras, kind + "s")
    tfk_module = getattr(tf_keras, kind + "s")
    if isinstance(value, str):  # an alias: "l2", "glorot_uniform", "max_norm"
        value = {"class_name": value, "config": {}}
    class_name = value.get("class_name") if isinstance(value, dict) else None
    config = value.get("config") or {} if isinstance(value, dict) else None
    registered = value.get("registered_name") if isinstance(value, dict) else None
    tfk_cls = getattr(tfk_module, class_name, None) if isinstance(class_name, str) else None
    k3_cls = getattr(k3_module, class_name, None) if isinstance(class_name, str) else None
    custom = registered not in (None, class_name)
    if custom or tfk_cls is None or k3_cls is None or not isinstance(config, dict):
        if kind == "initializer":
            notes.append(
                f"{where}: the Keras 3 initializer {class_name or value!r} has no tf_keras twin; "
                "tf_keras' default is set instead (the weights are copied, so it only matters "
                "if the layer is re-initialized)"
            )
            return _MISSING
        raise BridgeError(
            f"The {kind} of {where} has no tf_keras equivalent. Expected a built-in Keras "
            f"{kind} ({', '.join(_builtin_names(tfk_module))}). Received: {value!r}"
        )
    config = drop_unused_keys(config, k3_cls, tfk_cls, f"the {kind} of {where}")
    return tfk_cls(**config)


def _builtin_names(module) -> list[str]:
    return [*sorted(n for n in dir(module) if n[:1].isupper())[:12], "..."]


def translate_values(config: dict, where: str, notes: list[str]) -> dict:
    """Applies the generic rules (dtype, objects, activations) to a layer config."""
    out = {}
    for key, value in config.items():
        if key == "dtype":
            out[key] = translate_dtype(value, where)
        elif key in ACTIVATION_KEYS:
            out[key] = activations.to_tf_keras(value, f"{where} ({key})")
        elif (kind := _object_kind(key)) is not None:
            translated = translate_object(kind, value, f"{where} ({key})", notes)
            if translated is not _MISSING:
                out[key] = translated
        else:
            out[key] = value
    return out
