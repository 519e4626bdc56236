"""Model files are untrusted: a file carrying Python code is refused before any of it runs."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import keras_squeeze as ks
from keras_squeeze.cli import compress, export
from keras_squeeze.errors import ModelError
from keras_squeeze.safety import model_files
from tests.cli.helpers import error_lines, run_main

REFUSED = (
    r"holds executable code, which loading would run \(model files are untrusted by default\)"
    r".*Received: layer 'payload' \(Lambda\) holds a Python lambda's bytecode.*"
    r"allow_unsafe_deserialization=True\) \(command line: --allow_unsafe_deserialization\)"
)


def _payload(marker):
    """A lambda whose code writes `marker` when it runs (the path is a constant in its bytecode)."""
    return eval(f"lambda x: (__import__('pathlib').Path({str(marker)!r}).write_text('ran'), x)[1]")


@pytest.fixture(scope="module")
def lambda_files(tmp_path_factory):
    """The same Lambda model in every format, and the marker its code would write."""
    import keras
    import tf_keras

    root = tmp_path_factory.mktemp("lambda_files")
    marker = root / "MARKER"
    fn = _payload(marker)
    k3 = keras.Sequential(
        [keras.Input((4,)), keras.layers.Lambda(fn, name="payload"), keras.layers.Dense(2)]
    )
    tk = tf_keras.Sequential(
        [tf_keras.Input((4,)), tf_keras.layers.Lambda(fn, name="payload"), tf_keras.layers.Dense(2)]
    )
    files = {
        "keras3.keras": root / "keras3.keras",
        "keras3.h5": root / "keras3.h5",
        "tf_keras.h5": root / "tf_keras.h5",
        "tf_keras.keras": root / "tf_keras.keras",
        "tf_keras_savedmodel": root / "tf_keras_savedmodel",
    }
    k3.save(files["keras3.keras"])
    k3.save(files["keras3.h5"])
    tk.save(files["tf_keras.h5"])
    tk.save(files["tf_keras.keras"])
    tk.save(files["tf_keras_savedmodel"], save_format="tf")
    assert marker.exists()  # building and saving ran the lambda: the payload works
    marker.unlink()
    return files, marker


FORMATS = ["keras3.keras", "keras3.h5", "tf_keras.h5", "tf_keras.keras", "tf_keras_savedmodel"]


@pytest.mark.parametrize("name", FORMATS)
def test_a_lambda_file_is_refused_and_none_of_its_code_runs(lambda_files, name):
    files, marker = lambda_files
    with pytest.raises(ModelError, match=REFUSED):
        ks.load_model(files[name])
    assert not marker.exists()
    with pytest.raises(ModelError, match=REFUSED):
        ks.compress(str(files[name]), "dynamic", verbose=0)
    assert not marker.exists()


@pytest.mark.parametrize("name", FORMATS)
def test_allowed_unsafe_deserialization_runs_the_code(lambda_files, name):
    """The refusal above is real: with the flag the same file loads and its code runs."""
    files, marker = lambda_files
    try:
        model = ks.load_model(files[name], allow_unsafe_deserialization=True)
        assert marker.exists()
        assert np.asarray(model(np.ones((1, 4), np.float32))).shape == (1, 2)
    finally:
        marker.unlink(missing_ok=True)


@pytest.mark.parametrize("script", [compress, export], ids=["compress", "export"])
def test_the_scripts_refuse_and_name_the_flag(lambda_files, script, tmp_path, capsys):
    files, marker = lambda_files
    code = run_main(
        script, f"--model={files['tf_keras.h5']}", f"--output_dir={tmp_path / 'out'}", "--verbose=0"
    )
    lines = error_lines(capsys.readouterr().err, script.PROGRAM)
    assert code == 1 and len(lines) == 1
    assert "holds executable code" in lines[0] and "--allow_unsafe_deserialization" in lines[0]
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_export_with_the_flag_loads_the_trusted_file(lambda_files, tmp_path, capsys):
    files, marker = lambda_files
    try:
        code = run_main(
            export,
            f"--model={files['keras3.keras']}",
            f"--output_dir={tmp_path / 'out'}",
            "--allow_unsafe_deserialization",
            "--verbose=0",
        )
        assert code == 0, capsys.readouterr().err
        assert marker.exists() and (tmp_path / "out" / "model.tflite").is_file()
    finally:
        marker.unlink(missing_ok=True)


def _rewrite_config(source, target, edit):
    """A copy of a .keras archive with its config.json passed through `edit`."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "config.json":
                data = json.dumps(edit(json.loads(data))).encode()
            dst.writestr(info, data)
    return target


@pytest.fixture(scope="module")
def plain_files(tmp_path_factory):
    import keras
    import tf_keras

    root = tmp_path_factory.mktemp("plain_files")
    k3 = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="head")])
    tk = tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Dense(2, name="head")])
    k3.save(root / "keras3.keras")
    tk.save(root / "tf_keras.keras")
    return root


@pytest.mark.parametrize(
    "module, function",
    [("os", "system"), ("builtins", "exec"), ("subprocess", "getoutput")],
)
@pytest.mark.parametrize("writer", ["keras3", "tf_keras"])
def test_a_function_from_outside_keras_is_refused(plain_files, tmp_path, module, function, writer):
    """tf_keras' .keras loader imports any module a config names; such a config is refused."""

    def edit(config):
        layer = config["config"]["layers"][-1]
        layer["config"]["activation"] = {
            "module": module,
            "class_name": "function",
            "config": function,
            "registered_name": function,
        }
        return config

    path = _rewrite_config(plain_files / f"{writer}.keras", tmp_path / "m.keras", edit)
    with pytest.raises(
        ModelError,
        match=rf"Received: layer 'head' \(Dense\) holds a reference to '{module}\.{function}', "
        r"Python code outside Keras that is neither in custom_objects nor registered",
    ):
        ks.load_model(path)


def test_custom_layers_and_keras_functions_are_not_payloads(tmp_path):
    import keras

    @keras.saving.register_keras_serializable(package="ks_safety_test")
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return 2 * x

    class Halver(keras.layers.Layer):
        def call(self, x):
            return x / 2

    model = keras.Sequential(
        [keras.Input((4,)), Doubler(), Halver(), keras.layers.Dense(2, activation="softmax")]
    )
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.save(tmp_path / "custom.keras")
    config = json.loads(zipfile.ZipFile(tmp_path / "custom.keras").read("config.json"))
    # Halver is neither registered nor passed: it is code outside Keras.
    assert [str(p) for p in model_files.find_payloads(config)] == [
        "layer 'halver' (Halver) holds a reference to "
        f"'{Halver.__module__}.Halver', Python code outside Keras that is neither in "
        "custom_objects nor registered"
    ]
    assert model_files.find_payloads(config, {"Halver": Halver}) == []
    loaded = ks.load_model(tmp_path / "custom.keras", custom_objects={"Halver": Halver})
    assert [type(la).__name__ for la in loaded.layers] == ["Doubler", "Halver", "Dense"]


def test_find_payloads_on_plain_configs():
    lam = {"class_name": "__lambda__", "config": {"code": "AAAA"}}
    layer = {"class_name": "Lambda", "config": {"name": "f", "function": lam}}
    legacy = {
        "class_name": "Lambda",
        "config": {"name": "g", "function": ["AAAA", None, None], "function_type": "lambda"},
    }
    shape = {
        "class_name": "Lambda",
        "config": {"name": "h", "function_type": "function", "output_shape_type": "lambda"},
    }
    nested = {"config": {"layers": [layer, legacy, [shape]]}}
    assert sorted(str(p) for p in model_files.find_payloads(nested)) == [
        "layer 'f' (Lambda) holds a Python lambda's bytecode",
        "layer 'g' (Lambda) holds a Python lambda's bytecode (its function)",
        "layer 'h' (Lambda) holds a Python lambda's bytecode (its output shape)",
    ]
    keras_fn = {"module": "builtins", "class_name": "function", "config": "relu"}
    assert model_files.find_payloads({"config": {"activation": keras_fn}}) == []
    # How tf_keras saves a custom function in .h5: no module, nothing of Python's
    # builtins to import (the loader asks for custom_objects); builtins.exec is code.
    custom_fn = {"module": "builtins", "class_name": "function", "config": "scaled_tanh"}
    assert model_files.find_payloads({"config": {"activation": custom_fn}}) == []
    for name, registered in [("exec", "function"), ("scaled_tanh", "eval"), ("print.x", None)]:
        fn = {**custom_fn, "config": name, "registered_name": registered}
        (found,) = model_files.find_payloads({"config": {"activation": fn}})
        assert f"a reference to 'builtins.{name}'" in str(found)
    deep = {"config": None}
    for _ in range(5000):  # deeper than Python's recursion limit
        deep = {"config": {"inner": deep}}
    assert model_files.find_payloads(deep) == []


@pytest.fixture(scope="module")
def writing_saved_model(tmp_path_factory):
    """A SavedModel whose serving_default writes a file when it runs (x * 2 otherwise)."""
    import tensorflow as tf

    root = tmp_path_factory.mktemp("writing_saved_model")
    marker = root / "MARKER"

    class Writer(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
        def serve(self, x):
            tf.io.write_file(str(marker), "ran")
            return {"y": x * 2.0}

    module = Writer()
    tf.saved_model.save(module, str(root / "model"), signatures={"serving_default": module.serve})
    assert not marker.exists()
    return root / "model", marker


def test_a_saved_model_that_writes_files_is_refused(writing_saved_model):
    path, marker = writing_saved_model
    with pytest.raises(
        ModelError,
        match=r"holds executable code, which running it would execute: its serving_default "
        r"signature runs TensorFlow ops that read or write files or call Python \(\['WriteFile'\]\)"
        r".*allow_unsafe_deserialization=True",
    ):
        ks.load_model(path)
    with pytest.raises(ModelError, match=r"\['WriteFile'\]"):
        ks.compress(str(path), "dynamic", verbose=0)
    assert not marker.exists()
    model = ks.load_model(path, allow_unsafe_deserialization=True)  # the refusal was real
    try:
        np.testing.assert_allclose(np.asarray(model(np.ones((1, 4), np.float32))), 2.0)
        assert marker.exists()
    finally:
        marker.unlink(missing_ok=True)
