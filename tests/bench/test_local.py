"""benchmark() on this CPU with real ai_edge_litert interpreters (tiny models, short runs)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from keras_squeeze.bench import benchmark
from keras_squeeze.bench.delegates import DelegateSpec, load_external
from keras_squeeze.errors import (
    BenchmarkError,
    ConfigError,
    DataError,
    DelegateError,
    ModelError,
)
from tests.bench.conftest import with_custom_op

QUICK = dict(warmup_runs=2, min_runs=20, min_seconds=0.05)


def test_interleaved_float_and_int8(float_tflite, int8_artifact):
    result = benchmark(
        {"float": float_tflite, "int8": int8_artifact}, baseline="float", num_threads=2, **QUICK
    )
    f, q = result["float"], result["int8"]
    # Round-robin: every model runs once per round.
    assert f.latency.count == q.latency.count >= 20
    assert len(f.samples_ms) == f.latency.count and min(f.samples_ms) > 0
    for r in (f, q):
        assert r.target == "cpu" and r.delegate == "xnnpack" and r.num_threads == 2
        assert r.init_ms > 0 and r.first_inference_ms > 0 and r.warmup.count == 2
        lat = r.latency
        assert lat.min_ms <= lat.p50_ms <= lat.p90_ms <= lat.p99_ms <= lat.max_ms
        assert r.memory.peak_bytes > 0 and "clear_refs" in r.memory.method
    assert result.ratio("float") == 1.0
    assert result.ratio("int8") == pytest.approx(q.latency.p50_ms / f.latency.p50_ms)
    assert result.speedup("int8") == pytest.approx(1 / result.ratio("int8"))
    assert result.settings["order"] == "interleaved, rotating start"
    assert q.size_bytes < f.size_bytes
    # int8 input filled over the whole int8 range = the calibrated float range.
    assert q.inputs[0].startswith("serving_default_image:0: int8 uniform over [-128, 127] (real [")
    assert f.inputs[0].endswith("float32 uniform in [-1, 1]")


def test_stopping_rule_min_runs_and_min_seconds(float_tflite):
    runs = benchmark(float_tflite, warmup_runs=0, min_runs=7, min_seconds=0, measure_memory=False)
    assert runs["model_1"].latency.count == 7 and runs["model_1"].warmup is None
    timed = benchmark(
        float_tflite, warmup_runs=0, min_runs=1, min_seconds=0.3, measure_memory=False
    )
    assert timed.settings["measured_seconds"] >= 0.3 and timed["model_1"].latency.count > 1
    capped = benchmark(
        float_tflite,
        warmup_runs=0,
        min_runs=10**9,
        min_seconds=0,
        max_seconds=0.2,
        measure_memory=False,
    )
    assert "stopped at max_seconds=0.2 before min_runs" in capped["model_1"].notes


def test_xnnpack_on_and_off(float_tflite):
    on = benchmark(float_tflite, measure_memory=False, **QUICK)["model_1"]
    off = benchmark(float_tflite, use_xnnpack=False, measure_memory=False, **QUICK)["model_1"]
    assert on.delegate == "xnnpack" and off.delegate == "none"
    delegated = [int(n.split()[0]) for n in on.notes if "delegate node" in n]
    assert delegated and delegated[0] >= 1
    assert "0 delegate node(s) in the execution plan" in off.notes


def test_given_float_inputs_are_quantized_for_int8_models(float_tflite, int8_tflite):
    x = np.random.default_rng(3).uniform(0, 1, size=(16, 16, 3)).astype(np.float32)
    result = benchmark(
        {"f": float_tflite, "q": int8_tflite}, inputs=x, measure_memory=False, **QUICK
    )
    assert result["q"].inputs == ["serving_default_image:0: given"]
    by_name = benchmark(int8_tflite, inputs={"image": x[None]}, measure_memory=False, **QUICK)
    assert by_name["model_1"].latency.count >= 20


def test_inputs_of_the_wrong_shape(float_tflite):
    with pytest.raises(
        DataError,
        match=r"inputs does not match input 'serving_default_image:0' of model 'model_1'\. Expected an array of shape \(1, 16, 16, 3\).*Received: shape \(8, 8, 3\)",
    ):
        benchmark(float_tflite, inputs=np.zeros((8, 8, 3)), measure_memory=False)
    with pytest.raises(
        DataError, match=r"inputs has no entry for input .*Received: keys \['nope'\]"
    ):
        benchmark(float_tflite, inputs={"nope": np.zeros((16, 16, 3))}, measure_memory=False)


def test_result_json_round_trip(float_tflite, tmp_path):
    result = benchmark({"a": float_tflite, "b": float_tflite}, measure_memory=False, **QUICK)
    path = result.save_json(tmp_path / "out" / "latency.json")
    data = json.loads(path.read_text())
    assert data["baseline"] == "a" and set(data["models"]) == {"a", "b"}
    assert data["models"]["b"]["latency"]["count"] == result["b"].latency.count
    assert len(data["models"]["a"]["samples_ms"]) == result["a"].latency.count
    assert data["ratios"]["b"] == pytest.approx(result.ratio("b"))
    table = result.table()
    assert table.splitlines()[0].split()[:4] == ["model", "init", "ms", "first"]
    assert "vs a" in table and "interleaved, rotating start" in table


def test_model_kinds_and_names(tmp_path, float_tflite, int8_result, int8_artifact):
    path = tmp_path / "net.tflite"
    path.write_bytes(float_tflite)
    models = [str(path), path, float_tflite, int8_result, int8_artifact]
    result = benchmark(models, measure_memory=False, **QUICK)
    assert list(result.models) == ["net", "net-2", "model_3", "int8", "model_5"]
    assert result["int8"].size_bytes == len(int8_result.tflite)


def test_not_a_flatbuffer_and_missing_file(tmp_path):
    junk = tmp_path / "notes.tflite"
    junk.write_text("hello world")
    with pytest.raises(
        ModelError,
        match=r"notes\.tflite' is not a TFLite model\. Expected a flatbuffer with the 'TFL3' identifier\. Received: 11 bytes starting b'hello wo'",
    ):
        benchmark(str(junk))
    with pytest.raises(
        ModelError,
        match=r"does not exist\. Expected a path to a \.tflite file\. Received: '.*missing\.tflite'",
    ):
        benchmark(str(tmp_path / "missing.tflite"))
    with pytest.raises(
        ModelError, match=r"Expected \.tflite bytes, a path, an Artifact .*Received: builtins\.int"
    ):
        benchmark(42)
    damaged = b"\x10\x00\x00\x00TFL3" + b"\xff" * 20
    with pytest.raises(
        ModelError,
        match=r"Model 'model_1' is not a readable TFLite model\. Expected an intact \.tflite "
        r"flatbuffer\. Received: 28 bytes",
    ):
        benchmark(damaged)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"min_runs": 0},
            r"min_runs must be an integer >= 1\. Expected >= 1\. Received: min_runs=0",
        ),
        ({"min_runs": -5}, r"Received: min_runs=-5"),
        ({"warmup_runs": -1}, r"Received: warmup_runs=-1"),
        ({"num_threads": 0}, r"Received: num_threads=0"),
        ({"min_seconds": -0.5}, r"Received: min_seconds=-0\.5"),
        (
            {"baseline": "nope"},
            r"The baseline is not one of the models\. Expected one of \['model_1'\]\. Received: baseline='nope'",
        ),
        ({"input_range": (1, 0)}, r"input_range must be finite with low < high"),
    ],
)
def test_bad_settings(float_tflite, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        benchmark(float_tflite, **kwargs)


def test_unknown_custom_op(float_tflite):
    custom = with_custom_op(float_tflite, "MyFancyOp")
    with pytest.raises(
        BenchmarkError,
        match=r"Model 'model_1' uses operators this runtime does not have\. .*\(MyFancyOp\)\. Received: Encountered unresolved custom op: MyFancyOp",
    ):
        benchmark(custom, measure_memory=False)


def test_edgetpu_model_without_the_edgetpu_runtime(edgetpu_tflite):
    """An _edgetpu.tflite selects the Edge TPU delegate; libedgetpu is not installed here."""
    with pytest.raises(
        DelegateError,
        match=r"^The Edge TPU runtime could not be loaded\. Expected the Coral Edge TPU runtime "
        r"\(.*apt-get install libedgetpu1-std\) and an Edge TPU attached\. "
        r"Received: 'libedgetpu\.so\.1' \(libedgetpu\.so\.1: cannot open shared object file",
    ):
        benchmark({"m_edgetpu": edgetpu_tflite}, measure_memory=False)
    with pytest.raises(
        DelegateError, match=r"compiled for the Edge TPU .*Received: delegate='xnnpack'"
    ):
        benchmark(edgetpu_tflite, delegate="xnnpack")


def test_edgetpu_and_cpu_models_cannot_share_a_run(edgetpu_tflite, float_tflite):
    with pytest.raises(
        ConfigError, match=r"Edge TPU models and CPU models cannot share one run's delegate"
    ):
        benchmark({"tpu": edgetpu_tflite, "cpu": float_tflite})


def test_external_delegate_errors(float_tflite):
    with pytest.raises(
        DelegateError,
        match=r"The external delegate could not be loaded\..*Received: '/nonexistent/libdelegate\.so'",
    ):
        benchmark(float_tflite, delegate="/nonexistent/libdelegate.so", measure_memory=False)
    with pytest.raises(
        DelegateError,
        match=r"is not a TFLite external delegate\. Expected a shared library exporting tflite_plugin_create_delegate and tflite_plugin_destroy_delegate\. Received: 'libm\.so\.6'",
    ):
        load_external("libm.so.6")
    with pytest.raises(ConfigError, match=r"contradicts use_xnnpack=False"):
        benchmark(float_tflite, delegate="xnnpack", use_xnnpack=False)
    assert DelegateSpec("none", False).load() == []
