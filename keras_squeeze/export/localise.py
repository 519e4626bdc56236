"""Where does a .tflite part from its Keras model? Bisection over truncated models.

Tensor names in a .tflite do not name Keras layers reliably (Keras 3's
export traces the model twice and suffixes every name scope; fused ops
carry several names), so the layer is found by conversion instead: the
model truncated after layer i (its inputs to that layer's output) is
converted with the same settings and run against its own Keras outputs;
a bisection over i finds the first layer whose truncated model departs.
That costs about log2(layers) + 1 conversions, on the failure path only.

Example:
    >>> first_departing_layer(model, lambda m: convert(m, "int8", calibration), samples, 10.0)
    ('dense', [{'layer': 'dense', 'sqnr_db': 3.1, 'ok': False}, ...])
"""

from __future__ import annotations

from collections.abc import Callable

from keras_squeeze import _compat
from keras_squeeze.core import models
from keras_squeeze.data.inputs import Samples
from keras_squeeze.errors import RecipeError
from keras_squeeze.export.runtime import TFLiteRunner
from keras_squeeze.report import metrics

MAX_SAMPLES = 32


def _probes(model) -> list:
    """Top-level layers, in the model's order, whose one call gives one tensor."""
    out = []
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer" or len(getattr(layer, "_inbound_nodes", [])) != 1:
            continue
        try:
            output = layer.output
        except (AttributeError, ValueError):
            continue
        if not isinstance(output, (list, tuple, dict)):
            out.append(layer)
    return out


def first_departing_layer(
    model,
    convert: Callable[[object], bytes],
    samples: Samples,
    min_sqnr_db: float,
) -> tuple[str | None, list[dict]]:
    """The first layer whose truncated model's .tflite departs from its Keras outputs.

    Args:
        model: a functional or Sequential model (either flavour).
        convert: turns a Keras model into .tflite bytes with the settings under test.
        samples: inputs to compare on (the first `MAX_SAMPLES` are used).
        min_sqnr_db: below this SQNR a truncated model departs.

    Returns:
        (layer name or None when no truncated model departs, the probes made:
        {"layer", "sqnr_db", "ok"} in the model's order).
    """
    layers = _probes(model)
    if not layers or not models.is_graph_model(model):
        return None, []
    k = _compat.keras_module(_compat.keras_flavour(model))
    count = min(samples.count, MAX_SAMPLES)
    subset = Samples(samples.batch(0, count), None, count, None, samples.source)
    names = [s.name for s in models.input_specs(model)]
    probes: dict[int, dict] = {}

    def departs(i: int) -> bool:
        if i not in probes:
            sub = k.Model(model.inputs, layers[i].output)
            try:
                content = convert(sub)
            except RecipeError:
                # the mode has nothing to change before this layer ("int4-weights" without
                # a weight op): this prefix is the float model, which agrees
                probes[i] = {"layer": layers[i].name, "sqnr_db": float("inf"), "ok": True}
                return False
            runner = TFLiteRunner(content=content)
            outputs = runner.run(subset, names, models.output_names(sub))
            sqnr = metrics.compare(models.keras_outputs(sub, subset), outputs, ["out"], "").sqnr_db
            probes[i] = {"layer": layers[i].name, "sqnr_db": sqnr, "ok": sqnr >= min_sqnr_db}
        return not probes[i]["ok"]

    lo, hi = -1, len(layers) - 1  # lo: agrees (the inputs), hi: departs
    if not departs(hi):
        first = None
    else:
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if departs(mid):
                hi = mid
            else:
                lo = mid
        first = layers[hi].name
    return first, [probes[i] for i in sorted(probes)]
