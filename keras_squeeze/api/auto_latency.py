"""objective="latency" of the "auto" search: time every candidate's .tflite, keep the fastest.

Once every candidate has run (verified on its .tflite, as for objective="size"),
the .tflite files of those that were tried are timed together by the package's
own local harness (`ks.bench.benchmark`, ai_edge_litert on this CPU) under one
set of settings (`SETTINGS`: 1 thread, XNNPACK, 10 warm-up rounds, then
rounds until every file has at least 60 runs and 1 s has passed, at most
60 s), fed the first validation sample. The runs are interleaved: each round
invokes every file once, the starting file rotating, so a burst of load on a
shared machine falls on every candidate alike rather than on one.

Per candidate: `latency_ms` is the median of its runs, and
`latency_spread_ms` the lowest and highest median of `BLOCKS` consecutive
blocks of its runs (the same rounds for every file): how far the median moved
during the measurement. The choice (`fastest`): among the candidates within
the budget, the one of lowest median, unless others are indistinguishable
from it (their spread overlaps its spread); of those, the smallest file
(gzip bytes), then the lowest median. The rule keeps noise from deciding
between files this machine cannot tell apart.

Noise caveat: these are timings on the machine that runs the search, at its
load at that moment. On a shared CPU, figures move from run to run (the
spread says by how much during the measurement, not across runs), so two
searches can choose differently between candidates whose speeds are close;
and this CPU is not the target device: time the chosen file there
(`ks.bench.benchmark_android`) before relying on it.

No candidate is skipped for speed: a file's latency does not follow from its
precision or size (float16 weights are dequantized to float32 at load on a
CPU, dynamic-range kernels can be slower than float ones, sparsity gives no
speed-up without sparse kernels), so no bound is sound before timing.
"""

from __future__ import annotations

import itertools
import statistics

SETTINGS = {
    "warmup_runs": 10,
    "min_runs": 60,
    "min_seconds": 1.0,
    "max_seconds": 60.0,
    "num_threads": 1,
}
BLOCKS = 5
HARNESS = "ks.bench.benchmark (ai_edge_litert on this CPU), interleaved rounds, rotating start"


def block_medians(samples_ms: list[float], blocks: int = BLOCKS) -> list[float]:
    """The medians of `blocks` consecutive, near-equal blocks of `samples_ms` (fewer when
    there are fewer samples).

    Example:
        >>> block_medians([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3)
        [1.5, 3.5, 5.5]
    """
    n = len(samples_ms)
    blocks = max(1, min(blocks, n))
    edges = [round(i * n / blocks) for i in range(blocks + 1)]
    return [statistics.median(samples_ms[a:b]) for a, b in itertools.pairwise(edges)]


def measure(samples_ms: list[float]) -> tuple[float, list[float]]:
    """(median, [lowest, highest] block median) of one candidate's runs."""
    medians = block_medians(samples_ms)
    return statistics.median(samples_ms), [min(medians), max(medians)]


def fastest(rows: list[dict]) -> tuple[dict | None, list[dict]]:
    """The chosen row of `rows` (the eligible, timed candidates) and those tied with the
    fastest (see the module docstring); (None, []) without rows."""
    if not rows:
        return None, []
    quickest = min(rows, key=lambda r: (r["latency_ms"], r["gzip_bytes"]))
    high = quickest["latency_spread_ms"][1]
    tied = [r for r in rows if r["latency_spread_ms"][0] <= high]
    return min(tied, key=lambda r: (r["gzip_bytes"], r["latency_ms"])), tied


def feed(job):
    """The first validation sample, as the harness takes it (an array, or a dict by input
    name for several inputs)."""
    first = [a[:1] for a in job.validation.inputs]
    if len(first) == 1:
        return first[0]
    return {spec.name: a for spec, a in zip(job.specs, first, strict=True)}


def time_candidates(rows: list[dict], contents: dict[str, bytes], inputs) -> dict:
    """Times `contents` ({candidate: .tflite bytes}) interleaved and fills each row's
    `latency_ms` / `latency_spread_ms`; returns the search's "latency" entry (how it was
    measured)."""
    from keras_squeeze.bench.local import benchmark

    result = benchmark(contents, inputs=inputs, measure_memory=False, **SETTINGS)
    for row in rows:
        if row["candidate"] in contents:
            samples = result[row["candidate"]].samples_ms
            row["latency_ms"], row["latency_spread_ms"] = measure(samples)
            row["latency_runs"] = len(samples)
    return {
        "harness": HARNESS,
        "settings": dict(SETTINGS),
        "blocks": BLOCKS,
        "inputs": "the first validation sample",
        "measured_seconds": round(result.settings["measured_seconds"], 3),
        "machine": result.machine,
        "caveat": (
            "timed on this machine at its current load; on a shared CPU figures move from run "
            "to run, so candidates of close speed can swap; time the chosen file on the "
            "target device"
        ),
    }
