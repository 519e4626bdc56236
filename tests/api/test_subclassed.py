"""Subclassed models as people have them: the input signature from an argument, the data or
what Keras recorded; every post-training recipe on several inputs and outputs; bad input."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import keras_squeeze as ks
from keras_squeeze.core import models
from keras_squeeze.errors import DataError, KerasSqueezeError, ModelError
from tests.conftest import assert_weights_equal, keras, weights_snapshot

RNG = np.random.default_rng(0)
IMAGES = RNG.random((48, 8, 8, 1)).astype("float32")
META = RNG.random((48, 5)).astype("float32")


def _three_heads():
    """The issue's model: its class builds itself with a default input shape, weights are set
    with set_weights, then it is called on a batch."""
    k = keras("keras3")

    class ThreeHeads(k.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.conv = k.layers.Conv2D(8, 3, activation="relu")
            self.flat = k.layers.Flatten()
            self.heads = [k.layers.Dense(n) for n in (4, 2, 1)]

        def build(self, input_shape=(None, 8, 8, 1)):
            self.conv.build(input_shape)
            flat = self.flat.compute_output_shape(self.conv.compute_output_shape(input_shape))
            for head in self.heads:
                head.build(flat)

        def call(self, x):
            h = self.flat(self.conv(x))
            return tuple(head(h) for head in self.heads)

    model = ThreeHeads()
    model.build()
    model.set_weights([RNG.normal(0, 0.3, w.shape).astype("float32") for w in model.get_weights()])
    model(IMAGES[:2])
    return model


def _two_inputs(flavour, style):
    """Image and metadata in (a list or a dict), two heads out (a list or a dict)."""
    k = keras(flavour)

    class TwoInTwoOut(k.Model):
        def __init__(self):
            super().__init__()
            self.conv = k.layers.Conv2D(8, 3, activation="relu")
            self.flat = k.layers.Flatten()
            self.meta = k.layers.Dense(8, activation="relu")
            self.label = k.layers.Dense(4)
            self.score = k.layers.Dense(1)

        def call(self, inputs):
            image, meta = (inputs["image"], inputs["meta"]) if style == "dict" else inputs
            h = tf.concat([self.flat(self.conv(image)), self.meta(meta)], axis=-1)
            if style == "dict":
                return {"label": self.label(h), "score": self.score(h)}
            return [self.label(h), self.score(h)]

    return TwoInTwoOut()  # never called: the signature comes from the data


def _signature_note(result) -> str:
    return next(n for n in result.report.notes if n.startswith("input signature"))


@pytest.fixture(scope="module")
def three_heads():
    return _three_heads()


def test_the_shapes_keras_recorded_include_a_build_default(three_heads):
    assert three_heads._build_shapes_dict == {}  # build() without arguments records nothing
    signature = models.recorded_signature(three_heads)
    assert signature.describe() == "args_0 (None, 8, 8, 1) float32"
    assert models.output_names(three_heads) == ["output_0", "output_1", "output_2"]


@pytest.mark.parametrize("recipe", ["dynamic", "float16"])
def test_the_issue_model_takes_every_recipe_without_data(three_heads, recipe):
    before = weights_snapshot(three_heads)
    result = ks.compress(three_heads, recipe, verbose=0)
    assert result.report.fidelity.sqnr_db > 30
    assert [o.name for o in result.report.fidelity.outputs] == ["output_0", "output_1", "output_2"]
    assert (
        "input signature from the shapes Keras recorded: args_0 (None, 8, 8, 1) float32"
        in result.report.notes
    )
    assert_weights_equal(before, three_heads)


def test_the_issue_model_quantizes_to_int8_and_int16x8(three_heads):
    for recipe in ("int8", "int16x8"):
        result = ks.compress(three_heads, recipe, representative_data=IMAGES, verbose=0)
        assert result.report.fidelity.sqnr_db > 25, recipe
        assert _signature_note(result).startswith("input signature from representative_data")


@pytest.mark.parametrize(("flavour", "style"), [("keras3", "dict"), ("tf_keras", "list")])
def test_every_post_training_mode_on_several_inputs_and_outputs(flavour, style, tmp_path):
    model = _two_inputs(flavour, style)
    data = {"image": IMAGES, "meta": META} if style == "dict" else [IMAGES, META]
    names = ["label", "score"] if style == "dict" else ["output_0", "output_1"]
    for mode in ("float32", "dynamic", "float16", "int8", "int16x8"):
        result = ks.compress(model, mode, representative_data=data, verbose=0)
        fidelity = result.report.fidelity
        assert [o.name for o in fidelity.outputs] == names, mode
        assert min(o.sqnr_db for o in fidelity.outputs) > 25, (mode, fidelity.summary())
    inputs = "image (None, 8, 8, 1) float32, meta (None, 5) float32"
    if style == "list":
        inputs = "args_0 (None, 8, 8, 1) float32, args_1 (None, 5) float32"
    assert f"input signature from representative_data: {inputs}" in result.report.notes
    result.save(tmp_path)  # int16x8: ONNX from the .tflite, SavedModel from the traced model
    assert {"model.tflite", "model.onnx", "saved_model"} <= {p.name for p in tmp_path.iterdir()}
    onnx = ks.export.to_onnx(model, tmp_path / "float.onnx")  # from the traced function
    assert onnx.fidelity.sqnr_db > 60
    served = ks.export.to_saved_model(model, tmp_path / "serving")
    assert served.fidelity.sqnr_db > 60


def test_an_explicit_signature_comes_first(tmp_path):
    model = _two_inputs("keras3", "list")
    signature = [tf.TensorSpec((None, 8, 8, 1), tf.float32, "pixels"), (None, 5)]
    art = ks.export.to_tflite(
        model, tmp_path / "m.tflite", input_signature=signature, verification_data=[IMAGES, META]
    )
    assert art.fidelity.sqnr_db > 60
    assert models.signature_of(model).describe() == (
        "pixels (None, 8, 8, 1) float32, args_1 (None, 5) float32"
    )
    result = ks.compress(model, "dynamic", input_signature=signature, verbose=0)
    assert _signature_note(result).startswith("input signature from input_signature: pixels")


def test_a_one_shot_generator_is_read_whole_after_its_signature():
    model = _two_inputs("keras3", "dict")
    batches = ({"image": IMAGES[i : i + 4], "meta": META[i : i + 4]} for i in range(0, 40, 4))
    result = ks.compress(model, "int8", representative_data=batches, verbose=0)
    assert result.report.calibration == "40 samples from representative_data"  # none lost


def test_a_model_with_a_required_training_argument_works():
    k = keras("keras3")

    class Dropped(k.Model):
        def __init__(self):
            super().__init__()
            self.dense = k.layers.Dense(3)
            self.drop = k.layers.Dropout(0.5)

        def call(self, x, training):
            return self.drop(self.dense(x), training=training)

    result = ks.compress(Dropped(), "dynamic", representative_data=META, verbose=0)
    assert result.report.fidelity.sqnr_db > 60


# -- bad input: each a KerasSqueezeError, nothing written ----------------------------------


def _nothing_written(tmp_path, call, error, match):
    with pytest.raises(error, match=match) as caught:
        call(tmp_path / "out" / "model.tflite")
    assert isinstance(caught.value, KerasSqueezeError)
    assert not any(tmp_path.iterdir())


def test_a_signature_the_model_cannot_be_called_with(three_heads, tmp_path):
    _nothing_written(
        tmp_path,
        lambda path: ks.export.to_tflite(three_heads, path, input_signature=[(None, 5)]),
        ModelError,
        r"The model cannot be called with the input signature args_0 \(None, 5\) float32 \(from "
        r"input_signature\)\. Expected a signature its call\(\) accepts: give input_signature=.*"
        r"Received: ValueError: .*",
    )
    with pytest.raises(DataError, match=r"input_signature does not describe the model's inputs"):
        ks.compress(three_heads, "dynamic", input_signature=["pixels"], verbose=0)
    with pytest.raises(DataError, match=r"input_signature is empty"):
        ks.compress(three_heads, "dynamic", input_signature=[], verbose=0)


def test_a_signature_that_disagrees_with_a_functional_models_inputs(trained_models):
    with pytest.raises(
        DataError,
        match=r"input_signature does not match the model's inputs\. Expected image \(None, 8, 8, "
        r"1\) float32 .*Received: args_0 \(None, 16, 16, 1\) float32",
    ):
        ks.compress(trained_models["keras3"], "dynamic", input_signature=[(None, 16, 16, 1)])


def test_batches_that_disagree_in_shape(tmp_path):
    model = _two_inputs("keras3", "list")

    def uneven():
        yield [IMAGES[:4], META[:4]]
        yield [IMAGES[:4, :6, :6], META[:4]]

    _nothing_written(
        tmp_path,
        lambda path: ks.export.to_tflite(
            model, path, quantization="int8", representative_data=uneven
        ),
        DataError,
        r"The batches of representative_data disagree in shape, so they give no one input "
        r"signature\. Expected every batch to have the same inputs \(or input_signature= with "
        r"None for the dimensions that vary\)\. Received: input 0 \(None, 8, 8, 1\) float32, "
        r"input 1 \(None, 5\) float32 and then input 0 \(None, 6, 6, 1\) float32",
    )
    with pytest.raises(
        DataError,
        match=r"representative_data and validation_data feed the model inputs of different "
        r"shapes.*Received: args_0 \(None, 8, 8, 1\) float32, args_1 \(None, 5\) float32 from "
        r"representative_data, args_0 \(None, 6, 6, 1\) float32",
    ):
        ks.compress(
            model,
            "int8",
            representative_data=[IMAGES, META],
            validation_data=[IMAGES[:, :6, :6], META],
            verbose=0,
        )


def test_a_call_that_needs_a_mask_the_signature_cannot_supply(tmp_path):
    k = keras("keras3")

    class Masked(k.Model):
        def __init__(self):
            super().__init__()
            self.dense = k.layers.Dense(3)

        def call(self, x, mask, training=None):
            return self.dense(x) * tf.cast(mask, x.dtype)

    _nothing_written(
        tmp_path,
        lambda path: ks.export.to_tflite(Masked(), path, verification_data=META),
        ModelError,
        r"The model's call\(\) needs 'mask', which an input signature cannot supply: .*Expected a "
        r"call\(inputs, training=None\) whose other arguments have defaults; wrap the model so "
        r"that the mask comes in as an input, e\.g\. class Wrapped\(keras\.Model\): .* def "
        r"call\(self, inputs\): x, mask = inputs; return self\.inner\(x, mask=mask\)\. Received: "
        r"call\(x, mask, training\) of Masked",
    )


def test_no_signature_anywhere_says_what_to_give():
    with pytest.raises(
        ModelError,
        match=r"The model '.*' has no defined inputs and nothing to read them from\. Expected "
        r"input_signature= \(a list of tf\.TensorSpec.*\), or data to read one batch's shapes "
        r"from \(representative_data=, validation_data= or train_data=\)",
    ):
        ks.compress(_two_inputs("keras3", "list"), "dynamic", verbose=0)


def _shape(content: bytes) -> list:
    from ai_edge_litert.interpreter import Interpreter

    return list(Interpreter(model_content=content).get_input_details()[0]["shape_signature"])


def test_the_tflite_fixes_the_batch_at_1_unless_asked(three_heads):
    fixed = ks.compress(three_heads, "float16", verbose=0)
    free = ks.compress(three_heads, "float16", dynamic_batch=True, verbose=0)
    assert _shape(fixed.tflite) == [1, 8, 8, 1] and _shape(free.tflite) == [-1, 8, 8, 1]
    assert not any("free batch" in n for n in fixed.report.notes)


def test_a_model_its_copies_cannot_reproduce(digits8):
    """Each instance draws its own offset: copies differ, so the .tflite keeps the free
    batch (saying why) and training, which works on a copy, is refused."""
    k = keras("keras3")

    class Jittered(k.Model):
        def __init__(self):
            super().__init__()
            self.offset = float(np.random.default_rng().uniform(1, 2))  # not a weight
            self.dense = k.layers.Dense(10)

        def call(self, x):
            return self.dense(x) + self.offset

    (x, y), _ = digits8
    flat = x.reshape(len(x), -1)[:64]
    result = ks.compress(Jittered(), "dynamic", representative_data=flat, verbose=0)
    assert _shape(result.tflite) == [-1, 64]
    assert any(
        "keeps a free batch: no fixed-batch copy could be made (The fixed-batch copy of" in n
        for n in result.report.notes
    )
    recipe = ks.Recipe(prune=ks.Prune(min_weights=0, keep_first_layer=False))
    with pytest.raises(ModelError, match=r"The working copy does not reproduce the model"):
        ks.compress(Jittered(), recipe, train_data=(flat, y[:64]), verbose=0)


def test_data_that_gives_no_signature():
    model = _two_inputs("keras3", "dict")
    with pytest.raises(DataError, match=r"representative_data is not a supported kind of data"):
        ks.compress(model, "int8", representative_data=object(), verbose=0)
    with pytest.raises(DataError, match=r"representative_data is empty\. Expected at least one"):
        ks.compress(model, "int8", representative_data=iter([]), verbose=0)
    with pytest.raises(DataError, match=r"validation_data does not hold batches of numeric"):
        ks.compress(model, "dynamic", validation_data=np.array(["a", "b"]), verbose=0)
    ragged = {"image": [[1.0, 2.0], [3.0]], "meta": META}
    with pytest.raises(DataError, match=r"validation_data cannot be read as arrays"):
        ks.compress(model, "dynamic", validation_data=ragged, verbose=0)


def test_a_call_that_needs_another_argument(tmp_path):
    k = keras("keras3")

    class Scaled(k.Model):
        def __init__(self):
            super().__init__()
            self.dense = k.layers.Dense(3)

        def call(self, x, scale):
            return self.dense(x) * scale

    with pytest.raises(
        ModelError,
        match=r"The model's call\(\) needs 'scale'.*wrap the model so that the argument gets its "
        r"value, e\.g\. .*return self\.inner\(inputs, scale=\.\.\.\)\. Received: call\(x, scale\)",
    ):
        ks.export.to_onnx(Scaled(), tmp_path / "m.onnx", verification_data=META)
    assert not any(tmp_path.iterdir())
