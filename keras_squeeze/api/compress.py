"""compress(): one call from a Keras model to a verified, smaller .tflite and a report.

The call is a short list of steps, each in its own module: check every
argument (`api.checks`), run the recipe's training stages from the stage
registry (`api.pipeline`), convert with the options the stages ask for
(`api.conversion`), verify the .tflite against the original model and write
the report (`api.reporting`).
"""

from __future__ import annotations

import warnings

from keras_squeeze.api import auto, checks, conversion, pipeline, reporting
from keras_squeeze.api.result import CompressionResult
from keras_squeeze.core import models
from keras_squeeze.core.progress import say
from keras_squeeze.distillation.config import Distill
from keras_squeeze.training import data as train_data_mod
from keras_squeeze.training import defaults, distribute

DEFAULT_CALIBRATION_SAMPLES = checks.DEFAULT_CALIBRATION_SAMPLES
DEFAULT_EPOCHS = defaults.DEFAULT_EPOCHS


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
    dynamic_batch: bool = False,
    strict: bool = False,
    allow_tf_ops: bool = False,
    verbose: int = 1,
    input_signature=None,
    callbacks=None,
    strategy=None,
    checkpoint_dir=None,
    max_accuracy_drop: float | None = None,
    objective: str | None = None,
    time_budget_s: float | None = None,
    seed: int | None = None,
) -> CompressionResult:
    """Compresses a Keras model and returns the verified .tflite with a report.

    Post-training recipes quantize at conversion: "dynamic" (int8 weights),
    "float16", "int8" (full integer: int8 weights per-channel symmetric, int8
    activations per-tensor asymmetric, int8 or uint8 model I/O), "int16x8",
    "float32" (none), "int4-weights" (int4 blockwise weights by
    ai-edge-quantizer, float32 activations: for memory-bound models) and
    "int8-mixed" (int8, with the ops int8 represents worst kept float32 until
    the outputs on the calibration samples meet `quantization.mixed`'s bound).
    Training recipes fine-tune a copy of the model on `train_data` and then
    quantize to "int8": "prune" (magnitude sparsity),
    "prune-2:4" (2:4 structured sparsity), "cluster" (weight clustering),
    "qat" (quantization-aware training), "prune-cluster-qat" (all three,
    each preserving the last), "channel-prune" (whole filters removed) and
    "depth-prune" (whole residual blocks and layers removed).
    `ks.Recipe` combines stages with custom settings; the README's recipe
    table gives each preset's settings and benchmarks/RESULTS.md what they
    measured.

    The user's model is never changed: training stages work on a verified
    copy. For post-training recipes `result.model` is the model passed in
    (the quantization lives in `result.tflite`).

    Args:
        model: a Keras 3 or tf_keras model, or a path to a .keras / .h5 file or
            SavedModel directory.
        recipe: a preset name (see `ks.RECIPES`), a `ks.Recipe`, or "auto":
            the smallest (objective="latency": fastest) candidate (post-training presets, and with
            train_data per-layer pruning / clustering chosen from
            `ks.sensitivity`) whose .tflite loses at most max_accuracy_drop
            on the labelled validation_data; `report.search` lists every
            candidate (`keras_squeeze.api.auto`). Unless distill= or teacher=
            is given, the training candidates' distillation (distilled from
            the original or labels only) is chosen on the validation data
            (report.search["distill"]).
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
            alpha 0.5, temperature 1: `distillation.config.DEFAULT_ALPHA`).
        epochs: fine-tuning epochs per training stage (default
            `training.defaults.DEFAULT_EPOCHS`, 2).
        loss: a callable(y_true, y_pred) for the task loss (default
            cross-entropy on class ids or one-hot labels for classifiers, mean
            squared error otherwise).
        optimizer: the run's optimizer or its name (default: the model's
            compiled optimizer, fresh, else Adam at 1e-3); each stage
            fine-tunes at its `learning_rate_scale` of its learning rate.
        batch_size: batch size when train_data is arrays (default 32).
        steps_per_epoch: needed only for data of unknown or infinite length.
        num_calibration_samples: how many samples calibrate (default 200).
        inference_input_type / inference_output_type: model I/O type of the
            .tflite: "int8" (default), "uint8" or "float32" for "int8";
            "float32" (default) or "int16" for "int16x8".
        custom_objects: custom layers by name, for loading from a path.
        edgetpu: also prepare for a Coral Edge TPU: the batch-1 full-integer
            .tflite checked against the Edge TPU's op table (report.edgetpu);
            `save()` writes it as model_for_edgetpu.tflite and, when
            edgetpu_compiler is installed, model_edgetpu.tflite. Needs the
            "int8" or "qat" recipe. Every int8 result gets the readiness
            analysis of its own .tflite in the report either way.
        dynamic_batch: keep the batch dimension of the .tflite free (default
            False: the file fixes it at 1, what phones, microcontrollers and
            the Edge TPU run, so the converter folds shapes into constants;
            the SavedModel keeps a free batch either way, for serving).
        strict: make a result that fails its checks an error instead of a
            loud warning: a .tflite that departs from the Keras model it was
            converted from (SQNR under 10 dB or top-1 agreement under 90%;
            for QAT, the stage's own parity bounds). Nothing is returned or
            written then.
        allow_tf_ops: keep ops TFLite's builtins lack as TensorFlow ops
            (SELECT_TF_OPS; the report warns that the runtime needs the Flex
            delegate). Without it such a model is an ExportError naming the
            layers and ops. The file is verified like any other, which needs a
            LiteRT with the Flex delegate (ai_edge_litert 2.x has none).
        measure_latency: also time the original float32 .tflite and the
            compressed one on this CPU, interleaved, 1 thread, XNNPACK (about a
            second for small models; off by default), and report the ratio.
        verbose: 0 silent, 1 a line per stage and Keras progress bars, 2 also
            the converter's output.
        input_signature: the inputs of a model without symbolic inputs
            (subclassed): a list of `tf.TensorSpec` or shapes, batch axis first
            (e.g. `[tf.TensorSpec((None, 8, 8, 1), tf.float32)]`), or a dict of
            them by input name. Without it such a model's signature is read
            from one batch of the data given (representative_data,
            validation_data, train_data), else from the shapes Keras recorded;
            the model is called on it once before anything else, and the report
            names it.
        callbacks: Keras callbacks run in every training stage's fit, of the
            flavour the stage trains in (tf_keras for the stages that run
            through tfmot, also for a Keras 3 model; the model's own for the
            native ones). Before each stage's fit each callback's `stage`
            attribute is set to the stage's name; a callback that stops
            training (EarlyStopping) ends that stage early, and its notes say
            at which epoch. See README "Callbacks and tf.distribute".
        strategy: a `tf.distribute.Strategy` to fine-tune under (default:
            the one in scope, else one device): the working copies, wrappers,
            teacher and optimizer are made in its scope and Keras' fit splits
            each batch across its replicas; `batch_size` is then the global
            batch and must be a multiple of the number of replicas.
        checkpoint_dir: a directory where every training stage saves its state
            at the end of each epoch, with a manifest of the run (model
            fingerprint, recipe, data shapes, epochs, batch size, optimizer)
            and of each finished stage. Called again with the same arguments
            after a crash, the run resumes after the last finished epoch and
            does not train finished stages again; called after the run
            finished, nothing trains again (the result is converted from the
            restored weights). A directory of another run is refused
            (CheckpointError); one that cannot be written is refused before any
            work (OutputError). See `training.checkpoint` and README "Runs that
            resume".
        max_accuracy_drop: the most of the model's metric the compressed
            .tflite may lose on `validation_data` (labelled), as a fraction: points
            of top-1 accuracy for a classifier (0.01 = one point), points of
            relative MSE (MSE / variance of the targets) for a regression
            output; with several outputs, the worst output counts. A larger
            drop is a loud `ks.AccuracyBudgetWarning` (report.accuracy_budget
            says by how much); with `strict=True` a VerificationError, nothing
            returned or written. Default None: no budget (0.01 for "auto").
        objective / time_budget_s / seed: the "auto" recipe's search (only
            with it): what to minimise ("size": gzip bytes, the default;
            "latency": the p50 of each candidate's .tflite on this CPU, every
            tried file timed interleaved by `ks.bench.benchmark`, ties within
            the measured spread going to the smaller file; a timing on a loaded
            machine varies from run to run, see `keras_squeeze.api.auto_latency`),
            when to stop starting candidates (None: never; the best so far is
            returned and the report says so) and the seed of its training
            candidates (default 0). See `keras_squeeze.api.auto`.

    Returns:
        A `CompressionResult` with `.model`, `.tflite`, `.report` and `.save(dir)`.

    Raises:
        ModelError: not a Keras model, or a file that is not one.
        RecipeError: unknown recipe, invalid stage settings, an I/O type the
            recipe does not allow, or max_accuracy_drop outside [0, 1); for
            "auto", an unknown objective, a time_budget_s that is not a positive
            number, or an argument not every candidate can take (edgetpu, I/O
            types, measure_latency, checkpoint_dir); objective / time_budget_s /
            seed with another recipe.
        DataError: missing or mismatched data (max_accuracy_drop without
            labelled validation_data).
        NonFiniteError: NaN or Inf in the weights or the data.
        ExportError / VerificationError: conversion failed, the .tflite does
            not run, or (strict=True) it departs from its Keras model or loses
            more than max_accuracy_drop; for "auto", no candidate met the budget
            (the message names the closest and the most sensitive layers).

    Example:
        >>> result = ks.compress(model, "prune", train_data=(x_train, y_train),
        ...                      validation_data=(x_test, y_test), epochs=6)
        >>> print(result.report.table())
        >>> result.save("squeezed/")
    """
    if isinstance(recipe, str) and recipe == auto.AUTO:
        return auto.search(
            compress,
            model,
            train_data=train_data,
            validation_data=validation_data,
            representative_data=representative_data,
            max_accuracy_drop=max_accuracy_drop,
            objective="size" if objective is None else objective,
            time_budget_s=time_budget_s,
            seed=0 if seed is None else seed,
            verbose=verbose,
            strict=strict,
            **auto.passed_on(locals()),
        )
    auto.check_not_searched(recipe, objective=objective, time_budget_s=time_budget_s, seed=seed)
    job = checks.check(
        model,
        recipe,
        train_data=train_data,
        validation_data=validation_data,
        representative_data=representative_data,
        teacher=teacher,
        distill=distill,
        epochs=epochs,
        loss=loss,
        optimizer=optimizer,
        batch_size=batch_size,
        steps_per_epoch=steps_per_epoch,
        num_calibration_samples=num_calibration_samples,
        inference_input_type=inference_input_type,
        inference_output_type=inference_output_type,
        custom_objects=custom_objects,
        measure_latency=measure_latency,
        edgetpu=edgetpu,
        dynamic_batch=dynamic_batch,
        strict=strict,
        allow_tf_ops=allow_tf_ops,
        verbose=verbose,
        default_epochs=DEFAULT_EPOCHS,
        input_signature=input_signature,
        callbacks=callbacks,
        strategy=strategy,
        checkpoint_dir=checkpoint_dir,
        max_accuracy_drop=max_accuracy_drop,
    )
    with distribute.scope(job.fit.strategy if job.fit is not None else None):
        trained = pipeline.train(job)
    outputs: dict = {}
    # Without training, the original model's outputs that verification needs are computed
    # while the converter runs (on another model object: its batch-1 copy).
    ahead = None
    if not trained.records:
        labelled = job.validation is not None and job.validation.labels is not None
        ahead = models.OutputsAhead(
            outputs, [(job.model, job.check)] + ([(job.model, job.validation)] if labelled else [])
        )
    converted = conversion.convert(job, trained, ahead)
    with models.reused_outputs(outputs):  # no model changes from here on
        verified = reporting.verify(job, trained, converted)
        report = reporting.build_report(job, trained, converted, verified)
    for message in report.warnings:
        warnings.warn(message, reporting.warning_category(report, message), stacklevel=2)
    say(
        verbose,
        f"done: .tflite {report.compressed.tflite_bytes:,} bytes ({report.size_ratio:.2f}x of "
        f"float32, gzip {report.gzip_ratio:.3f}x), {verified.fidelity.summary()}",
    )
    return CompressionResult(
        model=trained.model,
        tflite=converted.content,
        report=report,
        original=job.model,
        samples=job.check,
        verbose=verbose,
        edgetpu_tflite=converted.edgetpu,
        strategy=job.fit.strategy if job.fit is not None else None,
        outputs=outputs,
    )
