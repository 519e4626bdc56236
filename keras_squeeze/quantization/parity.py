"""Does the quantization-aware Keras model agree with its .tflite?

Per output: SQNR and top-1 agreement on the same inputs. When they disagree
beyond tolerance, layer by layer on one sample: each quantization-aware layer's
Keras output next to the .tflite tensor its ops produced (found by the layer's
name scope and shape in a run that keeps every tensor), so the first layer
where they part is named.
"""

from __future__ import annotations

import re

import numpy as np

from keras_squeeze import _compat
from keras_squeeze.core import models
from keras_squeeze.data.inputs import Samples
from keras_squeeze.export.runtime import TFLiteRunner, match_names, quant_params
from keras_squeeze.report import metrics
from keras_squeeze.report.tflite_reader import read_tflite


def _layer_outputs(model, layer_names, sample):
    k = _compat.keras_module(_compat.keras_flavour(model))
    probe = k.Model(model.inputs, [model.get_layer(n).output for n in layer_names])
    out = probe(sample if len(sample) > 1 else sample[0], training=False)
    out = out if isinstance(out, (list, tuple)) else [out]
    return [np.asarray(o, np.float32) for o in out]


def _tflite_tensors(content: bytes, sample, input_names):
    """Every op output of one run (dequantized), by tensor name, with its op's index."""
    from ai_edge_litert.interpreter import Interpreter

    produced = {out: op.index for op in read_tflite(content).operators for out in op.outputs}
    it = Interpreter(model_content=content, experimental_preserve_all_tensors=True)
    runner = it.get_signature_runner()
    details = runner.get_input_details()
    feed = {}
    for x, name in zip(sample, match_names(input_names, list(details)), strict=True):
        q = quant_params(details[name])
        feed[name] = q.quantize(x) if q is not None else np.asarray(x, details[name]["dtype"])
    runner(**feed)
    tensors = {}
    for d in it.get_tensor_details():
        if d["index"] not in produced:
            continue
        value = it.get_tensor(d["index"])
        scale, zero = d["quantization"]
        value = (value.astype(np.float32) - zero) * scale if scale else value.astype(np.float32)
        tensors[d["name"]] = (produced[d["index"]], value)
    return tensors


def per_layer(qat_model, content: bytes, samples: Samples, min_sqnr_db: float) -> list[dict]:
    """SQNR of each quantization-aware layer's output, Keras vs .tflite, on one sample."""
    names = [
        layer.name
        for layer in qat_model.layers
        if layer.name.startswith("quant_") and len(getattr(layer, "_inbound_nodes", [])) == 1
    ]
    sample = [a[:1] for a in samples.inputs]
    keras_values = _layer_outputs(qat_model, names, sample)
    tensors = _tflite_tensors(content, sample, [s.name for s in models.input_specs(qat_model)])
    # A fused op's output names every layer it fused ("a/BiasAdd;b/FusedBatchNorm"):
    # it is the output of the last of them in the model's order.
    order = {name: i for i, name in enumerate(names)}
    owner: dict[str, str] = {}
    for tname in tensors:
        mentioned = [n for n in names if re.search(rf"(^|[/;]){re.escape(n)}/", tname)]
        if mentioned:
            owner[tname] = max(mentioned, key=order.__getitem__)
    rows = []
    for name, ref in zip(names, keras_values, strict=True):
        candidates = [
            (op, value)
            for tname, (op, value) in tensors.items()
            if owner.get(tname) == name and value.shape == ref.shape
        ]
        if not candidates:
            continue
        _, value = max(candidates, key=lambda c: c[0])
        sqnr = metrics.sqnr_db(ref, value)
        rows.append({"layer": name, "sqnr_db": sqnr, "ok": sqnr >= min_sqnr_db})
    return rows


def check(
    qat_model,
    content: bytes,
    samples: Samples,
    min_top1: float,
    min_sqnr_db: float,
    classifier: list[bool] | None = None,
) -> dict:
    """Agreement of a quantization-aware Keras model and its .tflite.

    `classifier` (one flag per output) keeps top-1 agreement to the
    classification outputs (an arg-max says nothing about a box).

    Returns:
        {"sqnr_db", "top1_agreement", "max_abs_diff", "samples", "ok", and,
        when not ok, "layers": per-layer SQNR and "first_divergent_layer"}.
    """
    names = models.output_names(qat_model)
    specs = models.input_specs(qat_model)
    keras_out = models.keras_outputs(qat_model, samples)
    tflite_out = TFLiteRunner(content=content).run(samples, [s.name for s in specs], names)
    fidelity = metrics.compare(keras_out, tflite_out, names, samples.describe())
    if classifier is not None and len(classifier) == len(names):
        fidelity = metrics.only_classifiers(fidelity, classifier)
    ok = fidelity.sqnr_db >= min_sqnr_db and (
        fidelity.top1_agreement is None or fidelity.top1_agreement >= min_top1
    )
    result = {**fidelity.to_dict(), "ok": ok}
    if not ok:
        rows = per_layer(qat_model, content, samples, min_sqnr_db)
        result["layers"] = [{**r, "sqnr_db": metrics.json_float(r["sqnr_db"])} for r in rows]
        first = next((r["layer"] for r in rows if not r["ok"]), None)
        result["first_divergent_layer"] = first
    return result
