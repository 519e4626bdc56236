"""compress()'s third step: the .tflite files, with the converter options the stages ask for.

The original model is converted once to float32 (the baseline every ratio is
against); the compressed model with the recipe's post-training mode and the
options every stage that ran contributes (`Stage.converter_options`, merged
in pipeline order, a later stage's value winning). With several stages, each
earlier stage's model is converted the same way, so the report can say what
stopping after it would ship. Every file fixes the batch at 1 (what phones,
microcontrollers and the Edge TPU run; see `core.batch`) unless the job keeps
the free batch (`dynamic_batch=True`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time

from keras_squeeze.core.batch import batch_one
from keras_squeeze.core.progress import say
from keras_squeeze.errors import ExportError
from keras_squeeze.export import recurrent
from keras_squeeze.export import tflite as tflite_export
from keras_squeeze.quantization import ptq
from keras_squeeze.report import metrics

FREE_BATCH = "the .tflite keeps a free batch"


@dataclasses.dataclass
class Converted:
    """The .tflite files of one compress() call.

    Attributes:
        baseline: the original model as float32 .tflite bytes.
        content: the compressed .tflite bytes.
        seconds: wall time of the compressed conversion.
        options: the converter options it used.
        edgetpu: the batch-1 full-integer copy for the Edge TPU, when asked.
    """

    baseline: bytes
    content: bytes
    seconds: float
    options: dict
    edgetpu: bytes | None = None


def merged_options(recipe, stages) -> dict:
    """The converter options of `stages` (in order), a later stage's value winning."""
    options: dict = {}
    for stage in stages:
        options.update(stage.converter_options(recipe.config_of(stage.name), recipe.quantization))
    return options


def deployable(job, model, stages, dynamic_batch: bool | None = None):
    """`model` as it converts: at batch 1 (a verified copy, cloned within the scopes of
    the stages whose layers it holds), or as it is with the free batch."""
    if job.dynamic_batch if dynamic_batch is None else dynamic_batch:
        return model
    fixed, reason = batch_one(model, [stage.load_scope() for stage in stages])
    if reason is not None and not any(n.startswith(FREE_BATCH) for n in job.notes):
        job.notes.append(f"{FREE_BATCH}: no fixed-batch copy could be made ({reason})")
    return fixed


def _rebuild(keras3_model, samples):
    """The bridge's verified tf_keras rebuild, for the fused LSTM op (`export.recurrent`)."""
    from keras_squeeze.api.pipeline import sample_data
    from keras_squeeze.keras_bridge import to_tf_keras

    return to_tf_keras(keras3_model, sample_inputs=sample_data(samples))[0]


def convert_like(
    job,
    model,
    stages,
    options: dict,
    dynamic_batch: bool | None = None,
    baseline: bool = False,
    notes: bool = False,
    keep_float: dict | None = None,
    ahead=None,
) -> bytes:
    """`model` converted as the job converts: its quantization (float32 for the
    `baseline`), calibration, I/O types, batch, the converter `options` of `stages`, each
    recurrent layer on its path (`export.recurrent`: the fused LSTM op of a tf_keras
    rebuild, unrolled, or the loop); with `notes`, the report says which. `keep_float`:
    see `export.tflite.convert`. `ahead` (a `core.models.OutputsAhead`) computes its
    outputs while the converter runs."""
    mode = ptq.get_mode("float32") if baseline else job.mode
    free = job.dynamic_batch if dynamic_batch is None else dynamic_batch

    def convert(prepared_model):
        if baseline:
            return tflite_export.convert(
                deployable(job, prepared_model, stages, free),
                mode,
                verbose=job.verbose,
                allow_tf_ops=job.allow_tf_ops,
            )
        fixed = deployable(job, prepared_model, stages, free)

        def run(m):
            with ahead.overlapping(m) if ahead is not None else contextlib.nullcontext():
                return tflite_export.convert(
                    m,
                    mode,
                    job.calibration,
                    job.in_type,
                    job.out_type,
                    job.verbose,
                    allow_tf_ops=job.allow_tf_ops,
                    keep_float=keep_float,
                    **options,
                )

        if fixed is prepared_model:
            return run(fixed)
        try:
            return run(fixed)
        except ExportError as e:
            # a batch-1 clone that computes like the model yet does not convert (a clone
            # of a quantization-aware model can lose what its quantizers tell the
            # converter): the model itself converts, with its free batch
            note = f"{FREE_BATCH}: its batch-1 copy did not convert ({str(e)[:200]})"
            if note not in job.notes:
                job.notes.append(note)
            return run(prepared_model)

    content, prepared = recurrent.convert_best(
        model,
        mode.name,
        job.check,
        convert,
        dynamic_batch=free,
        rebuild=_rebuild,
        scopes=[stage.load_scope() for stage in stages],
    )
    if notes:
        job.notes.extend(n for n in prepared.notes() if n not in job.notes)
    return content


def convert(job, trained, ahead=None) -> Converted:
    """Converts the original (float32) and the compressed model; sizes every stage's model.

    `ahead` (a `core.models.OutputsAhead`) runs beside the compressed model's conversion.

    Without training stages, a mode whose conversion passes through a float32 file of the
    model ("int8", "int16x8", "int4-weights": `export.tflite.float_stage`) gives the
    baseline from that same conversion, and "float32" is its own baseline; otherwise (and
    for `measure_latency`, which times the float file the user would get) the original
    model is converted to float32 first.
    """
    if job.calibration is not None:
        say(job.verbose, f"calibrating on {job.calibration.describe()}")
    floats: dict | None = None
    if not trained.records and not job.measure_latency:
        floats = {}
    else:
        say(job.verbose, "converting the original model to a float32 .tflite (baseline)")
    baseline = None if floats is not None else convert_like(job, job.model, [], {}, baseline=True)
    stages = trained.stages
    options = merged_options(job.recipe, stages)
    sparse = " and sparse encoding" if options.get("sparse") else ""
    batch = "free batch" if job.dynamic_batch else "batch 1"
    say(job.verbose, f"converting with '{job.mode.name}' quantization{sparse} ({batch})")
    start = time.perf_counter()
    content = convert_like(
        job, trained.model, stages, options, notes=True, keep_float=floats, ahead=ahead
    )
    seconds = time.perf_counter() - start
    if floats is not None:
        baseline = floats.get(content)
        if baseline is None:  # the mode has no float32 stage (float16, dynamic, int8-mixed)
            say(job.verbose, "converting the original model to a float32 .tflite (baseline)")
            baseline = convert_like(job, job.model, [], {}, baseline=True)
    for i, record in enumerate(trained.records):
        done = stages[: i + 1]
        stage_content = (
            content
            if i == len(trained.records) - 1
            else convert_like(job, record.model, done, merged_options(job.recipe, done))
        )
        record.tflite_bytes = len(stage_content)
        record.tflite_gzip_bytes = metrics.gzip_size(stage_content)
    edgetpu = None
    if job.edgetpu:
        if job.dynamic_batch:
            say(job.verbose, "converting a batch-1 copy for the Edge TPU and checking its ops")
            edgetpu = convert_like(job, trained.model, stages, options, dynamic_batch=False)
        else:
            edgetpu = content  # batch 1 already
    return Converted(baseline, content, seconds, options, edgetpu)
