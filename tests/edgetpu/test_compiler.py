"""The edgetpu_compiler runner: command line, missing compiler, and process handling.

edgetpu_compiler cannot be installed here (its apt repository is unreachable),
so the runs below use small executable scripts written by the tests that
behave like the compiler at its boundary: they take the same arguments, print
recorded real compiler output (data/SOURCES.md), write or do not write the
output files, exit non-zero, or hang. They test keras_squeeze's process
handling, file plumbing and error messages, not the compiler.
"""

from __future__ import annotations

import os
import pathlib
import stat
import subprocess
import sys
import textwrap
import time

import pytest

from keras_squeeze.edgetpu import compile_for_edgetpu, compiler_command, find_compiler, run_compiler
from keras_squeeze.errors import ConfigError, DependencyError, ExportError, ModelError

DATA = pathlib.Path(__file__).parent / "data"
# The smallest thing that passes the flatbuffer identifier check.
FAKE_TFLITE = b"\x1c\x00\x00\x00TFL3" + bytes(56)


def _script(tmp_path, body: str, name="edgetpu_compiler") -> pathlib.Path:
    path = tmp_path / "bin" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


_ARGS = """
import sys, pathlib
args = sys.argv[1:]
out_dir = pathlib.Path(args[args.index("--out_dir") + 1])
model = pathlib.Path(args[-1])
"""


def test_command_line():
    assert compiler_command("edgetpu_compiler", "/w/model.tflite", "/w") == [
        "edgetpu_compiler",
        "--show_operations",
        "--out_dir",
        "/w",
        "/w/model.tflite",
    ]
    cmd = compiler_command(
        "/opt/c", "/w/m.tflite", "/w", min_runtime_version=13, compiler_timeout_s=120
    )
    assert cmd == [
        "/opt/c", "--show_operations", "--out_dir", "/w",
        "--min_runtime_version", "13", "--timeout_sec", "120", "/w/m.tflite",
    ]  # fmt: skip
    with pytest.raises(ConfigError, match=r"min_runtime_version must be.*Received: '14'"):
        compiler_command("c", "m", "d", min_runtime_version="14")


def test_find_compiler(tmp_path, monkeypatch):
    exe = _script(tmp_path, "print('hi')\n")
    assert find_compiler(exe) == str(exe)
    assert find_compiler(tmp_path / "missing") is None
    monkeypatch.setenv("PATH", str(exe.parent))
    assert find_compiler() == str(exe)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert find_compiler() is None


def test_missing_compiler(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(
        DependencyError,
        match=r"Edge TPU compiler was not found\. Expected edgetpu_compiler on PATH.*"
        r"apt-get install edgetpu-compiler.*Received: 'edgetpu_compiler' is not",
    ):
        run_compiler(FAKE_TFLITE)
    target = tmp_path / "out" / "model_edgetpu.tflite"
    assert compile_for_edgetpu(FAKE_TFLITE, target) == (None, None)
    assert not target.parent.exists()


def test_not_a_tflite(tmp_path):
    with pytest.raises(
        ModelError, match=r"The model to compile is not a TFLite model.*Received: 5"
    ):
        run_compiler(b"hello")
    with pytest.raises(ModelError, match="not a TFLite model"):
        compile_for_edgetpu(b"hello", tmp_path / "x.tflite", executable=tmp_path / "none")


def test_bad_timeout():
    with pytest.raises(ConfigError, match=r"timeout must be a positive number.*Received: 0"):
        run_compiler(FAKE_TFLITE, timeout=0)


def test_successful_run_returns_bytes_and_merged_log(tmp_path):
    stdout = DATA / "v16_efficientdet_stdout.txt"
    oplog = DATA / "v16_efficientdet_edgetpu.log"
    exe = _script(
        tmp_path,
        _ARGS
        + f"""
pathlib.Path({str(tmp_path)!r}, "argv.txt").write_text("\\n".join(sys.argv))
(out_dir / (model.stem + "_edgetpu.tflite")).write_bytes(model.read_bytes())
(out_dir / (model.stem + "_edgetpu.log")).write_text(pathlib.Path({str(oplog)!r}).read_text())
print(pathlib.Path({str(stdout)!r}).read_text(), end="")
""",
    )
    result = run_compiler(FAKE_TFLITE, executable=exe, min_runtime_version=14)
    assert result.content == FAKE_TFLITE
    received = (tmp_path / "argv.txt").read_text().split("\n")
    assert received == list(result.command)
    assert received[1:5] == [
        "--show_operations",
        "--out_dir",
        str(pathlib.Path(received[-1]).parent),
        "--min_runtime_version",
    ]
    assert pathlib.Path(received[-1]).name == "model.tflite"
    assert not pathlib.Path(received[-1]).exists()  # the temporary directory is gone
    log = result.log
    assert log.succeeded and log.compiler_version == "16.0.384591198"
    assert (log.ops_on_edgetpu, log.ops_on_cpu) == (264, 3)
    assert len(log.operators) == 11  # from the .log file the compiler wrote
    assert "264 ops on the Edge TPU" in repr(result)

    target = tmp_path / "squeezed" / "model_edgetpu.tflite"
    path, log2 = compile_for_edgetpu(FAKE_TFLITE, target, executable=exe)
    assert path == target and target.read_bytes() == FAKE_TFLITE
    assert log2 == log


def test_compiler_failure_is_a_clear_error_and_writes_nothing(tmp_path):
    text = DATA / "v16_transpose_conv_v4_not_parsed.txt"
    exe = _script(
        tmp_path,
        f"import pathlib, sys\nprint(pathlib.Path({str(text)!r}).read_text())\nsys.exit(1)\n",
    )
    with pytest.raises(
        ExportError,
        match=r"edgetpu_compiler failed on the model \(exit code 1\)\. Expected 'Model compiled "
        r"successfully'.*Received: .*Didn't find op for builtin opcode 'TRANSPOSE_CONV' version "
        r"'4'.*Model could not be parsed",
    ):
        run_compiler(FAKE_TFLITE, executable=exe)
    target = tmp_path / "out" / "model_edgetpu.tflite"
    with pytest.raises(ExportError):
        compile_for_edgetpu(FAKE_TFLITE, target, executable=exe)
    assert not target.exists()


def test_exit_zero_without_output_model(tmp_path):
    exe = _script(tmp_path, "print('Edge TPU Compiler version 16.0.384591198')\n")
    with pytest.raises(
        ExportError, match=r"exit code 0 but no model_edgetpu\.tflite.*Received: Edge TPU"
    ):
        run_compiler(FAKE_TFLITE, executable=exe)


def test_output_that_is_not_a_tflite(tmp_path):
    exe = _script(tmp_path, _ARGS + "(out_dir / 'model_edgetpu.tflite').write_bytes(b'junk')\n")
    with pytest.raises(
        ModelError, match=r"compiler's output model_edgetpu\.tflite is not a TFLite"
    ):
        run_compiler(FAKE_TFLITE, executable=exe)


def test_timeout_kills_the_compiler_and_its_children(tmp_path):
    pid_file = tmp_path / "child.pid"
    exe = _script(
        tmp_path,
        f"""
import pathlib, subprocess, time
child = subprocess.Popen(["sleep", "60"])
pathlib.Path({str(pid_file)!r}).write_text(str(child.pid))
print("Started a compilation timeout timer of 180 seconds.", flush=True)
time.sleep(60)
""",
    )
    start = time.monotonic()
    with pytest.raises(
        ExportError, match=r"did not finish within 2 s and was stopped.*raise timeout="
    ):
        run_compiler(FAKE_TFLITE, executable=exe, timeout=2)
    assert time.monotonic() - start < 20
    child = int(pid_file.read_text())
    for _ in range(50):
        status = pathlib.Path(f"/proc/{child}/status")
        if not status.exists() or "\nState:\tZ" in status.read_text():
            break
        time.sleep(0.1)
    else:
        os.kill(child, 9)
        pytest.fail("the compiler's child process survived the timeout")


def test_import_loads_neither_tensorflow_nor_keras():
    code = (
        "import sys, keras_squeeze.edgetpu; "
        "print([m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras')])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]"
