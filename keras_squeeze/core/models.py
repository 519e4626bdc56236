"""Loading and inspecting Keras models of either flavour."""

from __future__ import annotations

import contextlib
import copy as pycopy
import dataclasses
import inspect
import os
import pathlib
import threading
import weakref
import zipfile
from collections.abc import Mapping

import numpy as np

from keras_squeeze import _compat
from keras_squeeze.core import graph
from keras_squeeze.data import inputs as data_inputs
from keras_squeeze.data.inputs import InputSpec, Samples, batched_call
from keras_squeeze.errors import DataError, ModelError, NonFiniteError

_H5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _describe(obj) -> str:
    if isinstance(obj, (str, os.PathLike)):
        return f"'{os.fspath(obj)}'"
    return f"an object of type {type(obj).__module__}.{type(obj).__qualname__}"


def load_model(
    path,
    custom_objects: dict | None = None,
    compile: bool = True,
    *,
    allow_unsafe_deserialization: bool = False,
):
    """Loads a Keras model from a .keras file, an .h5 file or a SavedModel directory.

    .keras files load with Keras 3 (falling back to tf_keras for files tf_keras
    wrote), .h5 files with tf_keras (falling back to Keras 3), SavedModel
    directories written by tf_keras `model.save()` with tf_keras. A SavedModel
    without Keras metadata (e.g. from Keras 3 `model.export()`) is wrapped in a
    Keras 3 model around its `serving_default` signature, which serves the
    post-training recipes.

    Model files are untrusted: Keras' `safe_mode` stays on, and before
    anything is deserialized the file is checked (HDF5 data in a child
    process, see `keras_squeeze.safety`) and refused if its configuration
    carries Python code: a Lambda layer's bytecode, or a reference to a
    function or class outside Keras that is neither in `custom_objects` nor
    registered (tf_keras runs such code for .h5 files whatever its safe mode).

    Args:
        path: file or directory path.
        custom_objects: custom layer classes and functions, by name.
        compile: restore the compiled loss/optimizer when the file has them;
            a file whose model loads but whose compiled state does not is
            loaded uncompiled.
        allow_unsafe_deserialization: load a file that carries Python code
            (Lambda layers) and run that code; only for files you trust.

    Returns:
        A Keras 3 or tf_keras `Model`.

    Raises:
        ModelError: the path does not exist, does not hold a Keras model, is
            damaged, or carries Python code without allow_unsafe_deserialization.

    Example:
        >>> model = ks.load_model("model.keras")
        >>> trusted = ks.load_model("lambda_model.h5", allow_unsafe_deserialization=True)
    """
    from keras_squeeze.safety import model_files
    from keras_squeeze.safety.paths import fs_path

    p = fs_path(path, "model path", ModelError)
    if not p.exists():
        raise ModelError(
            f"The model path does not exist. Expected a .keras or .h5 file or a "
            f"SavedModel directory. Received: '{p}'"
        )
    if p.is_dir():
        return _load_saved_model(p, custom_objects, compile, allow_unsafe_deserialization)
    try:
        with open(p, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise ModelError(
            f"The model file cannot be read. Expected a readable .keras or .h5 file. "
            f"Received: '{p}' ({e.strerror or e})"
        ) from e
    if head != _H5_MAGIC and not zipfile.is_zipfile(p):
        raise ModelError(
            "The file is not a Keras model. Expected a .keras archive, an .h5 file or a "
            f"SavedModel directory. Received: '{p}' ({p.stat().st_size} bytes, starting {head!r})"
        )
    loaders = model_files.check_model_file(p, custom_objects, allow_unsafe_deserialization)
    errors = []
    # Then without the compiled loss and optimizer: tf_keras >= 2.13 writes a
    # custom activation function into .h5 in a form its own .h5 reader refuses,
    # which Keras 3 reads, but not the tf_keras loss config saved beside it.
    attempts = [(f, compile) for f in loaders] + ([(f, False) for f in loaders] if compile else [])
    for flavour, with_compile in attempts:
        k = _compat.keras_module(flavour)
        try:
            model = k.models.load_model(
                p,
                custom_objects=custom_objects,
                compile=with_compile,
                safe_mode=not allow_unsafe_deserialization,
            )
        except Exception as e:  # try the other flavour before giving up
            if with_compile == compile:
                errors.append(f"{flavour}: {type(e).__name__}: {' '.join(str(e).split())[:500]}")
            continue
        return ensure_model(model, "the loaded file")
    raise ModelError(
        f"The file could not be loaded as a Keras model. Expected a model saved by Keras 3 or "
        f"tf_keras (pass custom_objects= for custom layers). Received: '{p}'. " + " | ".join(errors)
    )


def _load_saved_model(p: pathlib.Path, custom_objects, compile, allow_unsafe: bool = False):
    from keras_squeeze.safety import model_files

    if not (p / "saved_model.pb").is_file():
        raise ModelError(
            "The directory is not a SavedModel. Expected a directory with saved_model.pb. "
            f"Received: '{p}'"
        )
    model_files.check_saved_model_graph(p, allow_unsafe)
    if (p / "keras_metadata.pb").is_file():
        import tf_keras

        model_files.check_saved_model(p, custom_objects, allow_unsafe)
        try:
            return tf_keras.models.load_model(p, custom_objects=custom_objects, compile=compile)
        except Exception as e:
            raise ModelError(
                f"The SavedModel could not be loaded as a tf_keras model. Expected a model saved "
                f"by tf_keras. Received: '{p}' "
                f"({type(e).__name__}: {' '.join(str(e).split())[:500]})"
            ) from e
    import keras
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(p))
        signatures = dict(loaded.signatures)
    except Exception as e:  # OSError, DataLossError, KeyError, ... of a damaged SavedModel
        raise ModelError(
            "The SavedModel could not be loaded: it is damaged or incomplete. Expected a "
            "directory written by tf.saved_model.save or Keras' model.export(). Received: "
            f"'{p}' ({type(e).__name__}: {' '.join(str(e).split())[:500]})"
        ) from e
    signature = signatures.get("serving_default")
    if signature is None:
        raise ModelError(
            "The SavedModel has no 'serving_default' signature. Expected a SavedModel exported "
            f"for serving. Received: signatures {sorted(signatures)} in '{p}'"
        )
    try:
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
    except Exception as e:
        raise ModelError(
            "The SavedModel's serving_default signature cannot be wrapped as a Keras model. "
            "Expected a signature of named tensor inputs with a batch axis. Received: "
            f"'{p}' ({type(e).__name__}: {' '.join(str(e).split())[:500]})"
        ) from e
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
            "Expected a Sequential or functional model (on subclassed models the post-training "
            "recipes 'dynamic', 'float16', 'int8' and 'int16x8' work, and 'prune' and 'cluster' "
            "run natively: engine='auto' or 'native'). Received: a subclassed model of class "
            f"{type(model).__name__}"
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


def resolve_model(
    model, custom_objects: dict | None = None, *, allow_unsafe_deserialization: bool = False
):
    """A model object from a model or a path (loaded with `load_model`)."""
    if isinstance(model, (str, os.PathLike)):
        return load_model(
            model,
            custom_objects=custom_objects,
            allow_unsafe_deserialization=allow_unsafe_deserialization,
        )
    return ensure_model(model)


def input_specs(model) -> list[InputSpec]:
    """The model's inputs as InputSpecs, in the model's input order.

    Sequential and functional models give their `keras.Input`s. A subclassed
    model has no symbolic inputs: its signature is the one `resolve_signature`
    verified for it (`compress()` and the exporters resolve it from
    `input_signature=` or the data), else the shapes Keras recorded when it was
    built (see `recorded_signature`).

    Raises:
        ModelError: the model has no defined inputs (an unbuilt Sequential or a
            subclassed model that was never built or called on data).
    """
    import tensorflow as tf

    tensors = _symbolic_inputs(model)
    if not tensors:
        signature = signature_of(model) or recorded_signature(model)
        if signature is not None:
            return list(signature.specs)
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


def _symbolic_inputs(model) -> list:
    try:
        return list(model.inputs or [])
    except (AttributeError, ValueError):
        return []


# -- the input signature of a model without symbolic inputs ---------------------------------


@dataclasses.dataclass(frozen=True)
class Signature:
    """The inputs a model is called with, and where that was learnt.

    Attributes:
        specs: one InputSpec per input (shape without the batch axis).
        structure: how the inputs are passed to the model: "single" (one
            tensor), "list" (a list, in spec order) or "dict" (by spec name).
        source: where the signature came from ("input_signature",
            "representative_data", "the shapes Keras recorded", ...).
        batch: the batch size its exports take: None (free), or fixed (the
            batch-1 copy `fixed_batch_copy` makes for the .tflite).
    """

    specs: tuple[InputSpec, ...]
    structure: str
    source: str
    batch: int | None = None  # the batch the traced function takes (None: free)

    def describe(self) -> str:
        """E.g. "args_0 (None, 8, 8, 1) float32"."""
        return ", ".join(f"{s.name} {(None, *s.shape)} {s.dtype}" for s in self.specs)


# Signatures verified for models without symbolic inputs, by model (the model itself is
# never changed; the entry goes when the model does).
_SIGNATURES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_SIGNATURES_LOCK = threading.Lock()
DATA_ARGUMENTS = ("representative_data", "validation_data", "train_data")


def signature_of(model) -> Signature | None:
    """The signature `resolve_signature` verified for `model`, or None."""
    with _SIGNATURES_LOCK:
        return _SIGNATURES.get(model)


def _remember(model, signature: Signature) -> None:
    with _SIGNATURES_LOCK:
        _SIGNATURES[model] = signature


def _input_dtype(model) -> str:
    import tensorflow as tf

    dtype = getattr(model, "input_dtype", None) or getattr(model, "dtype", None) or "float32"
    return tf.as_dtype(dtype).name


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


def _specs(names, shapes, dtypes) -> tuple[InputSpec, ...]:
    return tuple(
        InputSpec(name=n, shape=tuple(None if d is None else int(d) for d in s), dtype=t)
        for n, s, t in zip(names, shapes, dtypes, strict=True)
    )


def _structure(count: int) -> str:
    return data_inputs.SINGLE if count == 1 else data_inputs.LIST


def _build_defaults(model) -> dict:
    """The shape defaults of the class's own build(), for a model built with no arguments
    (Keras 3 then records an empty `_build_shapes_dict`)."""
    try:
        parameters = inspect.signature(model.build).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {
        p.name: p.default
        for p in parameters
        if p.default is not inspect.Parameter.empty
        and (_is_shape(p.default) or isinstance(p.default, Mapping))
    }


def recorded_signature(model) -> Signature | None:
    """The signature of a subclassed model from what Keras recorded, or None.

    Keras 3 records the shapes `build()` was called with (by the first call on
    data, as keras.export and the TFLite converter read them; dtype: the
    model's `input_dtype`; named `args_0`, `args_1`, ... like the converter's
    signature, or by key for a dict); a model built with `build()` and no
    arguments records nothing, and then the defaults of its class's `build()`
    are its shapes. tf_keras records the first call in `Model.save_spec()`
    (with its names).
    """
    import tensorflow as tf

    if _compat.keras_flavour(model) == _compat.KERAS3:
        recorded = getattr(model, "_build_shapes_dict", None)
        if not recorded and getattr(model, "built", False):
            recorded = _build_defaults(model)
        values = list((recorded or {}).values())
        if len(values) == 1 and isinstance(values[0], Mapping):
            shapes = dict(values[0])
            if not shapes or not all(_is_shape(v) for v in shapes.values()):
                return None
            dtype = _input_dtype(model)
            specs = _specs(list(shapes), [v[1:] for v in shapes.values()], [dtype] * len(shapes))
            return Signature(specs, data_inputs.DICT, "the shapes Keras recorded")
        if len(values) == 1 and not _is_shape(values[0]):
            values = list(values[0]) if isinstance(values[0], (list, tuple)) else []
        if not values or not all(_is_shape(v) and len(v) > 0 for v in values):
            return None
        names = [f"args_{i}" for i in range(len(values))]
        dtypes = [_input_dtype(model)] * len(values)
        specs = _specs(names, [tuple(v)[1:] for v in values], dtypes)
        return Signature(specs, _structure(len(specs)), "the shapes Keras recorded")
    save_spec = getattr(model, "save_spec", None)
    spec = save_spec(dynamic_batch=True) if callable(save_spec) else None
    if not spec:
        return None
    args, _ = spec
    first = args[0] if len(args) == 1 else args
    flat = tf.nest.flatten(args)
    if not flat or not all(isinstance(s, tf.TensorSpec) for s in flat):
        return None
    structure = data_inputs.DICT if isinstance(first, Mapping) else _structure(len(flat))
    names = (
        sorted(first)
        if structure == data_inputs.DICT
        else [s.name or f"args_{i}" for i, s in enumerate(flat)]
    )
    specs = _specs(names, [s.shape.as_list()[1:] for s in flat], [s.dtype.name for s in flat])
    return Signature(specs, structure, "the shapes Keras recorded")


_SIGNATURE_HINT = (
    "a list of tf.TensorSpec with the batch axis first (e.g. [tf.TensorSpec((None, 8, 8, 1), "
    "tf.float32)]), or of shapes (e.g. [(None, 8, 8, 1)]), or a dict of them by input name"
)


def _one_spec(value, name: str, model) -> InputSpec:
    import tensorflow as tf

    if hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, np.ndarray):
        shape = tf.TensorShape(value.shape)
        dims = None if shape.rank is None else shape.as_list()
        dtype = tf.as_dtype(value.dtype).name
        name = getattr(value, "name", None) or name
    elif _is_shape(value):
        dims, dtype = list(value), _input_dtype(model)
    else:
        dims, dtype = None, None
    if not dims:
        raise DataError(
            f"input_signature does not describe the model's inputs. Expected {_SIGNATURE_HINT}. "
            f"Received: {value!r}"
        )
    return InputSpec(
        name=name, shape=tuple(None if d is None else int(d) for d in dims[1:]), dtype=dtype
    )


def signature_from_argument(input_signature, model) -> Signature:
    """The Signature an `input_signature=` argument describes.

    Raises:
        DataError: not a TensorSpec, a shape, or a list or dict of them.
    """
    value = input_signature
    if isinstance(value, Mapping):
        specs = tuple(_one_spec(v, str(k), model) for k, v in value.items())
        return Signature(specs, data_inputs.DICT, "input_signature")
    if _is_shape(value) and value and not all(isinstance(v, (tuple, list)) for v in value):
        value = [value]  # one shape
    elif not isinstance(value, (list, tuple)):
        value = [value]
    if not value:
        raise DataError(
            f"input_signature is empty. Expected {_SIGNATURE_HINT}. Received: {input_signature!r}"
        )
    specs = tuple(_one_spec(v, f"args_{i}", model) for i, v in enumerate(value))
    return Signature(specs, _structure(len(specs)), "input_signature")


def _from_batch(batch: data_inputs.BatchInputs, model) -> Signature:
    dtype = _input_dtype(model)
    names = [n if n is not None else f"args_{i}" for i, n in enumerate(batch.names)]
    dtypes = [dtype if np.dtype(d).kind == "f" else d for d in batch.dtypes]
    return Signature(_specs(names, batch.shapes, dtypes), batch.structure, batch.source)


def _compatible(a: InputSpec, b: InputSpec) -> bool:
    return len(a.shape) == len(b.shape) and all(
        x is None or y is None or x == y for x, y in zip(a.shape, b.shape, strict=True)
    )


def _signature_from_data(model, data: dict) -> Signature | None:
    found = []
    for argument, value in data.items():
        if value is not None:
            batch, data[argument] = data_inputs.batch_inputs(value, argument)
            found.append(_from_batch(batch, model))
    for other in found[1:]:
        same = other.structure == found[0].structure and len(other.specs) == len(found[0].specs)
        if not same or not all(
            a.shape == b.shape for a, b in zip(found[0].specs, other.specs, strict=True)
        ):
            raise DataError(
                f"{found[0].source} and {other.source} feed the model inputs of different "
                "shapes, so they give no one input signature. Expected data of one shape (or "
                "input_signature= with None for the dimensions that vary). Received: "
                f"{found[0].describe()} from {found[0].source}, {other.describe()} from "
                f"{other.source}"
            )
    return found[0] if found else None


def resolve_signature(model, input_signature=None, data: dict | None = None):
    """The inputs `model` is called with, verified by calling it; remembered for the model.

    A model with symbolic inputs (functional, Sequential) has them (and an
    `input_signature` must agree with them; a Sequential built without an
    Input is refused, as `input_specs` says). A model without (subclassed)
    takes, in order: `input_signature`; the data given (`representative_data`,
    `validation_data`, `train_data`: the shapes and dtypes of one batch; float
    inputs take the model's input dtype); the shapes Keras recorded
    (`recorded_signature`). The model is then called once on zeros of that
    signature, and the signature kept for it (`signature_of`), so the
    converters, the exporters and the training loop call it the same way.

    Args:
        model: the model (not changed).
        input_signature: see `signature_from_argument`, or None.
        data: {argument name: data or None}, read in that order
            (`compress()` gives DATA_ARGUMENTS).

    Returns:
        (Signature, `data` to read from now on: a one-shot generator that was
        read comes back chained onto the batches read).

    Raises:
        ModelError: no signature can be found (naming what to give), the model's
            call() needs an argument no signature can supply, or the model
            cannot be called with the signature (what the call raised).
        DataError: a malformed input_signature, one that disagrees with the
            model's inputs, or data whose batches disagree in shape.
    """
    data = dict(data or {})
    if _symbolic_inputs(model) or is_graph_model(model):  # an unbuilt Sequential: refused
        specs = tuple(input_specs(model))
        signature = Signature(specs, _structure(len(specs)), "the model's inputs")
        if input_signature is not None:
            given = signature_from_argument(input_signature, model)
            if len(given.specs) != len(specs) or not all(
                _compatible(a, b) for a, b in zip(given.specs, specs, strict=True)
            ):
                raise DataError(
                    "input_signature does not match the model's inputs. Expected "
                    f"{signature.describe()} (or no input_signature: the model has its inputs). "
                    f"Received: {given.describe()}"
                )
        return signature, data
    check_call_arguments(model)
    if input_signature is not None:
        signature = signature_from_argument(input_signature, model)
    else:
        signature = (
            _signature_from_data(model, data) or signature_of(model) or recorded_signature(model)
        )
    if signature is None:
        raise ModelError(
            f"The model '{model.name}' has no defined inputs and nothing to read them from. "
            f"Expected input_signature= ({_SIGNATURE_HINT}), or data to read one batch's shapes "
            "from (representative_data=, validation_data= or train_data=), or a model called "
            f"once on a batch of data. Received: a {type(model).__name__} without inputs, no "
            "input_signature and no data"
        )
    check_call(model, signature)
    _remember(model, signature)
    return signature, data


def check_call_arguments(model) -> None:
    """Refuses a call() with required arguments besides its inputs and `training`.

    The converters, exporters and the training loop call a model as
    `model(inputs, training=...)`; a required `mask` (or other argument) has
    nothing to come from.

    Raises:
        ModelError: naming the argument and how to wrap the model.
    """
    try:
        parameters = list(inspect.signature(model.call).parameters.values())
    except (TypeError, ValueError):
        return
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    fixed = [p for p in parameters if p.kind not in variadic]
    first = fixed[0].name if fixed else None
    missing = [
        p.name
        for p in fixed
        if p.name not in (first, "training") and p.default is inspect.Parameter.empty
    ]
    if not missing:
        return
    masks = [n for n in missing if "mask" in n]
    others = [n for n in missing if "mask" not in n]
    unpack = ", ".join([first or "x", *masks])
    given = ", ".join([*(f"{n}={n}" for n in masks), *(f"{n}=..." for n in others)])
    line = f"{unpack} = inputs; " if masks else ""
    raise ModelError(
        f"The model's call() needs {', '.join(repr(n) for n in missing)}, which an input "
        "signature cannot supply: the converters, the exporters and the training loop call the "
        "model as model(inputs, training=...). Expected a call(inputs, training=None) whose "
        "other arguments have defaults; wrap the model so that "
        + ("the mask comes in as an input" if masks else "the argument gets its value")
        + ", e.g. class Wrapped(keras.Model): def __init__(self, inner): super().__init__(); "
        f"self.inner = inner / def call(self, inputs): {line}return self.inner("
        f"{first if masks else 'inputs'}, {given}). Received: call("
        f"{', '.join(p.name for p in parameters)}) of {type(model).__name__}"
    )


def check_call(model, signature: Signature) -> None:
    """Calls `model` once on zeros of `signature` (inference mode).

    Raises:
        ModelError: the call raised; the message says what it raised.
    """
    zeros = [
        np.zeros((2, *[1 if d is None else d for d in s.shape]), dtype=s.dtype)
        for s in signature.specs
    ]
    try:
        model(pack(signature, zeros), training=False)
    except Exception as e:
        first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), "")
        raise ModelError(
            f"The model cannot be called with the input signature {signature.describe()} (from "
            f"{signature.source}). Expected a signature its call() accepts: give input_signature="
            f"({_SIGNATURE_HINT}) with the shapes and dtypes it takes. Received: "
            f"{type(e).__name__}: {first[:300]}"
        ) from e


def pack(signature: Signature | None, arrays):
    """Arrays (one per input, in spec order) in the structure the model takes."""
    arrays = list(arrays)
    if signature is not None and signature.structure == data_inputs.DICT:
        return {s.name: a for s, a in zip(signature.specs, arrays, strict=True)}
    return arrays[0] if len(arrays) == 1 else arrays


def call_model(model, arrays, training: bool = False):
    """`model` on `arrays` (one per input, in input order), as its signature takes them."""
    return model(pack(signature_of(model), arrays), training=training)


def copy_model(model):
    """A copy of `model` with variables of its own holding the same values.

    Sequential and functional models are cloned (`clone_model`). A subclassed
    model, which `clone_model` cannot clone, is rebuilt from its class and
    config (`type(model).from_config(model.get_config())`; else its class
    called with the config entries its __init__ takes, e.g. none for
    `__init__(self)`; else a deep copy),
    built by one call on its signature, and given the model's weights; its
    layers take the model's layer names, so plans, skips and report rows name
    the same layers. The model itself is not changed.

    Raises:
        ModelError: the class cannot be rebuilt from its config nor deep-copied,
            the copy has other layers or weights, or it shares a variable with
            the model.
    """
    k = _compat.keras_module(_compat.keras_flavour(model))
    if is_graph_model(model):
        copy = k.models.clone_model(model)
        copy.set_weights(model.get_weights())
        return copy
    signature = signature_of(model) or recorded_signature(model)
    errors = []
    copy = None
    ways = {
        "from_config": lambda: type(model).from_config(model.get_config()),
        "constructor": lambda: _construct(model),
        "deepcopy": lambda: pycopy.deepcopy(model),
    }
    for how, make in ways.items():
        try:
            copy = make()
            break
        except Exception as e:  # try the next way before giving up
            errors.append(f"{how}: {type(e).__name__}: {str(e).splitlines()[0][:160]}")
    if copy is None:
        raise ModelError(
            f"The subclassed model '{model.name}' cannot be copied, and training works on a copy "
            "(your model is never changed). Expected a class that from_config(get_config()) "
            "rebuilds (a get_config() returning its constructor arguments) or that deep-copies. "
            f"Received: {type(model).__name__} ({'; '.join(errors)})"
        )
    if signature is not None:
        _remember(copy, signature)
        zeros = [
            np.zeros((1, *[1 if d is None else d for d in s.shape]), s.dtype)
            for s in signature.specs
        ]
        call_model(copy, zeros)
    try:
        copy.set_weights(model.get_weights())
    except Exception as e:
        raise ModelError(
            f"The copy of the subclassed model '{model.name}' does not hold the same weights. "
            "Expected from_config(get_config()) to rebuild the same layers. Received: "
            f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        ) from e
    own = [layer for layer in walk_layers(model)]
    new = [layer for layer in walk_layers(copy)]
    if [type(la).__name__ for la in own] != [type(la).__name__ for la in new]:
        raise ModelError(
            f"The copy of the subclassed model '{model.name}' has other layers. Expected the "
            f"layers {[type(la).__name__ for la in own][:8]}. Received: "
            f"{[type(la).__name__ for la in new][:8]}"
        )
    for theirs, ours in zip(own, new, strict=True):
        _rename(ours, theirs.name)
    _rename(copy, model.name)
    mine = {id(_tf_variable(v)) for v in model.weights}
    if any(id(_tf_variable(v)) in mine for v in copy.weights):
        raise ModelError(
            f"The copy of the subclassed model '{model.name}' shares variables with it, so "
            "training the copy would change your model. Expected a copy with variables of its "
            f"own. Received: {type(model).__name__}"
        )
    return copy


def _construct(model):
    """The model's class called with the config entries its __init__ takes (all of them for
    an __init__ with **kwargs; none for a bare __init__(self))."""
    try:
        config = dict(model.get_config() or {})
    except Exception:  # tf_keras subclassed models have no config by default
        config = {}
    parameters = inspect.signature(type(model).__init__).parameters.values()
    if not any(p.kind == inspect.Parameter.VAR_KEYWORD for p in parameters):
        config = {k: v for k, v in config.items() if k in {p.name for p in parameters}}
    return type(model)(**config)


def fixed_batch_copy(model, batch_size: int = 1):
    """A copy of a subclassed model whose traced function takes a fixed batch.

    Its exports (the .tflite above all) are traced at `batch_size`, so shapes
    fold into constants as for a functional model cloned on
    `keras.Input(batch_size=1)`. Checked to reproduce the model.

    Raises:
        ModelError: the model has no signature, cannot be copied, or the copy
            does not reproduce it (`core.batch.batch_one` then keeps the free
            batch and says why).
    """
    signature = signature_of(model) or recorded_signature(model)
    if signature is None:
        input_specs(model)  # raises, saying what is missing
    copy = copy_model(model)
    _remember(copy, dataclasses.replace(signature, batch=batch_size))
    rng = np.random.default_rng(0)
    feed = [
        rng.uniform(-1, 1, (batch_size, *[1 if d is None else d for d in s.shape])).astype(s.dtype)
        if np.dtype(s.dtype).kind == "f"
        else np.zeros((batch_size, *[1 if d is None else d for d in s.shape]), s.dtype)
        for s in signature.specs
    ]
    ours, theirs = (_flat_outputs(call_model(m, feed)) for m in (copy, model))
    for a, b in zip(ours, theirs, strict=True):
        if not np.allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6):
            raise ModelError(
                f"The fixed-batch copy of '{model.name}' does not reproduce the model. Expected "
                "identical outputs on the same input. Received: max abs difference "
                f"{float(np.max(np.abs(np.asarray(a) - np.asarray(b)))):.3g}"
            )
    return copy


def _flat_outputs(out) -> list:
    if isinstance(out, Mapping):
        return [out[k] for k in sorted(out)]
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _rename(layer, name: str) -> None:
    try:
        layer.name = name
    except AttributeError:  # tf_keras: a read-only property
        layer._name = name


def _tf_variable(variable):
    """The tf.Variable behind a Keras variable of either flavour."""
    if _compat.keras_flavour(variable) == _compat.KERAS3:
        return variable.value
    return variable


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


def output_shapes(model) -> list[tuple]:
    """Each output's shape without the batch axis, in output order.

    A subclassed model is run once on zeros of its signature (a free dimension
    taken as 1).
    """
    try:
        outputs = list(model.outputs or [])
    except (AttributeError, ValueError):
        outputs = []
    if outputs:
        return [tuple(o.shape[1:]) for o in outputs]
    specs = input_specs(model)
    zeros = [np.zeros((1, *[1 if d is None else d for d in s.shape]), dtype=s.dtype) for s in specs]
    out = call_model(model, zeros)
    if isinstance(out, Mapping):
        out = [out[k] for k in sorted(out)]
    out = out if isinstance(out, (list, tuple)) else [out]
    return [tuple(int(d) for d in o.shape[1:]) for o in out]


# From this many input values on, keras_outputs runs the model as one traced graph: eager
# calls of a large model on large inputs cost several times the graph's time (MobileNetV2
# at 224x224 on 100 samples here: 8.5 s eager, 2.6 s traced), while for small inputs the
# tracing would cost more than it saves.
GRAPH_MIN_VALUES = 2**22
# A batch holds at most this many input values (at least one sample): the activations of a
# large model grow with the batch (MobileNetV2 at 224x224: its batch of 64 held over 1 GB
# here), and small batches run as fast.
BATCH_MAX_VALUES = 2**19
# keras_outputs' batch before that cap.
DEFAULT_OUTPUTS_BATCH = 64


_memo = threading.local()


def _memo_key(model, samples, batch_size: int) -> tuple:
    """The entry of `model`'s outputs on `samples` in a `reused_outputs` table."""
    return (id(model), id(samples), batch_size)


@contextlib.contextmanager
def reused_outputs(table: dict | None = None):
    """Within it, keras_outputs of the same model on the same samples runs once.

    For spans where no model changes: compress() verifies its .tflite and
    save() checks each artifact against the outputs of the models they were
    made from. `table` (a dict kept by the caller) carries the memo from one
    span to a later one; it holds the models and samples it keys on.
    """
    outer = getattr(_memo, "table", None)
    _memo.table = outer if outer is not None else ({} if table is None else table)
    try:
        yield
    finally:
        if outer is None:
            _memo.table = None


def keras_outputs(
    model, samples: Samples, batch_size: int = DEFAULT_OUTPUTS_BATCH
) -> list[np.ndarray]:
    """The model's outputs (inference mode) as float arrays in output order.

    Large inputs (`GRAPH_MIN_VALUES`) run through a traced `tf.function` of the
    call; a model that cannot be traced runs eagerly. Within `reused_outputs()`
    a repeated call returns the first one's arrays.
    """
    table = getattr(_memo, "table", None)
    if table is None:
        return _keras_outputs(model, samples, batch_size)
    key = _memo_key(model, samples, batch_size)
    if key not in table:
        table[key] = (model, samples, _keras_outputs(model, samples, batch_size))
    return [a.copy() for a in table[key][2]]


class OutputsAhead:
    """keras_outputs of some models on some samples, computed in a background thread
    while the caller's thread converts another model, into a `reused_outputs` table.

    The TFLite converter's graph passes and its calibration keep about one core busy;
    the outputs compress() verifies the .tflite against are there when it finishes (on
    ResNet50 at 224x224 they took 7 s alone, hidden behind a 37 s conversion here). The
    thread runs only while `overlapping(busy)` holds and only when `busy`, the model the
    caller works on meanwhile, is none of the models it calls: no model is called from
    two threads. A failure in the thread leaves its entries out, so the caller's own
    keras_outputs runs them again in its thread and raises there.

    Args:
        table: the dict `reused_outputs(table)` will read.
        pairs: (model, Samples) to compute, in order.
    """

    def __init__(self, table: dict, pairs) -> None:
        self._table = table
        self._pairs = [(m, s) for m, s in pairs if s is not None and s.count]
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def overlapping(self, busy):
        """Runs the thread (once) during the block, unless `busy` is one of its models;
        waits for it at the end of the block."""
        start = self._thread is None and all(busy is not m for m, _ in self._pairs)
        if start:
            self._thread = threading.Thread(
                target=self._run, name="keras_squeeze-outputs-ahead", daemon=True
            )
            self._thread.start()
        try:
            yield
        finally:
            if start:
                self._thread.join()

    def _run(self) -> None:
        for model, samples in self._pairs:
            key = _memo_key(model, samples, DEFAULT_OUTPUTS_BATCH)
            if key in self._table:
                continue
            try:
                outputs = _keras_outputs(model, samples, DEFAULT_OUTPUTS_BATCH)
            except Exception:  # the caller's own call raises it, in its own thread
                return
            self._table[key] = (model, samples, outputs)


def capped_batch(arrays, batch_size: int) -> int:
    """`batch_size`, lowered so a batch of `arrays` (one per input) holds at most
    BATCH_MAX_VALUES input values (at least one sample)."""
    per_sample = sum(int(np.asarray(a)[:1].size) for a in arrays)
    return max(1, min(batch_size, BATCH_MAX_VALUES // max(per_sample, 1)))


def _keras_outputs(model, samples: Samples, batch_size: int) -> list[np.ndarray]:
    names = output_names(model)
    batch_size = capped_batch(samples.inputs, batch_size)
    call = call_model
    if sum(int(np.asarray(a).size) for a in samples.inputs) >= GRAPH_MIN_VALUES:
        call = _traced_call(model, samples)

    def run(batch):
        out = call(model, batch)
        if isinstance(out, dict):
            out = [out[n] for n in names]
        elif not isinstance(out, (list, tuple)):
            out = [out]
        return [np.asarray(o, dtype=np.float32) for o in out]

    return batched_call(run, samples, batch_size)


def _traced_call(model, samples: Samples):
    """call_model as a traced graph (retraced at most for a new batch size), checked on the
    first sample against the eager call; call_model itself when tracing fails or disagrees."""
    import tensorflow as tf

    traced = tf.function(
        lambda *arrays: call_model(model, list(arrays)), reduce_retracing=True, autograph=False
    )
    first = samples.batch(0, 1)
    try:
        graph_out = tf.nest.flatten(traced(*first))
    except Exception:  # not traceable (e.g. Python-side state in call): run it eagerly
        return call_model
    eager_out = tf.nest.flatten(call_model(model, first))
    agree = len(graph_out) == len(eager_out) and all(
        np.allclose(np.asarray(g), np.asarray(e), rtol=1e-4, atol=1e-5)
        for g, e in zip(graph_out, eager_out, strict=True)
    )
    if not agree:
        return call_model
    return lambda _model, arrays: traced(*arrays)


def _traced_output_names(model) -> list[str]:
    specs = input_specs(model)
    zeros = [np.zeros((1, *[1 if d is None else d for d in s.shape]), dtype=s.dtype) for s in specs]
    out = call_model(model, zeros)
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
    `layer_weights` see through them. A subclassed model has no layer graph:
    its layers are the innermost layers it tracks (`_flatten_layers`, in the
    order the model tracks them: the order of assignment in `__init__`).
    """
    if not is_graph_model(model):
        for layer in model._flatten_layers(include_self=False, recursive=True):
            if not any(True for _ in layer._flatten_layers(include_self=False, recursive=False)):
                yield layer
        return
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


def _within(variable) -> str:
    """A weight's name inside its layer ("query/kernel" of "mha_3/query/kernel:0")."""
    name = (getattr(variable, "path", None) or variable.name).split(":")[0]
    return name.split("/", 1)[-1]


def copy_weights(source, target) -> None:
    """Sets `target`'s weights from `source`, a model of the same architecture (a clone),
    layer by layer and each weight by its name within its layer, so a layer that lists
    its weights in another order (tfmot's stripped MultiHeadAttention) still gets each
    one right.

    Raises:
        ValueError: the two models differ in their layers or weight names.
    """
    for layer, other in zip(walk_layers(source), walk_layers(target), strict=True):
        source = layer.get_weights()
        values = {_within(w): v for w, v in zip(layer.weights, source, strict=True)}
        wanted = [_within(w) for w in other.weights]
        if sorted(wanted) == sorted(values):
            other.set_weights([values[name] for name in wanted])
        elif [tuple(w.shape) for w in other.weights] == [v.shape for v in source]:
            # names that differ between a layer and its clone (an RNN's "gru_cell/kernel"
            # against "kernel"): the order of a layer of the same shapes is the same
            other.set_weights(source)
        else:
            raise ValueError(
                f"layer '{other.name}' holds weights {wanted}, its source '{layer.name}' "
                f"{sorted(values)}"
            )


def in_built_order(model):
    """`model` unchanged when every layer lists its weights as a freshly built one would,
    else a clone whose layers do, each weight placed by its name (a functional or
    Sequential model of either flavour). A model Keras cannot clone is returned as it is:
    `copy_weights` places weights by name wherever a later copy is made."""
    k = _compat.keras_module(_compat.keras_flavour(model))
    try:
        copy = k.models.clone_model(model)
    except Exception:  # a graph Keras cannot clone (a layer on a constant) stays as it is
        return model
    pairs = zip(walk_layers(model), walk_layers(copy), strict=True)
    if all([_within(w) for w in a.weights] == [_within(w) for w in b.weights] for a, b in pairs):
        return model
    copy_weights(model, copy)
    return copy


def output_layer(model):
    """The layer that produces the model's first output (inside nested models too)."""
    from keras_squeeze.core import graph

    layer = graph.producer(model.outputs[0]) or model.layers[-1]
    while _compat.is_keras_model(layer) and getattr(layer, "outputs", None):
        layer = graph.producer(layer.outputs[0]) or layer.layers[-1]
    return layer
