"""The benchmark_model parser on real outputs recorded from public sources (data/SOURCES.md)."""

from __future__ import annotations

import pathlib

import pytest

from keras_squeeze.bench.android import to_model_result
from keras_squeeze.bench.benchmark_output import (
    parse_output,
    parse_stat,
    parse_summary,
    split_name,
    strip_prefix,
)
from keras_squeeze.errors import BenchmarkError

DATA = pathlib.Path(__file__).parent / "data"


def recorded(name: str) -> str:
    return (DATA / name).read_text()


def test_every_recorded_file_is_documented():
    sources = (DATA / "SOURCES.md").read_text()
    for path in DATA.glob("*.txt"):
        assert f"`{path.name}`" in sources, path.name


def test_new_format_with_percentiles_and_exponent_notation():
    out = parse_output(recorded("ti_am62x_cpu.txt"))
    assert out.warmup.count == 1 and out.warmup.avg_us == 1357602  # "count=1 curr=..." form
    inf = out.inference
    assert (inf.count, inf.first_us, inf.min_us, inf.max_us) == (50, 1249964, 1238588, 1252566)
    assert inf.avg_us == pytest.approx(1.24027e6) and inf.std_us == 2565
    assert inf.percentiles_us == {5: 1238753, 50: 1239807, 95: 1247415}
    assert (out.init_us, out.first_inference_us) == (5579, 1357602)
    assert out.warmup_avg_us == pytest.approx(1.3576e6)
    assert out.inference_avg_us == pytest.approx(1.24027e6)
    assert (out.memory_init_mb, out.memory_overall_mb) == (6.36328, 109.832)
    assert out.model_size_mb == 67.3128 and not out.failed and out.op_profile == []


def test_xnnpack_run_and_its_delegate_lines():
    out = parse_output(recorded("ti_am62x_xnnpack.txt"))
    assert out.inference.count == 50 and out.inference.percentiles_us[50] == 899281
    assert out.init_us == 614333 and out.memory_overall_mb == 150.141
    assert any("XNNPACK delegate" in line for line in out.delegate_lines)


def test_android_external_delegate_with_a_stray_line_before_the_stat():
    out = parse_output(recorded("synaptics_android_external_delegate.txt"))
    assert (out.warmup.count, out.warmup.avg_us) == (277, 1760.78)
    assert (out.inference.count, out.inference.avg_us, out.inference.std_us) == (876, 1096.48, 476)
    assert out.inference.percentiles_us == {}  # TFLite 2.15 prints none
    assert out.memory_overall_mb == 43.2852
    assert any("EXTERNAL delegate" in line for line in out.delegate_lines)


def test_2020_android_output_and_its_peak_memory_wording():
    out = parse_output(recorded("tf_issue_42507_android_2020.txt"))
    assert (out.init_us, out.first_inference_us, out.inference_avg_us) == (855, 49060, 33209.4)
    assert out.inference.min_us == 32641 and out.warmup.count == 15
    assert (out.memory_init_mb, out.memory_overall_mb) == (0.0, 12.8672)
    assert out.memory_line == "Peak memory footprint (MB): init=0 overall=12.8672"


def test_op_profile_regular_runs_not_initialization():
    out = parse_output(recorded("riscv64_mobilenet_v1_op_profiling.txt"))
    ops = out.op_profile
    assert len(ops) == 31  # "Number of nodes executed: 31"
    assert ops[0].node_type == "CONV_2D" and ops[0].tensors == [
        "MobilenetV1/MobilenetV1/Conv2d_0/Relu6"
    ]
    assert (ops[0].first_ms, ops[0].avg_ms, ops[0].percent, ops[0].node_index) == (
        87.754,
        60.957,
        2.066,
        0,
    )
    assert ops[-1].node_type == "SOFTMAX" and ops[-1].node_index == 30
    assert sum(op.percent for op in ops) == pytest.approx(100.0, abs=0.01)
    # The stat lines still come from the run phases, not the profiler's "Timings" lines.
    assert out.inference.count == 50 and out.inference.avg_us == pytest.approx(2.95034e6)
    assert out.warmup.count == 1


def test_op_profile_of_a_keras_model_with_delegate_nodes():
    ops = parse_output(recorded("lp6m_android_nnapi_op_profiling.txt")).op_profile
    assert [op.node_type for op in ops].count("TfLiteNnapiDelegate") == 3
    fused = ops[6]
    assert fused.node_index == 270 and fused.avg_ms == 83.75
    assert fused.tensors == [
        "model/tf.math.multiply_23/Mul",
        "model/tf.math.multiply_38/Mul",
        "model/tf.math.multiply_49/Mul",
    ]
    assert ops[-1].tensors == ["Identity_1"] and ops[-1].node_index == 269


def test_2019_format_summary_and_names_without_index():
    out = parse_output(recorded("tf_readme_op_profiling_2019.txt"))
    assert (out.warmup_avg_us, out.init_us, out.inference_avg_us) == (83235, 38467, 79760.9)
    assert len(out.op_profile) == 31 and out.op_profile[0].node_index is None
    assert out.op_profile[-1].tensors == ["MobilenetV1/Predictions/Softmax"]


def test_failed_run_is_reported_with_its_error_lines():
    out = parse_output(recorded("lp6m_android_nnapi_failed.txt"))
    assert out.failed and out.inference is None
    assert "Benchmarking failed." in out.errors
    with pytest.raises(
        BenchmarkError,
        match=r"did not benchmark model 'yolo' on android:abc\. Expected its timing summary\. "
        r"Received: .*Failed to apply NNAPI delegate\.; Benchmarking failed\.",
    ):
        to_model_result(out, "yolo", 100, "android:abc", "nnapi", 4)


def test_model_result_from_recorded_output():
    text = recorded("ti_am62x_cpu.txt")
    r = to_model_result(parse_output(text), "ssd", 1000, "android:x", "none", 4, text)
    assert r.latency.p50_ms == pytest.approx(1239.807) and r.latency.mean_ms == pytest.approx(
        1240.27
    )
    assert r.latency.percentiles == pytest.approx({5: 1238.753, 50: 1239.807, 95: 1247.415})
    assert r.init_ms == pytest.approx(5.579) and r.first_inference_ms == pytest.approx(1357.602)
    assert r.memory.peak_bytes == int(109.832 * 2**20)
    assert "Memory footprint delta from the start of the tool" in r.memory.method
    old = recorded("tf_issue_42507_android_2020.txt")
    r = to_model_result(parse_output(old), "espcn", 10, "android:x", "xnnpack", 4)
    assert r.latency.p50_ms is None and r.latency.center_ms == pytest.approx(33.2094)
    assert any("no percentiles" in n for n in r.notes)


@pytest.mark.parametrize(
    "line, expected",
    [
        ("INFO: count=3 curr=7", "count=3 curr=7"),
        ("VERBOSE: Replacing 31 out of 31 node(s)", "Replacing 31 out of 31 node(s)"),
        (
            "05-31 10:31:13.023 21767 21767 I tflite  : Min num runs: [50]",
            "Min num runs: [50]",
        ),
        ("\t   CONV_2D\t 0.1", "CONV_2D\t 0.1"),
    ],
)
def test_prefixes_are_stripped(line, expected):
    assert strip_prefix(line) == expected


def test_stat_line_variants():
    same = parse_stat("count=5 curr=100(all same)")
    assert (same.count, same.avg_us, same.std_us, same.min_us) == (5, 100, 0.0, 100)
    assert parse_stat("count=0").count == 0
    assert parse_stat("Timings (microseconds): count=1 curr=2") is None
    assert parse_stat("the count=3 of things") is None


def test_summary_keys_in_every_wording():
    assert parse_summary("Warmup: 76605.9, Init: 9933, no stats: 66767.6") == {
        "warmup_avg": 76605.9,
        "init": 9933,
        "inference_avg": 66767.6,
    }


def test_split_name_forms():
    assert split_name("[a/b/Relu;a/b/BiasAdd]:3") == (["a/b/Relu;a/b/BiasAdd"], 3)
    assert split_name("Delegate/Convolution (NHWC, QC8) IGEMM:0") == ([], 0)
    assert split_name("AllocateTensors/0") == ([], 0)
    assert split_name("[x]") == (["x"], None)
    assert split_name("plain") == ([], None)
