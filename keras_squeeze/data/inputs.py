"""Turns every accepted form of data into bounded, validated numpy samples.

Accepted forms (Keras conventions):
- a numpy array (or anything `np.asarray` takes): a batch of inputs, sample axis first;
- a tuple `(x, y)` or `(x, y, sample_weight)`: inputs and labels;
- a list (one entry per model input) or a dict keyed by input name: multi-input;
- a `tf.data.Dataset` of any of the above, batched or not;
- a generator, iterator or callable returning one (TFLite's
  `representative_dataset` style), yielding any of the above, batched or not.

Samples are taken once into memory, so a one-shot generator can serve
calibration and verification alike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from keras_squeeze.data import labels as labels_mod
from keras_squeeze.errors import DataError, NonFiniteError


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """One model input: name, shape without the batch axis, numpy dtype name.

    `vocab` is the vocabulary size of an integer (token id) input read by an
    Embedding (its `input_dim`: valid ids are 0 .. vocab - 1), else None.
    """

    name: str
    shape: tuple[int | None, ...]
    dtype: str
    vocab: int | None = None


@dataclasses.dataclass
class Samples:
    """Inputs (one stacked array per model input) and labels, if any.

    Attributes:
        inputs: one array per model input, each `(count, *shape)`.
        labels: class ids `(count,)` or raw targets, or None without labels;
            for a model with several outputs a list (one array per output, in
            output order) when the outputs were known, else the structure given
            (a list or a dict of arrays; see `data.labels`).
        count: number of samples taken.
        available: number of samples the source had, when known.
        source: the argument the samples came from, e.g. "representative_data".
    """

    inputs: list[np.ndarray]
    labels: np.ndarray | None
    count: int
    available: int | None
    source: str

    def batch(self, start: int, stop: int) -> list[np.ndarray]:
        return [a[start:stop] for a in self.inputs]

    def describe(self) -> str:
        if self.available is not None and self.available > self.count:
            return f"{self.count} of {self.available} samples from {self.source}"
        if self.available is None:
            return f"the first {self.count} samples from {self.source}"
        return f"{self.count} samples from {self.source}"


def _is_dataset(data) -> bool:
    return type(data).__module__.startswith("tensorflow") and hasattr(data, "element_spec")


def _to_numpy(value):
    if hasattr(value, "numpy") and callable(value.numpy):
        value = value.numpy()
    return value


def split_element(element, num_inputs: int):
    """Splits one element into (inputs, labels) following Keras conventions."""
    element = _to_numpy(element) if not isinstance(element, (tuple, list, Mapping)) else element
    if isinstance(element, tuple):
        if len(element) in (2, 3):
            return element[0], element[1]
        if len(element) == 1:
            return element[0], None
        if len(element) == num_inputs:
            return list(element), None
        raise DataError(
            "A tuple of data must be (x, y) or (x, y, sample_weight). "
            f"Expected a tuple of length 1 to 3. Received: a tuple of length {len(element)}"
        )
    return element, None


def as_input_list(x, specs: Sequence[InputSpec], argument: str) -> list[np.ndarray]:
    if isinstance(x, Mapping):
        missing = [s.name for s in specs if s.name not in x]
        if missing:
            raise DataError(
                f"{argument} is a dict without an entry for every model input. "
                f"Expected keys {[s.name for s in specs]}. Received: keys {sorted(x)}"
            )
        return [_to_numpy(x[s.name]) for s in specs]
    if isinstance(x, (list, tuple)) and len(specs) > 1:
        if len(x) != len(specs):
            raise DataError(
                f"{argument} does not give one array per model input. "
                f"Expected {len(specs)} arrays ({', '.join(s.name for s in specs)}). "
                f"Received: {len(x)}"
            )
        return [_to_numpy(v) for v in x]
    if len(specs) > 1:
        raise DataError(
            f"{argument} gives a single array to a model with {len(specs)} inputs. "
            f"Expected a list or dict of arrays for {', '.join(s.name for s in specs)}. "
            f"Received: {type(x).__name__}"
        )
    if isinstance(x, list) and len(x) == 1 and np.ndim(x[0]) == len(specs[0].shape) + 1:
        x = x[0]  # [batch] for a single-input model
    return [_to_numpy(x)]


def _dims(shape) -> str:
    return ", ".join("None" if d is None else str(d) for d in shape)


def _check_array(arr, spec: InputSpec, argument: str, batched: bool | None) -> np.ndarray:
    """Validates one input array against its spec; returns it batched and cast."""
    try:
        arr = np.asarray(arr)
    except Exception as e:  # ragged lists and the like
        raise DataError(
            f"{argument} cannot be read as an array for input '{spec.name}'. "
            f"Expected numeric arrays. Received: {type(arr).__name__} ({e})"
        ) from e
    if arr.dtype.kind not in "biuf":
        raise DataError(
            f"{argument} has non-numeric values for input '{spec.name}'. "
            f"Expected a numeric dtype castable to {spec.dtype}. Received: dtype {arr.dtype}"
        )
    rank = len(spec.shape)
    if batched is None:  # generators and datasets may yield single samples
        batched = arr.ndim == rank + 1
        if arr.ndim == rank:
            arr = arr[None]
    if arr.ndim != rank + 1 or any(
        want is not None and got != want
        for want, got in zip(spec.shape, arr.shape[1:], strict=True)
    ):
        hint = ""
        if arr.ndim == rank and rank > 0:
            hint = " (is the sample axis missing, or a channel axis?)"
        raise DataError(
            f"{argument} does not match the model's input '{spec.name}'{hint}. "
            f"Expected batches of shape (n, {_dims(spec.shape)}). "
            f"Received: an array of shape {tuple(arr.shape)}"
        )
    if np.dtype(spec.dtype).kind in "iu" and arr.dtype.kind == "f":
        _check_whole(arr, spec, argument)
    arr = arr.astype(spec.dtype, copy=False)
    if spec.vocab is not None and arr.size:
        _check_ids(arr, spec, argument)
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        bad = int(np.argwhere(~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1))[0][0])
        raise NonFiniteError(
            f"{argument} contains NaN or Inf (input '{spec.name}', sample {bad} of this batch). "
            "Expected finite values. Received: non-finite values"
        )
    return arr


def _check_whole(arr: np.ndarray, spec: InputSpec, argument: str) -> None:
    """Refuses fractional values for an integer input (token ids are never floats)."""
    finite = np.isfinite(arr)
    if not finite.all() or not np.array_equal(arr, np.round(arr)):
        bad = arr[~finite | (arr != np.round(np.where(finite, arr, 0)))].flat[0]
        raise DataError(
            f"{argument} has non-integer values for the integer input '{spec.name}' "
            f"({spec.dtype}). Expected whole numbers (e.g. token ids). Received: {bad!r}"
        )


def _check_ids(arr: np.ndarray, spec: InputSpec, argument: str) -> None:
    """Refuses token ids outside [0, spec.vocab): an Embedding has no row for them."""
    low, high = int(arr.min()), int(arr.max())
    if low < 0 or high >= spec.vocab:
        raise DataError(
            f"{argument} has token ids outside the vocabulary of input '{spec.name}'. "
            f"Expected ids in [0, {spec.vocab - 1}] (the Embedding's input_dim is {spec.vocab}). "
            f"Received: ids in [{low}, {high}]"
        )


def _element_iterator(data, argument: str) -> tuple[Iterator, int | None, bool | None]:
    """Returns (iterator over elements, known sample count, batched flag)."""
    if _is_dataset(data):
        return iter(data.as_numpy_iterator()), None, None
    if isinstance(data, (np.ndarray, tuple, list, Mapping)) or hasattr(data, "__array__"):
        return iter([data]), None, True
    if callable(data) and not isinstance(data, Iterator):
        data = data()
    if isinstance(data, Iterable):
        return iter(data), None, None
    raise DataError(
        f"{argument} is not a supported kind of data. Expected a numpy array, an (x, y) "
        "tuple, a list or dict of arrays, a tf.data.Dataset or a generator. "
        f"Received: {type(data).__name__}"
    )


def _first_output_labels(y, n: int, argument: str) -> np.ndarray:
    """Labels as one array; of a multi-output model (a list, tuple or dict of arrays), the
    first output's (the one accuracy is reported on).

    Raises:
        DataError: the labels of the outputs differ in length, or cannot form an array.
    """
    if isinstance(y, Mapping):
        parts = [_to_numpy(v) for v in y.values()]
    elif (
        isinstance(y, (list, tuple))
        and y
        and all(isinstance(_to_numpy(p), np.ndarray) and np.ndim(_to_numpy(p)) >= 1 for p in y)
    ):
        parts = [_to_numpy(p) for p in y]
    else:
        parts = None
    if parts is not None and len(parts) > 1:
        lengths = [len(p) for p in parts]
        if len(set(lengths)) != 1:
            raise DataError(
                f"{argument} has labels of different lengths for the model's outputs. Expected "
                f"{n} labels per output. Received: {lengths}"
            )
        y = parts[0]
    try:
        return np.asarray(_to_numpy(y))
    except (ValueError, TypeError) as e:
        raise DataError(
            f"{argument}'s labels cannot be read as an array. Expected one label array (or one "
            f"per model output, as a list or dict). Received: {type(y).__name__} "
            f"({' '.join(str(e).split())[:200]})"
        ) from e


def take_samples(
    data,
    specs: Sequence[InputSpec],
    limit: int | None,
    argument: str,
    outputs: Sequence[labels_mod.OutputSpec] | None = None,
) -> Samples:
    """Takes up to `limit` validated samples (and labels, if present) from `data`.

    Labels may be one array, a list of arrays (one per output) or a dict keyed
    by output name. With `outputs` (see `data.labels.output_specs`) they are
    matched to the model's outputs and checked against their shapes.

    Raises:
        DataError: the data is empty, of an unsupported kind, or does not fit
            the model's inputs or (with `outputs`) its outputs.
        NonFiniteError: the inputs contain NaN or Inf.
    """
    if limit is not None and limit < 1:
        raise DataError(f"The number of samples must be >= 1. Received: {limit}")
    elements, _, batched = _element_iterator(data, argument)
    chunks: list[list[np.ndarray]] = []
    label_chunks: list[np.ndarray] = []
    have_labels = None
    taken = 0
    available: int | None = None
    exhausted = True
    for element in elements:
        if limit is not None and taken >= limit:
            exhausted = False
            break
        x, y = split_element(element, len(specs))
        raw = as_input_list(x, specs, argument)
        arrays = [_check_array(a, s, argument, batched) for a, s in zip(raw, specs, strict=True)]
        n = len(arrays[0])
        if any(len(a) != n for a in arrays):
            raise DataError(
                f"{argument} gives inputs with different numbers of samples. "
                f"Expected equal sample counts. Received: {[len(a) for a in arrays]}"
            )
        if batched is True:  # in-memory arrays: one element holds all the data
            available = n
        if y is not None:
            # A dataset or generator of single samples: their labels get a sample axis too.
            single = batched is None and np.ndim(raw[0]) == len(specs[0].shape)
            y = labels_mod.read(y, n, argument, single=single)
        if have_labels is None:
            have_labels = y is not None
        keep = n if limit is None else min(n, limit - taken)
        if keep < n:
            exhausted = False
        chunks.append([a[:keep] for a in arrays])
        if have_labels and y is not None:
            label_chunks.append(_head(y, keep))
        taken += keep
    if taken == 0:
        raise DataError(f"{argument} is empty. Expected at least one sample. Received: no samples")
    inputs = [np.concatenate([c[i] for c in chunks]) for i in range(len(specs))]
    labels = None
    if have_labels and label_chunks:
        labels = labels_mod.concatenate(label_chunks, argument)
        if outputs is not None:
            labels = labels_mod.per_output(labels, outputs, argument)
    if available is None and exhausted:
        available = taken
    return Samples(inputs, labels, taken, available, argument)


def _head(y, keep: int):
    """The first `keep` samples of labels read by `data.labels.read`."""
    if isinstance(y, Mapping):
        return {k: v[:keep] for k, v in y.items()}
    if isinstance(y, list):
        return [v[:keep] for v in y]
    return y[:keep]


def class_ids(labels: np.ndarray | None) -> np.ndarray | None:
    """Integer class ids from integer labels or one-hot / probability rows."""
    if labels is None:
        return None
    labels = np.asarray(labels)
    if labels.ndim >= 2 and labels.shape[-1] > 1:
        return labels.argmax(axis=-1).reshape(len(labels))
    return labels.reshape(len(labels)).astype(np.int64)


def synthetic_samples(specs: Sequence[InputSpec], count: int, seed: int = 0) -> Samples:
    """Uniform [0, 1) inputs; integer inputs get whole numbers: ids over the whole
    vocabulary [0, vocab) of an input read by an Embedding, else [0, 10).

    Used only to check an export runs and agrees when no data was given; the
    report says so, since such inputs say little about accuracy.
    """
    rng = np.random.default_rng(seed)
    inputs = []
    for spec in specs:
        shape = (count, *[1 if d is None else d for d in spec.shape])
        if np.dtype(spec.dtype).kind in "iub":
            high = spec.vocab if spec.vocab is not None else 10
            inputs.append(rng.integers(0, high, size=shape).astype(spec.dtype))
        else:
            inputs.append(rng.random(shape, dtype=np.float32).astype(spec.dtype))
    return Samples(inputs, None, count, None, "synthetic uniform [0, 1) inputs")


def first_available(
    candidates: Iterable[tuple[str, object]],
) -> tuple[str, object] | tuple[None, None]:
    """The first (argument name, data) pair whose data is not None."""
    for name, data in candidates:
        if data is not None:
            return name, data
    return None, None


def batched_call(
    fn: Callable[[list[np.ndarray]], list[np.ndarray]], samples: Samples, batch_size: int = 64
):
    """Runs `fn` over `samples` in batches; concatenates each output."""
    outs: list[list[np.ndarray]] = []
    for start in range(0, samples.count, batch_size):
        outs.append(fn(samples.batch(start, start + batch_size)))
    return [np.concatenate([o[i] for o in outs]) for i in range(len(outs[0]))]


# -- the inputs of a batch, for models without symbolic inputs -----------------------------

SINGLE, LIST, DICT = "single", "list", "dict"


@dataclasses.dataclass(frozen=True)
class BatchInputs:
    """What one batch of data feeds a model: its structure and, per input, name, shape, dtype.

    Attributes:
        structure: "single" (one array), "list" (one array per input) or "dict"
            (arrays by input name).
        names: the dict keys, else None per input.
        shapes: each input's shape without the sample axis.
        dtypes: each input's numpy dtype name.
        source: the argument it was read from.
    """

    structure: str
    names: tuple
    shapes: tuple
    dtypes: tuple
    source: str

    def describe(self) -> str:
        return ", ".join(
            f"{n or f'input {i}'} {(None, *s)} {d}"
            for i, (n, s, d) in enumerate(zip(self.names, self.shapes, self.dtypes, strict=True))
        )


def _batch_flag(data) -> bool:
    """Whether a dataset's elements are batches: a free leading axis (`Dataset.batch`)."""
    leaves = [s for s in _flat_specs(data.element_spec) if getattr(s, "shape", None) is not None]
    first = leaves[0].shape if leaves else None
    return first is None or first.rank is None or (first.rank > 0 and first[0] is None)


def _flat_specs(spec):
    if isinstance(spec, Mapping):
        return [leaf for key in spec for leaf in _flat_specs(spec[key])]
    if isinstance(spec, (tuple, list)):
        return [leaf for s in spec for leaf in _flat_specs(s)]
    return [spec]


def peek(data, argument: str, count: int = 2) -> tuple[list, bool, object]:
    """The first `count` elements of `data` without using it up.

    Returns:
        (elements, whether they are batches, the data to read from now on: `data`
        itself, or a one-shot iterator chained back onto the elements read).
    """
    import itertools

    if _is_dataset(data):
        return list(data.take(count).as_numpy_iterator()), _batch_flag(data), data
    if isinstance(data, (np.ndarray, tuple, list, Mapping)) or hasattr(data, "__array__"):
        return [data], True, data
    if isinstance(data, Iterator):
        taken = list(itertools.islice(data, count))
        return taken, True, itertools.chain(taken, data)
    source = data() if callable(data) else data
    if isinstance(source, Iterable):
        return list(itertools.islice(iter(source), count)), True, data
    raise DataError(
        f"{argument} is not a supported kind of data. Expected a numpy array, an (x, y) "
        "tuple, a list or dict of arrays, a tf.data.Dataset or a generator. "
        f"Received: {type(data).__name__}"
    )


def _element_inputs(element, batched: bool, argument: str) -> BatchInputs:
    x, _ = split_element(element, 0)
    if isinstance(x, Mapping):
        structure, names, arrays = DICT, tuple(x), [x[k] for k in x]
    elif isinstance(x, (list, tuple)) and len(x) > 1:
        structure, names, arrays = LIST, (None,) * len(x), list(x)
    else:
        if isinstance(x, (list, tuple)):
            x = x[0]
        structure, names, arrays = SINGLE, (None,), [x]
    shapes, dtypes = [], []
    for array in arrays:
        try:
            array = np.asarray(_to_numpy(array))
        except Exception as e:
            raise DataError(
                f"{argument} cannot be read as arrays. Expected numeric arrays. "
                f"Received: {type(array).__name__} ({e})"
            ) from e
        if array.dtype.kind not in "biuf" or (batched and array.ndim == 0):
            raise DataError(
                f"{argument} does not hold batches of numeric arrays. Expected arrays with a "
                f"sample axis first. Received: an array of shape {array.shape}, dtype {array.dtype}"
            )
        shapes.append(tuple(int(d) for d in (array.shape[1:] if batched else array.shape)))
        dtypes.append(array.dtype.name)
    return BatchInputs(structure, names, tuple(shapes), tuple(dtypes), argument)


def batch_inputs(data, argument: str) -> tuple[BatchInputs, object]:
    """The inputs one batch of `data` feeds the model, checked on its first two batches.

    Arrays are one batch (sample axis first); a tf.data.Dataset's elements are
    batches when its leading axis is free (`Dataset.batch`), else single
    samples; a generator yields batches (as TFLite's representative_dataset does).

    Returns:
        (BatchInputs, the data to read from now on; see `peek`).

    Raises:
        DataError: no data, data of an unsupported kind, or two batches whose
            inputs differ in structure or shape.
    """
    elements, batched, rest = peek(data, argument)
    if not elements:
        raise DataError(f"{argument} is empty. Expected at least one batch. Received: no batches")
    first, *others = [_element_inputs(e, batched, argument) for e in elements]
    for other in others:
        if (other.structure, other.names, other.shapes) != (
            first.structure,
            first.names,
            first.shapes,
        ):
            raise DataError(
                f"The batches of {argument} disagree in shape, so they give no one input "
                "signature. Expected every batch to have the same inputs (or input_signature= "
                "with None for the dimensions that vary). "
                f"Received: {first.describe()} and then {other.describe()}"
            )
    return first, rest
