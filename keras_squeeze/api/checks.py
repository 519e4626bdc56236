"""compress()'s first step: every argument checked and resolved before any work.

`check()` returns a `Job`: the model, the recipe and its quantization mode,
the model I/O types, the input specs, and the data as bounded samples
(calibration, validation, and the inputs every artifact is checked on). A
bad argument fails here, before anything is trained, converted or written.
"""

from __future__ import annotations

import dataclasses
import warnings

from keras_squeeze import _compat
from keras_squeeze.api.recipe import Recipe
from keras_squeeze.core import models
from keras_squeeze.data import inputs as data_inputs
from keras_squeeze.data.inputs import InputSpec, Samples
from keras_squeeze.data.labels import output_specs
from keras_squeeze.distillation.config import Distill
from keras_squeeze.errors import DataError, RecipeError
from keras_squeeze.export import recurrent
from keras_squeeze.export import tflite as tflite_export
from keras_squeeze.quantization import ptq
from keras_squeeze.stages import get_stage
from keras_squeeze.training import callbacks as user_callbacks
from keras_squeeze.training import checkpoint, distribute, tasks

DEFAULT_CALIBRATION_SAMPLES = tflite_export.DEFAULT_CALIBRATION_SAMPLES
MAX_VALIDATION_SAMPLES = 10_000
SYNTHETIC_SAMPLES = 32


@dataclasses.dataclass(frozen=True)
class FitSettings:
    """compress()'s fine-tuning arguments, as given."""

    train_data: object
    validation_data: object
    teacher: object
    epochs: int
    loss: object
    optimizer: object
    batch_size: int
    steps_per_epoch: int | None
    callbacks: tuple = ()
    strategy: object = None
    checkpoint_dir: object = None


@dataclasses.dataclass
class Job:
    """One compress() call, checked.

    Attributes:
        model: the user's model (never changed).
        recipe / mode: the resolved recipe and its post-training mode.
        in_type / out_type: the .tflite's model I/O types.
        specs: the model's inputs.
        flavour: "keras3" or "tf_keras".
        calibration: samples that calibrate int8 / int16x8, if needed.
        validation: labelled or unlabelled validation samples, if given.
        check: the inputs every artifact is verified on.
        fit: the fine-tuning arguments (training recipes only).
        notes: what the report should say about the arguments.
    """

    model: object
    recipe: Recipe
    mode: ptq.PTQMode
    in_type: str
    out_type: str
    specs: list[InputSpec]
    flavour: str
    calibration: Samples | None
    validation: Samples | None
    check: Samples
    fit: FitSettings | None
    edgetpu: bool
    dynamic_batch: bool
    strict: bool
    allow_tf_ops: bool
    measure_latency: bool
    verbose: int
    notes: list[str]
    max_accuracy_drop: float | None = None

    @property
    def training(self) -> bool:
        return bool(self.recipe.training_stages)

    @property
    def stages(self) -> list:
        """The recipe's training stages (registry entries), in order."""
        return [get_stage(name) for name in self.recipe.training_stages]


def check_count(value, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DataError(
            f"{argument} must be a positive integer. Expected >= 1. Received: {value!r}"
        )
    return value


def check_flag(value, argument: str) -> bool:
    if not isinstance(value, bool):
        raise RecipeError(f"{argument} must be True or False. Received: {argument}={value!r}")
    return value


def check_accuracy_budget(value, validation: Samples | None) -> float | None:
    """compress()'s max_accuracy_drop=: None, or a fraction in [0, 1) with labelled
    validation data to measure it on.

    Raises:
        RecipeError: not a number in [0, 1).
        DataError: no validation_data, or validation_data without labels.
    """
    if value is None:
        return None
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not 0 <= value < 1:
        raise RecipeError(
            "max_accuracy_drop is the metric the compressed model may lose, as a fraction "
            "(0.01: one point of accuracy). Expected a value in [0, 1). "
            f"Received: max_accuracy_drop={value!r}"
        )
    if validation is None or validation.labels is None:
        got = "validation_data=None" if validation is None else "validation_data without labels"
        raise DataError(
            "max_accuracy_drop is measured on labelled validation data: the model's metric "
            "before and after (on the .tflite). Expected validation_data=(x, y). "
            f"Received: {got}"
        )
    return float(value)


def resolve_recipe(recipe, distill) -> Recipe:
    recipe = Recipe.get(recipe)
    if distill is not None:
        if not isinstance(distill, (bool, Distill)):
            raise RecipeError(
                "distill must be True, False or a ks.Distill. Expected e.g. distill=True. "
                f"Received: distill={distill!r}"
            )
        recipe = dataclasses.replace(recipe, distill=distill)
    return recipe


def check(
    model,
    recipe,
    *,
    train_data,
    validation_data,
    representative_data,
    teacher,
    distill,
    epochs,
    loss,
    optimizer,
    batch_size,
    steps_per_epoch,
    num_calibration_samples,
    inference_input_type,
    inference_output_type,
    custom_objects,
    measure_latency,
    edgetpu,
    dynamic_batch,
    strict,
    allow_tf_ops,
    verbose,
    default_epochs: int,
    input_signature=None,
    callbacks=None,
    strategy=None,
    checkpoint_dir=None,
    max_accuracy_drop=None,
) -> Job:
    """compress()'s arguments checked and resolved into a Job (see compress() for each).

    Raises:
        ModelError, RecipeError, DataError, NonFiniteError: see compress().
    """
    model = models.resolve_model(model, custom_objects)
    recipe = resolve_recipe(recipe, distill)
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
    check_count(num_calibration_samples, "num_calibration_samples")
    if epochs is not None:
        check_count(epochs, "epochs")
    check_count(batch_size, "batch_size")
    callbacks = user_callbacks.check_callbacks(callbacks)
    strategy = distribute.resolve(strategy)
    if checkpoint_dir is not None:
        checkpoint_dir = checkpoint.check_dir(checkpoint_dir)
    signature, data = models.resolve_signature(
        model,
        input_signature,
        {
            "representative_data": representative_data,
            "validation_data": validation_data,
            "train_data": train_data,
        },
    )
    representative_data, validation_data, train_data = (data[k] for k in models.DATA_ARGUMENTS)
    specs = list(signature.specs)
    ptq.check_inputs(mode, specs)
    models.check_finite_weights(model)
    # A recurrent layer that must be unrolled needs a fixed length: refused before any work.
    recurrent.plan(model, mode.name, dynamic_batch=check_flag(dynamic_batch, "dynamic_batch"))
    training = bool(recipe.training_stages)
    notes = [f"post-training quantization at conversion: {mode.scheme}"]
    if signature.source != "the model's inputs":
        notes.append(f"input signature from {signature.source}: {signature.describe()}")
    if not training:
        given = {
            "teacher": teacher,
            "epochs": epochs,
            "distill": distill,
            "callbacks": callbacks or None,
            "checkpoint_dir": checkpoint_dir,
        }
        for name, value in given.items():
            if value is not None:
                message = f"{name} is ignored: the '{recipe.name}' recipe has no training stage"
                warnings.warn(message, stacklevel=3)
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
    outputs = output_specs(model)
    validation = None
    if validation_data is not None:
        validation = data_inputs.take_samples(
            validation_data, specs, MAX_VALIDATION_SAMPLES, "validation_data", outputs=outputs
        )
    max_accuracy_drop = check_accuracy_budget(max_accuracy_drop, validation)
    samples = validation or calibration
    if samples is None and train_data is not None:
        samples = data_inputs.take_samples(
            train_data, specs, DEFAULT_CALIBRATION_SAMPLES, "train_data", outputs=outputs
        )
    if samples is None:
        samples = data_inputs.synthetic_samples(specs, SYNTHETIC_SAMPLES)
        notes.append(
            "fidelity was measured on synthetic inputs (no data given): it shows the export "
            "runs and agrees, not how accurate it is"
        )
    fit = None
    if training:
        tasks.check_loss(loss, model)
        distribute.check_batch(strategy, batch_size)
        fit = FitSettings(
            train_data,
            validation_data,
            teacher,
            epochs or default_epochs,
            loss,
            optimizer,
            batch_size,
            steps_per_epoch,
            callbacks,
            strategy,
            checkpoint_dir,
        )
    return Job(
        model=model,
        recipe=recipe,
        mode=mode,
        in_type=in_type,
        out_type=out_type,
        specs=specs,
        flavour=_compat.keras_flavour(model),
        calibration=calibration,
        validation=validation,
        check=samples,
        fit=fit,
        edgetpu=edgetpu,
        dynamic_batch=check_flag(dynamic_batch, "dynamic_batch"),
        strict=check_flag(strict, "strict"),
        allow_tf_ops=check_flag(allow_tf_ops, "allow_tf_ops"),
        measure_latency=measure_latency,
        verbose=verbose,
        notes=notes,
        max_accuracy_drop=max_accuracy_drop,
    )
