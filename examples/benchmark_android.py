r"""Benchmark on an Android phone: float32 vs int8 with TFLite's benchmark_model over adb.

    python examples/benchmark_android.py --benchmark_binary=android_aarch64_benchmark_model

Builds the example CNN's float32 and int8 .tflite files, then, with a phone
attached (USB debugging on, `adb devices` lists it), pushes them and
benchmark_model and runs it on each model (ks.bench.benchmark_android). With no
adb or no device it prints the exact commands it would run and exits cleanly.

benchmark_model builds for Android are TFLite's prebuilt
android_aarch64_benchmark_model / android_arm_benchmark_model
(https://www.tensorflow.org/lite/performance/measurement).
"""

from __future__ import annotations

import pathlib
import shlex
import sys

import keras_squeeze as ks
from keras_squeeze.bench.android import (
    DEVICE_BINARY,
    DEVICE_DIR,
    AndroidOptions,
    benchmark_model_args,
    device_command,
)
from keras_squeeze.errors import DeviceError


def planned_commands(
    models: dict[str, pathlib.Path],
    settings: ks.bench.RunSettings,
    options: AndroidOptions,
    serial: str = "<serial>",
    binary: str | None = None,
    adb: str = "adb",
) -> list[list[str]]:
    """The adb command lines benchmark_android runs, in order (for a dry run)."""
    base = [adb, "-s", serial]
    commands = []
    if binary is not None:
        commands.append([*base, "push", binary, DEVICE_BINARY])
        commands.append([*base, "shell", f"chmod 755 {DEVICE_BINARY}"])
    commands.append([*base, "shell", f"mkdir -p {DEVICE_DIR}"])
    for name, path in models.items():
        remote = f"{DEVICE_DIR}/{name}.tflite"
        args = benchmark_model_args(remote, settings, options)
        commands.append([*base, "push", str(path), remote])
        commands.append([*base, "shell", device_command(DEVICE_BINARY, args, options.taskset)])
    return commands


def main(
    output_dir="squeezed/android",
    epochs: int = 12,
    image_size: int = 8,
    binary: str | None = None,
    serial: str | None = None,
    num_threads: int = 4,
    use_gpu: bool = False,
    adb: str | None = None,
    adb_server_port: int | None = None,
):
    """Builds the models; benchmarks them on the device, or prints the plan without one.

    Returns:
        {"models": {name: path}, "commands": the adb command lines,
        "devices": the attached devices, "result": the BenchmarkResult or None}.
    """
    out = pathlib.Path(output_dir)
    (x_train, _), _ = ks.data.load_digits(image_size=image_size)
    model = ks.data.train_example_model(epochs=epochs, image_size=image_size)
    models = {
        "float32": ks.export.to_tflite(model, out / "float32.tflite").path,
        "int8": ks.export.to_tflite(
            model, out / "int8.tflite", quantization="int8", representative_data=x_train
        ).path,
    }
    settings = ks.bench.RunSettings(num_threads=num_threads)
    options = AndroidOptions(use_gpu=use_gpu, enable_op_profiling=True)
    try:
        devices = ks.bench.list_devices(adb=adb, server_port=adb_server_port)
        why = "no Android device is attached" if not any(d.ready for d in devices) else None
    except DeviceError as e:
        devices, why = [], str(e)
    ready = [d for d in devices if d.ready and (serial is None or d.serial == serial)]
    commands = planned_commands(
        models, settings, options, serial or (ready[0].serial if ready else "<serial>"), binary
    )
    result = None
    if why is None and ready:
        result = ks.bench.benchmark_android(
            {k: str(v) for k, v in models.items()},
            serial=ready[0].serial,
            binary=binary,
            baseline="float32",
            num_threads=num_threads,
            use_gpu=use_gpu,
            enable_op_profiling=True,
            keras_model=model,
            adb=adb,
            adb_server_port=adb_server_port,
        )
        print(result.table())
        print(f"int8 / float32 p50: {result.ratio('int8'):.2f}")
    else:
        print(f"Not benchmarking: {why or 'the requested device is not ready'}.")
        print("With a device attached this runs:")
        for command in commands:
            print("  " + shlex.join(command))
    return {"models": models, "commands": commands, "devices": devices, "result": result}


if __name__ == "__main__":
    args = dict(a.lstrip("-").split("=", 1) for a in sys.argv[1:] if "=" in a)
    main(binary=args.get("benchmark_binary"), serial=args.get("serial"))
