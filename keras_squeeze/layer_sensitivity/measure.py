"""ks.sensitivity(): how much each layer can take, measured on the user's data.

For every layer with a kernel (Conv, Dense, EinsumDense, Embedding, ...):
each error probe's per-layer error (int8: the SQNR / RMSE its own
quantization adds, `layer_sensitivity.int8`), and the drop in the model's metric
when that layer alone is pruned or clustered (`layer_sensitivity.probes`), without
fine-tuning. The weight probes change a working copy of the model (its kernel
set, measured, then restored); the model passed in is never changed.
"""

from __future__ import annotations

import math
import time

import numpy as np

from keras_squeeze.core import models
from keras_squeeze.core.progress import say
from keras_squeeze.data import inputs as data_inputs
from keras_squeeze.data import labels as labels_mod
from keras_squeeze.errors import ConfigError, DataError
from keras_squeeze.layer_sensitivity import probes as probes_mod
from keras_squeeze.layer_sensitivity.table import LayerSensitivity, Sensitivity, format_points
from keras_squeeze.report import metrics
from keras_squeeze.report.layers import KERNEL_NAMES, weight_short_name
from keras_squeeze.training import tasks

DEFAULT_SAMPLES = 500
DEFAULT_CALIBRATION_SAMPLES = 200
DEFAULT_DEBUG_SAMPLES = 100
DEFAULT_TIME_BUDGET_S = 600.0


def _count(value, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DataError(
            f"{argument} must be a positive integer. Expected >= 1. Received: {argument}={value!r}"
        )
    return value


def _budget(value) -> float | None:
    if value is None:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
    if not ok or not math.isfinite(value):
        raise ConfigError(
            "time_budget_s bounds how long the measurement runs. Expected a positive number of "
            f"seconds, or None for no bound. Received: time_budget_s={value!r}"
        )
    return float(value)


# The weights the probes change: kernels, embeddings and a recurrent layer's recurrent kernel.
PROBED_WEIGHTS = (*KERNEL_NAMES, "recurrent_kernel")


def kernel_variables(layer) -> list:
    """The variables the weight probes change: the layer's kernel-like weights."""
    return [w for w in models.layer_weights(layer) if weight_short_name(w) in PROBED_WEIGHTS]


def _read(variable) -> np.ndarray:
    return np.asarray(variable.numpy() if hasattr(variable, "numpy") else variable)


def measured_layers(model, names=None) -> dict:
    """{name: layer} of the layers with kernels, in model order (`names` selects some).

    Raises:
        ConfigError: `names` holds a name of no layer, or of a layer without a kernel.
    """
    found = {}
    for layer in models.walk_layers(model):
        name = models.layer_name(layer)
        if name not in found and kernel_variables(layer):
            found[name] = layer
    if names is None:
        return found
    if isinstance(names, str):
        names = [names]
    every = {models.layer_name(la) for la in models.walk_layers(model)}
    unknown = [n for n in names if n not in every]
    if unknown:
        raise ConfigError(
            f"layers names layers the model does not have. Expected names among "
            f"{list(found)[:12]}. Received: {unknown}"
        )
    bare = [n for n in names if n not in found]
    if bare:
        raise ConfigError(
            "layers names layers without a kernel, which no probe changes. Expected layers "
            f"with a kernel (e.g. {list(found)[:6]}). Received: {bare}"
        )
    return {n: found[n] for n in names}


class _Metric:
    """The model's task metric on the samples, and the drop of a changed copy."""

    def __init__(self, model, samples, loss):
        self.names = models.output_names(model)
        self.labelled = samples.labels is not None
        self.samples = samples
        if self.labelled:
            labels = samples.labels
        else:  # against the original model's own outputs
            outputs = models.keras_outputs(model, samples)
            labels = [
                np.argmax(o, axis=-1) if metrics.is_classifier_output(o) else o for o in outputs
            ]
            labels = labels[0] if len(labels) == 1 else labels
            samples = data_inputs.Samples(
                samples.inputs, labels, samples.count, samples.available, samples.source
            )
            self.samples = samples
        self.roles = tasks.roles(model, labels, loss)
        self.base = self.scores(model)

    def scores(self, model) -> list[dict]:
        outputs = models.keras_outputs(model, self.samples)
        return metrics.output_scores(outputs, self.samples.labels, self.roles, self.names)

    @staticmethod
    def _value(score: dict) -> float:
        if score["task"] == metrics.CLASSIFICATION:
            return score["accuracy"]
        rel = score.get("relative_mse")
        return rel if rel is not None else score["mse"]

    def drop(self, scores: list[dict]) -> float:
        """The largest drop over the outputs: accuracy lost, or relative MSE gained."""
        drops = []
        for base, now in zip(self.base, scores, strict=True):
            sign = 1.0 if base["task"] == metrics.CLASSIFICATION else -1.0
            drops.append(sign * (self._value(base) - self._value(now)))
        return float(max(drops))

    @property
    def baseline(self) -> float:
        return float(self._value(self.base[0]))

    def describe(self) -> str:
        kinds = {s["task"] for s in self.base}
        if kinds == {metrics.CLASSIFICATION}:
            what = "accuracy" if self.labelled else "top-1 agreement with the original model"
        elif kinds == {metrics.REGRESSION}:
            rel = self.base[0].get("relative_mse") is not None
            what = "relative MSE" if rel else "MSE"
            if not self.labelled:
                what += " to the original model's outputs"
        else:
            what = "accuracy / relative MSE"
        if len(self.base) > 1:
            what += " (the worst output's drop)"
        return what


def sensitivity(
    model,
    data,
    *,
    representative_data=None,
    layers=None,
    prune_rates=probes_mod.DEFAULT_PRUNE_RATES,
    cluster_counts=probes_mod.DEFAULT_CLUSTER_COUNTS,
    errors=None,
    num_samples: int = DEFAULT_SAMPLES,
    num_calibration_samples: int = DEFAULT_CALIBRATION_SAMPLES,
    num_debug_samples: int = DEFAULT_DEBUG_SAMPLES,
    loss=None,
    time_budget_s: float | None = DEFAULT_TIME_BUDGET_S,
    custom_objects: dict | None = None,
    input_signature=None,
    verbose: int = 1,
) -> Sensitivity:
    """Measures how much each layer of `model` can take, layer by layer.

    Per layer with a kernel: the int8 error its quantization adds (SQNR in dB
    and RMSE of its output against the same op in float on the same inputs;
    full integer: int8 weights per-channel symmetric, int8 activations
    per-tensor asymmetric, calibrated as the "int8" recipe), and the drop in
    the model's metric when that layer alone is magnitude-pruned to each of
    `prune_rates` or k-means-clustered to each of `cluster_counts` values (per
    output channel for Conv2D), with no fine-tuning. The metric is the
    model's task metric on `data`: top-1 accuracy for a classifier, relative
    MSE (MSE / variance of the targets) for a regression output; without
    labels, agreement with the original model's own outputs. The model is
    never changed (the probes work on a copy).

    Args:
        model: a Keras 3 or tf_keras model, or a path to a model file.
        data: the samples to measure on, in any form compress() takes: an
            array, an (x, y) tuple, a tf.data.Dataset or a generator; the first
            `num_samples` are used.
        representative_data: inputs that calibrate int8 (default: `data`).
        layers: names of the layers to measure (default: every layer with a kernel).
        prune_rates: fractions of zeros to try, each in (0, 1) (default 0.5, 0.7, 0.9).
        cluster_counts: numbers of values to try, each >= 2 (default 16, 8).
        errors: names of the error probes to run (default: every registered
            one: "int8"; () for none). See `keras_squeeze.layer_sensitivity.probes`.
        num_samples: samples the metric is measured on (default 500).
        num_calibration_samples: samples that calibrate int8 (default 200).
        num_debug_samples: samples the per-layer int8 error is measured on,
            one inference each (default 100).
        loss: as in compress(), for telling classifier and regression outputs apart.
        time_budget_s: stop measuring after about this many seconds (default
            600; None: no bound); the cells not measured stay empty and
            `complete` is False.
        custom_objects: custom layers by name, for loading from a path.
        input_signature: the inputs of a model without symbolic inputs (see compress()).
        verbose: 0 silent, 1 a line per layer.

    Returns:
        A `Sensitivity`: `.layers` (rows), `.ranked()`, `.table()`, `.to_json()`,
        `.save(dir)`.

    Raises:
        ModelError: not a Keras model.
        DataError: empty or mismatched data, or a bad sample count.
        ConfigError: unknown layers or error probes, bad rates or counts, or a
            bad time budget.

    Example:
        >>> table = ks.sensitivity(model, (x_val, y_val))
        >>> print(table.table())
        >>> table.ranked()[0].name        # the layer pruning or clustering hurts most
        >>> table.ranked("int8")[0].name  # the layer int8 quantization hurts most
        >>> table.save("sensitivity/")
    """
    start = time.monotonic()
    model = models.resolve_model(model, custom_objects)
    for value, argument in (
        (num_samples, "num_samples"),
        (num_calibration_samples, "num_calibration_samples"),
        (num_debug_samples, "num_debug_samples"),
    ):
        _count(value, argument)
    budget = _budget(time_budget_s)
    weight_probes = probes_mod.weight_probes(prune_rates, cluster_counts)
    error_probes = probes_mod.error_probes(errors)
    if data is None:
        raise DataError(
            "sensitivity measures each layer on data. Expected data= (an array, (x, y) tuple, "
            "tf.data.Dataset or generator of typical inputs, labelled for the model's metric). "
            "Received: data=None"
        )
    signature, read = models.resolve_signature(
        model, input_signature, {"data": data, "representative_data": representative_data}
    )
    specs = list(signature.specs)
    tasks.check_loss(loss, model)
    models.check_finite_weights(model)
    chosen = measured_layers(model, layers)
    samples = data_inputs.take_samples(
        read["data"], specs, num_samples, "data", outputs=labels_mod.output_specs(model)
    )
    metric = _Metric(model, samples, loss)
    notes = [f"metric: {metric.describe()} on {samples.describe()}"]
    deadline = None if budget is None else start + budget
    complete = True

    def out_of_time() -> bool:
        return deadline is not None and time.monotonic() > deadline

    rows = {
        name: LayerSensitivity(
            name,
            models.layer_type(layer),
            int(sum(_read(v).size for v in kernel_variables(layer))),
            drops={p.name: None for p in weight_probes},
            errors={p.name: None for p in error_probes},
        )
        for name, layer in chosen.items()
    }
    if error_probes:
        calibration = None
        for probe in error_probes:
            if out_of_time():
                complete = False
                break
            if calibration is None:
                if representative_data is not None:
                    calibration = data_inputs.take_samples(
                        read["representative_data"],
                        specs,
                        num_calibration_samples,
                        "representative_data",
                    )
                else:
                    calibration = _head(samples, num_calibration_samples)
                debug = _head(samples, num_debug_samples)
            ctx = probes_mod.ProbeContext(model, dict(chosen), calibration, debug, verbose)
            try:
                result = probe.measure(ctx)
            except Exception as e:  # one probe failing leaves its column empty, says why
                reason = f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
                notes.append(f"{probe.name}: not measured ({reason})")
                say(verbose, f"sensitivity: {probe.name} not measured ({reason})")
                for row in rows.values():
                    row.skipped[probe.name] = reason
                continue
            notes.extend(result.notes)
            for name, figures in result.layers.items():
                if name in rows:
                    rows[name].errors[probe.name] = dict(figures)
    if weight_probes:
        copy = models.copy_model(model)
        copies = {models.layer_name(la): la for la in models.walk_layers(copy)}
        for position, name in enumerate(chosen, start=1):
            if not complete or out_of_time():
                complete = False
                break
            row = rows[name]
            variables = kernel_variables(copies[name])
            originals = [_read(v).copy() for v in variables]
            for probe in weight_probes:
                if out_of_time():
                    complete = False
                    break
                changed = [probe.apply(k, row.type) for k in originals]
                skipped = [c for c in changed if isinstance(c, str)]
                if skipped:
                    row.skipped[probe.name] = skipped[0]
                    continue
                try:
                    for v, c, k in zip(variables, changed, originals, strict=True):
                        v.assign(np.asarray(c, dtype=k.dtype))
                    row.drops[probe.name] = metric.drop(metric.scores(copy))
                finally:
                    for v, k in zip(variables, originals, strict=True):
                        v.assign(k)
            say(verbose, f"sensitivity: layer {position}/{len(chosen)} {_line(row, weight_probes)}")
    if not complete:
        notes.append(
            f"stopped at the time budget ({budget:g} s): cells left empty were not measured"
        )
        say(verbose, f"sensitivity: {notes[-1]}")
    return Sensitivity(
        model=model.name,
        metric=metric.describe(),
        baseline=metric.baseline,
        samples=samples.describe(),
        drop_probes=[(p.name, p.label) for p in weight_probes],
        error_probes=[(p.name, p.label) for p in error_probes],
        layers=list(rows.values()),
        notes=notes,
        seconds=time.monotonic() - start,
        complete=complete,
    )


def _head(samples, count: int):
    """The first `count` of `samples`' inputs (no labels)."""
    return data_inputs.Samples(
        [a[:count] for a in samples.inputs],
        None,
        min(samples.count, count),
        samples.count,
        samples.source,
    )


def _line(row: LayerSensitivity, weight_probes) -> str:
    parts = []
    for p in weight_probes:
        v = row.drops.get(p.name)
        parts.append(f"{p.label} {format_points(v)}")
    return f"'{row.name}' ({row.type}): drop in points: " + ", ".join(parts)
