"""compress(): one call from a Keras model to a verified, smaller .tflite and a report."""

from __future__ import annotations

import dataclasses
import time
import warnings

from keras_squeeze import _compat
from keras_squeeze.api import pipeline
from keras_squeeze.api.recipe import Recipe
from keras_squeeze.api.result import CompressionResult
from keras_squeeze.core import models
from keras_squeeze.core.progress import say
from keras_squeeze.data import inputs as data_inputs
from keras_squeeze.distillation.config import Distill
from keras_squeeze.errors import DataError, RecipeError
from keras_squeeze.export import tflite as tflite_export
from keras_squeeze.pruning import verify as prune_verify
from keras_squeeze.quantization import ptq
from keras_squeeze.report import metrics
from keras_squeeze.report.layers import layer_rows, match_layers
from keras_squeeze.report.report import ModelStats, Report
from keras_squeeze.report.tflite_reader import read_tflite
from keras_squeeze.training import data as train_data_mod

DEFAULT_CALIBRATION_SAMPLES = tflite_export.DEFAULT_CALIBRATION_SAMPLES
DEFAULT_EPOCHS = 2
MAX_VALIDATION_SAMPLES = 10_000
SYNTHETIC_SAMPLES = 32
# Below these the quantized model disagrees with the float one enough to warn.
MIN_TOP1_AGREEMENT = 0.95
MIN_SQNR_DB = 10.0
# A pruned layer this far below its target sparsity in the .tflite is reported.
SPARSITY_TOLERANCE = 0.02


def _check_count(value, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DataError(
            f"{argument} must be a positive integer. Expected >= 1. Received: {value!r}"
        )
    return value


def _resolve_recipe(recipe, distill) -> Recipe:
    recipe = Recipe.get(recipe)
    if distill is not None:
        if not isinstance(distill, (bool, Distill)):
            raise RecipeError(
                "distill must be True, False or a ks.Distill. Expected e.g. distill=True. "
                f"Received: distill={distill!r}"
            )
        recipe = dataclasses.replace(recipe, distill=distill)
    return recipe


def compress(
    model,
    recipe="int8",
    *,
    train_data=None,
    validation_data=None,
    representative_data=None,
    teacher=None,
    distill: bool | Distill | None = None,
    epochs: int | None = None,
    loss=None,
    optimizer=None,
    batch_size: int = train_data_mod.DEFAULT_BATCH_SIZE,
    steps_per_epoch: int | None = None,
    num_calibration_samples: int = DEFAULT_CALIBRATION_SAMPLES,
    inference_input_type: str | None = None,
    inference_output_type: str | None = None,
    custom_objects: dict | None = None,
    measure_latency: bool = False,
    edgetpu: bool = False,
    verbose: int = 1,
) -> CompressionResult:
    """Compresses a Keras model and returns the verified .tflite with a report.

    Post-training recipes quantize at conversion: "dynamic" (int8 weights),
    "float16", "int8" (full integer, int8 weights per-channel symmetric, int8
    activations per-tensor asymmetric, int8 or uint8 model I/O), "int16x8",
    "float32" (none). Training recipes fine-tune a copy of the model on
    `train_data` and then quantize: "prune" (80% magnitude sparsity + int8),
    "prune-2:4" (2:4 structured sparsity + int8); `ks.Recipe` combines stages
    with custom settings.

    The user's model is never changed: training stages work on a verified
    copy. For post-training recipes `result.model` is the model passed in
    (the quantization lives in `result.tflite`).

    Args:
        model: a Keras 3 or tf_keras model, or a path to a .keras / .h5 file or
            SavedModel directory.
        recipe: a preset name (see `ks.RECIPES`) or a `ks.Recipe`.
        train_data: (x, y) arrays, a tf.data.Dataset of (x, y) batches, or a
            callable returning batches: fine-tuning data for training recipes,
            and the calibration source when `representative_data` is not given.
        validation_data: (x, y) data: accuracy before and after (the "after"
            measured on the .tflite), per stage, and the inputs fidelity is
            measured on.
        representative_data: typical inputs that calibrate "int8" / "int16x8":
            an array, (x, y) tuple, tf.data.Dataset or generator.
        teacher: a model to distil from during fine-tuning (default: the
            original model when distillation is on).
        distill: True / False / a `ks.Distill`: fine-tune against the teacher's
            outputs (default: the recipe's setting, on for training recipes;
            temperature 4, alpha 0.9).
        epochs: fine-tuning epochs for training recipes (default 2).
        loss: a callable(y_true, y_pred) for the task loss (default
            cross-entropy on class ids or one-hot labels for classifiers, mean
            squared error otherwise).
        optimizer: an optimizer or its name (default: the model's compiled
            optimizer, fresh, else Adam at 1e-4).
        batch_size: batch size when train_data is arrays (default 32).
        steps_per_epoch: needed only for data of unknown or infinite length.
        num_calibration_samples: how many samples calibrate (default 200).
        inference_input_type / inference_output_type: model I/O type of the
            .tflite: "int8" (default), "uint8" or "float32" for "int8";
            "float32" (default) or "int16" for "int16x8".
        custom_objects: custom layers by name, for loading from a path.
        edgetpu: also prepare for a Coral Edge TPU: a batch-1 full-integer
            .tflite checked against the Edge TPU's op table (report.edgetpu);
            `save()` writes it as model_for_edgetpu.tflite and, when
            edgetpu_compiler is installed, model_edgetpu.tflite. Needs the
            "int8" or "qat" recipe. Every int8 result gets the readiness
            analysis of its own .tflite in the report either way.
        measure_latency: also time the original float32 .tflite and the
            compressed one on this CPU, interleaved, 1 thread, XNNPACK (about a
            second for small models; off by default), and report the ratio.
        verbose: 0 silent, 1 a line per stage and Keras progress bars, 2 also
            the converter's output.

    Returns:
        A `CompressionResult` with `.model`, `.tflite`, `.report` and `.save(dir)`.

    Raises:
        ModelError: not a Keras model, or a file that is not one.
        RecipeError: unknown recipe, invalid stage settings, or an I/O type the
            recipe does not allow.
        DataError: missing or mismatched data.
        NonFiniteError: NaN or Inf in the weights or the data.
        ExportError / VerificationError: conversion failed, or the .tflite does
            not run.

    Example:
        >>> result = ks.compress(model, "prune", train_data=(x_train, y_train),
        ...                      validation_data=(x_test, y_test), epochs=6)
        >>> result.report.gzip_ratio
        0.08
        >>> result.save("squeezed/")
    """
    # Check everything before any work.
    model = models.resolve_model(model, custom_objects)
    recipe = _resolve_recipe(recipe, distill)
    mode = recipe.ptq_mode
    if edgetpu and mode.name != "int8":
        raise RecipeError(
            "The Edge TPU runs full-integer 8-bit models only: quantize first. Expected the "
            "'int8' recipe (post-training, with representative data) or 'qat' (quantization-"
            f"aware training), e.g. with inference_input_type='uint8'. Received: recipe "
            f"'{recipe.name}' ({mode.name})"
        )
    in_type = ptq.resolve_io_type(mode, inference_input_type, "inference_input_type")
    out_type = ptq.resolve_io_type(mode, inference_output_type, "inference_output_type")
    _check_count(num_calibration_samples, "num_calibration_samples")
    if epochs is not None:
        _check_count(epochs, "epochs")
    _check_count(batch_size, "batch_size")
    specs = models.input_specs(model)
    models.check_finite_weights(model)
    flavour = _compat.keras_flavour(model)
    training = bool(recipe.training_stages)
    notes = [f"post-training quantization at conversion: {mode.scheme}"]
    if not training:
        given = {"teacher": teacher, "epochs": epochs, "distill": distill}
        for name, value in given.items():
            if value is not None:
                message = f"{name} is ignored: the '{recipe.name}' recipe has no training stage"
                warnings.warn(message, stacklevel=2)
                notes.append(message)

    calibration = None
    if recipe.needs_calibration:
        source, data = data_inputs.first_available(
            [("representative_data", representative_data), ("train_data", train_data)]
        )
        if data is None:
            raise DataError(
                f"The '{recipe.name}' recipe calibrates activation ranges on typical inputs. "
                "Expected representative_data= (an array, (x, y) tuple, tf.data.Dataset or "
                "generator; about 100-500 samples are used). Received: representative_data=None "
                "and train_data=None"
            )
        calibration = data_inputs.take_samples(data, specs, num_calibration_samples, source)
    validation = None
    if validation_data is not None:
        validation = data_inputs.take_samples(
            validation_data, specs, MAX_VALIDATION_SAMPLES, "validation_data"
        )
    check = validation or calibration
    if check is None and train_data is not None:
        check = data_inputs.take_samples(
            train_data, specs, DEFAULT_CALIBRATION_SAMPLES, "train_data"
        )
    if check is None:
        check = data_inputs.synthetic_samples(specs, SYNTHETIC_SAMPLES)
        notes.append(
            "fidelity was measured on synthetic inputs (no data given): it shows the export "
            "runs and agrees, not how accurate it is"
        )

    final_model, records, training_info = model, [], None
    if training:
        fit = _FitSettings(
            train_data,
            validation_data,
            teacher,
            epochs or DEFAULT_EPOCHS,
            loss,
            optimizer,
            batch_size,
            steps_per_epoch,
            verbose,
        )
        final_model, records, training_info = _train(model, recipe, specs, check, validation, fit)
    if calibration is not None:
        say(verbose, f"calibrating on {calibration.describe()}")
    say(verbose, "converting the original model to a float32 .tflite (baseline)")
    baseline = tflite_export.convert(model, "float32", verbose=verbose)
    sparse = bool(recipe.prune and recipe.prune.uses_sparse_encoding(mode.name))
    say(
        verbose,
        f"converting with '{mode.name}' quantization{' and sparse encoding' if sparse else ''}",
    )
    start = time.perf_counter()
    # Dense kernels are clustered per tensor: one scale keeps one code per centroid
    # (QAT's own Dense weight quantizer is per tensor already).
    per_tensor_dense = recipe.cluster is not None and recipe.qat is None
    content = tflite_export.convert(
        final_model,
        mode,
        calibration,
        in_type,
        out_type,
        verbose,
        sparse=sparse,
        per_tensor_dense=per_tensor_dense,
    )
    seconds = time.perf_counter() - start

    say(verbose, f"verifying the .tflite in ai_edge_litert on {check.describe()}")
    reference = models.keras_outputs(model, check) if final_model is not model else None
    fidelity, runner = tflite_export.verify(
        content, final_model, check, mode.name, reference_outputs=reference
    )
    accuracy = None
    labels = data_inputs.class_ids(validation.labels) if validation is not None else None
    if labels is not None:
        original_out = models.keras_outputs(model, validation)[0]
        tflite_out = runner.run(validation, [s.name for s in specs], models.output_names(model))[0]
        if metrics.is_classifier_output(original_out):
            accuracy = {
                "original": metrics.accuracy(original_out, labels),
                "compressed": metrics.accuracy(tflite_out, labels),
                "samples": validation.count,
                "data": "validation_data",
            }

    tflite_model = read_tflite(content)
    keras_layers = list(models.walk_layers(final_model))
    matches = match_layers(keras_layers, tflite_model)
    rows = layer_rows(keras_layers, tflite_model, matches)
    names = [record.name for record in records]
    for i, record in enumerate(records[:-1]):  # what stopping after each earlier stage would ship
        stage_mode = mode if record.name != "qat" else ptq.get_mode("int8")
        stage_content = tflite_export.convert(
            record.model,
            stage_mode,
            calibration,
            in_type,
            out_type,
            verbose,
            per_tensor_dense="cluster" in names[: i + 1],
        )
        record.tflite_bytes = len(stage_content)
        record.tflite_gzip_bytes = metrics.gzip_size(stage_content)
    if records:
        records[-1].tflite_bytes = len(content)
        records[-1].tflite_gzip_bytes = metrics.gzip_size(content)
    report = Report(
        recipe=recipe.name,
        quantization=mode.name,
        scheme=mode.scheme,
        keras_flavour=flavour,
        original=ModelStats(models.count_params(model), len(baseline), metrics.gzip_size(baseline)),
        compressed=ModelStats(
            models.count_params(final_model), len(content), metrics.gzip_size(content)
        ),
        fidelity=fidelity,
        accuracy=accuracy,
        conversion_seconds=seconds,
        calibration=calibration.describe() if calibration is not None else None,
        layers=rows,
        stages=[r.to_dict() for r in records],
        training=training_info,
        notes=notes,
    )
    if "qat" in recipe.training_stages:
        _check_qat_parity(report, final_model, content, check, recipe.qat, verbose)
        if flavour == _compat.KERAS3:
            report.notes.append(
                "result.model is the quantization-aware tf_keras model: its fake-quantization "
                "wrappers have no Keras 3 counterpart (the .tflite is the deployable model)"
            )
    edgetpu_tflite = None
    if mode.name == "int8":
        from keras_squeeze.edgetpu import edgetpu_readiness

        if edgetpu:
            say(verbose, "converting a batch-1 copy for the Edge TPU and checking its ops")
            edgetpu_tflite = _edgetpu_tflite(
                final_model, (mode, calibration, in_type, out_type, verbose), per_tensor_dense
            )
            report.edgetpu = {"model": "batch-1 copy", **edgetpu_readiness(edgetpu_tflite)}
        else:
            report.edgetpu = {"model": "model.tflite", **edgetpu_readiness(content)}
    if measure_latency:
        from keras_squeeze.bench import compare_latency

        say(verbose, "measuring latency: original float32 vs compressed .tflite, interleaved")
        report.latency = compare_latency(baseline, content, num_threads=1)
    _apply_stage_decisions(report, records, matches, recipe)
    _explain_float_kernels(report, mode)
    _warn_on_low_fidelity(report, mode)
    for message in report.warnings:
        warnings.warn(message, stacklevel=2)
    say(
        verbose,
        f"done: .tflite {report.compressed.tflite_bytes:,} bytes ({report.size_ratio:.2f}x of "
        f"float32, gzip {report.gzip_ratio:.3f}x), {fidelity.summary()}",
    )
    return CompressionResult(
        model=final_model,
        tflite=content,
        report=report,
        original=model,
        samples=check,
        verbose=verbose,
        edgetpu_tflite=edgetpu_tflite,
    )


def _edgetpu_tflite(model, conversion: tuple, per_tensor_dense: bool) -> bytes:
    """The model converted with its batch fixed to 1 (the Edge TPU compiler needs static
    shapes; a free batch makes the converter emit run-time reshapes).

    `conversion` is (mode, calibration, in_type, out_type, verbose), the
    arguments `tflite_export.convert` took for model.tflite.
    """
    import contextlib

    from keras_squeeze.edgetpu import with_batch_size
    from keras_squeeze.quantization import qat_apply

    wrapped = any(type(la).__name__.startswith("Quantize") for la in model.layers)
    scope = qat_apply.quantize_scope() if wrapped else contextlib.nullcontext()
    with scope:
        fixed = with_batch_size(model, 1)
    return tflite_export.convert(fixed, *conversion, per_tensor_dense=per_tensor_dense)


@dataclasses.dataclass(frozen=True)
class _FitSettings:
    """compress()'s fine-tuning arguments, as given."""

    train_data: object
    validation_data: object
    teacher: object
    epochs: int
    loss: object
    optimizer: object
    batch_size: int
    steps_per_epoch: int | None
    verbose: int


def _train(model, recipe, specs, check, validation, fit: _FitSettings):
    """Runs the training stages on a verified working copy."""
    models.require_graph(model, f"The '{recipe.name}' recipe (a training-time recipe)")
    pipeline.check_chainable(model)
    train = train_data_mod.prepare(fit.train_data, specs, fit.batch_size, fit.steps_per_epoch)
    val_train = None
    if validation is not None and validation.labels is not None:
        val_train = train_data_mod.prepare(
            fit.validation_data, specs, fit.batch_size, argument="validation_data"
        )
    distill = recipe.distill_config
    teacher_model = pipeline.default_teacher(model, distill, fit.teacher)
    if teacher_model is not None and distill is None:
        distill = Distill()
    ctx = pipeline.TrainingContext(
        train=train,
        epochs=fit.epochs,
        validation=val_train,
        val_samples=validation,
        teacher=teacher_model,
        distill=distill,
        loss=fit.loss,
        optimizer=fit.optimizer,
        compiled_from=model,
        verbose=fit.verbose,
        samples=check,
    )
    pipeline.check_rates(recipe, ctx)
    native = [s for s in recipe.training_stages if s in pipeline.NATIVE_STAGES]
    engine = [s for s in recipe.training_stages if s not in pipeline.NATIVE_STAGES]
    base, records = model, []
    for stage in native:  # in the model's own flavour, on a new model
        base, record = pipeline.NATIVE_STAGES[stage](base, getattr(recipe, stage), ctx)
        record.model = base
        records.append(record)
    final_model, bridges = base, []
    if engine:
        say(fit.verbose, "making a verified working copy of the model")
        work, bridged = pipeline.verified_copy(base, check)
        if bridged is not None:
            bridges.append(bridged.to_dict())
            say(
                fit.verbose,
                f"rebuilt the Keras 3 model as tf_keras for the training stages "
                f"({bridged.layers} layers, max |diff| {bridged.agreement.max_abs_diff:.2g})",
            )
        final_model, engine_records = pipeline.run(work, recipe, ctx, engine)
        records += engine_records
        if bridged is not None and "qat" not in engine:
            from keras_squeeze.keras_bridge import to_keras3

            final_model, back = to_keras3(
                final_model, like=base, sample_inputs=pipeline.sample_data(check)
            )
            bridges.append(back.to_dict())
            say(fit.verbose, "put the compressed weights back into a Keras 3 copy of the model")
    info = {
        "epochs": fit.epochs,
        "steps_per_epoch": train.steps_per_epoch,
        "batch_size": fit.batch_size,
        "labels": ("one-hot" if train.one_hot else "class ids") if train.has_labels else None,
        "distill": distill.get_config() if distill is not None else None,
        "teacher": "given" if fit.teacher is not None else ("original model" if distill else None),
        "accuracy_before": pipeline.validation_accuracy(model, ctx),
        "bridge": bridges,
    }
    return final_model, records, info


def _apply_stage_decisions(report: Report, records, matches, recipe: Recipe) -> None:
    """Puts each stage's per-layer targets and reasons into the rows, and checks targets."""
    rows = {row.name: row for row in report.layers}
    for record in records:
        for name, decision in record.decisions.items():
            row = rows.get(name)
            if row is None:
                continue
            if decision.setting is None:
                row.add_reason(f"{record.name}: {decision.reason}")
                continue
            if record.name == "channel_prune":
                before, after = decision.setting
                row.targets["channels"] = f"{before} -> {after}"
                continue
            if record.name == "cluster":
                _check_clusters(report, row, decision.setting, matches.get(name, []), record)
                continue
            if record.name == "qat":
                row.targets["qat"] = decision.setting
                if decision.reason:
                    row.add_reason(f"qat: {decision.reason}")
                continue
            if record.name == "prune":
                target = float(decision.setting)
                row.targets["sparsity"] = target
                if row.sparsity is not None and row.sparsity < target - SPARSITY_TOLERANCE:
                    report.warnings.append(
                        f"layer '{name}' has {row.sparsity:.1%} zeros in the .tflite, below its "
                        f"{target:.0%} target (too few fine-tuning steps for the schedule?)"
                    )
                if recipe.prune.m_by_n and name in matches:
                    m, n = recipe.prune.m_by_n
                    ok = min(prune_verify.m_by_n_fraction(t.values(), m, n) for t in matches[name])
                    row.targets["m_by_n"] = f"{m}:{n}"
                    row.measured["m_by_n_blocks"] = ok
                    if ok < 1.0:
                        report.warnings.append(
                            f"layer '{name}': only {ok:.1%} of its {n}-weight blocks hold {m} zeros"
                        )


def _check_clusters(report: Report, row, clusters: int, tensors, record) -> None:
    """Distinct kernel values in the .tflite, per channel where the kernel is per-channel."""
    from keras_squeeze.clustering.apply import unique_values

    preserve = record.settings.get("preserve_sparsity")
    fallback = row.name in (record.details or {}).get("per_tensor", ())
    per_channel = record.settings.get("per_channel") and row.type == "Conv2D" and not fallback
    row.targets["clusters"] = clusters
    counts = []
    for t in tensors:
        axis = t.quantized_dimension if t.per_channel else (0 if per_channel else None)
        counts.append(unique_values(t.values(), axis))
    if not counts:
        return
    row.clusters = max(counts)
    row.measured["clusters_per"] = (
        "channel" if per_channel or any(t.per_channel for t in tensors) else "tensor"
    )
    allowed = clusters + (1 if preserve else 0)  # pruned zeros stay besides the centroids
    if row.clusters > allowed:
        report.warnings.append(
            f"layer '{row.name}' has {row.clusters} distinct kernel values per "
            f"{row.measured['clusters_per']} in the .tflite, more than its {clusters} clusters"
        )


def _check_qat_parity(report, qat_model, content, samples, config, verbose) -> None:
    """Compares the QAT Keras model with its .tflite; warns loudly when they disagree."""
    from keras_squeeze.quantization import parity

    say(verbose, "checking the quantization-aware model agrees with its .tflite")
    report.qat_parity = parity.check(
        qat_model, content, samples, config.min_top1_agreement, config.min_sqnr_db
    )
    if not report.qat_parity["ok"]:
        p = report.qat_parity
        where = p.get("first_divergent_layer")
        report.warnings.append(
            "THE QUANTIZATION-AWARE KERAS MODEL AND ITS .tflite DISAGREE: "
            f"top-1 agreement {p['top1_agreement']}, SQNR {p['sqnr_db']} dB (expected >= "
            f"{config.min_top1_agreement:.0%} and >= {config.min_sqnr_db} dB)"
            + (f"; they first part at layer '{where}'" if where else "")
        )


# The converter leaves weight tensors below this size in float32 under
# dynamic-range quantization (the quantize/dequantize cost outweighs the gain).
DYNAMIC_RANGE_MIN_ELEMENTS = 1024


def _explain_float_kernels(report: Report, mode: ptq.PTQMode) -> None:
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


def _warn_on_low_fidelity(report: Report, mode: ptq.PTQMode) -> None:
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
