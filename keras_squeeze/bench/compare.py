"""compare_latency(): the original and the compressed .tflite side by side, for the report."""

from __future__ import annotations

from keras_squeeze.bench.local import benchmark

ORIGINAL = "original"
COMPRESSED = "compressed"


def compare_latency(
    original_tflite: bytes,
    compressed_tflite: bytes,
    *,
    num_threads: int = 1,
    use_xnnpack: bool = True,
    warmup_runs: int = 5,
    min_runs: int = 30,
    min_seconds: float = 0.5,
    max_seconds: float = 30.0,
) -> dict:
    """Measures both models interleaved on this CPU; a small dict for report.json.

    Short defaults (5 warm-up runs, at least 30 runs and 0.5 s) keep it to
    about a second for small models; memory is not measured.

    Returns:
        {"latency_ratio": compressed p50 / original p50, "speedup": its
        inverse, "original_p50_ms", "compressed_p50_ms", "original_p90_ms",
        "compressed_p90_ms", "runs", "num_threads", "delegate", "measured":
        "interleaved on this CPU (ai_edge_litert)", "machine"}.

    Example:
        >>> float_tflite = ks.export.to_tflite(model).content
        >>> report = ks.bench.compare_latency(float_tflite, result.tflite)
        >>> report["speedup"]
        2.4
    """
    result = benchmark(
        {ORIGINAL: original_tflite, COMPRESSED: compressed_tflite},
        baseline=ORIGINAL,
        warmup_runs=warmup_runs,
        min_runs=min_runs,
        min_seconds=min_seconds,
        max_seconds=max_seconds,
        num_threads=num_threads,
        use_xnnpack=use_xnnpack,
        measure_memory=False,
    )
    original, compressed = result[ORIGINAL].latency, result[COMPRESSED].latency
    ratio = result.ratio(COMPRESSED)
    return {
        "latency_ratio": ratio,
        "speedup": 1.0 / ratio,
        "original_p50_ms": original.p50_ms,
        "compressed_p50_ms": compressed.p50_ms,
        "original_p90_ms": original.p90_ms,
        "compressed_p90_ms": compressed.p90_ms,
        "runs": min(original.count, compressed.count),
        "num_threads": num_threads,
        "delegate": result.settings["delegate"],
        "measured": "interleaved on this CPU (ai_edge_litert)",
        "machine": result.machine,
    }
