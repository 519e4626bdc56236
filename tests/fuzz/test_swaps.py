"""Directories where files are expected, and files where directories are expected."""

from __future__ import annotations

import contextlib
import io
import shutil

import pytest
from absl.testing import flagsaver

import keras_squeeze as ks
from keras_squeeze.cli import common, compress, export, export_lib
from keras_squeeze.data import sources
from keras_squeeze.data.inputs import InputSpec
from keras_squeeze.edgetpu import check_edgetpu
from tests.fuzz import cases
from tests.fuzz.test_model_files import write_reference_models


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return write_reference_models(tmp_path_factory.mktemp("swap_models"))


def test_a_directory_for_a_tflite(tmp_path):
    folder = tmp_path / "model.tflite"
    folder.mkdir()
    for reader in (check_edgetpu, ks.benchmark):
        cases.assert_clean(cases.run_case(reader, folder), [folder])


@pytest.mark.parametrize("name", ["model.keras", "model.h5"])
def test_a_directory_for_a_model_file(tmp_path, name):
    folder = tmp_path / name
    folder.mkdir()
    cases.assert_clean(cases.run_case(ks.load_model, folder), [folder])


@pytest.mark.parametrize(
    "model, member, make",
    [
        ("keras3_export", "saved_model.pb", "dir"),
        ("keras3_export", "variables", "file"),
        ("keras3_export", "variables/variables.index", "dir"),
        ("tf_keras_savedmodel", "keras_metadata.pb", "dir"),
        ("tf_keras_savedmodel", "variables", "file"),
    ],
)
def test_saved_models_with_files_and_directories_swapped(reference, tmp_path, model, member, make):
    target = tmp_path / model
    shutil.copytree(reference[model], target)
    path = target / member
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()
    if make == "dir":
        path.mkdir()
    else:
        path.write_bytes(b"not a directory")
    cases.assert_clean(cases.run_case(ks.load_model, target, bound=300), [target])


def test_a_keras_archive_with_a_directory_member(reference, tmp_path):
    import zipfile

    path = tmp_path / "dir_member.keras"
    with zipfile.ZipFile(reference["keras3.keras"]) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            name = info.filename + "/" if info.filename == "model.weights.h5" else info.filename
            dst.writestr(name, b"" if name.endswith("/") else data)
    cases.assert_clean(cases.run_case(ks.load_model, path), [path])


def test_data_sources_swapped(tmp_path):
    npz_dir = tmp_path / "data.npz"
    npz_dir.mkdir()
    images_file = tmp_path / "images"
    images_file.write_bytes(b"not a folder")
    for source in (npz_dir, images_file):
        cases.assert_clean(cases.run_case(sources.check_source, str(source)), [source])
        cases.assert_clean(cases.run_case(sources.load_npz, source), [source])
    # A class "folder" that is a file, and images that are directories.
    root = tmp_path / "classes"
    (root / "a" / "x.png").mkdir(parents=True)
    (root / "b").mkdir()
    (root / "b" / "y.png").mkdir()
    (root / "c").write_bytes(b"a file among the classes")
    specs = [InputSpec("image", (8, 8, 1), "float32")]
    cases.assert_clean(cases.run_case(sources.load_image_folder, root, specs), [root])


@pytest.mark.parametrize("script", [compress, export])
def test_a_directory_for_a_flag_file(script, tmp_path):
    saved = flagsaver.save_flag_values(script.FLAGS)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exit_info:
            common.parse_flags(
                script.PROGRAM, script.FLAGS, [script.PROGRAM, f"--flagfile={tmp_path}"]
            )
    finally:
        flagsaver.restore_flag_values(saved, script.FLAGS)
    lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
    assert exit_info.value.code == 2 and len(lines) == 1 and str(tmp_path) in lines[0]


@pytest.mark.parametrize("slot", ["model.tflite", "export.json", "saved_model"])
def test_export_into_a_directory_whose_slots_are_taken(reference, tmp_path, slot):
    """A directory where export writes a file (or a file where it writes a directory)."""
    out = tmp_path / "out"
    out.mkdir()
    if slot == "saved_model":
        (out / slot).write_bytes(b"a file where the SavedModel directory goes")
    else:
        (out / slot).mkdir()
    before = sorted(p.name for p in out.iterdir())
    outcome = cases.run_case(
        export_lib.run,
        str(reference["keras3.keras"]),
        formats=("tflite", "saved_model"),
        output_dir=str(out),
        verbose=0,
        bound=300,
    )
    cases.assert_clean(outcome, [out / slot])
    assert outcome.kind == cases.REFUSED
    assert sorted(p.name for p in out.iterdir()) == before  # nothing written, nothing left


def test_an_output_directory_that_is_a_file(reference, tmp_path):
    blocker = tmp_path / "out"
    blocker.write_bytes(b"a file")
    outcome = cases.run_case(
        export_lib.run, str(reference["keras3.keras"]), output_dir=str(blocker), verbose=0
    )
    cases.assert_clean(outcome, [blocker])
    assert blocker.read_bytes() == b"a file"
