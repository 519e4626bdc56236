"""Measuring units on a model: importance with each unit bypassed, and what each one costs.

Importance runs the model's own layers eagerly in inference mode
(`surgery.run_calls`) on a few batches: the model's values are computed once
per batch, then for each unit only the calls after it are run again with the
unit bypassed. "taylor" needs one run with a gradient tape per batch for all
units. The numbers are turned into importances by `importance`.

Costs: MACs and parameters per layer from `channel_pruning.flops.count_flops`;
measured latency from float .tflite files of the model with each unit
bypassed, run interleaved with the original (`ks.benchmark`, 1 thread,
XNNPACK).
"""

from __future__ import annotations

from keras_squeeze.channel_pruning import flops
from keras_squeeze.channel_pruning.graph import GraphView
from keras_squeeze.core.progress import say
from keras_squeeze.data.inputs import Samples
from keras_squeeze.depth_pruning import importance, surgery
from keras_squeeze.depth_pruning.units import Unit
from keras_squeeze.distillation import losses as kd
from keras_squeeze.training import losses

EVAL_BATCH = 16
# "remeasure=None" re-measures when the whole greedy run needs at most this many
# bypassed runs (units x rounds, each over every batch of the importance samples).
MAX_REMEASURE_RUNS = 200
# Latency measurement of the bypassed variants (each against the original, interleaved).
LATENCY_RUNS = {"warmup_runs": 5, "min_runs": 30, "min_seconds": 1.0, "max_seconds": 60.0}


def task_loss(model, loss=None):
    """The loss `fn(labels, outputs) -> batch mean` the fine-tuning loop trains on:
    `loss` when given, else cross-entropy for classifiers and mean squared error
    otherwise (see `training.trainer`)."""
    import tensorflow as tf

    if loss is not None:
        return lambda y, out: tf.reduce_mean(loss(y, out))
    if losses.is_classifier(model):
        kind = losses.output_kind(model)
        return lambda y, out: losses.classification_loss(y, out, kind)
    return lambda y, out: kd.regression_loss(tf.cast(y, out.dtype), out)


class Scorer:
    """Importance of units bypassed on a model, on fixed samples."""

    def __init__(self, view: GraphView, samples: Samples, criterion: str, loss_fn=None):
        self.view = view
        self.samples = samples
        self.criterion = criterion
        self.loss_fn = loss_fn
        self.runs = 0
        self._reference = None

    def _batches(self):
        for start in range(0, self.samples.count, EVAL_BATCH):
            stop = min(start + EVAL_BATCH, self.samples.count)
            labels = None if self.samples.labels is None else self.samples.labels[start:stop]
            yield start, self.samples.batch(start, stop), labels

    def _values(self, inputs) -> dict:
        return {key: x for key, x in zip(self.view.inputs, inputs, strict=True)}

    def reference(self) -> list[list]:
        """The original model's outputs, per batch."""
        if self._reference is None:
            self._reference = []
            for _, inputs, _ in self._batches():
                values = surgery.run_calls(self.view, self._values(inputs), surgery.Plan())
                self._reference.append(
                    [_numpy(o) for o in surgery.outputs_of(self.view, values, surgery.Plan())]
                )
        return self._reference

    def _metric(self, batch: int, outputs, labels) -> tuple[float, float]:
        if self.criterion == "bypass-loss":
            value = float(self.loss_fn(labels, outputs[0])) * len(labels)
            return value, float(len(labels))
        return importance.squared_error_sums(self.reference()[batch], [_numpy(o) for o in outputs])

    def scores(self, units: list[Unit], removed: list[Unit]) -> dict[str, float]:
        """{unit name: importance} of each unit bypassed with `removed` bypassed already."""
        if self.criterion == "taylor":
            return self._taylor(units, removed)
        base = surgery.bypass_plan(removed)
        totals = {u.name: [0.0, 0.0] for u in units}
        base_total = [0.0, 0.0]
        for batch, (_, inputs, labels) in enumerate(self._batches()):
            cache = surgery.run_calls(self.view, self._values(inputs), base)
            num, den = self._metric(batch, surgery.outputs_of(self.view, cache, base), labels)
            base_total[0] += num
            base_total[1] += den
            for u in units:
                plan = surgery.bypass_plan([*removed, u])
                values = dict(cache)
                surgery.run_calls(
                    self.view, values, plan, start=min(u.nodes), changed=set(), base=base
                )
                num, den = self._metric(batch, surgery.outputs_of(self.view, values, plan), labels)
                totals[u.name][0] += num
                totals[u.name][1] += den
                self.runs += 1
        base_value = importance.relative_distance(*base_total)
        return {
            name: importance.relative_distance(*total) - base_value
            for name, total in totals.items()
        }

    def _taylor(self, units: list[Unit], removed: list[Unit]) -> dict[str, float]:
        import tensorflow as tf

        base = surgery.bypass_plan(removed)
        sums = {u.name: 0.0 for u in units}
        watched = {u.output for u in units}
        for _, inputs, labels in self._batches():
            with tf.GradientTape() as tape:

                def hook(key, value, tape=tape):
                    if key in watched:
                        tape.watch(value)
                    return value

                values = surgery.run_calls(self.view, self._values(inputs), base, hook=hook)
                outputs = surgery.outputs_of(self.view, values, base)
                loss = self.loss_fn(labels, outputs[0])
            ys = [values[u.output] for u in units]
            grads = tape.gradient(loss, ys)
            for u, y, g in zip(units, ys, grads, strict=True):
                if g is None:
                    continue
                x = values[base.resolve(u.input)]
                per_sample = _numpy(g) * len(labels)  # d(batch mean)/dy -> per-sample gradient
                sums[u.name] += importance.taylor_sum(_numpy(x), _numpy(y), per_sample)
            self.runs += 1
        return {name: total / self.samples.count for name, total in sums.items()}


def _numpy(value):
    import numpy as np

    return np.asarray(value)


def remeasure_default(criterion: str, candidates: int, rounds: int, batches: int) -> bool:
    """Whether re-measuring after each removal is cheap (see `MAX_REMEASURE_RUNS`)."""
    if criterion == "taylor":
        return True
    runs = sum(max(candidates - r, 0) for r in range(rounds)) * batches
    return runs <= MAX_REMEASURE_RUNS


def unit_costs(model, units: list[Unit], view: GraphView, static: bool):
    """({unit name: {"macs": ..., "params": ...}}, the model's CostCount) from `count_flops`
    (macs None where a shape is not static and `static` is False)."""
    count = flops.count_flops(model, static=static)
    by_name = count.by_name()
    out = {}
    for u in units:
        names = dict.fromkeys(view.nodes[i].name for i in u.nodes)
        rows = [by_name[n] for n in names if n in by_name]
        out[u.name] = {
            "macs": None if count.macs is None else int(sum(r.macs for r in rows)),
            "params": int(sum(r.params for r in rows)),
        }
    return out, count


def latency_savings(model, view: GraphView, units: list[Unit], verbose: int) -> tuple[dict, float]:
    """Measured float .tflite latency saved by bypassing each unit alone (ms, >= 0), and the
    original's p50 (ms): every variant converted, then all run interleaved with the original.
    """
    from keras_squeeze.bench import benchmark
    from keras_squeeze.export import tflite

    shared: dict = {}
    contents = {"original": tflite.convert(surgery.rebuild(model, view, surgery.Plan(), shared))}
    for i, u in enumerate(units):
        say(
            verbose,
            f"block removal: converting the model without '{u.name}' ({i + 1}/{len(units)})",
        )
        variant = surgery.rebuild(model, view, surgery.bypass_plan([u]), shared)
        contents[u.name] = tflite.convert(variant)
    result = benchmark(
        contents, baseline="original", num_threads=1, measure_memory=False, **LATENCY_RUNS
    )
    base = result["original"].latency.p50_ms
    return {u.name: max(base - result[u.name].latency.p50_ms, 0.0) for u in units}, base
