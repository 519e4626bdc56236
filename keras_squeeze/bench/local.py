"""benchmark(): latency of one or several .tflite models on this CPU, measured interleaved.

What happens, in order:

1. Each model gets its own interpreter (ai_edge_litert): init time is
   delegate loading + `Interpreter(model_content=...)` + `allocate_tensors()`.
   A throwaway interpreter of the first model is built and run first, so
   one-time process setup (XNNPACK, thread pool) is charged to no model.
   Inputs are set once (generated, see `keras_squeeze.bench.inputs`, or given).
2. Each model runs one first inference, timed on its own.
3. `warmup_runs` rounds, then measured rounds until every model has
   `min_runs` runs and `min_seconds` have passed (no round starts after
   `max_seconds`). A round runs every model once, the starting model
   rotating each round, so machine noise hits all models alike. Each run is
   `invoke()` between two `time.perf_counter_ns()` readings, with Python's
   garbage collector paused while measuring.
4. Optionally, peak memory per model in a child process (`bench.memory`).
"""

from __future__ import annotations

import gc
import os
import platform
import time
from collections.abc import Mapping

import numpy as np

from keras_squeeze.bench import delegates
from keras_squeeze.bench import inputs as bench_inputs
from keras_squeeze.bench.memory import peak_memory
from keras_squeeze.bench.results import BenchmarkResult, ModelResult, check_baseline
from keras_squeeze.bench.settings import (
    DEFAULT_MAX_SECONDS,
    DEFAULT_MIN_RUNS,
    DEFAULT_MIN_SECONDS,
    DEFAULT_WARMUP_RUNS,
    RunSettings,
)
from keras_squeeze.bench.sources import ModelSource, resolve_models
from keras_squeeze.bench.stats import keep_running, round_order, summarize
from keras_squeeze.core.native_output import NativeOutput
from keras_squeeze.errors import BenchmarkError, DelegateError, KerasSqueezeError


def machine() -> str:
    """A one-line description of this host."""
    import ai_edge_litert

    version = getattr(ai_edge_litert, "__version__", "?")
    return (
        f"{platform.machine()} {platform.system()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, ai_edge_litert {version}"
    )


class _Prepared:
    """One model's interpreter with its inputs set, ready to invoke."""

    def __init__(self, source, spec, settings, given, input_range, seed):
        self.source = source
        # LiteRT's first interpreter prints "INFO: Created TensorFlow Lite XNNPACK
        # delegate for CPU." to descriptor 2; a failure (a delegate's own error
        # lines) shows it all. The capture is set up outside the timed part.
        log = NativeOutput()
        try:
            with log:
                start = time.perf_counter()
                self.interpreter = delegates.build_interpreter(
                    spec, settings.num_threads, model_content=source.content
                )
                self.interpreter.allocate_tensors()
                self.init_ms = (time.perf_counter() - start) * 1e3
        except DelegateError:
            log.replay()
            raise
        except Exception as e:
            log.replay()
            raise BenchmarkError(_load_failure(source, e)) from e
        try:
            self._set_inputs(given, input_range, seed)
        except KerasSqueezeError:
            raise
        except Exception as e:  # e.g. a tensor name that is not UTF-8 in a damaged file
            raise BenchmarkError(_load_failure(source, e)) from e
        self.invoke = self.interpreter.invoke
        self.delegated_nodes = _delegated_nodes(self.interpreter)

    def _set_inputs(self, given, input_range, seed) -> None:
        details = self.interpreter.get_input_details()
        if given is not None:
            arrays = bench_inputs.arrange(given, details, self.source.name, _signature_names(self))
            self.input_notes = [f"{d['name']}: given" for d in details]
        else:
            rng = np.random.default_rng(seed)
            arrays = [bench_inputs.generate(d, rng, input_range) for d in details]
            self.input_notes = [
                f"{d['name']}: {bench_inputs.describe(d, input_range)}" for d in details
            ]
        for detail, array in zip(details, arrays, strict=True):
            self.interpreter.set_tensor(detail["index"], array)


def _probe(source: ModelSource, spec) -> None:
    """Loads and runs the model once in a child process: a crash there is a ModelError here.

    The interpreter is native code, and a damaged .tflite can crash the
    process that loads it; the measuring process loads only models that
    survived a child. Refusals (unknown ops, missing delegate) are left to the
    in-process load, whose errors say more.
    """
    from keras_squeeze.safety.probe import probe_tflite

    what = f"'{source.path}'" if source.path else f"Model '{source.name}'"
    probe_tflite(
        source.path if source.path else source.content,
        what,
        use_xnnpack=spec.use_xnnpack,
        delegate=spec.library,
        delegate_options=dict(spec.options),
        return_errors=True,
    )


def _signature_names(prepared: _Prepared) -> dict[int, str]:
    it = prepared.interpreter
    out = {}
    for key in it.get_signature_list():
        for name, detail in it.get_signature_runner(key).get_input_details().items():
            out[detail["index"]] = name
    return out


def _delegated_nodes(interpreter) -> int | None:
    """Nodes replaced by a delegate kernel, from the execution plan (None if unknown)."""
    try:
        ops = interpreter._get_ops_details()  # no public equivalent in ai_edge_litert
    except Exception:
        return None
    return sum(1 for op in ops if op.get("op_name") == "DELEGATE")


def _load_failure(source: ModelSource, e: Exception) -> str:
    text = str(e).strip().splitlines()
    reason = next((ln for ln in text if "custom op" in ln.lower()), text[0] if text else "")
    if "custom op" in reason.lower():
        return (
            f"Model '{source.name}' uses operators this runtime does not have. Expected a model "
            "of TFLite built-in ops, or the delegate that provides its custom ops "
            f"({', '.join(source.custom_ops) or 'none declared'}). Received: {reason}"
        )
    return (
        f"Model '{source.name}' could not be loaded by ai_edge_litert. Expected a valid .tflite. "
        f"Received: {type(e).__name__}: {reason}"
    )


def _run(prepared: list[_Prepared], settings: RunSettings):
    """First inference, warm-up and interleaved measured rounds; returns raw ns lists."""
    n = len(prepared)
    first_ns = []
    for p in prepared:
        start = time.perf_counter_ns()
        _invoke(p)
        first_ns.append(time.perf_counter_ns() - start)
    warmup_ns: list[list[int]] = [[] for _ in prepared]
    rounds, begin = 0, time.perf_counter()
    while (settings.warmup_runs or settings.warmup_seconds) and keep_running(
        rounds,
        time.perf_counter() - begin,
        settings.warmup_runs,
        settings.warmup_seconds,
        settings.max_seconds,
    ):
        for i in round_order(n, rounds):
            start = time.perf_counter_ns()
            _invoke(prepared[i])
            warmup_ns[i].append(time.perf_counter_ns() - start)
        rounds += 1
    samples: list[list[int]] = [[] for _ in prepared]
    invokes = [p.invoke for p in prepared]
    clock = time.perf_counter_ns
    rounds, elapsed, begin = 0, 0.0, time.perf_counter()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        while keep_running(
            rounds, elapsed, settings.min_runs, settings.min_seconds, settings.max_seconds
        ):
            for i in round_order(n, rounds):
                start = clock()
                invokes[i]()
                samples[i].append(clock() - start)
            rounds += 1
            elapsed = time.perf_counter() - begin
    except Exception as e:
        name = prepared[i].source.name
        raise BenchmarkError(
            f"Model '{name}' failed while being measured. Expected invoke() to succeed as it "
            f"did in warm-up. Received: {type(e).__name__}: {e}"
        ) from e
    finally:
        if gc_was_enabled:
            gc.enable()
    return first_ns, warmup_ns, samples, elapsed


def _invoke(p: _Prepared) -> None:
    try:
        p.invoke()
    except Exception as e:
        raise BenchmarkError(
            f"Model '{p.source.name}' failed to run. Expected invoke() to succeed on the "
            f"inputs. Received: {type(e).__name__}: {e}"
        ) from e


def benchmark(
    models,
    *,
    baseline: str | None = None,
    warmup_runs: int = DEFAULT_WARMUP_RUNS,
    warmup_seconds: float = 0.0,
    min_runs: int = DEFAULT_MIN_RUNS,
    min_seconds: float = DEFAULT_MIN_SECONDS,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    num_threads: int = 1,
    use_xnnpack: bool = True,
    inputs=None,
    input_range: tuple[float, float] | None = None,
    delegate: str | None = None,
    delegate_options: Mapping | None = None,
    measure_memory: bool = True,
    seed: int = 0,
) -> BenchmarkResult:
    """Measures the latency of .tflite models on this CPU, side by side.

    Args:
        models: one model or several (list, or dict {name: model}); each is
            .tflite bytes, a path, an `Artifact` (ks.export.to_tflite) or a
            `CompressionResult` (its .tflite).
        baseline: the model name ratios are taken against (default: the first).
        warmup_runs: runs per model before measuring (>= 0) ...
        warmup_seconds: ... and for at least this long (>= 0).
        min_runs, min_seconds: measure until every model has `min_runs` runs
            and at least `min_seconds` have passed.
        max_seconds: start no round after this (like benchmark_model's max_secs).
        num_threads: interpreter threads (>= 1).
        use_xnnpack: False runs the built-in kernels
            (OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES).
        inputs: the inputs to feed (array, list in input order, or dict by
            input name) in the model's float domain; quantized inputs get them
            quantized. Default: generated (see keras_squeeze.bench.inputs).
        input_range: (low, high) of generated inputs (see bench.inputs).
        delegate: None (XNNPACK or built-in per use_xnnpack; "edgetpu" for
            models compiled for the Edge TPU), "xnnpack", "none", "edgetpu",
            or the path of a TFLite external delegate library.
        delegate_options: options for an explicit delegate (e.g. {"device": "usb"}).
        measure_memory: also measure peak memory per model in a child process
            (Linux; see keras_squeeze.bench.memory). Adds about a second per model.
        seed: seed of the generated inputs.

    Returns:
        A `BenchmarkResult`: per-model init time, first inference, p50/p90/p99,
        mean, std, min, peak memory, and ratios against the baseline.

    Raises:
        ModelError: a model is not a .tflite (or not found).
        ConfigError: a setting is out of range, or the baseline is unknown.
        DelegateError: the delegate a model needs is missing.
        BenchmarkError: a model fails to load or run.

    Example:
        >>> result = ks.benchmark({"float": "model.tflite", "int8": int8_result},
        ...                       baseline="float", num_threads=2)
        >>> print(result.table())
        >>> result.ratio("int8")
        0.41
    """
    settings = RunSettings(
        warmup_runs, warmup_seconds, min_runs, min_seconds, max_seconds, num_threads
    )
    input_range = bench_inputs.check_input_range(input_range)
    sources = resolve_models(models)
    check_baseline(baseline, [s.name for s in sources])
    spec = delegates.resolve(delegate, use_xnnpack, sources, delegate_options)
    memory = {}
    for s in sources:
        # Either child process loads and runs the model before this process does.
        if measure_memory:
            memory[s.name] = peak_memory(s, spec, num_threads, input_range=input_range, seed=seed)
        else:
            _probe(s, spec)
    warm = _Prepared(sources[0], spec, settings, None, input_range, seed)
    _invoke(warm)
    del warm
    prepared = [_Prepared(s, spec, settings, inputs, input_range, seed) for s in sources]
    first_ns, warmup_ns, samples_ns, elapsed = _run(prepared, settings)
    results = {}
    for i, p in enumerate(prepared):
        samples_ms = [t / 1e6 for t in samples_ns[i]]
        notes = []
        if p.delegated_nodes is not None:
            notes.append(f"{p.delegated_nodes} delegate node(s) in the execution plan")
        if elapsed > settings.max_seconds and len(samples_ms) < settings.min_runs:
            notes.append(f"stopped at max_seconds={settings.max_seconds:g} before min_runs")
        results[p.source.name] = ModelResult(
            name=p.source.name,
            size_bytes=p.source.size_bytes,
            target="cpu",
            delegate=spec.label,
            num_threads=num_threads,
            init_ms=p.init_ms,
            first_inference_ms=first_ns[i] / 1e6,
            warmup=summarize([t / 1e6 for t in warmup_ns[i]]) if warmup_ns[i] else None,
            latency=summarize(samples_ms),
            memory=memory.get(p.source.name),
            samples_ms=samples_ms,
            inputs=p.input_notes,
            notes=notes,
        )
    run_settings = {
        **settings.to_dict(),
        "delegate": spec.label,
        "use_xnnpack": spec.use_xnnpack,
        "order": "interleaved, rotating start" if len(prepared) > 1 else "single model",
        "measured_seconds": elapsed,
    }
    return BenchmarkResult(results, baseline, run_settings, machine())
