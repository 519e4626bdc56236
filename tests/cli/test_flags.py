"""Flag parsing of the three scripts, in this process: bounds, enums, cross-flag rules, --flagfile.

Each script has its own FlagValues, so all three import together (they share
flag names such as --model and --verbose).
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest
from absl import flags

from keras_squeeze.api.recipe import RECIPES
from keras_squeeze.cli import bench, common, compress, compress_lib, export
from keras_squeeze.errors import ConfigError, RecipeError
from tests.cli.helpers import error_lines, flags_of


def test_the_scripts_import_together_with_their_own_flags():
    assert len({id(compress.FLAGS), id(export.FLAGS), id(bench.FLAGS)}) == 3
    assert "model" in compress.FLAGS and "model" in export.FLAGS and "model" in bench.FLAGS
    assert "model" not in flags.FLAGS  # absl's global flags are left alone
    assert compress.FLAGS["recipe"].parser.enum_values == [*RECIPES, "auto"]


def _usage_error(script, args, capsys) -> str:
    with pytest.raises(SystemExit) as exc, flags_of(script, *args):
        pass
    assert exc.value.code == common.EXIT_USAGE
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and error_lines(err, script.PROGRAM) == lines, err
    assert lines[0].endswith("(pass --helpshort for the flags)")
    return lines[0]


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"exists; its contents are checked later")
    return str(path)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--recipe=int4"], "flag --recipe=int4: value should be one of <dynamic|float16|int8"),
        (["--epochs=0"], "flag --epochs=0: 0 is not a positive integer"),
        (["--num_calibration_samples=0"], "flag --num_calibration_samples=0"),
        (["--recipe=prune", "--target_sparsity=1.5"], "flag --target_sparsity=1.5"),
        (["--clusters=1"], "flag --clusters=1"),
        (["--formats=pdf"], "flag --formats=pdf"),
        (["--recipe=float16", "--inference_input_type=int8"], "do not fit --recipe"),
        (["--recipe=prune", "--inference_output_type=int16"], "do not fit --recipe"),
        (
            ["--target_sparsity=0.5"],
            "error: target_sparsity sets the pruning stage, which this recipe does not have. "
            "Expected a recipe that prunes (prune, prune-2:4",
        ),
        (
            ["--recipe=prune-2:4", "--target_sparsity=0.5"],
            "The 'prune-2:4' recipe prunes 2 of every 4 weights, a fixed 50%",
        ),
        (["--recipe=prune", "--target_sparsity=1"], "Expected a value in [0, 1). Received: "),
        (["--clusters=8"], "clusters sets the clustering stage, which this recipe does not have"),
        (
            ["--recipe=float16", "--edgetpu"],
            "The Edge TPU runs full-integer 8-bit models only. Expected an int8 recipe (int8, "
            "prune, prune-2:4, qat, cluster, prune-cluster-qat, channel-prune",
        ),
        (["--distill"], "Distillation applies to fine-tuning, and the 'int8' recipe does not"),
        (["--distill_alpha=0.5"], "Received: distill_alpha=0.5"),
        (
            ["--recipe=prune", "--nodistill", "--distill_temperature=2"],
            "Distillation settings were given with distillation off",
        ),
        (["--recipe=prune", "--distill_temperature=0"], "flag --distill_temperature=0"),
        (["--recipe=prune", "--distill_alpha=1.5"], "flag --distill_alpha=1.5"),
        (["--model=missing.keras"], "The model path does not exist."),
        (["--data=nowhere/"], "Unknown data source. Expected 'digits'"),
        (["--data=missing.npz"], "Received: 'missing.npz'"),
        (["--image_range=0-1"], "image_range sets the pixel range of an image folder"),
        (["--image_range=0-100"], "flag --image_range=0-100"),
        (["--flagfile=missing.flags"], "missing.flags"),
        (["positional"], "unexpected arguments: positional"),
        (["--no_such_flag"], "Unknown command line flag 'no_such_flag'"),
    ],
)
def test_compress_usage_errors(args, message, capsys):
    assert message in _usage_error(compress, args, capsys)


def test_epochs_without_training_needs_the_example_model(model_file, capsys):
    line = _usage_error(compress, [f"--model={model_file}", "--epochs=3"], capsys)
    assert "epochs sets fine-tuning, and the 'int8' recipe does not train" in line
    with flags_of(compress, "--epochs=3"):  # no --model: trains the example CNN
        assert compress.FLAGS.epochs == 3


@pytest.mark.parametrize(
    "args",
    [
        ["--recipe=qat", "--edgetpu", "--inference_input_type=uint8"],
        ["--recipe=prune", "--target_sparsity=0.6", "--distill_alpha=0.5", "--epochs=2"],
        ["--recipe=channel-prune", "--nodistill", "--benchmark", "--formats=tflite"],
        ["--recipe=int16x8", "--inference_input_type=int16", "--inference_output_type=int16"],
        ["--recipe=dynamic", "--benchmark", "--verbose=0"],
    ],
)
def test_compress_flags_that_fit(args):
    with flags_of(compress, *args) as values:
        assert values["recipe"].value == args[0].split("=")[1]


def test_flagfile(tmp_path):
    flagfile = tmp_path / "compress.flags"
    flagfile.write_text("# a comment\n--recipe=prune\n--target_sparsity=0.6\n--epochs=2\n")
    with flags_of(compress, f"--flagfile={flagfile}", "--formats=tflite") as values:
        assert (values.recipe, values.target_sparsity, values.epochs) == ("prune", 0.6, 2)
        assert values.formats == ["tflite"]
    assert compress.FLAGS.recipe == "int8" and compress.FLAGS.target_sparsity is None


def test_flagfile_contradiction_is_a_usage_error(tmp_path, capsys):
    flagfile = tmp_path / "bad.flags"
    flagfile.write_text("--recipe=float16\n--edgetpu\n")
    assert "The Edge TPU runs" in _usage_error(compress, [f"--flagfile={flagfile}"], capsys)


@pytest.mark.parametrize("script", [compress, export, bench])
def test_helpshort_prints_the_doc_and_flags(script, capsys):
    with pytest.raises(SystemExit) as exc, flags_of(script, "--helpshort"):
        pass
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(script.PROGRAM) and "--model" in out and "--flagfile" in out


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "flag --model=None: Flag --model must have a value other than None"),
        (["--model=m.keras", "--quantization=int8"], "'int8' quantization calibrates"),
        (["--model=m.keras", "--quantization=int3"], "flag --quantization=int3"),
        (
            ["--model=m.keras", "--quantization=float16", "--inference_input_type=int8"],
            "inference_input_type does not fit the 'float16' quantization. Expected one of "
            "'float32'. Received: inference_input_type='int8'",
        ),
        (["--model=m.keras", "--saved_model_version=-1"], "flag --saved_model_version=-1"),
        (["--model=m.keras", "--formats=h5"], "flag --formats=h5"),
        (["--model=m.keras", "--image_range=0-1", "--data=digits"], "image_range sets"),
        (["--model=missing.keras"], "The model path does not exist."),
    ],
)
def test_export_usage_errors(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.keras").write_bytes(b"x")
    assert message in _usage_error(export, args, capsys)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--delegate_options=usb"], "'key:value' pairs separated by ';'"),
        (["--target=android", "--taskset=xyz"], "taskset must be a hexadecimal CPU mask"),
        (["--serial=abc"], "need --target=android"),
    ],
)
def test_bench_usage_errors(args, message, capsys):
    assert message in _usage_error(bench, ["--model=m.tflite", *args], capsys)


def test_console_entry_point_exits_2_on_a_bad_flag(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["keras-squeeze-export", "--model"])
    with pytest.raises(SystemExit) as exc:
        export.run_main()
    assert exc.value.code == 2
    assert error_lines(capsys.readouterr().err, "keras-squeeze-export")


def test_recipe_settings_leave_the_presets_alone():
    recipe = compress_lib.resolve_recipe("prune", target_sparsity=0.6)
    assert recipe.prune.target_sparsity == 0.6 and recipe.name == "prune"
    assert RECIPES["prune"].prune.target_sparsity == 0.8
    assert compress_lib.resolve_recipe("int8") is RECIPES["int8"]


def test_clusters_follow_the_clustering_recipes():
    recipe = compress_lib.resolve_recipe("prune-cluster-qat", clusters=8)
    assert recipe.cluster.num_clusters == 8 and recipe.prune == RECIPES["prune-cluster-qat"].prune
    assert RECIPES["prune-cluster-qat"].cluster.num_clusters == 16  # the preset is not changed
    with pytest.raises(RecipeError, match=r"Expected a recipe that clusters \(cluster, "):
        compress_lib.resolve_recipe("prune", clusters=8)


def test_library_checks_match_the_flags():
    with pytest.raises(
        ConfigError, match=r"Distillation applies to fine-tuning.*Received: distill=True"
    ):
        compress_lib.check_options("int8", distill=True)
    with pytest.raises(RecipeError, match=r"temperature must be positive"):
        compress_lib.check_options("prune", distill_temperature=-1.0)
    with pytest.raises(ConfigError, match=r"Edge TPU.*Received: recipe='dynamic' \(dynamic\)"):
        compress_lib.check_options("dynamic", edgetpu=True)
    compress_lib.check_options("qat", edgetpu=True, distill=False, epochs=3, model="m.keras")
    setting = compress_lib.distill_setting(None, 2.0, None)
    assert (setting.temperature, setting.alpha) == (2.0, 0.5)
    assert compress_lib.distill_setting(False, None, None) is False


@pytest.mark.parametrize(
    "program", ["keras-squeeze-compress", "keras-squeeze-export", "keras-squeeze-bench"]
)
def test_installed_console_scripts_exit_2_on_a_bad_flag(program, tmp_path):
    path = pathlib.Path(sys.executable).parent / program  # installed next to this Python
    assert path.exists(), f"{program} is not installed: see [project.scripts] in pyproject.toml"
    proc = subprocess.run(
        [str(path), "--no_such_flag"], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert proc.returncode == 2
    assert error_lines(proc.stderr, program) and "Traceback" not in proc.stderr
