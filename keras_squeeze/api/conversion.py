"""compress()'s third step: the .tflite files, with the converter options the stages ask for.

The original model is converted once to float32 (the baseline every ratio is
against); the compressed model with the recipe's post-training mode and the
options every stage that ran contributes (`Stage.converter_options`, merged
in pipeline order, a later stage's value winning). With several stages, each
earlier stage's model is converted the same way, so the report can say what
stopping after it would ship.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time

from keras_squeeze.core.progress import say
from keras_squeeze.export import tflite as tflite_export
from keras_squeeze.report import metrics


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


def _convert(job, model, options: dict) -> bytes:
    return tflite_export.convert(
        model, job.mode, job.calibration, job.in_type, job.out_type, job.verbose, **options
    )


def convert(job, trained) -> Converted:
    """Converts the original (float32) and the compressed model; sizes every stage's model."""
    if job.calibration is not None:
        say(job.verbose, f"calibrating on {job.calibration.describe()}")
    say(job.verbose, "converting the original model to a float32 .tflite (baseline)")
    baseline = tflite_export.convert(job.model, "float32", verbose=job.verbose)
    stages = trained.stages
    options = merged_options(job.recipe, stages)
    sparse = " and sparse encoding" if options.get("sparse") else ""
    say(job.verbose, f"converting with '{job.mode.name}' quantization{sparse}")
    start = time.perf_counter()
    content = _convert(job, trained.model, options)
    seconds = time.perf_counter() - start
    for i, record in enumerate(trained.records):
        stage_content = (
            content
            if i == len(trained.records) - 1
            else _convert(job, record.model, merged_options(job.recipe, stages[: i + 1]))
        )
        record.tflite_bytes = len(stage_content)
        record.tflite_gzip_bytes = metrics.gzip_size(stage_content)
    edgetpu = None
    if job.edgetpu:
        say(job.verbose, "converting a batch-1 copy for the Edge TPU and checking its ops")
        edgetpu = _convert(job, batch_one_copy(trained.model, stages), options)
    return Converted(baseline, content, seconds, options, edgetpu)


def batch_one_copy(model, stages):
    """The model with its batch fixed to 1 (the Edge TPU compiler needs static shapes;
    a free batch makes the converter emit run-time reshapes), cloned within the
    scopes of the stages whose layers it holds."""
    from keras_squeeze.edgetpu import with_batch_size

    with contextlib.ExitStack() as scopes:
        for stage in stages:
            scopes.enter_context(stage.load_scope())
        return with_batch_size(model, 1)
