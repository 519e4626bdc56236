"""Labels of one or several outputs: read, matched to the outputs, told apart."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from keras_squeeze.data import labels
from keras_squeeze.data.inputs import InputSpec, take_samples
from keras_squeeze.data.labels import CLASSIFICATION, REGRESSION, OutputSpec
from keras_squeeze.errors import DataError

SPECS = [InputSpec("x", (4,), "float32")]
OUTPUTS = [OutputSpec("classes", (3,)), OutputSpec("box", (4,))]
X = np.zeros((6, 4), np.float32)
IDS = np.array([0, 1, 2, 0, 1, 2])
BOXES = np.arange(24, dtype=np.float32).reshape(6, 4)


def test_read_keeps_lists_and_dicts_of_arrays_and_reads_plain_lists_as_one_array():
    assert isinstance(labels.read([IDS, BOXES], 6, "y"), list)
    assert sorted(labels.read({"box": BOXES, "classes": IDS}, 6, "y")) == ["box", "classes"]
    plain = labels.read([0, 1, 2, 0, 1, 2], 6, "y")  # Python numbers: one array of labels
    assert isinstance(plain, np.ndarray) and plain.shape == (6,)
    with pytest.raises(DataError, match=r"different number of labels.*Expected 6.*Received: 5"):
        labels.read([IDS, BOXES[:5]], 6, "y")
    with pytest.raises(DataError, match=r"y's labels cannot be read as an array.*a list of arrays"):
        labels.read([[0, 1], [1]], 2, "y")


@pytest.mark.parametrize(
    "given",
    [
        lambda: [IDS, BOXES],
        lambda: (IDS, BOXES),
        lambda: {"box": BOXES, "classes": IDS},
        lambda: [tf.constant(IDS), tf.constant(BOXES)],
    ],
)
def test_every_form_gives_one_array_per_output_in_order(given):
    samples = take_samples((X, given()), SPECS, None, "train_data", outputs=OUTPUTS)
    ids, boxes = samples.labels
    np.testing.assert_array_equal(ids, IDS)
    np.testing.assert_array_equal(boxes, BOXES)


def test_a_one_output_model_keeps_an_array():
    one = [OutputSpec("logits", (3,))]
    for given in (IDS, [IDS], {"logits": IDS}):
        got = take_samples((X, given), SPECS, None, "train_data", outputs=one).labels
        np.testing.assert_array_equal(got, IDS)


def test_batches_of_a_dataset_are_joined_per_output():
    data = tf.data.Dataset.from_tensor_slices((X, {"classes": IDS, "box": BOXES})).batch(4)
    samples = take_samples(data, SPECS, None, "train_data", outputs=OUTPUTS)
    assert [a.shape for a in samples.labels] == [(6,), (6, 4)]


def test_single_samples_with_one_hot_rows_get_a_sample_axis():
    one_hot = np.eye(3, dtype=np.float32)[IDS]
    data = tf.data.Dataset.from_tensor_slices((X, one_hot))  # unbatched elements
    got = take_samples(data, SPECS, None, "d", outputs=[OutputSpec("p", (3,))]).labels
    np.testing.assert_array_equal(got, one_hot)


@pytest.mark.parametrize(
    ("given", "match"),
    [
        (
            lambda: [IDS, BOXES, BOXES],
            r"gives 3 label arrays for a model with 2 output\(s\)\. Expected one array per "
            r"output, in order \['classes', 'box'\].*Received: arrays of shapes",
        ),
        (
            lambda: {"classes": IDS, "boxes": BOXES},
            r"labels keyed by names that are not outputs of the model: \['boxes'\]\. Expected "
            r"keys among the model's outputs \['classes', 'box'\]",
        ),
        (
            lambda: {"classes": IDS},
            r"no labels for output\(s\) \['box'\]\. Expected one entry per output",
        ),
        (
            lambda: [IDS.astype(str), BOXES],
            r"are not numbers\. Expected numeric labels\. Received: dtype <U",
        ),
        (
            lambda: IDS,
            r"gives one label array to a model with 2 outputs\. Expected a list of 2 arrays in "
            r"the order \['classes', 'box'\], or a dict keyed by output name",
        ),
        (
            lambda: [IDS, BOXES[:, :3]],
            r"labels for output 'box' do not match its shape\. Expected labels of shape "
            r"\(n, 4\).*Received: an array of shape \(6, 3\)",
        ),
        (
            lambda: [np.eye(4)[[0, 1, 2, 3, 0, 1]], BOXES],
            r"labels for output 'classes' do not match its shape\. Expected labels of shape "
            r"\(n, 3\) or class ids of shape \(n,\) for its 3 classes\. Received: an array of "
            r"shape \(6, 4\)",
        ),
        (
            lambda: [IDS + 1, BOXES],
            r"labels for output 'classes' hold class id 3, outside its 3 classes\. Expected "
            r"class ids in \[0, 3\)\. Received: ids from 1 to 3",
        ),
        (
            lambda: [IDS + 0.5, BOXES],
            r"labels for output 'classes' are one value per sample but not class ids",
        ),
    ],
)
def test_labels_that_do_not_fit_the_outputs(given, match):
    with pytest.raises(DataError, match=match):
        take_samples((X, given()), SPECS, None, "train_data", outputs=OUTPUTS)


def test_labels_that_change_form_between_batches():
    def batches():
        yield X[:3], [IDS[:3], BOXES[:3]]
        yield X[3:], {"classes": IDS[3:], "box": BOXES[3:]}

    with pytest.raises(
        DataError,
        match=r"changes the form of its labels from one batch to the next.*Received: a list "
        r"of 2 arrays, then a dict with keys \['box', 'classes'\]",
    ):
        take_samples(batches, SPECS, None, "train_data", outputs=OUTPUTS)


def test_roles():
    classes = OutputSpec("p", (3,))
    assert labels.role(classes, IDS) == CLASSIFICATION
    assert labels.role(classes, np.eye(3)[IDS]) == CLASSIFICATION  # one-hot rows
    assert labels.role(classes, np.full((6, 3), 1 / 3)) == CLASSIFICATION  # soft rows
    assert labels.role(classes, BOXES[:, :3]) == REGRESSION  # targets, not distributions
    assert labels.role(classes, None) == CLASSIFICATION  # (batch, k >= 2) and nothing else
    assert labels.role(classes, IDS, loss_role=REGRESSION) == REGRESSION  # the loss says so
    assert labels.role(OutputSpec("v", (1,)), IDS) == REGRESSION  # one unit: a score
    assert labels.role(OutputSpec("map", (4, 4, 2)), None) == REGRESSION
    assert labels.role(OutputSpec("unknown", None), IDS) == REGRESSION


def test_output_specs_of_symbolic_and_subclassed_models():
    import keras

    inp = keras.Input((4,), name="x")
    model = keras.Model(inp, [keras.layers.Dense(3, name="a")(inp), keras.layers.Dense(2)(inp)])
    specs = labels.output_specs(model)
    assert [s.shape for s in specs] == [(3,), (2,)] and specs[0].name == "a"

    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = keras.layers.Dense(5)

        def call(self, x):
            return self.d(x)

    net = Net()
    net(np.zeros((1, 4), np.float32))
    assert [s.shape for s in labels.output_specs(net)] == [(5,)]
