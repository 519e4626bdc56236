"""Training data for fine-tuning: a batched tf.data pipeline with a known length.

Pruning schedules are sized in optimizer steps, so the number of steps per
epoch must be known before training starts.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from keras_squeeze.data import inputs as data_inputs
from keras_squeeze.data import labels as labels_mod
from keras_squeeze.errors import DataError
from keras_squeeze.training import defaults

DEFAULT_BATCH_SIZE = defaults.DEFAULT_BATCH_SIZE


@dataclasses.dataclass
class TrainData:
    """A re-iterable, batched `tf.data.Dataset` of `(inputs, labels)` and its length.

    Attributes:
        dataset: yields `(x, y)` batches; `x` is a tensor, or a tuple of tensors
            for multi-input models; `y` is a dummy zero vector when the data has
            no labels (distillation alone needs none).
        steps_per_epoch: batches per epoch.
        has_labels: whether real labels were given.
        one_hot: whether the (first output's) labels are one-hot rows (else
            class ids or targets).
        source: the argument name, for messages.
        label_sample: the first batch's labels matched to the outputs (one
            array, or a list with one per output), None without labels; it
            tells class ids from targets (see `training.tasks`).

    For a model with several outputs `y` is a tuple with one tensor per
    output, in output order, whichever form the labels were given in.
    """

    dataset: object
    steps_per_epoch: int
    has_labels: bool
    one_hot: bool
    source: str
    label_sample: object = None


def _is_dataset(data) -> bool:
    return type(data).__module__.startswith("tensorflow") and hasattr(data, "element_spec")


def _structure(x, specs):
    """A model input structure tf.data understands: one array or a tuple per input."""
    return x[0] if len(specs) == 1 else tuple(x)


def prepare(
    data,
    specs: Sequence[data_inputs.InputSpec],
    batch_size: int = DEFAULT_BATCH_SIZE,
    steps_per_epoch: int | None = None,
    argument: str = "train_data",
    seed: int = 0,
    outputs: Sequence[labels_mod.OutputSpec] | None = None,
) -> TrainData:
    """Turns train_data (arrays, (x, y), tf.data.Dataset, or a callable returning
    an iterable of batches) into a TrainData.

    `outputs` (`data.labels.output_specs(model)`) matches labels given as a
    list or a dict keyed by output name to the model's outputs; without it
    the labels are those of a one-output model.

    Raises:
        DataError: no data, a one-shot generator, unknown length without
            steps_per_epoch, or data that does not fit the model's inputs or
            outputs.
    """
    import tensorflow as tf

    if data is None:
        raise DataError(
            f"This recipe fine-tunes the model. Expected {argument}= (an (x, y) tuple of arrays, "
            f"a tf.data.Dataset of (x, y) batches, or a callable returning such batches). "
            f"Received: {argument}=None"
        )
    if isinstance(data, Iterator):
        raise DataError(
            f"{argument} is a one-shot generator, but fine-tuning reads the data once per "
            "epoch. Expected arrays, a tf.data.Dataset, or a callable that returns a new "
            f"generator each time. Received: {type(data).__name__}"
        )
    if batch_size < 1:
        raise DataError(
            f"batch_size must be >= 1. Expected a positive integer. Received: {batch_size}"
        )
    # Validate shapes and dtypes on a first batch (reads one element only).
    peek = data_inputs.take_samples(data, specs, batch_size, argument, outputs=outputs)
    has_labels = peek.labels is not None
    if has_labels and outputs is None and not isinstance(peek.labels, np.ndarray):
        outputs = [labels_mod.OutputSpec("output_0", None)]  # a structure for one output
        labels_mod.per_output(peek.labels, outputs, argument)  # says what is wrong
    first = peek.labels[0] if isinstance(peek.labels, list) else peek.labels
    one_hot = bool(has_labels and np.ndim(first) >= 2 and np.shape(first)[-1] > 1)
    names = [o.name for o in outputs] if outputs is not None else None

    if _is_dataset(data):
        dataset = data
        first = next(iter(data.take(1)))
        x0 = first[0] if isinstance(first, tuple) else first
        x0 = next(iter(x0.values())) if isinstance(x0, Mapping) else x0
        x0 = x0[0] if isinstance(x0, (list, tuple)) else x0
        if len(x0.shape) == len(specs[0].shape):  # unbatched elements
            dataset = dataset.batch(batch_size)
        dataset = dataset.map(_with_labels(specs, has_labels, names))
        steps = _dataset_steps(dataset, steps_per_epoch, argument)
    elif callable(data):
        dataset, steps = _from_callable(data, specs, has_labels, steps_per_epoch, argument, outputs)
    else:
        samples = data_inputs.take_samples(data, specs, None, argument, outputs=outputs)
        labels = samples.labels if has_labels else np.zeros(samples.count, np.float32)
        labels = tuple(labels) if isinstance(labels, list) else labels
        dataset = tf.data.Dataset.from_tensor_slices((_structure(samples.inputs, specs), labels))
        dataset = dataset.shuffle(samples.count, seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.batch(batch_size)
        steps = math.ceil(samples.count / batch_size)
        if steps_per_epoch is not None:
            dataset = dataset.repeat()
            steps = steps_per_epoch
    return TrainData(dataset.prefetch(2), steps, has_labels, one_hot, argument, peek.labels)


def _label_structure(y, names):
    """Labels of one batch as the trainer takes them: one tensor, or a tuple per output."""
    if names is None:
        return y
    if isinstance(y, Mapping):
        parts = [y[n] for n in names]
    elif isinstance(y, (list, tuple)):
        parts = list(y)
    else:
        return y
    return parts[0] if len(names) == 1 else tuple(parts)


def _with_labels(specs, has_labels, names=None):
    import tensorflow as tf

    def fn(*element):
        if len(element) == 1:
            element = element[0]
        if isinstance(element, tuple) and len(element) in (2, 3) and has_labels:
            x, y = element[0], element[1]
        else:
            x = element[0] if isinstance(element, tuple) and len(specs) == 1 else element
            y = None
        if isinstance(x, Mapping):
            x = tuple(x[s.name] for s in specs)
        if isinstance(x, (list, tuple)):
            x = tuple(tf.cast(v, s.dtype) for v, s in zip(x, specs, strict=True))
            x = x[0] if len(specs) == 1 else x
        else:
            x = tf.cast(x, specs[0].dtype)
        if y is None:
            first = x[0] if isinstance(x, tuple) else x
            y = tf.zeros(tf.shape(first)[:1], tf.float32)
        else:
            y = _label_structure(y, names)
        return x, y

    return fn


def _dataset_steps(dataset, steps_per_epoch, argument) -> int:
    import tensorflow as tf

    if steps_per_epoch is not None:
        return steps_per_epoch
    cardinality = int(dataset.cardinality())
    if cardinality == tf.data.INFINITE_CARDINALITY:
        raise DataError(
            f"{argument} repeats forever, so an epoch has no end. Expected steps_per_epoch= "
            f"with an infinite dataset. Received: steps_per_epoch=None"
        )
    if cardinality == tf.data.UNKNOWN_CARDINALITY:
        cardinality = int(dataset.reduce(0, lambda n, _: n + 1))  # one counting pass
    if cardinality < 1:
        raise DataError(f"{argument} is empty. Expected at least one batch. Received: no batches")
    return cardinality


def _from_callable(make, specs, has_labels, steps_per_epoch, argument, outputs=None):
    import tensorflow as tf

    def labels_of(arrays, ey):
        if ey is None:
            return np.zeros(len(arrays[0]), np.float32)
        if outputs is None:
            return np.asarray(ey)
        label = labels_mod.per_output(
            labels_mod.read(ey, len(arrays[0]), argument), outputs, argument
        )
        return tuple(label) if isinstance(label, list) else label

    def inputs_of(ex):
        arrays = [np.asarray(a) for a in data_inputs.as_input_list(ex, specs, argument)]
        arrays = [
            a[None] if a.ndim == len(s.shape) else a for a, s in zip(arrays, specs, strict=True)
        ]
        return [a.astype(s.dtype) for a, s in zip(arrays, specs, strict=True)]

    def sig(a):
        return tf.TensorSpec((None, *a.shape[1:]), tf.as_dtype(a.dtype))

    first = next(iter(make()))
    x, y = data_inputs.split_element(first, len(specs))
    xs = data_inputs.as_input_list(x, specs, argument)
    x_sig = tuple(tf.TensorSpec((None, *s.shape), s.dtype) for s, _ in zip(specs, xs, strict=True))
    y_first = labels_of(inputs_of(x), y) if y is not None else None
    if y_first is None:
        y_sig = tf.TensorSpec((None,), tf.float32)
    elif isinstance(y_first, tuple):
        y_sig = tuple(sig(a) for a in y_first)
    else:
        y_sig = sig(y_first)

    def generator():
        for element in make():
            ex, ey = data_inputs.split_element(element, len(specs))
            arrays = inputs_of(ex)
            yield (arrays[0] if len(specs) == 1 else tuple(arrays)), labels_of(arrays, ey)

    signature = (x_sig[0] if len(specs) == 1 else x_sig, y_sig)
    dataset = tf.data.Dataset.from_generator(generator, output_signature=signature)
    steps = steps_per_epoch or sum(1 for _ in make())
    return dataset, steps
