"""Shared fixtures: small trained models of both Keras flavours on the digits.

Models are tiny (8x8 or 16x16 inputs) and trained for a couple of epochs, so
the whole suite stays fast on two cores; figures of merit live in benchmarks/.
"""

from __future__ import annotations

import numpy as np
import pytest

from keras_squeeze import _compat
from keras_squeeze.data import load_digits, train_example_model

FLAVOURS = (_compat.KERAS3, _compat.TF_KERAS)


@pytest.fixture(scope="session")
def digits8():
    return load_digits(8)


@pytest.fixture(scope="session")
def digits16():
    return load_digits(16)


@pytest.fixture(scope="session")
def trained_models():
    """{flavour: example CNN on 8x8 digits, trained 3 epochs}."""
    return {f: train_example_model(epochs=3, image_size=8, flavour=f, seed=1) for f in FLAVOURS}


@pytest.fixture(params=FLAVOURS)
def flavour(request):
    return request.param


@pytest.fixture
def trained(trained_models, flavour):
    return trained_models[flavour]


def keras(flavour):
    return _compat.keras_module(flavour)


def digits_mlp(x, y, units: int = 128, epochs: int = 6):
    """A seeded Keras 3 MLP on 8x8 digits (flatten, dense `units` relu, dense 10 logits),
    trained `epochs` epochs on (x, y) (0: left untrained)."""
    import keras as keras3

    keras3.utils.set_random_seed(0)
    model = keras3.Sequential(
        [
            keras3.Input((8, 8, 1)),
            keras3.layers.Flatten(),
            keras3.layers.Dense(units, activation="relu", name="hidden"),
            keras3.layers.Dense(10, name="logits"),
        ]
    )
    model.compile("adam", keras3.losses.SparseCategoricalCrossentropy(from_logits=True))
    if epochs:
        model.fit(x, y, epochs=epochs, batch_size=64, verbose=0)
    return model


def weights_snapshot(model):
    return [np.array(w) for w in model.get_weights()]


def assert_weights_equal(before, model):
    after = model.get_weights()
    assert len(before) == len(after)
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)


def warnings_besides_task_drop(report):
    """The report's warnings other than the task-metric drop (a tiny model fine-tuned for a
    few steps may lose more than the 2 points that warning allows; what these tests check
    is that no target of the stage went unmet; tests/report/test_warnings.py makes the
    task-drop warning fire)."""
    return [w for w in report.warnings if " points under the original" not in w]


def assert_saved_files(out, artifacts, charts=("size",)):
    """`out` holds exactly `artifacts`, the three reports and the report_*.png charts.

    Every chart in `charts` is there ("size", "accuracy", ...; others may be
    too, depending on what was measured); each PNG is an image, and report.html
    embeds every one of them.
    """
    import base64
    import pathlib

    out = pathlib.Path(out)
    names = sorted(p.name for p in out.iterdir())
    pngs = [n for n in names if n.startswith("report_") and n.endswith(".png")]
    others = [n for n in names if n not in pngs]
    assert others == sorted([*artifacts, "report.html", "report.json", "report.md"]), names
    assert {f"report_{c}.png" for c in charts} <= set(pngs), pngs
    html = (out / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "keras_squeeze report" in html
    for name in pngs:
        png = (out / name).read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n"), name
        assert base64.b64encode(png).decode() in html, f"{name} is not embedded in report.html"
