"""parse_compiler_log on real edgetpu_compiler output recorded from public sources (data/SOURCES.md)."""

from __future__ import annotations

import json
import pathlib

import pytest

from keras_squeeze.edgetpu import CompilerLog, parse_compiler_log
from keras_squeeze.edgetpu.compiler_log import MAPPED, parse_size

DATA = pathlib.Path(__file__).parent / "data"


def _log(name: str) -> CompilerLog:
    return parse_compiler_log((DATA / name).read_text())


def test_every_recording_is_listed_in_sources():
    listed = (DATA / "SOURCES.md").read_text()
    files = [p.name for p in DATA.iterdir() if p.suffix in (".txt", ".log")]
    assert len(files) == 12
    assert all(f"`{name}`" in listed for name in files)


def test_sizes_are_binary_units():
    assert parse_size("4.21", "MiB") == round(4.21 * 1024 * 1024)
    assert parse_size("7.75", "KiB") == 7936
    assert parse_size("0.00", "B") == 0


def test_v16_success_stdout():
    log = _log("v16_efficientdet_stdout.txt")
    assert log.compiler_version == "16.0.384591198"
    assert log.succeeded
    assert log.compile_time_ms == 1524
    assert log.timeout_seconds == 180
    assert (log.input_model, log.output_model) == (
        "efficientdet_coral_v2.tflite",
        "efficientdet_coral_v2_edgetpu.tflite",
    )
    assert log.operation_log == "efficientdet_coral_v2_edgetpu.log"
    assert log.input_size_bytes == round(4.24 * 2**20)
    assert log.on_chip_used_bytes == round(4.21 * 2**20)
    assert log.on_chip_remaining_bytes == round(3.29 * 2**20)
    assert log.off_chip_used_bytes == 0
    assert (log.edgetpu_subgraphs, log.total_ops) == (1, 267)
    assert (log.ops_on_edgetpu, log.ops_on_cpu) == (264, 3)
    assert log.operators == () and log.errors == ()


def test_operation_log_file_merges_into_the_stdout_log():
    stdout, table = _log("v16_efficientdet_stdout.txt"), _log("v16_efficientdet_edgetpu.log")
    assert table.input_model is None  # the .log says "Input:", not "Input model:"
    assert len(table.operators) == 11
    merged = stdout.merged(table)
    assert merged.ops_on_edgetpu == 264 and merged.operators == table.operators
    # The table agrees with the printed counts: 264 mapped, 3 on the CPU.
    assert (merged.mapped_ops, merged.cpu_ops) == (264, 3)
    assert merged.statuses()["DEQUANTIZE"] == {
        "Operation is working on an unsupported data type": 2
    }
    json.dumps(merged.to_dict())


def test_fully_mapped_run_prints_no_counts_so_they_come_from_the_table():
    log = _log("v16_yolov7_stdout_partial.txt")
    assert log.succeeded and log.total_ops == 246
    assert log.off_chip_used_bytes == round(41.75 * 1024)
    assert all(r.status == MAPPED for r in log.operators)
    assert log.ops_on_cpu == 0
    assert log.ops_on_edgetpu == sum(r.count for r in log.operators)


def test_ops_after_the_cut_are_logged_as_more_than_one_subgraph():
    log = _log("v2.1_model2_stdout_partial.txt")
    assert log.compiler_version == "2.1.302470888"
    assert (log.ops_on_edgetpu, log.ops_on_cpu) == (83, 10)
    assert log.on_chip_remaining_bytes == 7936
    rows = [(r.opcode, r.count, r.mapped) for r in log.operators]
    assert rows == [
        ("LOGISTIC", 1, False),
        ("ADD", 10, True),
        ("CONCATENATION", 1, False),
        ("CONCATENATION", 3, True),
    ]
    assert log.operators[0].status == "More than one subgraph is not supported"


def test_float_io_quantize_and_dequantize_stay_on_the_cpu():
    log = _log("v15_mnist4_float_io_edgetpu.log")
    assert log.compiler_version == "15.0.340273435"
    off = {r.opcode: r.status for r in log.operators if not r.mapped}
    assert off == {
        "QUANTIZE": "Operation is otherwise supported, but not mapped due to some unspecified "
        "limitation",
        "DEQUANTIZE": "Operation is working on an unsupported data type",
    }
    assert (log.mapped_ops, log.cpu_ops) == (8, 2)


def test_operation_version_not_supported_row():
    log = _log("v14_tiny_yolo_edgetpu.log")
    assert log.statuses()["RESIZE_NEAREST_NEIGHBOR"] == {"Operation version not supported": 1}
    assert log.statuses()["CONV_2D"] == {
        "Mapped to Edge TPU": 11,
        "More than one subgraph is not supported": 2,
    }
    assert (log.mapped_ops, log.cpu_ops) == (19, 6)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("v16_transpose_conv_v4_not_parsed.txt", "Didn't find op for builtin opcode 'TRANSPOSE_CONV' version '4'"),
        ("v16_exp_v2_not_parsed.txt", "Didn't find op for builtin opcode 'EXP' version '2'"),
        ("v16_dynamic_tensors_failed.txt", "only supports static-sized tensors"),
        ("v16_large_activations_failed.txt", "large activation tensors"),
        ("v14_model_not_quantized.txt", "Model not quantized"),
        ("v14_internal_error.txt", "Internal compiler error. Aborting!"),
    ],
)  # fmt: skip
def test_failures_are_not_success_and_keep_their_reason(name, expected):
    log = _log(name)
    assert not log.succeeded
    assert log.compiler_version is not None
    assert any(expected in e for e in log.errors)
    assert log.operators == () and log.ops_on_edgetpu is None


def test_model_could_not_be_parsed_lines():
    log = _log("v16_exp_v2_not_parsed.txt")
    assert log.errors[-2:] == ("Invalid model: model_2.tflite", "Model could not be parsed")


def test_last_verdict_wins_when_the_compiler_retries():
    failed = (DATA / "v16_large_activations_failed.txt").read_text()
    ok = (DATA / "v16_efficientdet_stdout.txt").read_text()
    assert parse_compiler_log(failed + ok).succeeded
    assert not parse_compiler_log(ok + failed).succeeded


def test_empty_text():
    log = parse_compiler_log("")
    assert log == CompilerLog()
    assert not log.succeeded and log.mapped_ops == 0
