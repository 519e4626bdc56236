"""ks.load_model on damaged .keras, .h5, tf_keras SavedModel and Keras 3 export directories.

Each case loads (a damage that changed only weights) or refuses with a
one-line ModelError naming the path; HDF5 is read in a child process first,
so a file that hangs or crashes it is an error here.
"""

from __future__ import annotations

import io
import pathlib
import shutil
import tempfile
import zipfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

import keras_squeeze as ks
from tests.fuzz import cases
from tests.fuzz.strategies import budget, damaged, damaged_text

SAVED_MODEL_FILES = (
    "saved_model.pb",
    "variables/variables.index",
    "variables/variables.data-00000-of-00001",
    "fingerprint.pb",
)


def write_reference_models(root: pathlib.Path) -> dict[str, pathlib.Path]:
    """The same small CNN in every format load_model reads."""
    import keras
    import tf_keras

    def layers(k):
        return [
            k.Input((8, 8, 1)),
            k.layers.Conv2D(4, 3, activation="relu"),
            k.layers.BatchNormalization(),
            k.layers.Flatten(),
            k.layers.Dense(3, activation="softmax"),
        ]

    k3, tk = keras.Sequential(layers(keras)), tf_keras.Sequential(layers(tf_keras))
    paths = {
        "keras3.keras": root / "keras3.keras",
        "keras3.h5": root / "keras3.h5",
        "tf_keras.h5": root / "tf_keras.h5",
        "tf_keras.keras": root / "tf_keras.keras",
        "tf_keras_savedmodel": root / "tf_keras_savedmodel",
        "keras3_export": root / "keras3_export",
    }
    k3.save(paths["keras3.keras"])
    k3.save(paths["keras3.h5"])
    tk.save(paths["tf_keras.h5"])
    tk.save(paths["tf_keras.keras"])
    tk.save(paths["tf_keras_savedmodel"], save_format="tf")
    k3.export(paths["keras3_export"], verbose=0)
    return paths


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return write_reference_models(tmp_path_factory.mktemp("reference_models"))


def damaged_archive(draw, path: pathlib.Path) -> bytes:
    """A .keras archive with one member damaged (re-zipped), or its zip bytes damaged."""
    with zipfile.ZipFile(path) as archive:
        members = {i.filename: archive.read(i.filename) for i in archive.infolist()}
    target = draw(st.sampled_from(["zip", *sorted(members)]))
    if target == "zip":
        return draw(damaged(path.read_bytes()))
    if target.endswith(".json"):
        members[target] = draw(damaged_text(members[target].decode())).encode()
    else:
        members[target] = draw(damaged(members[target]))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


@st.composite
def damaged_model_file(draw, reference: dict):
    """(name, how to write the damaged copy into a directory) of one reference model."""
    name = draw(st.sampled_from(sorted(reference)))
    source = reference[name]
    if source.is_dir():
        extra = ("keras_metadata.pb",) if (source / "keras_metadata.pb").exists() else ()
        member = draw(st.sampled_from(SAVED_MODEL_FILES + extra))
        data = draw(damaged((source / member).read_bytes()))

        def write(folder: pathlib.Path) -> pathlib.Path:
            target = folder / name
            shutil.copytree(source, target)
            (target / member).write_bytes(data)
            return target

        return f"{name}/{member}", write
    data = (
        damaged_archive(draw, source)
        if name.endswith(".keras")
        else draw(damaged(source.read_bytes()))
    )

    def write(folder: pathlib.Path) -> pathlib.Path:
        target = folder / name
        target.write_bytes(data)
        return target

    return name, write


@budget(25)
@given(data=st.data())
def test_load_model_on_damaged_files(reference, data):
    _, write = data.draw(damaged_model_file(reference))
    with tempfile.TemporaryDirectory() as tmp:
        path = write(pathlib.Path(tmp))
        outcome = cases.run_case(ks.load_model, path, bound=300)
        cases.assert_clean(outcome, [path])
