"""The library side of keras-squeeze-bench: a typed run() the script only calls."""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

from keras_squeeze.core.progress import say
from keras_squeeze.errors import ConfigError

CPU = "cpu"
ANDROID = "android"


def split_model_arg(arg: str) -> tuple[str | None, str]:
    """("name", "path") from "name=path"; (None, path) from a plain path.

    A plain path containing "=" stays a path when that file exists.
    """
    name, sep, path = arg.partition("=")
    if sep and name and "/" not in name and not pathlib.Path(arg).exists():
        return name, path
    return None, arg


def model_names(args: Sequence[str]) -> list[str]:
    """The names the models get: given names, else file stems (repeats get -2, -3)."""
    from keras_squeeze.bench.sources import unique_names

    names = []
    for arg in args:
        name, path = split_model_arg(arg)
        names.append(name or pathlib.Path(path).stem)
    return unique_names(names)


def parse_delegate_options(text: str | None) -> dict[str, str]:
    """{"k": "v", ...} from benchmark_model's "k:v;k2:v2" form."""
    if not text:
        return {}
    out = {}
    for item in text.split(";"):
        key, sep, value = item.partition(":")
        if not sep or not key.strip():
            raise ConfigError(
                "Delegate options are 'key:value' pairs separated by ';'. Expected e.g. "
                f"'device:usb;performance:max'. Received: {text!r}"
            )
        out[key.strip()] = value.strip()
    return out


def run(
    models: Sequence[str],
    baseline: str | None = None,
    target: str = CPU,
    num_threads: int = 1,
    use_xnnpack: bool = True,
    delegate: str | None = None,
    delegate_options: str | None = None,
    warmup_runs: int = 10,
    warmup_seconds: float = 0.0,
    min_runs: int = 50,
    min_seconds: float = 1.0,
    max_seconds: float = 150.0,
    memory: bool = True,
    serial: str | None = None,
    benchmark_binary: str | None = None,
    device_binary: str = "/data/local/tmp/benchmark_model",
    use_gpu: bool = False,
    use_nnapi: bool = False,
    enable_op_profiling: bool = False,
    taskset: str | None = None,
    adb: str | None = None,
    output_json: str | None = None,
    chart: str | None = None,
    verbose: int = 1,
):
    """Benchmarks model files on this CPU or an Android device; prints, writes JSON and PNG.

    Args:
        models: .tflite paths, each optionally "name=path".
        target: "cpu" (this host, ai_edge_litert) or "android" (adb).
        delegate: cpu target: None, "edgetpu" or a delegate library path;
            android target: the device path of an external delegate.
        delegate_options: "key:value;key2:value2" for that delegate.
        output_json, chart: where to write the JSON and the PNG chart.
        Other arguments: see keras_squeeze.bench.benchmark / benchmark_android.

    Returns:
        The BenchmarkResult.
    """
    from keras_squeeze.bench import benchmark, benchmark_android
    from keras_squeeze.bench.chart import require_matplotlib
    from keras_squeeze.core import atomic

    if chart is not None:
        require_matplotlib()
    for path in (output_json, chart):
        if path is not None:
            atomic.check_writable_dir(pathlib.Path(path).expanduser().absolute().parent)
    named = dict(zip(model_names(models), (split_model_arg(m)[1] for m in models), strict=True))
    options = parse_delegate_options(delegate_options)
    common = dict(
        baseline=baseline,
        warmup_runs=warmup_runs,
        warmup_seconds=warmup_seconds,
        min_runs=min_runs,
        min_seconds=min_seconds,
        max_seconds=max_seconds,
        num_threads=num_threads,
        use_xnnpack=use_xnnpack,
    )
    where = "this CPU" if target == CPU else f"Android device {serial or '(the only one)'}"
    say(verbose, f"benchmarking {', '.join(named)} on {where}")
    if target == CPU:
        result = benchmark(
            named, delegate=delegate, delegate_options=options, measure_memory=memory, **common
        )
    else:
        result = benchmark_android(
            named,
            serial=serial,
            binary=benchmark_binary,
            device_binary=device_binary,
            use_gpu=use_gpu,
            use_nnapi=use_nnapi,
            external_delegate_path=delegate,
            external_delegate_options=options,
            enable_op_profiling=enable_op_profiling,
            taskset=taskset,
            adb=adb,
            **common,
        )
    print(result.table())
    if enable_op_profiling:
        _print_op_profile(result)
    if output_json is not None:
        print(f"JSON: {result.save_json(output_json)}")
    if chart is not None:
        print(f"chart: {result.chart(chart)}")
    return result


def _print_op_profile(result, top: int = 10) -> None:
    from keras_squeeze.bench.op_layers import time_by_layer

    for name, r in result.models.items():
        if not r.op_profile:
            continue
        print(f"\nslowest layers of {name} (avg ms per run):")
        for layer, ms in time_by_layer(r.op_profile)[:top]:
            print(f"  {ms:9.3f}  {layer}")
