r"""keras-squeeze-bench: latency of .tflite models on this CPU or on an Android device.

    keras-squeeze-bench --model=float=model.tflite --model=int8=model_int8.tflite \
        --baseline=float --num_threads=2 --output_json=latency.json --chart=latency.png
    keras-squeeze-bench --target=android --serial=R58M123ABC \
        --benchmark_binary=android_aarch64_benchmark_model --model=model.tflite --use_gpu
"""

from __future__ import annotations

import sys

from absl import flags

from keras_squeeze.cli import common

PROGRAM = "keras-squeeze-bench"
FLAGS = common.new_flag_values(__doc__)
_ANDROID_ONLY = (
    "adb",
    "serial",
    "benchmark_binary",
    "use_gpu",
    "use_nnapi",
    "enable_op_profiling",
    "taskset",
)

_MODEL = flags.DEFINE_multi_string(
    "model",
    None,
    "A .tflite to benchmark, as 'path' or 'name=path'; repeat for several.",
    flag_values=FLAGS,
)
_BASELINE = flags.DEFINE_string(
    "baseline", None, "Model name ratios are taken against.", flag_values=FLAGS
)
_TARGET = flags.DEFINE_enum(
    "target",
    "cpu",
    ["cpu", "android"],
    "Where to run: this CPU, or an Android device via adb.",
    flag_values=FLAGS,
)
_NUM_THREADS = flags.DEFINE_integer(
    "num_threads", 1, "CPU threads.", lower_bound=1, flag_values=FLAGS
)
_USE_XNNPACK = flags.DEFINE_boolean(
    "use_xnnpack",
    True,
    "Use the XNNPACK delegate (off: TFLite's built-in kernels).",
    flag_values=FLAGS,
)
_DELEGATE = flags.DEFINE_string(
    "delegate",
    None,
    "cpu: 'edgetpu' or the path of a TFLite external delegate library; android: the device "
    "path of an external delegate (benchmark_model --external_delegate_path).",
    flag_values=FLAGS,
)
_DELEGATE_OPTIONS = flags.DEFINE_string(
    "delegate_options",
    None,
    "Options of --delegate as 'key:value;key2:value2'.",
    flag_values=FLAGS,
)
_WARMUP_RUNS = flags.DEFINE_integer(
    "warmup_runs", 10, "Warm-up runs per model.", lower_bound=0, flag_values=FLAGS
)
_WARMUP_SECONDS = flags.DEFINE_float(
    "warmup_seconds",
    0.0,
    "Warm up at least this long.",
    lower_bound=0.0,
    flag_values=FLAGS,
)
_MIN_RUNS = flags.DEFINE_integer(
    "min_runs",
    50,
    "Measured runs per model, at least.",
    lower_bound=1,
    flag_values=FLAGS,
)
_MIN_SECONDS = flags.DEFINE_float(
    "min_seconds",
    1.0,
    "Measure at least this long.",
    lower_bound=0.0,
    flag_values=FLAGS,
)
_MAX_SECONDS = flags.DEFINE_float(
    "max_seconds",
    150.0,
    "Start no run after this many seconds.",
    lower_bound=0.001,
    flag_values=FLAGS,
)
_MEMORY = flags.DEFINE_boolean(
    "memory",
    True,
    "cpu: measure peak memory per model in a child process.",
    flag_values=FLAGS,
)
_SERIAL = flags.DEFINE_string(
    "serial", None, "android: the device serial (adb devices -l).", flag_values=FLAGS
)
_BENCHMARK_BINARY = flags.DEFINE_string(
    "benchmark_binary",
    None,
    "android: a benchmark_model executable to push to the device.",
    flag_values=FLAGS,
)
_DEVICE_BINARY = flags.DEFINE_string(
    "device_binary",
    "/data/local/tmp/benchmark_model",
    "android: benchmark_model's device path.",
    flag_values=FLAGS,
)
_USE_GPU = flags.DEFINE_boolean("use_gpu", False, "android: the GPU delegate.", flag_values=FLAGS)
_USE_NNAPI = flags.DEFINE_boolean(
    "use_nnapi", False, "android: the NNAPI delegate.", flag_values=FLAGS
)
_OP_PROFILING = flags.DEFINE_boolean(
    "enable_op_profiling",
    False,
    "android: per-op times, mapped to Keras layer names.",
    flag_values=FLAGS,
)
_TASKSET = flags.DEFINE_string(
    "taskset", None, "android: CPU affinity mask, e.g. f0.", flag_values=FLAGS
)
_ADB = flags.DEFINE_string(
    "adb", None, "android: the adb executable (default: on PATH).", flag_values=FLAGS
)
_OUTPUT_JSON = flags.DEFINE_string(
    "output_json", None, "Write the results as JSON here.", flag_values=FLAGS
)
_CHART = flags.DEFINE_string(
    "chart",
    None,
    "Write a PNG of the latency distributions here (needs matplotlib).",
    flag_values=FLAGS,
)
_VERBOSE = flags.DEFINE_integer(
    "verbose",
    1,
    "0 quiet, 1 progress lines, 2 also tracebacks.",
    lower_bound=0,
    upper_bound=2,
    flag_values=FLAGS,
)

flags.mark_flag_as_required("model", flag_values=FLAGS)


@flags.multi_flags_validator(
    ["target", *_ANDROID_ONLY],
    message="--adb, --serial, --benchmark_binary, --use_gpu, --use_nnapi, "
    "--enable_op_profiling and "
    "--taskset need --target=android",
    flag_values=FLAGS,
)
def _check_android_only(values) -> bool:
    return values["target"] == "android" or not any(values[k] for k in _ANDROID_ONLY)


@flags.multi_flags_validator(
    ["min_seconds", "max_seconds"],
    message="--max_seconds must be >= --min_seconds",
    flag_values=FLAGS,
)
def _check_seconds(values) -> bool:
    return values["max_seconds"] >= values["min_seconds"]


@flags.multi_flags_validator(
    ["model", "baseline"],
    message="--baseline must name one of the --model entries",
    flag_values=FLAGS,
)
def _check_baseline(values) -> bool:
    if values["baseline"] is None or not values["model"]:
        return True
    from keras_squeeze.cli.bench_lib import model_names

    return values["baseline"] in model_names(values["model"])


@flags.validator("delegate_options", flag_values=FLAGS)
def _check_delegate_options(value) -> bool:
    from keras_squeeze.cli.bench_lib import parse_delegate_options

    return common.validate(lambda: parse_delegate_options(value))


@flags.validator("taskset", flag_values=FLAGS)
def _check_taskset(value) -> bool:
    from keras_squeeze.bench.android import AndroidOptions

    return common.validate(lambda: AndroidOptions(taskset=value))


@flags.validator("chart", message="--chart must be a path ending in .png", flag_values=FLAGS)
def _check_chart(value) -> bool:
    return value is None or value.lower().endswith(".png")


def main(argv) -> int:
    from keras_squeeze.cli import bench_lib

    return common.script_main(
        argv,
        PROGRAM,
        _VERBOSE.value,
        lambda: bench_lib.run(
            models=_MODEL.value,
            baseline=_BASELINE.value,
            target=_TARGET.value,
            num_threads=_NUM_THREADS.value,
            use_xnnpack=_USE_XNNPACK.value,
            delegate=_DELEGATE.value,
            delegate_options=_DELEGATE_OPTIONS.value,
            warmup_runs=_WARMUP_RUNS.value,
            warmup_seconds=_WARMUP_SECONDS.value,
            min_runs=_MIN_RUNS.value,
            min_seconds=_MIN_SECONDS.value,
            max_seconds=_MAX_SECONDS.value,
            memory=_MEMORY.value,
            serial=_SERIAL.value,
            benchmark_binary=_BENCHMARK_BINARY.value,
            device_binary=_DEVICE_BINARY.value,
            use_gpu=_USE_GPU.value,
            use_nnapi=_USE_NNAPI.value,
            enable_op_profiling=_OP_PROFILING.value,
            taskset=_TASKSET.value,
            adb=_ADB.value,
            output_json=_OUTPUT_JSON.value,
            chart=_CHART.value,
            verbose=_VERBOSE.value,
        ),
        tensorflow=False,  # the harness runs on ai_edge_litert alone
    )


def run_main() -> None:
    """Console-script entry point."""
    common.run_script(main, PROGRAM, FLAGS)


if __name__ == "__main__":
    sys.exit(run_main())
