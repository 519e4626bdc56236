"""Model files people bring: .h5 from tf_keras with a custom activation, SavedModel, and
--custom_objects=module:name on both scripts."""

from __future__ import annotations

import json
import os
import pathlib
import sys

import pytest

from keras_squeeze.cli import common, compress, custom_objects, export
from keras_squeeze.errors import ConfigError
from tests.cli import custom_activations
from tests.cli.helpers import error_lines, flags_of, native_noise, run_main, script
from tests.conftest import assert_saved_files

REPO = pathlib.Path(__file__).resolve().parents[2]
SCALED_TANH = "tests.cli.custom_activations:scaled_tanh"


@pytest.fixture(scope="module")
def custom_model(digits8):
    """A small CNN trained by tf_keras with a custom activation function."""
    import tf_keras

    (x, y), _ = digits8
    tf_keras.utils.set_random_seed(0)
    k = tf_keras.layers
    model = tf_keras.Sequential(
        [
            tf_keras.Input((8, 8, 1), name="image"),
            k.Conv2D(8, 3, activation=custom_activations.scaled_tanh),
            k.Flatten(),
            k.Dense(32, activation=custom_activations.scaled_tanh),
            k.Dense(10),
        ]
    )
    model.compile(
        "adam", tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"]
    )
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="module")
def custom_h5(custom_model, tmp_path_factory):
    """The custom-activation CNN saved by tf_keras as .h5."""
    path = tmp_path_factory.mktemp("h5") / "old_model.h5"
    with pytest.warns(UserWarning, match="HDF5 file"):
        custom_model.save(path)
    assert path.read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"
    return path


def test_resolve_imports_and_names_the_objects(monkeypatch, tmp_path):
    assert custom_objects.resolve([SCALED_TANH]) == {"scaled_tanh": custom_activations.scaled_tanh}
    assert custom_objects.resolve("os:path.join") == {"join": os.path.join}
    assert custom_objects.resolve(None) is None
    given = {"f": len}
    assert custom_objects.resolve(given) == given and custom_objects.resolve(given) is not given
    # A module in the current directory imports, as with `python -m`; sys.path is left as it was.
    (tmp_path / "my_layers_here.py").write_text("def swish2(x):\n    return x\n")
    monkeypatch.chdir(tmp_path)
    path_before = list(sys.path)
    ((name, obj),) = custom_objects.resolve(["my_layers_here:swish2"]).items()
    assert name == "swish2" and obj.__module__ == "my_layers_here"
    assert sys.path == path_before


@pytest.mark.parametrize(
    "specs, message",
    [
        (["scaled_tanh"], r"Expected 'module:name', e\.g\. 'my_layers:Swish'\. Received: 'scaled"),
        (["a:b:c"], r"Expected 'module:name'.*Received: 'a:b:c'"),
        (["mod:"], r"Expected 'module:name'.*Received: 'mod:'"),
        (
            ["no_such_module_for_keras_squeeze:f"],
            r"could not be imported\. Expected a module importable from the current directory or "
            r"PYTHONPATH\. Received: 'no_such_module_for_keras_squeeze:f' \(ModuleNotFoundError",
        ),
        (
            ["tests.cli.custom_activations:scaled_tan"],
            r"has no object 'scaled_tan'\. Expected a class or function defined in "
            r"tests\.cli\.custom_activations\. Received: .*; close: scaled_tanh",
        ),
        (
            ["tests.cli.custom_activations:NOT_CALLABLE"],
            r"names something Keras cannot call\. Expected a class or function\. Received: "
            r"'tests\.cli\.custom_activations:NOT_CALLABLE' \(a int\)",
        ),
    ],
)
def test_resolve_refuses(specs, message):
    with pytest.raises(ConfigError, match=message):
        custom_objects.resolve(specs)


def test_a_module_that_fails_on_import_and_two_objects_for_one_name(monkeypatch, tmp_path):
    (tmp_path / "broken_layers.py").write_text("raise RuntimeError('needs a GPU library')\n")
    (tmp_path / "other_layers.py").write_text("def scaled_tanh(x):\n    return x\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        ConfigError, match=r"Received: 'broken_layers:Swish' \(RuntimeError: needs a GPU library\)"
    ):
        custom_objects.resolve(["broken_layers:Swish"])
    with pytest.raises(
        ConfigError,
        match=r"Two custom_objects entries give the name 'scaled_tanh' different objects\. "
        r"Expected one object per name\. Received: 'tests\.cli",
    ):
        custom_objects.resolve([SCALED_TANH, "other_layers:scaled_tanh"])


def _usage_error(script_module, args, capsys) -> str:
    with pytest.raises(SystemExit) as exc, flags_of(script_module, *args):
        pass
    assert exc.value.code == common.EXIT_USAGE
    (line,) = capsys.readouterr().err.strip().splitlines()
    return line


@pytest.mark.parametrize("script_module", [compress, export])
def test_a_bad_spec_is_a_usage_error(script_module, custom_h5, capsys):
    line = _usage_error(
        script_module, [f"--model={custom_h5}", "--custom_objects=scaled_tanh"], capsys
    )
    assert line.startswith(f"{script_module.PROGRAM}: error: A custom_objects entry names")
    assert "Received: 'scaled_tanh'" in line


def test_custom_objects_without_a_model_is_a_usage_error(capsys):
    line = _usage_error(compress, [f"--custom_objects={SCALED_TANH}"], capsys)
    assert (
        "custom_objects are for loading a model file, and no model was given (the example CNN "
        "needs none). Expected a model path with them. Received: custom_objects=" in line
    )


def test_the_h5_needs_its_custom_activation(custom_h5, tmp_path, capsys):
    code = run_main(compress, f"--model={custom_h5}", f"--output_dir={tmp_path / 'out'}")
    assert code == common.EXIT_FAILURE
    (line,) = error_lines(capsys.readouterr().err, compress.PROGRAM)
    assert "could not be loaded as a Keras model" in line and "custom_objects" in line
    assert "scaled_tanh" in line
    assert not (tmp_path / "out").exists()


def test_a_module_that_does_not_import_fails_the_job_in_one_line(custom_h5, tmp_path, capsys):
    code = run_main(
        export,
        f"--model={custom_h5}",
        "--custom_objects=no_such_module_for_keras_squeeze:scaled_tanh",
        f"--output_dir={tmp_path / 'out'}",
    )
    assert code == common.EXIT_FAILURE
    (line,) = error_lines(capsys.readouterr().err, export.PROGRAM)
    assert "The module of a custom_objects entry could not be imported" in line
    assert not (tmp_path / "out").exists()


def test_export_loads_the_h5_with_custom_objects(custom_h5, tmp_path, capsys):
    out = tmp_path / "out"
    code = run_main(
        export, f"--model={custom_h5}", f"--custom_objects={SCALED_TANH}", f"--output_dir={out}"
    )
    assert code == common.EXIT_OK, capsys.readouterr().err
    record = json.loads((out / "export.json").read_text())
    assert record["artifacts"]["tflite"]["fidelity"]["sqnr_db"] > 60


@pytest.mark.parametrize("kind", ["h5", "saved_model"])
def test_h5_and_saved_model_files_load_through_model(kind, trained_models, tmp_path, capsys):
    model = trained_models["tf_keras"]
    path = tmp_path / ("m.h5" if kind == "h5" else "sm")
    if kind == "h5":
        with pytest.warns(UserWarning, match="HDF5 file"):
            model.save(path)
    else:
        model.save(path, save_format="tf")
    out = tmp_path / "out"
    code = run_main(export, f"--model={path}", f"--output_dir={out}", "--verbose=0")
    assert code == common.EXIT_OK, capsys.readouterr().err
    assert (out / "model.tflite").stat().st_size > 0


def test_compress_script_end_to_end_with_a_custom_activation(custom_h5, tmp_path):
    env = {"PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = script(
        "compress",
        f"--model={custom_h5}",
        f"--custom_objects={SCALED_TANH}",
        "--formats=tflite",
        "--formats=onnx",
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert native_noise(proc.stderr) == []
    report = json.loads((tmp_path / "squeezed" / "report.json").read_text())
    assert report["recipe"] == "int8" and report["fidelity"]["top1_agreement"] > 0.95
    assert_saved_files(tmp_path / "squeezed", ["model.onnx", "model.tflite"], ("size", "accuracy"))


def test_a_tf_keras_h5_with_a_custom_function_loads_without_its_compiled_state(custom_h5):
    # tf_keras (>= 2.13) writes the function in a form its own .h5 reader refuses;
    # Keras 3 reads the model, not the tf_keras loss config beside it.
    from keras_squeeze import _compat
    from keras_squeeze.core.models import load_model

    model = load_model(custom_h5, custom_objects={"scaled_tanh": custom_activations.scaled_tanh})
    assert _compat.keras_flavour(model) == _compat.KERAS3
    assert model.layers[0].activation is custom_activations.scaled_tanh
    assert not model.compiled


def test_a_custom_activation_saved_model_fine_tunes_with_custom_objects(
    custom_model, tmp_path, capsys
):
    # The SavedModel loads without them (its traced functions), but the training
    # stages clone the model from its config, which names the function.
    path = tmp_path / "sm"
    custom_model.save(path, save_format="tf")
    args = [f"--model={path}", "--recipe=prune", "--epochs=1", "--formats=tflite", "--verbose=0"]
    assert run_main(compress, *args, f"--output_dir={tmp_path / 'a'}") == common.EXIT_FAILURE
    (line,) = error_lines(capsys.readouterr().err, compress.PROGRAM)
    assert "scaled_tanh" in line
    code = run_main(
        compress, *args, f"--custom_objects={SCALED_TANH}", f"--output_dir={tmp_path / 'b'}"
    )
    assert code == common.EXIT_OK, capsys.readouterr().err
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    dense = next(row for row in report["layers"] if row["type"] == "Dense")
    assert report["recipe"] == "prune" and dense["sparsity"] > 0.5
