"""Latency harness figures (issue 8), on MobileNetV2 alpha 0.35 96x96 (random init).

- Repeatability: one model measured twice in the same interleaved run; the two
  p50s must be within 5% of each other (5 trials, judged on the median trial).
- Overhead: the harness's p50 against a bare loop timing interpreter.invoke()
  in the same process (alternating blocks); within 5%.
- The float32 vs int8 ratio measured by the harness, with 1 and 2 threads.
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np

import keras_squeeze as ks
from benchmarks import common
from benchmarks.common import Table, pink_noise_images
from benchmarks.ptq import MOBILENET, MOBILENET_SIZE, _mobilenet_v2
from keras_squeeze.bench import benchmark
from keras_squeeze.bench.stats import relative_gap

MAX_GAP = 0.05
RUNS = common.quick(300, 30)
SECONDS = common.quick(2.0, 0.2)
TRIALS = common.quick(5, 1)
THREADS = (1, 2)
# The thread counts whose float32 vs int8 run also measures peak memory, a child process
# per model (--quick: 1 thread only, half the child processes).
MEMORY_THREADS = common.quick(THREADS, (1,))


def _bare_loop_p50(content: bytes, runs: int, threads: int = 1) -> float:
    """p50 (ms) of a plain loop: perf_counter_ns around interpreter.invoke()."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=content, num_threads=threads)
    it.allocate_tensors()
    for d in it.get_input_details():
        x = np.random.default_rng(0).uniform(-1, 1, size=d["shape"]).astype(d["dtype"])
        it.set_tensor(d["index"], x)
    for _ in range(10):
        it.invoke()
    times = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        it.invoke()
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1e6


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def run() -> list[Table]:
    model = _mobilenet_v2()
    float_art = ks.export.to_tflite(model)
    int8 = common.int8_speed_tflite(model, pink_noise_images(200, MOBILENET_SIZE))

    # Repeatability: the same model twice, interleaved; several trials, as the machine is shared.
    load_before = os.getloadavg()[0]
    repeat = Table(
        f"Harness repeatability: {MOBILENET} float32 measured twice, interleaved",
        ["trial", "p50 ms (A)", "p50 ms (B)", "min ms (A / B)", "runs each", "p50 gap"],
        notes=[
            "two interpreters of the same .tflite, XNNPACK, 1 thread, in one benchmark() call "
            f"(rotating round-robin, >= {RUNS} runs and >= {SECONDS:g} s); {TRIALS} trials",
            "gap = |p50 A - p50 B| / min(p50 A, p50 B); the target applies to the median trial",
        ],
    )
    gaps = []
    for trial in range(1, TRIALS + 1):
        twice = benchmark(
            {"run A": float_art, "run B": float_art},
            min_runs=RUNS,
            min_seconds=SECONDS,
            measure_memory=False,
        )
        a, b = twice["run A"].latency, twice["run B"].latency
        gaps.append(relative_gap(a.p50_ms, b.p50_ms))
        repeat.add(
            trial,
            f"{a.p50_ms:.3f}",
            f"{b.p50_ms:.3f}",
            f"{a.min_ms:.3f} / {b.min_ms:.3f}",
            a.count,
            f"{gaps[-1]:.1%}",
        )
    median_gap = statistics.median(gaps)
    repeat.add(
        "median",
        "",
        "",
        "",
        "",
        f"{median_gap:.1%} (target <= {MAX_GAP:.0%}: {_yes(median_gap <= MAX_GAP)})",
    )
    repeat.notes.append(
        f"1-minute load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on "
        f"{os.cpu_count()} cores shared with other jobs"
    )

    # Overhead: harness vs a bare invoke() loop, alternating blocks.
    harness_p50s, bare_p50s = [], []
    for _ in range(3):
        r = benchmark(float_art, min_runs=RUNS, min_seconds=SECONDS / 2, measure_memory=False)
        harness_p50s.append(next(iter(r.models.values())).latency.p50_ms)
        bare_p50s.append(_bare_loop_p50(float_art.content, RUNS))
    h, bare = statistics.median(harness_p50s), statistics.median(bare_p50s)
    overhead = h / bare - 1.0
    over = Table(
        "Harness overhead: p50 of benchmark() vs a bare invoke() loop, same process",
        ["timing", "p50 ms (median of 3 blocks)", "blocks", "difference", "target", "met"],
        notes=[
            f"{MOBILENET} float32, XNNPACK, 1 thread; 3 alternating blocks of "
            f"{RUNS} runs each (harness: >= {RUNS} runs and >= {SECONDS / 2:g} s)"
        ],
    )
    over.add("bare loop", f"{bare:.3f}", ", ".join(f"{v:.3f}" for v in bare_p50s), "", "", "")
    over.add(
        "harness",
        f"{h:.3f}",
        ", ".join(f"{v:.3f}" for v in harness_p50s),
        f"{overhead:+.1%}",
        f"within {MAX_GAP:.0%}",
        _yes(abs(overhead) <= MAX_GAP),
    )

    # float32 vs int8, 1 and 2 threads.
    ratio = Table(
        f"float32 vs int8 {MOBILENET}, measured by the harness (XNNPACK)",
        [
            "threads",
            "model",
            "init ms",
            "first ms",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "peak MB",
            "latency ratio",
            "speed-up",
        ],
        notes=[
            "int8: the .tflite of ks.compress(model, 'int8') (the same bytes, from "
            "ks.export.to_tflite(model, quantization='int8')), 200 1/f-noise calibration "
            "images, int8 I/O; float32 from ks.export.to_tflite; both passed to benchmark() "
            "as returned",
            "interleaved in one call per thread count; peak MB: child process per model "
            "(VmHWM growth over load + 5 inferences)"
            + ("" if MEMORY_THREADS == THREADS else f", {MEMORY_THREADS[0]} thread only"),
            "the machine has 2 cores shared with other jobs: the 2-thread figures are noisier",
        ],
    )
    for threads in THREADS:
        r = benchmark(
            {"float32": float_art, "int8": int8},
            baseline="float32",
            num_threads=threads,
            min_runs=RUNS,
            min_seconds=SECONDS,
            measure_memory=threads in MEMORY_THREADS,
        )
        for name, m in r.models.items():
            lat = m.latency
            ratio.add(
                threads,
                name,
                f"{m.init_ms:.1f}",
                f"{m.first_inference_ms:.2f}",
                f"{lat.p50_ms:.3f}",
                f"{lat.p90_ms:.3f}",
                f"{lat.p99_ms:.3f}",
                f"{m.memory.peak_bytes / 2**20:.1f}" if m.memory else "-",
                f"{r.ratio(name):.3f}",
                f"{r.speedup(name):.2f}x",
            )
    ratio.notes.append(f"1-minute load average after measuring: {os.getloadavg()[0]:.1f}")
    return [repeat, over, ratio]
