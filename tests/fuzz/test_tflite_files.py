"""Every reader of .tflite files on damaged ones: read or a one-line KerasSqueezeError.

Pure-Python readers run in this process (under a time bound); ks.benchmark
and the probe load the interpreter, in child processes where a crash is an
error.
"""

from __future__ import annotations

import pathlib
import tempfile

from hypothesis import given
from hypothesis import strategies as st

import keras_squeeze as ks
from keras_squeeze.bench.op_layers import map_layers
from keras_squeeze.bench.results import OpTiming
from keras_squeeze.bench.sources import resolve_models
from keras_squeeze.edgetpu import check_edgetpu, edgetpu_readiness
from keras_squeeze.report.tflite_reader import read_tflite
from keras_squeeze.safety.probe import probe_tflite
from tests.fuzz import cases
from tests.fuzz.strategies import SMALL_TFLITE, budget, damaged_tflite

ROW = OpTiming("CONV_2D", 0.1, 0.1, 50.0, 1, "conv:0", [], 0)


@budget(150, deadline_s=20)
@given(content=damaged_tflite())
def test_bytes_readers(content):
    for reader in (read_tflite, check_edgetpu, edgetpu_readiness):
        cases.assert_clean(
            cases.run_case(reader, content, bound=20),
            ["The data", "The .tflite to check", "The model", "The .tflite"],
        )
    cases.assert_clean(cases.run_case(map_layers, [ROW], tflite=content, bound=20), ["The data"])


@budget(60, deadline_s=20)
@given(content=damaged_tflite(), suffix=st.sampled_from([".tflite", ".bin", ""]))
def test_path_readers_name_the_file(content, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / f"model{suffix}"
        path.write_bytes(content)
        for reader in (check_edgetpu, resolve_models):
            cases.assert_clean(cases.run_case(reader, path, bound=20), [path])


def _benchmark(path, measure_memory):
    return ks.benchmark(
        path,
        measure_memory=measure_memory,
        warmup_runs=0,
        min_runs=1,
        min_seconds=0,
        max_seconds=5,
    )


@budget(8)
@given(content=damaged_tflite(SMALL_TFLITE), measure_memory=st.booleans())
def test_benchmark_loads_damaged_files_in_a_child_first(content, measure_memory):
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "damaged.tflite"
        path.write_bytes(content)
        outcome = cases.run_case(_benchmark, path, measure_memory, bound=300)
        cases.assert_clean(outcome, [path, "'damaged'"])


@budget(8)
@given(content=damaged_tflite(SMALL_TFLITE))
def test_probe(content):
    outcome = cases.run_case(probe_tflite, content, "'probe.tflite'", bound=300)
    cases.assert_clean(outcome, ["'probe.tflite'"])
