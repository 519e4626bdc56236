"""Bad input to compress() / save(): a clear KerasSqueezeError, and no file written."""

from __future__ import annotations

import numpy as np
import pytest

import keras_squeeze as ks
from keras_squeeze.errors import (
    DataError,
    KerasSqueezeError,
    ModelError,
    NonFiniteError,
    OutputError,
    RecipeError,
)
from tests.conftest import keras


def test_not_a_model():
    with pytest.raises(
        ModelError,
        match=r"model is not a Keras model\. Expected a keras\.Model.*Received: an object of type builtins\.dict",
    ):
        ks.compress({"weights": 1}, "dynamic", verbose=0)
    with pytest.raises(TypeError):  # also the natural built-in kind
        ks.compress(42, "dynamic", verbose=0)


def test_unknown_recipe_lists_the_valid_ones(trained_models):
    with pytest.raises(
        RecipeError,
        match=r"Unknown recipe\. Expected one of 'dynamic', 'float16', 'int8', 'int16x8'.*Received: recipe='int4'",
    ):
        ks.compress(trained_models["keras3"], "int4", verbose=0)


def test_missing_representative_data_names_the_argument(trained_models):
    with pytest.raises(
        DataError,
        match=r"'int8' recipe calibrates.*Expected representative_data=.*Received: representative_data=None",
    ):
        ks.compress(trained_models["keras3"], "int8", verbose=0)


def test_representative_data_of_the_wrong_shape(trained_models):
    with pytest.raises(
        DataError,
        match=r"representative_data does not match the model's input 'image'.*\(n, 8, 8, 1\).*Received: an array of shape \(10, 16, 16, 1\)",
    ):
        ks.compress(
            trained_models["tf_keras"],
            "int8",
            representative_data=np.zeros((10, 16, 16, 1)),
            verbose=0,
        )


def test_representative_data_of_the_wrong_dtype(trained_models):
    words = np.full((4, 8, 8, 1), "px")
    with pytest.raises(
        DataError, match=r"non-numeric values for input 'image'.*Received: dtype <U2"
    ):
        ks.compress(trained_models["keras3"], "int16x8", representative_data=words, verbose=0)


def test_nan_in_calibration_data(trained_models, digits8):
    (x, _), _ = digits8
    bad = x[:50].copy()
    bad[3] = np.inf
    with pytest.raises(NonFiniteError, match=r"representative_data contains NaN or Inf.*sample 3"):
        ks.compress(trained_models["keras3"], "int8", representative_data=bad, verbose=0)


@pytest.mark.parametrize("flavour", ["keras3", "tf_keras"])
def test_nan_in_weights(flavour):
    k = keras(flavour)
    model = k.Sequential([k.Input((4,)), k.layers.Dense(3, name="head")])
    kernel, bias = model.get_weights()
    kernel[0, 0] = np.nan
    model.set_weights([kernel, bias])
    with pytest.raises(
        NonFiniteError,
        match=r"weight '.*head.*kernel.*' contains NaN or Inf.*Received: 1 non-finite of 12 values",
    ):
        ks.compress(model, "dynamic", verbose=0)


def test_io_type_the_recipe_does_not_allow(trained_models):
    with pytest.raises(
        RecipeError,
        match=r"inference_input_type does not fit the 'float16' quantization.*Received: inference_input_type='uint8'",
    ):
        ks.compress(trained_models["keras3"], "float16", inference_input_type="uint8", verbose=0)


def test_bad_calibration_count(trained_models, digits8):
    (x, _), _ = digits8
    with pytest.raises(
        DataError, match=r"num_calibration_samples must be a positive integer.*Received: 0"
    ):
        ks.compress(
            trained_models["keras3"],
            "int8",
            representative_data=x,
            num_calibration_samples=0,
            verbose=0,
        )


def test_a_file_that_is_not_a_model(tmp_path):
    junk = tmp_path / "model.keras"
    junk.write_text("not a model at all")
    with pytest.raises(
        ModelError, match=r"file is not a Keras model.*Received: '.*model\.keras' \(18 bytes"
    ):
        ks.compress(junk, "dynamic", verbose=0)
    with pytest.raises(ModelError, match=r"model path does not exist.*Received: '.*missing\.h5'"):
        ks.compress(str(tmp_path / "missing.h5"), "dynamic", verbose=0)
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(ModelError, match=r"not a SavedModel.*saved_model\.pb"):
        ks.compress(tmp_path / "empty_dir", "dynamic", verbose=0)


def test_a_zip_that_is_not_a_keras_archive(tmp_path):
    import zipfile

    path = tmp_path / "m.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(
        ModelError,
        match=r"m\.keras' is not a Keras archive: it has no config\.json.*\['hello\.txt'\]",
    ):
        ks.compress(path, "dynamic", verbose=0)


def test_unbuilt_sequential():
    k = keras("keras3")
    model = k.Sequential([k.layers.Dense(3)])
    with pytest.raises(ModelError, match=r"has no defined inputs.*keras\.Input"):
        ks.compress(model, "dynamic", verbose=0)


def test_output_directory_that_cannot_be_written(trained_models, tmp_path):
    result = ks.compress(trained_models["keras3"], "dynamic", verbose=0)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match=r"cannot be written.*Received: '.*a_file/out'"):
        result.save(blocker / "out")
    with pytest.raises(OutputError, match=r"output directory is a file"):
        result.save(blocker)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_occupied_slot_fails_before_anything_lands(trained_models, tmp_path):
    result = ks.compress(trained_models["keras3"], "dynamic", verbose=0)
    out = tmp_path / "out"
    (out / "model.onnx").mkdir(parents=True)  # a directory where a file must go
    with pytest.raises(OutputError, match=r"holds 'model\.onnx' as a directory"):
        result.save(out)
    assert sorted(p.name for p in out.iterdir()) == ["model.onnx"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_unknown_format(trained_models, tmp_path):
    result = ks.compress(trained_models["keras3"], "dynamic", verbose=0)
    with pytest.raises(RecipeError, match=r"Unknown export format.*Received: formats=\['pb'\]"):
        result.save(tmp_path / "o", formats=["pb"])
    assert not (tmp_path / "o").exists()


def test_failure_during_compress_writes_nothing(trained_models, digits8, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (x, _), _ = digits8
    bad = x[:20].copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(KerasSqueezeError):
        ks.compress(trained_models["keras3"], "int8", representative_data=bad, verbose=0)
    assert list(tmp_path.iterdir()) == []


def test_training_arguments_on_a_post_training_recipe_warn(trained_models):
    with pytest.warns(
        UserWarning, match="epochs is ignored: the 'dynamic' recipe has no training stage"
    ):
        result = ks.compress(trained_models["keras3"], "dynamic", epochs=3, verbose=0)
    assert any("epochs is ignored" in n for n in result.report.notes)
