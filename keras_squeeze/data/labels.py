"""Labels for models with one or several outputs: read, matched to the outputs, told apart.

Accepted forms (Keras conventions), for each element of the data:
- one array: the labels of a one-output model;
- a list or tuple of arrays, one per output, in the model's output order;
- a dict of arrays keyed by output name.

An output's labels are class ids `(n,)` or `(n, 1)` for a `(batch, classes)`
output, or an array of the output's own shape `(n, *shape)`: one-hot or soft
rows for a classifier, targets for a regression output (boxes, embeddings,
dense maps). Plain numpy; no TensorFlow.

Example:
    >>> outputs = output_specs(model)              # [OutputSpec('classes', (3,)), ...]
    >>> per_output({"box": boxes, "classes": ids}, outputs, "train_data")
    [ids, boxes]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from keras_squeeze.errors import DataError

CLASSIFICATION = "classification"
REGRESSION = "regression"
# Soft or one-hot rows sum to one up to this.
_ROW_SUM_TOLERANCE = 1e-3


@dataclasses.dataclass(frozen=True)
class OutputSpec:
    """One model output: name and shape without the batch axis (None when unknown)."""

    name: str
    shape: tuple[int | None, ...] | None


def output_specs(model) -> list[OutputSpec]:
    """The model's outputs, in order (shapes unknown for a model without symbolic outputs)."""
    from keras_squeeze.core import models

    names = models.output_names(model)
    try:
        outputs = list(model.outputs or [])
    except (AttributeError, ValueError):
        outputs = []
    if len(outputs) != len(names):
        shapes = _traced_shapes(model, names)
        return [OutputSpec(n, shape) for n, shape in zip(names, shapes, strict=True)]
    return [
        OutputSpec(n, tuple(None if d is None else int(d) for d in o.shape[1:]))
        for n, o in zip(names, outputs, strict=True)
    ]


def _traced_shapes(model, names) -> list:
    """Output shapes of a model without symbolic outputs, from one run on zeros."""
    from keras_squeeze.core import models

    try:
        specs = models.input_specs(model)
        if any(d is None for s in specs for d in s.shape):
            return [None] * len(names)  # output sizes may follow the free input sizes
        zeros = [np.zeros((1, *[1 if d is None else d for d in s.shape]), s.dtype) for s in specs]
        out = models.call_model(model, zeros)  # packed as the model takes them (a dict, ...)
    except Exception:  # a model that cannot run on zeros: shapes stay unknown
        return [None] * len(names)
    if isinstance(out, Mapping):
        out = [out[n] for n in names]
    out = list(out) if isinstance(out, (list, tuple)) else [out]
    if len(out) != len(names):
        return [None] * len(names)
    return [tuple(int(d) for d in np.shape(o)[1:]) for o in out]


def _dims(shape) -> str:
    return ", ".join(["n", *("None" if d is None else str(d) for d in shape)])


def _is_array(value) -> bool:
    """An array-like that is not a Python list (numpy, TF, JAX arrays and scalars)."""
    return hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, type)


def _as_array(value, argument: str, what: str) -> np.ndarray:
    if hasattr(value, "numpy") and callable(value.numpy):
        value = value.numpy()
    try:
        arr = np.asarray(value)
    except ValueError as e:  # ragged nested lists
        raise DataError(
            f"{argument}'s {what} cannot be read as an array. Expected one array of labels, a "
            "list of arrays (one per model output) or a dict keyed by output name. Received: "
            f"{type(value).__name__} ({e})"
        ) from e
    if arr.dtype.kind not in "biuf":
        raise DataError(
            f"{argument}'s {what} are not numbers. Expected numeric labels. Received: dtype "
            f"{arr.dtype}"
        )
    return arr


def read(y, count: int, argument: str, single: bool = False):
    """One element's labels as numpy, keeping their structure, with `count` samples each.

    Args:
        y: labels of one element: an array, a list / tuple of arrays or a dict of arrays.
        count: the element's number of input samples.
        argument: the argument name, for messages.
        single: the element is one sample without a batch axis (labels get one too).

    Returns:
        An array, a list of arrays or a dict of arrays.

    Raises:
        DataError: unreadable labels, or a label count other than `count`.
    """
    if isinstance(y, Mapping):
        return {str(k): _leaf(v, count, argument, single, f"labels '{k}'") for k, v in y.items()}
    if isinstance(y, (list, tuple)) and y and all(_is_array(v) for v in y):
        return [_leaf(v, count, argument, single, f"labels #{i}") for i, v in enumerate(y)]
    return _leaf(y, count, argument, single, "labels")


def _leaf(value, count, argument, single, what) -> np.ndarray:
    arr = _as_array(value, argument, what)
    if single or arr.ndim == 0:
        arr = arr[None]
    if len(arr) != count:
        raise DataError(
            f"{argument} has a different number of labels than inputs. Expected {count} labels. "
            f"Received: {len(arr)}" + ("" if what == "labels" else f" ({what})")
        )
    return arr


def _kind(labels) -> str:
    if isinstance(labels, Mapping):
        return f"a dict with keys {sorted(labels)}"
    if isinstance(labels, list):
        return f"a list of {len(labels)} arrays"
    return "one array"


def concatenate(chunks: list, argument: str):
    """Chunks of labels read by `read`, joined along the sample axis (same structure each)."""
    first = chunks[0]
    for chunk in chunks[1:]:
        same = type(chunk) is type(first) and (
            (isinstance(first, Mapping) and sorted(chunk) == sorted(first))
            or (isinstance(first, list) and len(chunk) == len(first))
            or isinstance(first, np.ndarray)
        )
        if not same:
            raise DataError(
                f"{argument} changes the form of its labels from one batch to the next. "
                f"Expected the same structure in every batch. Received: {_kind(first)}, then "
                f"{_kind(chunk)}"
            )
    if isinstance(first, Mapping):
        return {k: np.concatenate([c[k] for c in chunks]) for k in first}
    if isinstance(first, list):
        return [np.concatenate([c[i] for c in chunks]) for i in range(len(first))]
    return np.concatenate(chunks)


def per_output(labels, outputs: Sequence[OutputSpec], argument: str):
    """Labels matched to the outputs and checked against their shapes.

    Returns:
        The one array for a one-output model, else a list with one array per
        output in the model's output order.

    Raises:
        DataError: a structure that does not match the outputs (a list of the
            wrong length, unknown or missing dict keys, one array for several
            outputs) or an output's labels of the wrong shape.
    """
    names = [o.name for o in outputs]
    if isinstance(labels, Mapping):
        unknown = [k for k in labels if k not in names]
        if unknown:
            raise DataError(
                f"{argument} has labels keyed by names that are not outputs of the model: "
                f"{unknown}. Expected keys among the model's outputs {names}. Received: keys "
                f"{sorted(labels)}"
            )
        missing = [n for n in names if n not in labels]
        if missing:
            raise DataError(
                f"{argument} has no labels for output(s) {missing}. Expected one entry per "
                f"output: {names}. Received: keys {sorted(labels)}"
            )
        arrays = [labels[n] for n in names]
    elif isinstance(labels, list):
        if len(labels) != len(names):
            raise DataError(
                f"{argument} gives {len(labels)} label arrays for a model with {len(names)} "
                f"output(s). Expected one array per output, in order {names} (or a dict keyed "
                f"by output name). Received: arrays of shapes "
                f"{[tuple(np.shape(a)) for a in labels]}"
            )
        arrays = list(labels)
    else:
        if len(names) != 1:
            raise DataError(
                f"{argument} gives one label array to a model with {len(names)} outputs. "
                f"Expected a list of {len(names)} arrays in the order {names}, or a dict keyed "
                f"by output name. Received: an array of shape {tuple(np.shape(labels))}"
            )
        arrays = [labels]
    for arr, spec in zip(arrays, outputs, strict=True):
        check_shape(arr, spec, argument)
    return arrays[0] if len(names) == 1 else arrays


def _fits(got: tuple, want: tuple) -> bool:
    return len(got) == len(want) and all(
        w is None or g == w for g, w in zip(got, want, strict=True)
    )


def check_shape(labels: np.ndarray, spec: OutputSpec, argument: str) -> None:
    """Refuses labels that are neither class ids for a classifier output nor of its shape.

    Raises:
        DataError: naming the output, the shape expected and the one received.
    """
    if spec.shape is None:
        return
    labels = np.asarray(labels)
    got, want = tuple(labels.shape[1:]), tuple(spec.shape)
    if _fits(got, want) or (want == (1,) and got == ()):
        return
    classes = want[0] if is_classifier_shape(want) else None
    if classes is not None and got in ((), (1,)):
        if labels.size and not _integral(labels):
            raise DataError(
                f"{argument}'s labels for output '{spec.name}' are one value per sample but not "
                f"class ids. Expected class ids (integers in [0, {classes})) or labels of shape "
                f"({_dims(want)}). Received: non-integer values of shape {tuple(labels.shape)}"
            )
        low, high = (int(labels.min()), int(labels.max())) if labels.size else (0, 0)
        if low < 0 or high >= classes:
            bad = high if high >= classes else low
            raise DataError(
                f"{argument}'s labels for output '{spec.name}' hold class id {bad}, outside its "
                f"{classes} classes. Expected class ids in [0, {classes}). Received: ids from "
                f"{low} to {high}"
            )
        return
    ids = f" or class ids of shape (n,) for its {classes} classes" if classes else ""
    raise DataError(
        f"{argument}'s labels for output '{spec.name}' do not match its shape. Expected labels "
        f"of shape ({_dims(want)}){ids}. Received: an array of shape {tuple(labels.shape)}"
    )


def _integral(labels: np.ndarray) -> bool:
    if labels.dtype.kind in "biu":
        return True
    return bool(np.all(np.isfinite(labels)) and np.all(labels == np.round(labels)))


def is_classifier_shape(shape) -> bool:
    """A (classes,) output shape with at least two classes."""
    return shape is not None and len(shape) == 1 and shape[0] is not None and shape[0] >= 2


def is_class_ids(labels: np.ndarray, classes: int) -> bool:
    """One integer in [0, classes) per sample."""
    labels = np.asarray(labels)
    if labels.ndim > 2 or (labels.ndim == 2 and labels.shape[1] != 1) or not _integral(labels):
        return False
    return not labels.size or (labels.min() >= 0 and labels.max() < classes)


def is_distribution(labels: np.ndarray, classes: int) -> bool:
    """One-hot or soft rows: non-negative, `classes` wide, each summing to one."""
    labels = np.asarray(labels, dtype=np.float64)
    if labels.ndim != 2 or labels.shape[1] != classes:
        return False
    return bool(
        np.all(labels >= 0) and np.allclose(labels.sum(axis=1), 1.0, atol=_ROW_SUM_TOLERANCE)
    )


def role(spec: OutputSpec, labels: np.ndarray | None, loss_role: str | None = None) -> str:
    """Whether an output is a classifier or a regression output (boxes, embeddings, maps).

    A `(batch, classes >= 2)` output is a classifier unless its loss (given
    or compiled) is a regression loss, or its labels are neither class ids
    nor one-hot / soft rows; every other output is a regression output.
    """
    if not is_classifier_shape(spec.shape):
        return REGRESSION
    if loss_role is not None:
        return loss_role
    if labels is None:
        return CLASSIFICATION
    classes = spec.shape[0]
    if is_class_ids(labels, classes) or is_distribution(labels, classes):
        return CLASSIFICATION
    return REGRESSION


def describe(labels, classes: int | None) -> str:
    """'class ids', 'one-hot' or 'targets', for the report."""
    labels = np.asarray(labels)
    if classes is not None and is_distribution(labels, classes):
        return "one-hot"
    if classes is not None and is_class_ids(labels, classes):
        return "class ids"
    return "targets"
