"""What the sensitivity table measures for each layer: its probes, in two kinds.

- A weight probe changes one layer's kernels in Keras (on a working copy) and
  is measured as the drop in the model's metric, with every other layer as it
  was: magnitude pruning to 50 / 70 / 90% zeros, k-means clustering to 16 / 8
  values. Plain functions of arrays; `apply` returns the new kernel, or a
  reason the probe does not apply to it.
- An error probe converts the model to a deployable form and measures, per
  layer, the error that layer's own conversion adds (SQNR in dB and RMSE of
  the layer's output against the float op on the same inputs). The built-in
  one is full int8 (`layer_sensitivity.int8`, TFLite's QuantizationDebugger).

Error probes register like stages: a module in `BUILTIN_ERROR_MODULES` (or
any caller) calls `register_error_probe(ErrorProbe(...))`; `ks.sensitivity`
then runs it and the table gains its columns. This is the place for int4
weights (an ai-edge-quantizer probe): a module defining

    def measure(ctx: ProbeContext) -> ProbeResult: ...
    register_error_probe(ErrorProbe("int4", "int4 weights", measure))

and its path added to `BUILTIN_ERROR_MODULES`.
"""

from __future__ import annotations

import dataclasses
import importlib
import threading
from collections.abc import Callable

import numpy as np

from keras_squeeze.clustering import centroids
from keras_squeeze.errors import ConfigError
from keras_squeeze.pruning import masks

DEFAULT_PRUNE_RATES = (0.5, 0.7, 0.9)
DEFAULT_CLUSTER_COUNTS = (16, 8)
# Layer classes whose kernels cluster per output channel (as the "cluster" preset does).
PER_CHANNEL = ("Conv2D",)


@dataclasses.dataclass(frozen=True)
class WeightProbe:
    """One change to a layer's kernels, measured as the metric drop it causes alone.

    Attributes:
        name: its key in the table's JSON ("prune_0.5", "cluster_16").
        label: its column header ("prune 50%").
        apply: (kernel, layer class name) -> the changed kernel, or a str saying
            why the probe does not apply to it.
    """

    name: str
    label: str
    apply: Callable[[np.ndarray, str], np.ndarray | str]


def prune_probe(rate: float) -> WeightProbe:
    """Magnitude pruning of each kernel to `rate` zeros (`pruning.masks.magnitude_mask`)."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate < 1:
        raise ConfigError(
            f"A pruning rate is a fraction of zeros. Expected a value in (0, 1). Received: {rate!r}"
        )

    def apply(kernel: np.ndarray, kind: str):
        return kernel * masks.magnitude_mask(kernel, float(rate))

    return WeightProbe(f"prune_{rate:g}", f"prune {rate:.0%}", apply)


def cluster_probe(count: int) -> WeightProbe:
    """k-means clustering of each kernel to `count` values (per output channel for
    Conv2D, as the "cluster" preset; `clustering.centroids.kmeans`)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 2:
        raise ConfigError(
            f"A cluster count is the number of values a kernel keeps. Expected an integer >= 2. "
            f"Received: {count!r}"
        )

    def apply(kernel: np.ndarray, kind: str):
        if kind in PER_CHANNEL and kernel.ndim > 1:
            rows = np.moveaxis(kernel, -1, 0).reshape(kernel.shape[-1], -1)
            if rows.shape[1] < count:
                return f"{rows.shape[1]} weights per channel, fewer than {count} clusters"
            done = np.stack([centroids.kmeans(r, count) for r in rows])
            return np.moveaxis(done.reshape(kernel.shape[-1], *kernel.shape[:-1]), 0, -1)
        if kernel.size < count:
            return f"{kernel.size} weights, fewer than {count} clusters"
        return centroids.kmeans(kernel, count)

    return WeightProbe(f"cluster_{count}", f"cluster {count}", apply)


def weight_probes(prune_rates, cluster_counts) -> list[WeightProbe]:
    """The pruning probes, then the clustering probes, in the order given.

    Raises:
        ConfigError: a rate outside (0, 1), a count under 2, or not a sequence.
    """
    found = []
    for argument, values, make in (
        ("prune_rates", prune_rates, prune_probe),
        ("cluster_counts", cluster_counts, cluster_probe),
    ):
        if values is None:
            continue
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            example = DEFAULT_PRUNE_RATES if argument == "prune_rates" else DEFAULT_CLUSTER_COUNTS
            raise ConfigError(
                f"{argument} is a list of settings to try. Expected e.g. {list(example)} or (). "
                f"Received: {argument}={values!r}"
            )
        found.extend(make(v) for v in values)
    return found


@dataclasses.dataclass
class ProbeContext:
    """What an error probe gets: the model and the data, already checked.

    Attributes:
        model: the user's model (read only: a probe never changes it).
        layers: {layer name: Keras layer} of the layers measured.
        calibration: samples that calibrate activation ranges.
        debug: samples the error is measured on.
        verbose: for `core.progress.say`.
    """

    model: object
    layers: dict
    calibration: object
    debug: object
    verbose: int = 0


@dataclasses.dataclass
class ProbeResult:
    """An error probe's answer.

    Attributes:
        layers: {layer name: {"sqnr_db": float, "rmse": float}} for the layers it
            measured (others are absent).
        notes: what the table should say about how it was measured.
    """

    layers: dict
    notes: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class ErrorProbe:
    """Per-layer error of a converted form of the model (see the module docstring).

    Attributes:
        name: its key in the JSON and the `errors=` argument ("int8").
        label: its column headers' prefix ("int8").
        measure: (ProbeContext) -> ProbeResult. An exception it raises is
            caught and the column is left empty with the reason.
    """

    name: str
    label: str
    measure: Callable[[ProbeContext], ProbeResult]


BUILTIN_ERROR_MODULES = (
    "keras_squeeze.layer_sensitivity.int8",
    "keras_squeeze.layer_sensitivity.int4",
)
_ERROR_PROBES: dict[str, ErrorProbe] = {}
_lock = threading.RLock()
_loaded = False


def _load_builtins() -> None:
    global _loaded
    with _lock:
        if not _loaded:
            _loaded = True
            for module in BUILTIN_ERROR_MODULES:
                importlib.import_module(module)


def register_error_probe(probe: ErrorProbe) -> ErrorProbe:
    """Adds an error probe to `ks.sensitivity`; returns it.

    Raises:
        ConfigError: not an ErrorProbe, or its name is not an identifier.
    """
    if not isinstance(probe, ErrorProbe):
        raise ConfigError(
            f"register_error_probe takes an ErrorProbe. Expected "
            f"keras_squeeze.layer_sensitivity.ErrorProbe(name, label, measure). Received: {probe!r}"
        )
    if not isinstance(probe.name, str) or not probe.name.isidentifier():
        raise ConfigError(
            "An error probe's name is its key in the table. Expected a Python identifier such "
            f"as 'int8'. Received: name={probe.name!r}"
        )
    with _lock:
        _ERROR_PROBES[probe.name] = probe
    return probe


def unregister_error_probe(name: str) -> None:
    """Removes the error probe called `name` (nothing when there is none)."""
    with _lock:
        _ERROR_PROBES.pop(name, None)


def error_probes(names=None) -> list[ErrorProbe]:
    """The error probes `names` asks for (None: every registered one), in that order.

    Raises:
        ConfigError: an unknown name.
    """
    _load_builtins()
    with _lock:
        known = dict(_ERROR_PROBES)
    if names is None:
        return list(known.values())
    if isinstance(names, str):
        names = (names,)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(
            f"Unknown error probe. Expected names among {sorted(known)} (or () for none). "
            f"Received: errors={list(names)!r}"
        )
    return [known[n] for n in names]
