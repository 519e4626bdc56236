"""Peak memory: /proc parsing, and the child-process measurement on real models."""

from __future__ import annotations

import pytest

from keras_squeeze.bench.delegates import DelegateSpec
from keras_squeeze.bench.memory import parse_status, peak_memory
from keras_squeeze.bench.sources import resolve_models
from keras_squeeze.errors import BenchmarkError

STATUS = """Name:\tpython
VmPeak:\t  812344 kB
VmHWM:\t  215496 kB
VmRSS:\t   10940 kB
Threads:\t1
"""


def test_parse_status():
    assert parse_status(STATUS) == {
        "VmPeak": 812344 * 1024,
        "VmHWM": 215496 * 1024,
        "VmRSS": 10940 * 1024,
    }


@pytest.fixture(scope="module")
def big_tflite():
    """A model with 2048 x 2048 float32 weights (16 MiB), to see memory grow with the model."""
    import keras

    from keras_squeeze.export import tflite as tflite_export

    model = keras.Sequential([keras.Input((2048,)), keras.layers.Dense(2048)])
    return tflite_export.convert(model, "float32")


def test_peak_grows_with_the_model(big_tflite, float_tflite):
    xnnpack = DelegateSpec("xnnpack", True)
    big, small = resolve_models({"big": big_tflite, "small": float_tflite})
    big_peak = peak_memory(big, xnnpack, num_threads=1)
    small_peak = peak_memory(small, xnnpack, num_threads=1)
    weights = 2048 * 2048 * 4
    # The 16 MiB of weights are touched (mapped file pages, and XNNPACK packs its own copy).
    assert big_peak.peak_bytes >= weights
    assert small_peak.peak_bytes < weights / 4
    assert big_peak.peak_rss_bytes > big_peak.peak_bytes
    assert "VmHWM - VmRSS after imports" in big_peak.method
    builtin = peak_memory(big, DelegateSpec("none", False), num_threads=1)
    assert builtin.peak_bytes >= weights


def test_child_failure_is_reported(float_tflite):
    from tests.bench.conftest import with_custom_op

    (source,) = resolve_models({"odd": with_custom_op(float_tflite, "MyFancyOp")})
    with pytest.raises(
        BenchmarkError,
        match=r"Measuring the memory of model 'odd' failed\..*Received: RuntimeError: Encountered unresolved custom op: MyFancyOp",
    ):
        peak_memory(source, DelegateSpec("xnnpack", True), num_threads=1)
