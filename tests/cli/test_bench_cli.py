"""keras-squeeze-bench: the library run() and the script end to end."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from keras_squeeze.cli import bench_lib
from keras_squeeze.errors import ConfigError
from tests.bench.conftest import (  # noqa: F401  (shared session fixtures)
    adb_port,
    calibration_images,
    float_tflite,
    int8_artifact,
    int8_tflite,
    tiny_model,
)
from tests.cli.helpers import native_noise, script_env

PROGRAM = "keras-squeeze-bench"


def _script(*args, cwd, timeout=300, env=None, prelude=None):
    environment = script_env(env)
    if prelude is None:
        cmd = [sys.executable, "-m", "keras_squeeze.cli.bench", *args]
    else:
        code = f"{prelude}; import sys; sys.argv = {[PROGRAM, *args]!r}; " + (
            "from keras_squeeze.cli.bench import run_main; run_main()"
        )
        cmd = [sys.executable, "-c", code]
    return subprocess.run(
        cmd, capture_output=True, text=True, cwd=cwd, env=environment, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def model_files(tmp_path_factory, float_tflite, int8_tflite):  # noqa: F811
    d = tmp_path_factory.mktemp("models")
    (d / "float.tflite").write_bytes(float_tflite)
    (d / "model_int8.tflite").write_bytes(int8_tflite)
    return d


def test_names_and_delegate_options():
    assert bench_lib.model_names(["a/m.tflite", "b/m.tflite", "q=x/int8.tflite"]) == [
        "m",
        "m-2",
        "q",
    ]
    assert bench_lib.split_model_arg("fp=dir/model.tflite") == ("fp", "dir/model.tflite")
    assert bench_lib.split_model_arg("dir/a=b.tflite") == (None, "dir/a=b.tflite")
    assert bench_lib.parse_delegate_options("device:usb; performance:max") == {
        "device": "usb",
        "performance": "max",
    }
    with pytest.raises(ConfigError, match=r"'key:value' pairs.*Received: 'usb'"):
        bench_lib.parse_delegate_options("usb")


def test_run_writes_json(model_files, tmp_path, capsys):
    result = bench_lib.run(
        [f"fp={model_files / 'float.tflite'}", str(model_files / "model_int8.tflite")],
        baseline="fp",
        warmup_runs=2,
        min_runs=10,
        min_seconds=0.05,
        memory=False,
        output_json=str(tmp_path / "latency.json"),
        verbose=0,
    )
    data = json.loads((tmp_path / "latency.json").read_text())
    assert list(data["models"]) == ["fp", "model_int8"] and data["baseline"] == "fp"
    assert data["ratios"]["model_int8"] == pytest.approx(result.ratio("model_int8"))
    out = capsys.readouterr().out
    assert "vs fp" in out and f"JSON: {tmp_path / 'latency.json'}" in out


def test_script_end_to_end_with_chart(model_files, tmp_path):
    pytest.importorskip("matplotlib")
    proc = _script(
        f"--model=float={model_files / 'float.tflite'}",
        f"--model=int8={model_files / 'model_int8.tflite'}",
        "--baseline=float",
        "--num_threads=2",
        "--min_runs=10",
        "--min_seconds=0.05",
        "--output_json=out/latency.json",
        "--chart=out/latency.png",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert native_noise(proc.stderr) == []  # LiteRT's "Created ... XNNPACK delegate" line
    assert "keras_squeeze: benchmarking float, int8 on this CPU" in proc.stdout
    data = json.loads((tmp_path / "out" / "latency.json").read_text())
    assert data["settings"]["num_threads"] == 2
    assert all(m["memory"]["peak_bytes"] > 0 for m in data["models"].values())
    png = (tmp_path / "out" / "latency.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_chart_without_matplotlib_is_one_line_before_any_run(model_files, tmp_path):
    proc = _script(
        f"--model={model_files / 'float.tflite'}",
        "--chart=latency.png",
        cwd=tmp_path,
        prelude="import sys; sys.modules['matplotlib'] = None",
    )
    assert proc.returncode == 1
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith(f"{PROGRAM}: error:")]
    assert (
        len(lines) == 1 and "needs matplotlib" in lines[0] and "keras-squeeze[charts]" in lines[0]
    )
    assert "benchmarking" not in proc.stdout and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["--min_runs=0"], "--min_runs"),
        (["--num_threads=-1"], "--num_threads"),
        (["--target=phone"], "flag --target=phone"),
        (["--serial=abc"], "need --target=android"),
        (["--enable_op_profiling"], "need --target=android"),
        (["--baseline=other"], "--baseline must name one of the --model entries"),
        (["--chart=latency.jpg"], "--chart must be a path ending in .png"),
        (["--min_seconds=5", "--max_seconds=1"], "--max_seconds must be >= --min_seconds"),
    ],
)
def test_bad_flags_exit_2(tmp_path, model_files, args, message):
    proc = _script(f"--model={model_files / 'float.tflite'}", *args, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_missing_model_flag_exits_2(tmp_path):
    proc = _script(cwd=tmp_path, timeout=120)
    assert proc.returncode == 2 and "--model" in proc.stderr


def test_not_a_flatbuffer_exits_1_with_one_line(tmp_path):
    (tmp_path / "junk.tflite").write_text("junk")
    proc = _script("--model=junk.tflite", cwd=tmp_path, timeout=120)
    assert proc.returncode == 1
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith(f"{PROGRAM}: error:")]
    assert len(lines) == 1 and "is not a TFLite model" in lines[0]
    assert "Traceback" not in proc.stderr


def test_android_without_a_device_exits_1(tmp_path, model_files, adb_port):  # noqa: F811
    proc = _script(
        f"--model={model_files / 'float.tflite'}",
        "--target=android",
        cwd=tmp_path,
        env={"ANDROID_ADB_SERVER_PORT": str(adb_port)},
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith(f"{PROGRAM}: error:")]
    assert len(lines) == 1 and "No Android device is attached" in lines[0]


def test_android_without_adb_exits_1(tmp_path, model_files):
    proc = _script(
        f"--model={model_files / 'float.tflite'}",
        "--target=android",
        cwd=tmp_path,
        env={"PATH": os.path.dirname(sys.executable)},
        timeout=120,
    )
    assert proc.returncode == 1
    assert "adb was not found" in proc.stderr and "apt-get install adb" in proc.stderr
    assert shutil.which("adb", path=os.path.dirname(sys.executable)) is None
