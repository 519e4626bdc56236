"""keras-squeeze-compress beyond the defaults: image folders, pruning settings, Edge TPU,
latency, distillation, and every bad input ending in one line and no partial output."""

from __future__ import annotations

import json

import numpy as np
import pytest

from keras_squeeze.cli import compress, compress_lib
from tests.cli.helpers import error_lines, run_main
from tests.conftest import assert_saved_files
from tests.data.image_folders import digits_folder, write_png

PROGRAM = compress.PROGRAM


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return digits_folder(tmp_path_factory.mktemp("images"), classes=(0, 1, 2, 3), per_class=25)


def test_prune_on_an_image_folder_with_latency(model_path, folder, tmp_path, capsys):
    result = compress_lib.run(
        model=str(model_path),
        recipe="prune",
        data=str(folder),
        image_range="0-1",
        target_sparsity=0.5,
        epochs=1,
        distill_alpha=0.5,
        benchmark=True,
        formats=("tflite",),
        output_dir=str(tmp_path / "out"),
        verbose=1,
    )
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    (stage,) = report["stages"]
    assert stage["settings"]["target_sparsity"] == 0.5
    assert report["training"]["distill"]["alpha"] == 0.5
    assert report["accuracy"]["samples"] == 20  # the folder's 20% validation split
    assert report["latency"]["original_p50_ms"] > 0 and report["latency"]["compressed_p50_ms"] > 0
    pruned = [row for row in result.report.layers if row.targets.get("sparsity") == 0.5]
    assert pruned and all(row.sparsity >= 0.48 for row in pruned)
    out = capsys.readouterr().out
    assert "keras_squeeze: data: 100 images of 4 classes" in out
    # The terminal table: the summary, then one row per stage with latency.
    assert "p50 latency" in out and "\nprune " in out and "prune .tflite" in out
    assert out.rstrip().endswith(f"artifacts in {tmp_path / 'out'}")


def test_edgetpu_and_io_types_reach_compress(model_path, tmp_path, capsys):
    code = run_main(
        compress,
        f"--model={model_path}",
        "--edgetpu",
        "--inference_input_type=uint8",
        "--formats=tflite",
        f"--output_dir={tmp_path / 'out'}",
        "--verbose=0",
    )
    assert code == 0
    assert_saved_files(tmp_path / "out", ["model.tflite", "model_for_edgetpu.tflite"])
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["edgetpu"]["model"] == "model.tflite"  # batch 1 already
    assert report["edgetpu"]["input_types"] == ["uint8"]
    assert "Edge TPU (model.tflite):" in capsys.readouterr().out


def _one_error_line(capsys, expected: str, traceback=False) -> str:
    """Checks stderr holds one error line (and a traceback only when asked); returns stdout."""
    out, err = capsys.readouterr()
    lines = error_lines(err, PROGRAM)
    assert len(lines) == 1 and expected in lines[0], err[-3000:]
    assert ("Traceback" in err) == traceback
    return out


def _no_images(root):
    (root / "cats").mkdir()
    (root / "dogs").mkdir()
    (root / "dogs" / "readme.txt").write_text("no images here")


def _one_class(root):
    for i in range(9):
        write_png(root / "cats" / f"{i}.png", np.full((8, 8, 1), 20 * i, np.uint8))
    (root / "dogs").mkdir()


@pytest.mark.parametrize(
    "make, expected", [(_no_images, "holds no images"), (_one_class, "images of one class only")]
)
def test_unusable_image_folder_exits_1_before_any_work(make, expected, tmp_path, capsys):
    data = tmp_path / "images"
    data.mkdir()
    make(data)
    code = run_main(compress, f"--data={data}", f"--output_dir={tmp_path / 'out'}")
    assert code == 1
    out = _one_error_line(capsys, expected)
    assert not (tmp_path / "out").exists()
    assert "training the example CNN" not in out


def test_corrupt_model_exits_1_and_shows_the_traceback_only_at_verbose_2(tmp_path, capsys):
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    out = tmp_path / "out"
    assert run_main(compress, f"--model={junk}", f"--output_dir={out}") == 1
    _one_error_line(capsys, "not a Keras model")
    assert run_main(compress, f"--model={junk}", f"--output_dir={out}", "--verbose=2") == 1
    _one_error_line(capsys, "not a Keras model", traceback=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.keras"]


def test_unwritable_output_dir_exits_1(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert run_main(compress, f"--output_dir={blocker / 'out'}") == 1
    _one_error_line(capsys, "output directory cannot be written")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_an_unexpected_error_is_one_line_too(monkeypatch, tmp_path, capsys):
    def boom(**kwargs):
        raise RuntimeError("converter crashed\n  at some deep frame")

    monkeypatch.setattr(compress_lib, "run", boom)
    assert run_main(compress, f"--output_dir={tmp_path}") == 1
    _one_error_line(
        capsys,
        "error: unexpected RuntimeError: converter crashed at some deep frame "
        "(--verbose=2 shows the traceback)",
    )


def test_more_classes_than_outputs_is_refused(tmp_path, capsys, trained_models):
    import keras

    inputs = keras.Input((8, 8, 1))
    small = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs)))
    path = tmp_path / "three.keras"
    small.save(path)
    assert run_main(compress, f"--model={path}", f"--output_dir={tmp_path / 'out'}") == 1
    _one_error_line(capsys, "more classes than the model has outputs. Expected at most 3")
    assert not (tmp_path / "out").exists()


def test_dynamic_batch_flag_keeps_the_batch_free(model_path, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from keras_squeeze.cli import export

    def batch_of(path):
        return Interpreter(model_path=str(path)).get_input_details()[0]["shape_signature"][0]

    base = (f"--model={model_path}", "--formats=tflite", "--verbose=0")
    assert run_main(compress, *base, "--dynamic_batch", f"--output_dir={tmp_path / 'c'}") == 0
    assert run_main(export, *base, "--dynamic_batch", f"--output_dir={tmp_path / 'e'}") == 0
    assert run_main(export, *base, f"--output_dir={tmp_path / 'fixed'}") == 0
    assert batch_of(tmp_path / "c" / "model.tflite") == -1
    assert batch_of(tmp_path / "e" / "model.tflite") == -1
    assert batch_of(tmp_path / "fixed" / "model.tflite") == 1  # the default
