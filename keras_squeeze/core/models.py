"""Loading and inspecting Keras models of either flavour."""

from __future__ import annotations

import os
import pathlib
import zipfile

import numpy as np

from keras_squeeze import _compat
from keras_squeeze.core import graph
from keras_squeeze.data.inputs import InputSpec, Samples, batched_call
from keras_squeeze.errors import ModelError, NonFiniteError

_H5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _describe(obj) -> str:
    if isinstance(obj, (str, os.PathLike)):
        return f"'{os.fspath(obj)}'"
    return f"an object of type {type(obj).__module__}.{type(obj).__qualname__}"


def load_model(path, custom_objects: dict | None = None, compile: bool = True):
    """Loads a Keras model from a .keras file, an .h5 file or a SavedModel directory.

    .keras files load with Keras 3 (falling back to tf_keras for files tf_keras
    wrote), .h5 files with tf_keras (falling back to Keras 3), SavedModel
    directories written by tf_keras `model.save()` with tf_keras. A SavedModel
    without Keras metadata (e.g. from Keras 3 `model.export()`) is wrapped in a
    Keras 3 model around its `serving_default` signature, which serves the
    post-training recipes.

    Args:
        path: file or directory path.
        custom_objects: custom layer classes and functions, by name.
        compile: restore the compiled loss/optimizer when the file has them;
            a file whose model loads but whose compiled state does not is
            loaded uncompiled.

    Returns:
        A Keras 3 or tf_keras `Model`.

    Raises:
        ModelError: the path does not exist or does not hold a Keras model.
    """
    p = pathlib.Path(path)
    if not p.exists():
        raise ModelError(
            f"The model path does not exist. Expected a .keras or .h5 file or a "
            f"SavedModel directory. Received: '{p}'"
        )
    if p.is_dir():
        return _load_saved_model(p, custom_objects, compile)
    with open(p, "rb") as f:
        head = f.read(8)
    if head == _H5_MAGIC:
        loaders = [_compat.TF_KERAS, _compat.KERAS3]
    elif zipfile.is_zipfile(p):
        loaders = [_compat.KERAS3, _compat.TF_KERAS]
    else:
        raise ModelError(
            "The file is not a Keras model. Expected a .keras archive, an .h5 file or a "
            f"SavedModel directory. Received: '{p}' ({p.stat().st_size} bytes, starting {head!r})"
        )
    errors = []
    # Then without the compiled loss and optimizer: tf_keras >= 2.13 writes a
    # custom activation function into .h5 in a form its own .h5 reader refuses,
    # which Keras 3 reads, but not the tf_keras loss config saved beside it.
    attempts = [(f, compile) for f in loaders] + ([(f, False) for f in loaders] if compile else [])
    for flavour, with_compile in attempts:
        k = _compat.keras_module(flavour)
        try:
            model = k.models.load_model(p, custom_objects=custom_objects, compile=with_compile)
        except Exception as e:  # try the other flavour before giving up
            if with_compile == compile:
                errors.append(f"{flavour}: {type(e).__name__}: {e}")
            continue
        return ensure_model(model, "the loaded file")
    raise ModelError(
        f"The file could not be loaded as a Keras model. Expected a model saved by Keras 3 or "
        f"tf_keras (pass custom_objects= for custom layers). Received: '{p}'. " + " | ".join(errors)
    )


def _load_saved_model(p: pathlib.Path, custom_objects, compile):
    if not (p / "saved_model.pb").exists():
        raise ModelError(
            "The directory is not a SavedModel. Expected a directory with saved_model.pb. "
            f"Received: '{p}'"
        )
    if (p / "keras_metadata.pb").exists():
        import tf_keras

        try:
            return tf_keras.models.load_model(p, custom_objects=custom_objects, compile=compile)
        except Exception as e:
            raise ModelError(
                f"The SavedModel could not be loaded as a tf_keras model. Expected a model saved "
                f"by tf_keras. Received: '{p}' ({type(e).__name__}: {e})"
            ) from e
    import keras
    import tensorflow as tf

    loaded = tf.saved_model.load(str(p))
    signature = loaded.signatures.get("serving_default")
    if signature is None:
        raise ModelError(
            "The SavedModel has no 'serving_default' signature. Expected a SavedModel exported "
            f"for serving. Received: signatures {sorted(loaded.signatures)} in '{p}'"
        )
    spec = signature.structured_input_signature[1]
    names = sorted(spec)
    inputs = [
        keras.Input(
            shape=tuple(spec[n].shape[1:]), batch_size=None, dtype=spec[n].dtype.name, name=n
        )
        for n in names
    ]
    layer = keras.layers.TFSMLayer(str(p), call_endpoint="serving_default")
    outputs = layer(
        {n: t for n, t in zip(names, inputs, strict=True)} if len(names) > 1 else inputs[0]
    )
    if isinstance(outputs, dict):
        outputs = [outputs[k] for k in sorted(outputs)]
        outputs = outputs[0] if len(outputs) == 1 else outputs
    return keras.Model(
        inputs if len(inputs) > 1 else inputs[0], outputs, name=p.name or "saved_model"
    )


_GRAPH_CLASSES = ("Functional", "Sequential")


def is_graph_model(model) -> bool:
    """True for a functional or Sequential model of either flavour (not subclassed)."""
    return any(
        cls.__name__ in _GRAPH_CLASSES and _compat.keras_flavour(cls) is not None
        for cls in type(model).__mro__
    )


def require_graph(model, what: str) -> None:
    """Raises ModelError for a subclassed model: `what` needs the layer graph."""
    if not is_graph_model(model):
        raise ModelError(
            f"{what} needs the model's layer graph, which a subclassed model does not expose. "
            "Expected a Sequential or functional model (the post-training recipes 'dynamic', "
            "'float16', 'int8' and 'int16x8' do work on subclassed models). Received: a "
            f"subclassed model of class {type(model).__name__}"
        )


def ensure_model(model, argument: str = "model"):
    """Returns `model` if it is a Keras model of either flavour, else raises ModelError."""
    if not _compat.is_keras_model(model):
        raise ModelError(
            f"{argument} is not a Keras model. Expected a keras.Model (Keras 3), a "
            "tf_keras.Model, or a path to a .keras / .h5 file or SavedModel directory. "
            f"Received: {_describe(model)}"
        )
    return model


def resolve_model(model, custom_objects: dict | None = None):
    """A model object from a model or a path."""
    if isinstance(model, (str, os.PathLike)):
        return load_model(model, custom_objects=custom_objects)
    return ensure_model(model)


def input_specs(model) -> list[InputSpec]:
    """The model's inputs as InputSpecs, in the model's input order.

    Sequential and functional models give their `keras.Input`s. A subclassed
    model has no symbolic inputs; once it has been called on data, the shapes
    of that first call are used instead (batch axis free), as Keras' own
    export does: Keras 3 records them at build time (dtype: the model's
    `input_dtype`; named `args_0`, `args_1`, ... like the converter's
    signature), tf_keras in `Model.save_spec()` (with its names).

    Raises:
        ModelError: the model has no defined inputs (an unbuilt Sequential or a
            subclassed model that was never called on data).
    """
    import tensorflow as tf

    try:
        tensors = list(model.inputs or [])
    except (AttributeError, ValueError):
        tensors = []
    if not tensors:
        called = _called_input_specs(model)
        if called:
            return called
        raise ModelError(
            f"The model '{model.name}' has no defined inputs. Expected a Sequential or functional "
            "model built on keras.Input(shape=...) (build a Sequential with an Input first), or a "
            "subclassed model called once on a batch of data. "
            f"Received: a {type(model).__name__} without inputs"
        )
    specs = []
    vocabs = input_vocabularies(model, tensors)
    for i, t in enumerate(tensors):
        name = getattr(t, "name", None) or f"input_{i}"
        name = name.split(":")[0]
        shape = tuple(None if d is None else int(d) for d in list(t.shape)[1:])
        dtype = tf.as_dtype(t.dtype).name
        vocab = vocabs.get(i) if np.dtype(dtype).kind in "iu" else None
        specs.append(InputSpec(name=name, shape=shape, dtype=dtype, vocab=vocab))
    return specs


def input_vocabularies(model, tensors=None) -> dict[int, int]:
    """Input index -> vocabulary size, for inputs an Embedding reads directly.

    The size is the Embedding's `input_dim` (the smallest, when several read
    one input). Inputs read otherwise, or a graph that cannot be walked, give
    nothing.
    """
    tensors = list(model.inputs) if tensors is None else tensors
    sources = {id(graph.producer(t)): i for i, t in enumerate(tensors) if graph.producer(t)}
    found: dict[int, int] = {}
    try:
        calls = graph.walk(model)
    except (AttributeError, TypeError, ValueError, IndexError, KeyError):
        return found
    for node in calls:
        layer = graph.node_layer(node)
        size = getattr(layer, "input_dim", None)
        if type(layer).__name__ != "Embedding" or not isinstance(size, int):
            continue
        reads = graph.node_inputs(node)
        i = sources.get(id(graph.producer(reads[0]))) if reads else None
        if i is not None:
            found[i] = min(size, found.get(i, size))
    return found


def _is_shape(value) -> bool:
    return isinstance(value, (tuple, list)) and all(d is None or isinstance(d, int) for d in value)


def _called_input_specs(model) -> list[InputSpec]:
    """Input specs of a subclassed model from its first call, or [] if never called."""
    import tensorflow as tf

    shapes, dtypes = [], []
    if _compat.keras_flavour(model) == _compat.KERAS3:
        # The shapes Keras 3 recorded when the model was built by its first call
        # (the same record keras.export and the TFLite converter read).
        recorded = getattr(model, "_build_shapes_dict", None) or {}
        values = list(recorded.values())
        if len(values) == 1 and not _is_shape(values[0]):
            values = list(values[0]) if isinstance(values[0], (list, tuple)) else []
        if not values or not all(_is_shape(v) for v in values):
            return []
        shapes = [tuple(v) for v in values]
        dtypes = [tf.as_dtype(getattr(model, "input_dtype", None) or "float32").name] * len(shapes)
        names = [f"args_{i}" for i in range(len(shapes))]
    else:
        save_spec = getattr(model, "save_spec", None)
        spec = save_spec(dynamic_batch=True) if callable(save_spec) else None
        if not spec:
            return []
        args, _ = spec
        flat = tf.nest.flatten(args)
        if not flat or not all(isinstance(s, tf.TensorSpec) for s in flat):
            return []
        shapes = [tuple(s.shape.as_list()) for s in flat]
        dtypes = [s.dtype.name for s in flat]
        names = [s.name or f"args_{i}" for i, s in enumerate(flat)]
    return [
        InputSpec(
            name=name, shape=tuple(None if d is None else int(d) for d in shape[1:]), dtype=dtype
        )
        for name, shape, dtype in zip(names, shapes, dtypes, strict=True)
    ]


def output_names(model) -> list[str]:
    """Names of the model's outputs in order (output layer names for tf_keras).

    A subclassed model has no symbolic outputs: it is run once on zeros to
    count them (dict outputs give their sorted keys, others `output_N`).
    """
    names = getattr(model, "output_names", None)
    if names:
        return list(names)
    try:
        outputs = list(model.outputs or [])
    except (AttributeError, ValueError):
        outputs = None
    if outputs:
        return [f"output_{i}" for i in range(len(outputs))]
    return _traced_output_names(model)


def keras_outputs(model, samples: Samples, batch_size: int = 64) -> list[np.ndarray]:
    """The model's outputs (inference mode) as float arrays in output order."""
    names = output_names(model)

    def run(batch):
        out = model(batch if len(batch) > 1 else batch[0], training=False)
        if isinstance(out, dict):
            out = [out[n] for n in names]
        elif not isinstance(out, (list, tuple)):
            out = [out]
        return [np.asarray(o, dtype=np.float32) for o in out]

    return batched_call(run, samples, batch_size)


def _traced_output_names(model) -> list[str]:
    specs = input_specs(model)
    zeros = [np.zeros((1, *[1 if d is None else d for d in s.shape]), dtype=s.dtype) for s in specs]
    out = model(zeros if len(zeros) > 1 else zeros[0], training=False)
    if isinstance(out, dict):
        return sorted(out)
    count = len(out) if isinstance(out, (list, tuple)) else 1
    return [f"output_{i}" for i in range(count)]


def count_params(model) -> int:
    """Number of scalars in the model's weights (trainable and not); for models in
    tfmot's wrappers, the wrapped layers' weights only."""
    if any(_wrapped(layer) is not None for layer in walk_layers(model)):
        return int(
            sum(int(np.prod(w.shape)) for la in walk_layers(model) for w in layer_weights(la))
        )
    return int(sum(int(np.prod(w.shape)) for w in model.weights))


def check_finite_weights(model) -> None:
    """Raises NonFiniteError naming the first weight that holds NaN or Inf."""
    for w in model.weights:
        value = np.asarray(w.numpy() if hasattr(w, "numpy") else w)
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            bad = int((~np.isfinite(value)).sum())
            raise NonFiniteError(
                f"The model's weight '{getattr(w, 'path', None) or w.name}' contains NaN or Inf. "
                f"Expected finite weights (check the training run). Received: {bad} non-finite "
                f"of {value.size} values"
            )


# tfmot's wrappers: the layer they wrap keeps the user's name and the weights.
_ENGINE_WRAPPERS = ("QuantizeWrapper", "QuantizeWrapperV2", "PruneLowMagnitude", "ClusterWeights")
_ENGINE_LAYERS = ("QuantizeLayer",)  # the input quantizer QAT adds


def walk_layers(model):
    """Yields every layer, descending into nested models; skips QAT's input quantizer.

    tfmot's wrappers are yielded as they are: `layer_name`, `layer_type` and
    `layer_weights` see through them.
    """
    for layer in model.layers:
        if hasattr(layer, "layers") and _compat.is_keras_model(layer):
            yield from walk_layers(layer)
        elif type(layer).__name__ not in _ENGINE_LAYERS:
            yield layer


def _wrapped(layer):
    return layer.layer if type(layer).__name__ in _ENGINE_WRAPPERS else None


def layer_name(layer) -> str:
    """The user's name of a layer, also inside a tfmot wrapper."""
    inner = _wrapped(layer)
    return inner.name if inner is not None else layer.name


def layer_type(layer) -> str:
    inner = _wrapped(layer)
    return type(inner if inner is not None else layer).__name__


def layer_weights(layer) -> list:
    """The layer's own weights; for a tfmot wrapper, the wrapped layer's (not the
    quantizer ranges, masks or centroids the wrapper adds). QAT moves the kernel
    from the wrapped layer to the wrapper, under the wrapped layer's name."""
    inner = _wrapped(layer)
    if inner is None:
        return list(layer.weights)
    prefix = f"{inner.name}/"
    own = [w for w in layer.weights if (getattr(w, "path", None) or w.name).startswith(prefix)]
    return own or list(inner.weights)


def output_layer(model):
    """The layer that produces the model's first output (inside nested models too)."""
    from keras_squeeze.core import graph

    layer = graph.producer(model.outputs[0]) or model.layers[-1]
    while _compat.is_keras_model(layer) and getattr(layer, "outputs", None):
        layer = graph.producer(layer.outputs[0]) or layer.layers[-1]
    return layer
