"""compress()'s last steps: verify the .tflite, then write down what was done and measured.

`verify` runs the compressed .tflite in ai_edge_litert against the original
float model (fidelity) and against the Keras model it was converted from,
and, with labelled validation data, measures accuracy before and after on
the .tflite itself. `build_report` matches every Keras layer to its .tflite
kernel, lets each stage that ran annotate the rows of the layers it changed
(its settings checked against what the .tflite holds) and check the whole
file (`Stage.verify`), and adds the Edge TPU readiness, latency and warnings.

A .tflite that departs from its own Keras model (SQNR under
`DEPARTURE_MIN_SQNR_DB` or top-1 agreement under `DEPARTURE_MIN_TOP1`) is
never a quiet success: the report and the terminal say so loudly, naming
the first layer where the two part; with `strict=True` it is an error.
"""

from __future__ import annotations

import dataclasses

from keras_squeeze import _compat
from keras_squeeze.api import conversion
from keras_squeeze.core import models
from keras_squeeze.core.progress import say
from keras_squeeze.errors import AccuracyBudgetWarning, VerificationError
from keras_squeeze.export import localise
from keras_squeeze.export import tflite as tflite_export
from keras_squeeze.quantization import ptq
from keras_squeeze.report import metrics, precision, scheme
from keras_squeeze.report.layers import layer_rows, match_layers
from keras_squeeze.report.report import ModelStats, Report
from keras_squeeze.report.tflite_reader import read_tflite
from keras_squeeze.training.evaluation import output_roles

# Below these the quantized model disagrees with the float one enough to warn.
MIN_TOP1_AGREEMENT = 0.95
MIN_SQNR_DB = 10.0
# A .tflite this far from the Keras model it was converted from is a failed conversion.
DEPARTURE_MIN_SQNR_DB = 10.0
DEPARTURE_MIN_TOP1 = 0.90
# The converter leaves weight tensors below this size in float32 under
# dynamic-range quantization (the quantize/dequantize cost outweighs the gain).
DYNAMIC_RANGE_MIN_ELEMENTS = 1024


# A result more than this below the original on its task metric gets a warning: points of
# accuracy for a classification output, points of relative MSE (MSE / variance of the
# targets) for a regression output.
MAX_TASK_DROP = 0.02


@dataclasses.dataclass
class Verified:
    """The compressed .tflite run against the original float model and against the Keras
    model it was converted from.

    Attributes:
        fidelity: per output; top-1 agreement for classification outputs only.
        own: the same figures against the Keras model the .tflite was converted
            from (a departure from it is a failed conversion).
        accuracy / regression: the task metrics before and after (see
            `report.metrics.task_summary`), None without labels.
        tasks: {output name: "classification" / "regression"}.
    """

    fidelity: metrics.Fidelity
    own: metrics.Fidelity
    accuracy: dict | None
    regression: dict | None = None
    tasks: dict | None = None


def verify(job, trained, converted) -> Verified:
    """Fidelity of the .tflite against the original model; accuracy on labelled validation data.

    Raises:
        VerificationError: the .tflite does not load or run, gives non-finite
            outputs, or (float32) does not reproduce its Keras model.
    """
    say(job.verbose, f"verifying the .tflite in ai_edge_litert on {job.check.describe()}")
    model = trained.model
    reference = models.keras_outputs(job.model, job.check) if model is not job.model else None
    checked = tflite_export.check(
        converted.content, model, job.check, job.mode.name, reference_outputs=reference
    )
    runner = checked.runner
    validation = job.validation
    out_names = models.output_names(job.model)
    roles = output_roles(job.model, validation, job.fit.loss if job.fit is not None else None)
    classifiers = [r == metrics.CLASSIFICATION for r in roles]
    fidelity = metrics.only_classifiers(metrics.renamed(checked.fidelity, out_names), classifiers)
    own = metrics.only_classifiers(metrics.renamed(checked.own, out_names), classifiers)
    accuracy = regression = None
    if validation is not None and validation.labels is not None:
        original = metrics.output_scores(
            models.keras_outputs(job.model, validation), validation.labels, roles, out_names
        )
        outputs = runner.run(validation, [s.name for s in job.specs], out_names)
        compressed = metrics.output_scores(outputs, validation.labels, roles, out_names)
        accuracy, regression = metrics.task_summary(
            original, compressed, validation.count, "validation_data"
        )
    return Verified(fidelity, own, accuracy, regression, dict(zip(out_names, roles, strict=True)))


def build_report(job, trained, converted, verified) -> Report:
    """The Report of one compress() call (see `keras_squeeze.report.report.Report`)."""
    tflite_model = read_tflite(converted.content)
    keras_layers = list(models.walk_layers(trained.model))
    matches = match_layers(keras_layers, tflite_model)
    rows = layer_rows(keras_layers, tflite_model, matches)
    report = Report(
        recipe=job.recipe.name,
        quantization=job.mode.name,
        scheme=scheme.describe(job.mode, rows),
        keras_flavour=job.flavour,
        original=ModelStats(
            models.count_params(job.model),
            len(converted.baseline),
            metrics.gzip_size(converted.baseline),
        ),
        compressed=ModelStats(
            models.count_params(trained.model),
            len(converted.content),
            metrics.gzip_size(converted.content),
        ),
        fidelity=verified.fidelity,
        accuracy=verified.accuracy,
        regression=verified.regression,
        tasks=verified.tasks,
        conversion_seconds=converted.seconds,
        calibration=job.calibration.describe() if job.calibration is not None else None,
        layers=rows,
        stages=[r.to_dict() for r in trained.records],
        training=trained.info,
        notes=list(job.notes),
    )
    annotate(report, trained.records, trained.stages, matches)
    failures = []
    for stage in trained.stages:
        config = job.recipe.config_of(stage.name)
        failures.append(
            stage.verify(report, trained.model, converted.content, job.check, config, job.verbose)
        )
    if not any(stage.verifies_conversion for stage in trained.stages):
        failures.append(check_departure(report, trained, converted, job, verified))
    failures = [f for f in failures if f]
    if failures and job.strict:
        raise VerificationError(
            f"{failures[0]}. Expected the .tflite to agree with the Keras model it was converted "
            "from (strict=True; nothing was written). Received: the figures above"
        )
    kept = [s for s in trained.stages if not s.hands_back_keras3]
    if kept and job.flavour == _compat.KERAS3:
        report.notes.append(kept[-1].tf_keras_note)
    if job.mode.name == "int8":
        from keras_squeeze.edgetpu import edgetpu_readiness

        if converted.edgetpu is not None and converted.edgetpu is not converted.content:
            report.edgetpu = {"model": "batch-1 copy", **edgetpu_readiness(converted.edgetpu)}
        else:
            report.edgetpu = {"model": "model.tflite", **edgetpu_readiness(converted.content)}
    if job.measure_latency:
        from keras_squeeze.bench import compare_latency

        say(job.verbose, "measuring latency: original float32 vs compressed .tflite, interleaved")
        report.latency = compare_latency(converted.baseline, converted.content, num_threads=1)
    float_ops = ops_left_float(tflite_model, job.mode)
    if float_ops:
        counts = ", ".join(f"{op} x{n}" if n > 1 else op for op, n in sorted(float_ops.items()))
        report.notes.append(
            f"ops left float in the {job.mode.name} .tflite (the converter has no integer "
            f"kernel for them here; they run in float between dequantize and quantize): {counts}"
        )
    flex = sorted({op.opcode for op in tflite_model.operators if op.opcode.startswith("Flex")})
    if flex:
        report.warnings.append(
            f"the .tflite uses TensorFlow ops ({', '.join(flex)}): the runtime needs the Flex "
            "delegate (org.tensorflow:tensorflow-lite-select-tf-ops on Android)"
        )
    report.precision = precision.summary(tflite_model, converted.content)
    explain_precision(report, tflite_model, matches, job.mode)
    explain_float_kernels(report, job.mode)
    warn_on_low_fidelity(report, job.mode)
    if job.max_accuracy_drop is None:  # the user's budget, when given, replaces the default
        warn_on_task_drop(report)
    budget = apply_accuracy_budget(report, job.max_accuracy_drop, job.verbose)
    if budget and job.strict:
        raise VerificationError(
            f"{budget}. Expected a drop of at most max_accuracy_drop={job.max_accuracy_drop:g} "
            "(strict=True; nothing was written). Received: the figures above"
        )
    return report


def check_departure(report: Report, trained, converted, job, verified) -> str | None:
    """A loud warning, naming the first layer where they part, when the .tflite departs
    from the Keras model it was converted from; returns it (None when they agree)."""
    own = verified.own
    ok = own.sqnr_db >= DEPARTURE_MIN_SQNR_DB and (
        own.top1_agreement is None or own.top1_agreement >= DEPARTURE_MIN_TOP1
    )
    p = report.conversion_parity = {**own.to_dict(), "ok": ok}
    if ok:
        return None
    say(job.verbose, "the .tflite departs from its Keras model: finding the first layer where")
    where, probes = localise.first_departing_layer(
        trained.model,
        lambda sub: conversion.convert_like(job, sub, trained.stages, converted.options),
        job.check,
        DEPARTURE_MIN_SQNR_DB,
    )
    p["layers"] = [{**r, "sqnr_db": metrics.json_float(r["sqnr_db"])} for r in probes]
    p["first_divergent_layer"] = where
    top1 = p["top1_agreement"]
    report.warnings.append(
        f"THE .tflite DEPARTS FROM THE KERAS MODEL IT WAS CONVERTED FROM: SQNR "
        f"{p['sqnr_db']} dB"
        + (f", top-1 agreement {top1:.1%}" if top1 is not None else "")
        + f" on {job.check.describe()} (expected >= {DEPARTURE_MIN_SQNR_DB:g} dB"
        + (f" and >= {DEPARTURE_MIN_TOP1:.0%}" if top1 is not None else "")
        + ")"
        + (f"; they first part at layer '{where}'" if where else "")
    )
    say(job.verbose, f"warning: {report.warnings[-1]}")
    return report.warnings[-1]


# Converting at the model's edges, not compute left in float.
_EDGE_OPS = ("QUANTIZE", "DEQUANTIZE")


def ops_left_float(tflite_model, mode: ptq.PTQMode) -> dict[str, int]:
    """{opcode: count} of the ops an integer-mode .tflite computes in float32."""
    if mode.name not in ("int8", "int16x8"):
        return {}
    counts: dict[str, int] = {}
    for op in tflite_model.operators:
        outputs = [tflite_model.tensors[i] for i in op.outputs if i >= 0]
        if op.opcode in _EDGE_OPS or not any(t.dtype == "float32" for t in outputs):
            continue
        counts[op.opcode] = counts.get(op.opcode, 0) + 1
    return counts


def annotate(report: Report, records, stages, matches) -> None:
    """Each stage's per-layer settings and reasons in the rows, checked against the .tflite."""
    rows = {row.name: row for row in report.layers}
    for stage, record in zip(stages, records, strict=True):
        for name, decision in record.decisions.items():
            row = rows.get(name)
            if row is None:
                continue
            if decision.setting is None:
                row.add_reason(f"{record.name}: {decision.reason}")
            else:
                stage.annotate(report, row, decision, matches.get(name, []), record)


def explain_precision(report: Report, tflite_model, matches, mode: ptq.PTQMode) -> None:
    """For the per-op precision modes: which layers' ops stayed float32 and why, from the
    .tflite (its ops, and the plan "int8-mixed" stored in it), in the rows and the notes."""
    if mode.name not in ("int4-weights", "int8-mixed"):
        return
    plan = (report.precision or {}).get("plan")
    kept = {k["op"]: k for k in (plan or {}).get("kept", [])}
    consumers = {}
    for op in tflite_model.operators:
        for i in op.inputs:
            consumers.setdefault(i, []).append(op)
    for row in report.layers:
        if row.quantized != "float32" or row.reason is not None:
            continue
        ops = [op for t in matches.get(row.name, []) for op in consumers.get(t.index, [])]
        outputs = [tflite_model.tensors[o].name for op in ops for o in op.outputs]
        why = next((kept[n]["reason"] for n in outputs if n in kept), None)
        if why is not None:
            row.reason = f"kept float32 by int8-mixed: {why}"
        elif mode.name == "int4-weights" and ops:
            names = ", ".join(sorted({op.opcode for op in ops}))
            row.reason = f"kept float32: ai-edge-quantizer has no int4 recipe for {names}"
    if plan is None:
        return
    before, after = plan.get("int8", {}), plan.get("result", {})

    def db(value):
        return f"{value:.1f}" if isinstance(value, (int, float)) else str(value)

    def figures(f):
        top1 = f.get("top1_agreement")
        top1_text = f", top-1 {top1:.1%}" if top1 is not None else ""
        return f"SQNR {db(f.get('sqnr_db'))} dB{top1_text}"

    if kept:
        names = "; ".join(f"{k['op']} ({db(k['op_sqnr_db'])} dB)" for k in kept.values())
        report.notes.append(
            f"int8-mixed kept {len(kept)} op(s) float32, the most sensitive by their measured "
            f"int8 error, until the outputs met the bound ({plan.get('bound')}) on "
            f"{plan.get('samples')}: {names}; plain int8 {figures(before)}, this file "
            f"{figures(after)}"
        )
    else:
        report.notes.append(
            f"int8-mixed: plain int8 met the bound ({plan.get('bound')}) on "
            f"{plan.get('samples')} with {figures(before)}: every op is int8"
        )
    if not plan.get("met", True):
        report.warnings.append(
            f"int8-mixed could not meet its bound ({plan.get('bound')}) even with every op "
            f"float32: {figures(after)}"
        )
    elif precision.float32_only(report.precision):
        report.precision["note"] = precision.float32_file_text(mode.name, report.precision)
        report.warnings.append(
            f"{precision.INT8_MIXED_FLOAT32}: every op of this .tflite runs in float32 "
            f"({len(kept)} kept float32 by int8-mixed to meet its bound, {plan.get('bound')}; "
            f"plain int8: {figures(before)}), so it is {precision.FLOAT32_FILE} "
            f"({report.compressed.tflite_bytes:,} bytes, {report.size_ratio:.2f}x of the "
            "float32 .tflite)"
        )


def explain_float_kernels(report: Report, mode: ptq.PTQMode) -> None:
    """Says why a kernel stayed float32 under a quantizing mode."""
    if mode.name == "float32":
        return
    for row in report.layers:
        if row.quantized == "float32" and row.reason is None:
            if mode.name == "dynamic" and row.params < DYNAMIC_RANGE_MIN_ELEMENTS:
                row.reason = (
                    f"kept float32: dynamic-range quantization skips weights under "
                    f"{DYNAMIC_RANGE_MIN_ELEMENTS:,} elements"
                )
            else:
                row.reason = "kept float32 by the converter"


def warn_on_low_fidelity(report: Report, mode: ptq.PTQMode) -> None:
    """A warning when a post-training result departs from the float model."""
    f = report.fidelity
    if report.stages:
        return  # a retrained model is expected to differ; accuracy tells more
    if f.top1_agreement is not None and f.top1_agreement < MIN_TOP1_AGREEMENT:
        report.warnings.append(
            f"the '{mode.name}' .tflite agrees with the float model on only "
            f"{f.top1_agreement:.1%} of top-1 predictions ({f.inputs}); check the calibration "
            "data covers real inputs, or use quantization-aware training"
        )
    elif f.top1_agreement is None and f.sqnr_db < MIN_SQNR_DB:
        report.warnings.append(
            f"the '{mode.name}' .tflite's outputs are far from the float model's "
            f"(SQNR {f.sqnr_db:.1f} dB on {f.inputs})"
        )


def warn_on_task_drop(report: Report) -> None:
    """A warning for each output the compressed .tflite does worse on than the original
    by more than MAX_TASK_DROP: points of accuracy on a classification output, points of
    relative MSE on a regression output. Not with compress(max_accuracy_drop=...), whose
    budget replaces this default (`apply_accuracy_budget`)."""
    acc, reg = report.accuracy, report.regression
    on = "{} samples of {}"
    if acc:
        per_output = acc.get("per_output") or {
            None: {"original": acc["original"], "compressed": acc["compressed"]}
        }
        for name, v in per_output.items():
            drop = v["original"] - v["compressed"]
            if not within(drop, MAX_TASK_DROP):
                where = f" on output '{name}'" if name else ""
                report.warnings.append(
                    f"the compressed .tflite's accuracy{where} is "
                    f"{v['compressed']:.4f}, {100 * drop:.1f} points under the original model's "
                    f"{v['original']:.4f} "
                    f"({on.format(acc['samples'], acc['data'])}); train longer (epochs=) or "
                    "compress less"
                )
    if reg:
        per_output = reg.get("per_output") or {
            None: {"mse": reg, "relative_mse": reg["relative_mse"]}
        }
        for name, v in per_output.items():
            rel = v["relative_mse"]
            if rel["original"] is None or rel["compressed"] is None:
                continue
            rise = rel["compressed"] - rel["original"]
            if not within(rise, MAX_TASK_DROP):
                where = f" on output '{name}'" if name else ""
                report.warnings.append(
                    f"the compressed .tflite's relative MSE{where} (MSE / variance of the "
                    f"targets) is {rel['compressed']:.4f}, {100 * rise:.1f} points over the "
                    f"original model's {rel['original']:.4f} (MSE {v['mse']['compressed']:.4g} "
                    f"vs {v['mse']['original']:.4g}, {on.format(reg['samples'], reg['data'])}); "
                    "train longer (epochs=) or compress less"
                )


BUDGET_EXCEEDED = "ACCURACY BUDGET EXCEEDED"
BUDGET_UNCHECKED = "ACCURACY BUDGET NOT CHECKED"


def task_drops(report: Report) -> dict[str, tuple[str, float]]:
    """{output name: (metric, drop)} from the original model to the compressed .tflite:
    points of accuracy lost on a classification output, points of relative MSE gained on
    a regression output (outputs with constant targets, which have no relative MSE, are
    left out)."""
    drops: dict[str, tuple[str, float]] = {}
    acc, reg = report.accuracy, report.regression
    if acc:
        per_output = acc.get("per_output") or {acc.get("output") or "output": acc}
        for name, v in per_output.items():
            drops[name] = ("accuracy", v["original"] - v["compressed"])
    if reg:
        per_output = reg.get("per_output") or {reg.get("output") or "output": reg}
        for name, v in per_output.items():
            rel = v["relative_mse"]
            if rel["original"] is not None and rel["compressed"] is not None:
                drops[name] = ("relative MSE", rel["compressed"] - rel["original"])
    return drops


def within(drop: float, bound: float) -> bool:
    """drop <= bound, up to float rounding: one sample of 100 lost is a drop of 0.01 exactly
    (0.97 - 0.96 is 0.010000000000000009 in floats)."""
    return drop <= bound + 1e-9


def apply_accuracy_budget(report: Report, max_drop: float | None, verbose: int) -> str | None:
    """compress(max_accuracy_drop=...): fills report.accuracy_budget; a larger drop than the
    budget is a loud warning (report and terminal), returned (None when the budget holds)."""
    if max_drop is None:
        return None
    drops = task_drops(report)
    if not drops:
        report.warnings.append(
            f"{BUDGET_UNCHECKED}: max_accuracy_drop={max_drop:g} could not be checked: no "
            "output has a metric on the validation data (a regression output with constant "
            "targets has no relative MSE)"
        )
        say(verbose, f"WARNING: {report.warnings[-1]}")
        return report.warnings[-1]
    name, (metric, drop) = max(drops.items(), key=lambda item: item[1][1])
    met = within(drop, max_drop)
    report.accuracy_budget = {
        "max_drop": max_drop,
        "drop": drop,
        "metric": metric,
        "output": name,
        "met": met,
        "per_output": {n: {"metric": m, "drop": d} for n, (m, d) in drops.items()},
    }
    samples = (report.accuracy or report.regression or {}).get("samples")
    where = f" on output '{name}'" if len(drops) > 1 else ""
    moved = "fell" if metric == "accuracy" else "rose"
    if met:
        report.notes.append(
            f"accuracy budget met: the {metric}{where} {moved} by {100 * drop:.2f} points, "
            f"within max_accuracy_drop={max_drop:g} ({samples} validation samples)"
        )
        say(verbose, report.notes[-1])
        return None
    report.warnings.append(
        f"{BUDGET_EXCEEDED}: the compressed .tflite's {metric}{where} {moved} by "
        f"{100 * drop:.2f} points from the original model's on {samples} validation samples, "
        f"over max_accuracy_drop={max_drop:g} ({100 * max_drop:.2f} points); fine-tune longer "
        "(epochs=), compress less, or raise the budget"
    )
    say(verbose, f"WARNING: {report.warnings[-1]}")
    return report.warnings[-1]


def warning_category(report: Report, message: str) -> type[Warning]:
    """The Python warning class compress() emits a report warning under."""
    budget = message.startswith((BUDGET_EXCEEDED, BUDGET_UNCHECKED))
    return AccuracyBudgetWarning if budget else UserWarning
