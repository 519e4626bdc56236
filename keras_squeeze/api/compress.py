"""compress(): one call from a Keras model to a verified, smaller .tflite and a report."""

from __future__ import annotations

import time
import warnings

from keras_squeeze import _compat
from keras_squeeze.api import models
from keras_squeeze.api.recipe import Recipe
from keras_squeeze.api.result import CompressionResult
from keras_squeeze.data import inputs as data_inputs
from keras_squeeze.errors import DataError
from keras_squeeze.export import tflite as tflite_export
from keras_squeeze.export.runtime import keras_outputs
from keras_squeeze.quantization import ptq
from keras_squeeze.report import metrics
from keras_squeeze.report.layers import layer_rows
from keras_squeeze.report.report import ModelStats, Report
from keras_squeeze.report.tflite_reader import read_tflite

DEFAULT_CALIBRATION_SAMPLES = tflite_export.DEFAULT_CALIBRATION_SAMPLES
MAX_VALIDATION_SAMPLES = 10_000
SYNTHETIC_SAMPLES = 32
# Below these the quantized model disagrees with the float one enough to warn.
MIN_TOP1_AGREEMENT = 0.95
MIN_SQNR_DB = 10.0


def _say(verbose: int, message: str) -> None:
    if verbose:
        print(f"keras_squeeze: {message}", flush=True)


def _check_count(value, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DataError(
            f"{argument} must be a positive integer. Expected >= 1. Received: {value!r}"
        )
    return value


def compress(
    model,
    recipe="int8",
    *,
    train_data=None,
    validation_data=None,
    representative_data=None,
    teacher=None,
    epochs: int | None = None,
    num_calibration_samples: int = DEFAULT_CALIBRATION_SAMPLES,
    inference_input_type: str | None = None,
    inference_output_type: str | None = None,
    custom_objects: dict | None = None,
    verbose: int = 1,
) -> CompressionResult:
    """Compresses a Keras model and returns the verified .tflite with a report.

    The post-training recipes quantize at conversion:

    - "dynamic": int8 weights, float activations quantized at run time;
    - "float16": float16 weights;
    - "int8": full integer, int8 weights per-channel symmetric, int8
      activations per-tensor asymmetric, int8 (default) or uint8 model I/O;
    - "int16x8": int16 activations, int8 weights;
    - "float32": no quantization (the baseline).

    The user's model is never changed. For post-training recipes
    `result.model` is the model passed in (the quantization lives in
    `result.tflite`).

    Args:
        model: a Keras 3 or tf_keras model, or a path to a .keras / .h5 file or
            SavedModel directory.
        recipe: a preset name (see `ks.RECIPES`) or a `ks.Recipe`.
        train_data: training data; for post-training recipes it is the
            calibration source when `representative_data` is not given.
        validation_data: (x, y) data; with labels, accuracy before and after
            is reported (the "after" measured on the .tflite), and fidelity is
            measured on it.
        representative_data: typical inputs for calibrating "int8" and
            "int16x8": an array, (x, y) tuple, tf.data.Dataset or generator.
        teacher: a teacher model for distillation (training recipes).
        epochs: fine-tuning epochs (training recipes).
        num_calibration_samples: how many samples calibrate (default 200).
        inference_input_type / inference_output_type: model I/O type of the
            .tflite: "int8" (default), "uint8" or "float32" for "int8";
            "float32" (default) or "int16" for "int16x8".
        custom_objects: custom layers by name, for loading from a path.
        verbose: 0 silent, 1 a line per stage, 2 also the converter's output.

    Returns:
        A `CompressionResult` with `.model`, `.tflite`, `.report` and `.save(dir)`.

    Raises:
        ModelError: not a Keras model, or a file that is not one.
        RecipeError: unknown recipe or an I/O type the recipe does not allow.
        DataError: missing or mismatched data.
        NonFiniteError: NaN or Inf in the weights or the data.
        ExportError / VerificationError: conversion failed, or the .tflite does
            not run.

    Example:
        >>> result = ks.compress(model, "int8", representative_data=x_train,
        ...                      validation_data=(x_test, y_test))
        >>> result.report.size_ratio < 0.3
        True
        >>> result.save("squeezed/")
    """
    # Check everything before any work.
    model = models.resolve_model(model, custom_objects)
    recipe = Recipe.get(recipe)
    mode = recipe.ptq_mode
    in_type = ptq.resolve_io_type(mode, inference_input_type, "inference_input_type")
    out_type = ptq.resolve_io_type(mode, inference_output_type, "inference_output_type")
    _check_count(num_calibration_samples, "num_calibration_samples")
    specs = models.input_specs(model)
    models.check_finite_weights(model)
    flavour = _compat.keras_flavour(model)
    notes = [f"post-training quantization: {mode.scheme}"]
    for name, value in (("teacher", teacher), ("epochs", epochs)):
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
        _say(verbose, f"calibrating on {calibration.describe()}")
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

    _say(verbose, "converting the original model to a float32 .tflite (baseline)")
    baseline = tflite_export.convert(model, "float32", verbose=verbose)
    _say(verbose, f"converting with '{mode.name}' quantization")
    start = time.perf_counter()
    content = tflite_export.convert(model, mode, calibration, in_type, out_type, verbose)
    seconds = time.perf_counter() - start

    _say(verbose, f"verifying the .tflite in ai_edge_litert on {check.describe()}")
    fidelity, runner = tflite_export.verify(content, model, check, mode.name)
    accuracy = None
    labels = data_inputs.class_ids(validation.labels) if validation is not None else None
    if labels is not None:
        names = models.output_names(model)
        original_out = keras_outputs(model, validation)[0]
        tflite_out = runner.run(validation, [s.name for s in specs], names)[0]
        if metrics.is_classifier_output(original_out):
            accuracy = {
                "original": metrics.accuracy(original_out, labels),
                "compressed": metrics.accuracy(tflite_out, labels),
                "samples": validation.count,
                "data": "validation_data",
            }

    report = Report(
        recipe=recipe.name,
        quantization=mode.name,
        scheme=mode.scheme,
        keras_flavour=flavour,
        original=ModelStats(models.count_params(model), len(baseline), metrics.gzip_size(baseline)),
        compressed=ModelStats(models.count_params(model), len(content), metrics.gzip_size(content)),
        fidelity=fidelity,
        accuracy=accuracy,
        conversion_seconds=seconds,
        calibration=calibration.describe() if calibration is not None else None,
        layers=layer_rows(list(models.walk_layers(model)), read_tflite(content)),
        notes=notes,
    )
    _explain_float_kernels(report, mode)
    _warn_on_low_fidelity(report, mode)
    for message in report.warnings:
        warnings.warn(message, stacklevel=2)
    _say(
        verbose,
        f"done: .tflite {report.compressed.tflite_bytes:,} bytes "
        f"({report.size_ratio:.2f}x of float32), {fidelity.summary()}",
    )
    return CompressionResult(
        model=model,
        tflite=content,
        report=report,
        original=model,
        samples=check,
        verbose=verbose,
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
