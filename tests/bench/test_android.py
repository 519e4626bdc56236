"""The Android runner: command construction exactly, and real adb with no device attached.

No phone is attached here. What runs for real: the adb client and server
(discovery, push, shell, get-state, timeouts) and their errors. What is
checked against recorded output instead: benchmark_model's own output
(test_benchmark_output.py). What is not exercised: a benchmark_model
process on a device.
"""

from __future__ import annotations

import pytest

from keras_squeeze.bench import benchmark_android, list_devices
from keras_squeeze.bench.adb import Adb, AndroidDevice, find_adb, parse_devices, select_device
from keras_squeeze.bench.android import (
    AndroidOptions,
    benchmark_model_args,
    device_command,
    prepare_binary,
    run_on_device,
)
from keras_squeeze.bench.settings import RunSettings
from keras_squeeze.bench.sources import resolve_models
from keras_squeeze.errors import BenchmarkError, ConfigError, DeviceError, ModelError

# `adb devices -l` as adb 1.0.41 prints it: a header, then "serial<spaces>state key:value ...".
LISTING = """List of devices attached
emulator-5554          device product:sdk_gphone64_x86_64 model:sdk_gphone64_x86_64 device:emu64xa transport_id:1
R58M123ABC             unauthorized usb:1-1 transport_id:2
0123456789ABCDEF       no permissions (missing udev rules? user is in the plugdev group); see [http://developer.android.com/tools/device.html] usb:1-2 transport_id:3
192.168.1.20:5555      offline transport_id:4

"""


def test_parse_devices_listing():
    devices = parse_devices(LISTING)
    assert [d.serial for d in devices] == [
        "emulator-5554",
        "R58M123ABC",
        "0123456789ABCDEF",
        "192.168.1.20:5555",
    ]
    emu = devices[0]
    assert emu.ready and emu.properties["model"] == "sdk_gphone64_x86_64"
    assert emu.properties["transport_id"] == "1"
    assert devices[1].state == "unauthorized" and devices[1].properties == {
        "usb": "1-1",
        "transport_id": "2",
    }
    assert devices[2].state.startswith("no permissions (missing udev rules?")
    assert devices[2].properties["usb"] == "1-2"
    assert devices[3].state == "offline"
    assert parse_devices("List of devices attached\n\n") == []
    assert parse_devices("* daemon not running; starting now at tcp:5037\n") == []


def test_select_device_rules():
    devices = parse_devices(LISTING)
    assert select_device(devices, "emulator-5554").serial == "emulator-5554"
    assert select_device(devices).serial == "emulator-5554"  # the only ready one
    with pytest.raises(
        DeviceError, match=r"'R58M123ABC' is not ready.*Received: state 'unauthorized'"
    ):
        select_device(devices, "R58M123ABC")
    with pytest.raises(
        DeviceError, match=r"'nope' is not attached.*Received: emulator-5554 \(device, sdk_"
    ):
        select_device(devices, "nope")
    two = [*devices, AndroidDevice("pixel", "device")]
    with pytest.raises(
        DeviceError, match=r"Several Android devices are attached\. Expected serial="
    ):
        select_device(two)
    with pytest.raises(DeviceError, match=r"No Android device is attached.*Received: none"):
        select_device([])


def test_benchmark_model_arguments_exactly():
    settings = RunSettings(
        warmup_runs=5,
        warmup_seconds=0.5,
        min_runs=100,
        min_seconds=2,
        max_seconds=60,
        num_threads=4,
    )
    options = AndroidOptions(
        use_xnnpack=False,
        use_gpu=True,
        use_nnapi=True,
        external_delegate_path="/data/local/tmp/libedgetpu.so.1",
        external_delegate_options={"device": "usb", "performance": "max"},
        enable_op_profiling=True,
        report_peak_memory=True,
        extra_flags=("--use_caching=true",),
    )
    assert benchmark_model_args("/data/local/tmp/keras_squeeze/m.tflite", settings, options) == [
        "--graph=/data/local/tmp/keras_squeeze/m.tflite",
        "--num_threads=4",
        "--warmup_runs=5",
        "--warmup_min_secs=0.5",
        "--num_runs=100",
        "--min_secs=2",
        "--max_secs=60",
        "--use_xnnpack=false",
        "--use_gpu=true",
        "--use_nnapi=true",
        "--external_delegate_path=/data/local/tmp/libedgetpu.so.1",
        "--external_delegate_options=device:usb;performance:max",
        "--enable_op_profiling=true",
        "--report_peak_memory_footprint=true",
        "--use_caching=true",
    ]
    assert options.delegate_label == "gpu+nnapi+/data/local/tmp/libedgetpu.so.1"
    assert benchmark_model_args("g", RunSettings(), AndroidOptions()) == [
        "--graph=g",
        "--num_threads=1",
        "--warmup_runs=10",
        "--warmup_min_secs=0",
        "--num_runs=50",
        "--min_secs=1",
        "--max_secs=150",
        "--use_xnnpack=true",
    ]


def test_device_command_quotes_for_the_device_shell():
    cmd = device_command("/data/local/tmp/benchmark_model", ["--graph=/d/my model.tflite"], "f0")
    assert cmd == "taskset f0 /data/local/tmp/benchmark_model '--graph=/d/my model.tflite'"
    assert device_command("bm", ["--a=1"]) == "bm --a=1"


def test_android_options_are_checked():
    with pytest.raises(
        ConfigError, match=r"taskset must be a hexadecimal CPU mask.*Received: taskset='big'"
    ):
        AndroidOptions(taskset="big")
    with pytest.raises(ConfigError, match=r"extra_flags must be benchmark_model flags"):
        AndroidOptions(extra_flags=("rm -rf /",))


# --- the real adb, no device attached -------------------------------------------------------


def test_no_device_listed_by_real_adb(adb_port):
    assert list_devices(server_port=adb_port) == []


def test_benchmark_android_without_a_device(adb_port, float_tflite):
    with pytest.raises(DeviceError, match=r"^No Android device is attached\. Expected one device"):
        benchmark_android(float_tflite, adb_server_port=adb_port)
    with pytest.raises(DeviceError, match=r"'R58M123ABC' is not attached\. .*Received: none"):
        benchmark_android(float_tflite, serial="R58M123ABC", adb_server_port=adb_port)


def test_bad_input_is_reported_before_any_adb_call(tmp_path):
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer at all")
    with pytest.raises(ModelError, match=r"junk\.tflite' is not a TFLite model"):
        benchmark_android(str(junk), adb="/nonexistent/adb")
    with pytest.raises(ConfigError, match=r"min_runs must be an integer >= 1"):
        benchmark_android(b"", min_runs=0, adb="/nonexistent/adb")


def test_adb_missing(monkeypatch, float_tflite, tmp_path):
    with pytest.raises(
        DeviceError,
        match=r"adb was not found\. Expected the Android platform tools .*Received: '/nonexistent/adb'",
    ):
        benchmark_android(float_tflite, adb="/nonexistent/adb")
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without adb
    with pytest.raises(DeviceError, match=r"apt-get install adb.*Received: no adb on PATH"):
        find_adb()


def test_a_device_that_went_away_gives_a_clear_error(adb_port, float_tflite):
    """Discovery saw the device; by the time the model is pushed it is gone. The real adb
    answers "device 'emulator-5554' not found", which must surface as a DeviceError."""
    client = Adb(server_port=adb_port)
    gone = AndroidDevice("emulator-5554", "device")
    (source,) = resolve_models({"m": float_tflite})
    with pytest.raises(
        DeviceError,
        match=r"device 'emulator-5554' is not reachable: it was disconnected.*"
        r"Received: .*device 'emulator-5554' not found",
    ):
        run_on_device(client, gone, source, RunSettings(), AndroidOptions())
    with pytest.raises(DeviceError, match=r"'emulator-5554' is not reachable"):
        prepare_binary(client, "emulator-5554", None, "/data/local/tmp/benchmark_model")


def test_benchmark_run_on_a_vanished_device_is_called_a_disconnection(adb_port):
    """The run step itself (adb shell benchmark_model ...) against a device that is gone."""
    client = Adb(server_port=adb_port)
    proc = client.shell("emulator-5554", "/data/local/tmp/benchmark_model --graph=x", check=False)
    assert proc.returncode != 0
    error = client.error(proc, ["shell", "x"], "emulator-5554")
    assert "was disconnected, went offline or is not authorized" in str(error)


def test_a_hanging_adb_command_times_out(adb_port):
    client = Adb(server_port=adb_port)
    with pytest.raises(
        DeviceError, match=r"adb did not answer in time.*within 2 s\. Received: no answer"
    ):
        client.run(["wait-for-device"], timeout=2)


def test_missing_local_binary(adb_port):
    client = Adb(server_port=adb_port)
    with pytest.raises(
        BenchmarkError,
        match=r"benchmark_model binary to push does not exist.*'/nope/benchmark_model'",
    ):
        prepare_binary(client, "emulator-5554", "/nope/benchmark_model", "/data/local/tmp/bm")
