"""Artifact names never escape the output directory; files outside it are never touched."""

from __future__ import annotations

import os

import pytest

import keras_squeeze as ks
from keras_squeeze.cli import export_lib
from keras_squeeze.core import atomic
from keras_squeeze.errors import OutputError
from keras_squeeze.safety.paths import contained


@pytest.mark.parametrize(
    "name", ["../model.tflite", "a/../../b", "/etc/passwd", "", "saved_model/../../x"]
)
def test_names_that_climb_out_are_refused(tmp_path, name):
    with pytest.raises(
        OutputError, match=r"leads outside the output directory\. Expected a relative name"
    ):
        contained(tmp_path / "out", name)


def test_plain_names_land_inside(tmp_path):
    assert contained(tmp_path / "out", "saved_model/1") == tmp_path / "out" / "saved_model" / "1"
    assert contained(tmp_path / "out", "model.tflite") == tmp_path / "out" / "model.tflite"


@pytest.fixture
def outside(tmp_path):
    """A directory and a file outside the output directory, with content to keep."""
    other = tmp_path / "elsewhere"
    (other / "1").mkdir(parents=True)
    (other / "1" / "keep.pb").write_text("keep")
    precious = tmp_path / "precious.tflite"
    precious.write_bytes(b"precious")
    return other, precious


def _untouched(other, precious):
    assert (other / "1" / "keep.pb").read_text() == "keep"
    assert sorted(p.name for p in other.rglob("*")) == ["1", "keep.pb"]
    assert precious.read_bytes() == b"precious"


def test_a_link_inside_the_output_directory_is_refused(tmp_path, outside):
    other, precious = outside
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(other, out / "saved_model")
    with pytest.raises(OutputError, match=r"through a symbolic link.*resolves to '.*elsewhere'"):
        contained(out, "saved_model/1")
    _untouched(other, precious)


def test_export_refuses_before_any_work(tmp_path, outside, model_file):
    """export_lib replaces only saved_model/<version>: through a link that is elsewhere."""
    other, precious = outside
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(other, out / "saved_model")
    with pytest.raises(OutputError, match=r"'saved_model/1' leads outside the output directory"):
        export_lib.run(str(model_file), formats=("saved_model",), output_dir=str(out), verbose=0)
    _untouched(other, precious)
    assert sorted(p.name for p in out.iterdir()) == ["saved_model"]


@pytest.fixture(scope="module")
def dynamic_result(trained_models):
    return ks.compress(trained_models["keras3"], "dynamic", verbose=0)


def test_save_replaces_links_and_not_what_they_point_at(tmp_path, outside, dynamic_result):
    other, precious = outside
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(other, out / "saved_model")
    os.symlink(precious, out / "model.tflite")
    os.symlink(precious, out / "report.html")
    dynamic_result.save(out, formats=("tflite", "saved_model"))
    _untouched(other, precious)
    for name in ("model.tflite", "report.html"):
        assert not (out / name).is_symlink() and (out / name).stat().st_size > 0
    assert not (out / "saved_model").is_symlink()
    assert (out / "saved_model" / "1" / "saved_model.pb").is_file()
    names = sorted(p.name for p in out.iterdir())
    charts = [n for n in names if n.startswith("report_") and n.endswith(".png")]
    assert charts and all((out / n).is_file() and not (out / n).is_symlink() for n in charts)
    assert [n for n in names if n not in charts] == [
        "model.tflite",
        "report.html",
        "report.json",
        "report.md",
        "saved_model",
    ]


def test_save_checks_the_chart_names_before_any_work(tmp_path, dynamic_result):
    """report.html and the report_*.png charts are checked like the artifacts, up front."""
    out = tmp_path / "out"
    (out / "report_latency.png").mkdir(parents=True)
    with pytest.raises(
        OutputError, match=r"holds 'report_latency.png' as a directory\. Expected a file"
    ):
        dynamic_result.save(out, formats=("tflite",))
    assert sorted(p.name for p in out.iterdir()) == ["report_latency.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_move_into_place_over_a_dangling_link(tmp_path):
    target = tmp_path / "saved_model"
    os.symlink(tmp_path / "gone", target)
    with atomic.staging_dir(tmp_path) as stage:
        (stage / "saved_model").mkdir()
        (stage / "saved_model" / "saved_model.pb").write_text("new")
        atomic.move_into_place(stage / "saved_model", target)
    assert not target.is_symlink() and (target / "saved_model.pb").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved_model"]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    import keras

    path = tmp_path_factory.mktemp("model") / "m.keras"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save(path)
    return path
