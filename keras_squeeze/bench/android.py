"""benchmark_android(): TFLite's benchmark_model on an Android device over adb.

For each model: push the .tflite to /data/local/tmp/keras_squeeze/, run
`benchmark_model --graph=... --num_threads=... --use_xnnpack=...` (plus the
delegate, run-count and profiling flags asked for) with `adb shell`, and
parse its output (keras_squeeze.bench.benchmark_output) into the same
ModelResult the local harness returns. The benchmark_model binary is pushed
from `binary=` (a build for the device's ABI, e.g. TFLite's prebuilt
android_aarch64_benchmark_model) or must already be at `device_binary`.

Models run one after the other (benchmark_model measures one model per
process), so unlike the local harness they are not interleaved.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
import shlex
import tempfile
from collections.abc import Mapping

from keras_squeeze.bench.adb import Adb, AndroidDevice, device_gone, select_device
from keras_squeeze.bench.benchmark_output import BenchmarkModelOutput, RunStat, parse_output
from keras_squeeze.bench.op_layers import map_layers
from keras_squeeze.bench.results import (
    BenchmarkResult,
    MemoryFootprint,
    ModelResult,
    check_baseline,
)
from keras_squeeze.bench.settings import (
    DEFAULT_MAX_SECONDS,
    DEFAULT_MIN_RUNS,
    DEFAULT_MIN_SECONDS,
    DEFAULT_WARMUP_RUNS,
    RunSettings,
)
from keras_squeeze.bench.sources import ModelSource, resolve_models
from keras_squeeze.bench.stats import LatencyStats
from keras_squeeze.errors import BenchmarkError, ConfigError, DeviceError

DEVICE_DIR = "/data/local/tmp/keras_squeeze"
DEVICE_BINARY = "/data/local/tmp/benchmark_model"
SETUP_TIMEOUT_S = 120.0


@dataclasses.dataclass(frozen=True)
class AndroidOptions:
    """benchmark_model's delegate and profiling flags.

    Attributes:
        use_xnnpack: --use_xnnpack (false: TFLite's built-in kernels).
        use_gpu: --use_gpu (the GPU delegate).
        use_nnapi: --use_nnapi (Android's NNAPI).
        external_delegate_path: --external_delegate_path, a delegate library
            on the device (e.g. a vendor NPU delegate, or libedgetpu.so.1
            for a Coral accelerator).
        external_delegate_options: --external_delegate_options ("k:v;k2:v2").
        enable_op_profiling: --enable_op_profiling (per-op times).
        report_peak_memory: --report_peak_memory_footprint (polls memory in a
            thread; may perturb timings).
        taskset: CPU affinity mask for `taskset` (e.g. "f0" for big cores).
        extra_flags: further benchmark_model flags, passed as given.
    """

    use_xnnpack: bool = True
    use_gpu: bool = False
    use_nnapi: bool = False
    external_delegate_path: str | None = None
    external_delegate_options: Mapping[str, str] = dataclasses.field(default_factory=dict)
    enable_op_profiling: bool = False
    report_peak_memory: bool = False
    taskset: str | None = None
    extra_flags: tuple[str, ...] = ()

    def __post_init__(self):
        if self.taskset is not None and not re.fullmatch(r"[0-9a-fA-F]+", self.taskset):
            raise ConfigError(
                "taskset must be a hexadecimal CPU mask. Expected e.g. 'f0'. "
                f"Received: taskset={self.taskset!r}"
            )
        for flag in self.extra_flags:
            if not flag.startswith("--"):
                raise ConfigError(
                    "extra_flags must be benchmark_model flags. Expected e.g. "
                    f"'--use_caching=true'. Received: {flag!r}"
                )

    @property
    def delegate_label(self) -> str:
        parts = [
            name
            for name, on in (
                ("gpu", self.use_gpu),
                ("nnapi", self.use_nnapi),
                (self.external_delegate_path, bool(self.external_delegate_path)),
            )
            if on
        ]
        return "+".join(parts) if parts else ("xnnpack" if self.use_xnnpack else "none")


def _flag(value: bool) -> str:
    return "true" if value else "false"


def benchmark_model_args(graph: str, settings: RunSettings, options: AndroidOptions) -> list[str]:
    """benchmark_model's arguments for one model.

    Example:
        >>> benchmark_model_args("/data/local/tmp/m.tflite", RunSettings(), AndroidOptions())[:3]
        ['--graph=/data/local/tmp/m.tflite', '--num_threads=1', '--warmup_runs=10']
    """
    args = [
        f"--graph={graph}",
        f"--num_threads={settings.num_threads}",
        f"--warmup_runs={settings.warmup_runs}",
        f"--warmup_min_secs={settings.warmup_seconds:g}",
        f"--num_runs={settings.min_runs}",
        f"--min_secs={settings.min_seconds:g}",
        f"--max_secs={settings.max_seconds:g}",
        f"--use_xnnpack={_flag(options.use_xnnpack)}",
    ]
    if options.use_gpu:
        args.append("--use_gpu=true")
    if options.use_nnapi:
        args.append("--use_nnapi=true")
    if options.external_delegate_path:
        args.append(f"--external_delegate_path={options.external_delegate_path}")
        if options.external_delegate_options:
            pairs = ";".join(f"{k}:{v}" for k, v in options.external_delegate_options.items())
            args.append(f"--external_delegate_options={pairs}")
    if options.enable_op_profiling:
        args.append("--enable_op_profiling=true")
    if options.report_peak_memory:
        args.append("--report_peak_memory_footprint=true")
    return args + list(options.extra_flags)


def device_command(binary: str, args: list[str], taskset: str | None = None) -> str:
    """The shell command line run on the device (each word quoted for the device shell)."""
    words = (["taskset", taskset] if taskset else []) + [binary, *args]
    return shlex.join(words)


def _stats(stat: RunStat | None, fallback_avg_us: float | None) -> LatencyStats | None:
    if stat is not None and stat.avg_us is not None:
        return LatencyStats(
            count=stat.count,
            mean_ms=stat.avg_us / 1e3,
            std_ms=(stat.std_us or 0.0) / 1e3,
            min_ms=(stat.min_us if stat.min_us is not None else stat.avg_us) / 1e3,
            max_ms=(stat.max_us if stat.max_us is not None else stat.avg_us) / 1e3,
            percentiles={q: v / 1e3 for q, v in stat.percentiles_us.items()},
        )
    if fallback_avg_us is not None:
        avg = fallback_avg_us / 1e3
        return LatencyStats(count=0, mean_ms=avg, std_ms=0.0, min_ms=avg, max_ms=avg)
    return None


def _memory(parsed: BenchmarkModelOutput) -> MemoryFootprint | None:
    if parsed.peak_memory_mb is not None:
        return MemoryFootprint(
            int(parsed.peak_memory_mb * 2**20),
            "benchmark_model --report_peak_memory_footprint: the tool's peak memory footprint, "
            "polled during the run ('Overall peak memory footprint (MB) via periodic monitoring')",
        )
    if parsed.memory_overall_mb is not None:
        return MemoryFootprint(
            int(parsed.memory_overall_mb * 2**20),
            "benchmark_model: growth of the tool's memory footprint from its start to the end "
            f"of the runs ('{parsed.memory_line}')",
        )
    return None


def to_model_result(
    parsed: BenchmarkModelOutput,
    name: str,
    size_bytes: int,
    target: str,
    delegate: str,
    num_threads: int | None,
    raw_output: str = "",
) -> ModelResult:
    """A ModelResult from parsed benchmark_model output.

    Raises:
        BenchmarkError: the output reports a failure or holds no timings.
    """
    latency = _stats(parsed.inference, parsed.inference_avg_us)
    if parsed.failed or latency is None:
        reason = "; ".join(parsed.errors[-3:]) or _last_line(raw_output)
        raise BenchmarkError(
            f"benchmark_model did not benchmark model '{name}' on {target}. Expected its "
            f"timing summary. Received: {reason}"
        )
    notes = list(parsed.delegate_lines)
    if parsed.inference is None:
        notes.append("run statistics were not printed; the mean comes from the summary line")
    if latency.p50_ms is None:
        notes.append(
            "this benchmark_model build prints no percentiles: p50 unknown, ratios use the mean"
        )
    return ModelResult(
        name=name,
        size_bytes=size_bytes,
        target=target,
        delegate=delegate,
        num_threads=num_threads,
        init_ms=parsed.init_us / 1e3 if parsed.init_us is not None else None,
        first_inference_ms=(
            parsed.first_inference_us / 1e3 if parsed.first_inference_us is not None else None
        ),
        warmup=_stats(parsed.warmup, parsed.warmup_avg_us),
        latency=latency,
        memory=_memory(parsed),
        op_profile=parsed.op_profile or None,
        notes=notes,
        raw_output=raw_output,
    )


def _last_line(text: str) -> str:
    return next((ln.strip() for ln in reversed(text.splitlines()) if ln.strip()), "no output")


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "model"


def prepare_binary(adb: Adb, serial: str, binary: str | None, device_binary: str) -> None:
    """Pushes `binary` to `device_binary` (chmod 755), or checks one is there.

    Raises:
        BenchmarkError: `binary` does not exist here, or none is on the device.
    """
    if binary is not None:
        local = pathlib.Path(binary).expanduser()
        if not local.is_file():
            raise BenchmarkError(
                "The benchmark_model binary to push does not exist. Expected a benchmark_model "
                f"built for the device (e.g. android_aarch64_benchmark_model). Received: '{local}'"
            )
        adb.push(serial, str(local), device_binary, timeout=SETUP_TIMEOUT_S)
        adb.shell(serial, f"chmod 755 {shlex.quote(device_binary)}", timeout=SETUP_TIMEOUT_S)
        return
    probe = adb.shell(
        serial,
        f"test -x {shlex.quote(device_binary)} && echo present || echo absent",
        timeout=SETUP_TIMEOUT_S,
    )
    if "present" not in probe.stdout:
        raise BenchmarkError(
            f"benchmark_model is not on the device. Expected binary= (a benchmark_model built "
            f"for the device's ABI) or an executable at device_binary. Received: nothing "
            f"executable at '{device_binary}' on {serial}"
        )


def device_info(adb: Adb, serial: str) -> str:
    props = adb.shell(
        serial,
        "getprop ro.product.model; getprop ro.product.cpu.abi; getprop ro.build.version.release",
        timeout=SETUP_TIMEOUT_S,
    ).stdout.split("\n")
    model, abi, release = [*props, "", "", ""][:3]
    return f"{model.strip() or serial}, {abi.strip() or '?'}, Android {release.strip() or '?'}"


def run_on_device(
    adb: Adb,
    device: AndroidDevice,
    source: ModelSource,
    settings: RunSettings,
    options: AndroidOptions,
    device_binary: str = DEVICE_BINARY,
    timeout: float | None = None,
    keep_files: bool = False,
) -> ModelResult:
    """Pushes one model, runs benchmark_model on it and parses the result.

    Raises:
        DeviceError: the device went away (adb reports it, or it no longer
            answers `get-state`), or the run exceeded `timeout`.
        BenchmarkError: benchmark_model failed (e.g. a delegate it could not apply).
    """
    serial = device.serial
    remote = f"{DEVICE_DIR}/{_safe_name(source.name)}.tflite"
    limit = timeout if timeout is not None else 2 * settings.max_seconds + SETUP_TIMEOUT_S
    adb.shell(serial, f"mkdir -p {DEVICE_DIR}", timeout=SETUP_TIMEOUT_S)
    with tempfile.TemporaryDirectory(prefix="keras_squeeze-adb-") as tmp:
        local = pathlib.Path(tmp) / "model.tflite"
        local.write_bytes(source.content)
        adb.push(serial, str(local), remote, timeout=SETUP_TIMEOUT_S)
    command = device_command(
        device_binary, benchmark_model_args(remote, settings, options), options.taskset
    )
    proc = adb.shell(serial, command, timeout=limit, check=False)
    output = (proc.stdout or "") + (proc.stderr or "")
    if proc.returncode != 0 and (device_gone(output) or not _still_attached(adb, serial)):
        raise DeviceError(
            f"The Android device '{serial}' was disconnected while benchmarking model "
            f"'{source.name}'. Expected it to stay attached for the whole run. Received: "
            f"{_last_line(output)}"
        )
    if not keep_files:
        adb.shell(serial, f"rm -f {shlex.quote(remote)}", timeout=SETUP_TIMEOUT_S, check=False)
    parsed = parse_output(output)
    if proc.returncode != 0 and not parsed.errors:
        parsed.errors.append(f"exit code {proc.returncode}: {_last_line(output)}")
    return to_model_result(
        parsed,
        source.name,
        source.size_bytes,
        f"android:{serial}",
        options.delegate_label,
        settings.num_threads,
        output,
    )


def _still_attached(adb: Adb, serial: str) -> bool:
    try:
        state = adb.run(["get-state"], serial=serial, timeout=15, check=False)
    except DeviceError:
        return False
    return state.returncode == 0 and state.stdout.strip() == "device"


def benchmark_android(
    models,
    *,
    serial: str | None = None,
    binary: str | None = None,
    device_binary: str = DEVICE_BINARY,
    baseline: str | None = None,
    warmup_runs: int = DEFAULT_WARMUP_RUNS,
    warmup_seconds: float = 0.0,
    min_runs: int = DEFAULT_MIN_RUNS,
    min_seconds: float = DEFAULT_MIN_SECONDS,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    num_threads: int = 1,
    use_xnnpack: bool = True,
    use_gpu: bool = False,
    use_nnapi: bool = False,
    external_delegate_path: str | None = None,
    external_delegate_options: Mapping[str, str] | None = None,
    enable_op_profiling: bool = False,
    report_peak_memory: bool = False,
    taskset: str | None = None,
    keras_model=None,
    adb: str | None = None,
    adb_server_port: int | None = None,
    timeout: float | None = None,
    keep_files: bool = False,
) -> BenchmarkResult:
    """Benchmarks .tflite models on an Android device with TFLite's benchmark_model.

    Args:
        models: as for `benchmark` (bytes, paths, Artifacts, CompressionResults,
            a list or a {name: model} dict).
        serial: the device (`adb devices -l`); default: the only one attached.
        binary: a benchmark_model executable to push; default: use the one
            already at `device_binary`.
        warmup_runs, warmup_seconds, min_runs, min_seconds, max_seconds,
            num_threads: benchmark_model's --warmup_runs, --warmup_min_secs,
            --num_runs, --min_secs, --max_secs, --num_threads.
        use_xnnpack, use_gpu, use_nnapi, external_delegate_path,
            external_delegate_options: the delegate flags (see AndroidOptions).
        enable_op_profiling: per-op times, mapped to Keras layer names from
            the .tflite's tensor names (and `keras_model`'s layer names if given).
        report_peak_memory: --report_peak_memory_footprint.
        taskset: CPU affinity mask (e.g. "f0"), as TFLite's docs advise for
            big.LITTLE phones.
        adb: the adb executable (default: on PATH); adb_server_port: adb -P.
        timeout: seconds allowed per model run (default 2 * max_seconds + 120).
        keep_files: leave the pushed models on the device.

    Returns:
        A BenchmarkResult; percentiles are those benchmark_model prints
        (p5/p50/p95 in recent builds, none in older ones), memory is its
        footprint line.

    Raises:
        DeviceError: adb missing, no device / several without serial, the
            device not ready, disconnected mid-run, or a command timed out.
        BenchmarkError: benchmark_model missing or failing on a model.

    Example:
        >>> result = ks.bench.benchmark_android(
        ...     {"float": "f.tflite", "int8": "q.tflite"}, binary="benchmark_model",
        ...     num_threads=4, enable_op_profiling=True, keras_model=model)
        >>> print(result.table())
    """
    settings = RunSettings(
        warmup_runs, warmup_seconds, min_runs, min_seconds, max_seconds, num_threads
    )
    options = AndroidOptions(
        use_xnnpack=use_xnnpack,
        use_gpu=use_gpu,
        use_nnapi=use_nnapi,
        external_delegate_path=external_delegate_path,
        external_delegate_options=dict(external_delegate_options or {}),
        enable_op_profiling=enable_op_profiling,
        report_peak_memory=report_peak_memory,
        taskset=taskset,
    )
    sources = resolve_models(models)
    check_baseline(baseline, [s.name for s in sources])
    client = Adb(adb, server_port=adb_server_port)
    device = select_device(client.devices(), serial)
    prepare_binary(client, device.serial, binary, device_binary)
    info = device_info(client, device.serial)
    results = {}
    for source in sources:
        result = run_on_device(
            client, device, source, settings, options, device_binary, timeout, keep_files
        )
        if result.op_profile:
            map_layers(result.op_profile, tflite=source.content, model=keras_model)
        results[source.name] = result
    run_settings = {
        **settings.to_dict(),
        "delegate": options.delegate_label,
        "use_xnnpack": options.use_xnnpack,
        "order": "sequential (one benchmark_model process per model)",
        "device": info,
    }
    return BenchmarkResult(results, baseline, run_settings, f"android:{device.serial}, {info}")
