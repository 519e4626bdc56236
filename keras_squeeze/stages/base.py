"""What a training stage is: the `Stage` interface, its context and its record.

A stage is one compression technique that changes the Keras model before
conversion (channel pruning, magnitude pruning, clustering, QAT, ...). It
lives in its own folder and registers one `Stage` object
(`keras_squeeze.stages.register_stage`); `compress()`, `ks.Recipe` and the
command line learn everything else about it from that object:

- `name`, `config_class`: the recipe key and its validated config (which
  round-trips through get_config / from_config);
- `order`: where it runs in the pipeline (each later stage preserves what the
  earlier ones produced);
- `engine`: NATIVE (runs on the model in its own Keras flavour) or TF_KERAS
  (runs through tfmot on a verified tf_keras working copy); a stage with a
  choice of engine says which one a model and config get (`engine_for`);
- `wrappers`: the engine wrapper classes a model still in this stage holds;
- `run()`: the technique itself, on a working copy, with the run's one
  fine-tuning loop (`fine_tune`) and the report `record`;
- `converter_options()`: what the stage asks of the TFLite converter;
- `annotate()`: the per-layer report row for each layer the stage changed,
  checked against what the .tflite holds;
- `verify()`: a whole-model check of the .tflite after conversion.

Example (a stage defined outside the package):
    >>> class Halve(ks.stages.Stage):
    ...     name, config_class, order = "halve", HalveConfig, 50
    ...     def run(self, model, config, ctx):
    ...         ...
    ...         return model, self.record(ctx, config.get_config(), 0.0, model, {}, [])
    >>> ks.stages.register_stage(Halve())
    >>> ks.compress(model, ks.Recipe(stages={"halve": HalveConfig()}), train_data=(x, y))
"""

from __future__ import annotations

import contextlib
import dataclasses
import time

import numpy as np

from keras_squeeze.core import models
from keras_squeeze.data import inputs as data_inputs
from keras_squeeze.distillation.config import Distill
from keras_squeeze.errors import ModelError, RecipeError
from keras_squeeze.layer_plan import Decision
from keras_squeeze.training import callbacks as user_callbacks
from keras_squeeze.training import rate, trainer
from keras_squeeze.training.evaluation import (
    headline,
    output_roles,
    validation_accuracy,  # noqa: F401  (re-exported: keras_squeeze.stages and api.pipeline)
    validation_scores,
)

# A working copy must reproduce the model it was copied from.
COPY_MAX_REL_DIFF = 1e-5

NATIVE = "native"
TF_KERAS = "tf_keras"
ENGINES = (NATIVE, TF_KERAS)


def choose_engine(model, choice: str) -> str:
    """NATIVE or TF_KERAS for a config's `engine` choice ("auto", "native", "tfmot").

    "auto" is NATIVE for a model without a layer graph (subclassed: tfmot wraps
    the layers of a graph) and TF_KERAS (tfmot) otherwise.
    """
    if choice == "native" or (choice == "auto" and not models.is_graph_model(model)):
        return NATIVE
    return TF_KERAS


@dataclasses.dataclass
class StageRecord:
    """What one training stage did, for the report.

    Attributes:
        name: the stage's name ("prune", ...).
        settings: the stage's config.
        epochs / steps / seconds: the fine-tune's length and wall time.
        accuracy: the stage's Keras model on the validation data, if labelled:
            top-1 accuracy of its (first) classification output.
        mse: the same for its (first) regression output: mean squared error.
        per_output: for a model with several outputs, each output's figures
            ({"task", "accuracy"} or {"task", "mse", "mae", "relative_mse"}).
        decisions: per layer name, the setting applied (None: left as it was)
            and the reason.
        notes: schedule and other facts worth saying.
        tflite_bytes / tflite_gzip_bytes: the stage's model converted with the
            recipe's quantization (filled by compress()).
        details: stage-specific facts its `annotate` reads back.
        model: the model the stage handed on.
    """

    name: str
    settings: dict
    epochs: int
    steps: int
    seconds: float
    accuracy: float | None
    decisions: dict[str, Decision]
    notes: list[str] = dataclasses.field(default_factory=list)
    tflite_bytes: int | None = None
    tflite_gzip_bytes: int | None = None
    details: dict | None = None
    model: object = dataclasses.field(default=None, repr=False)
    mse: float | None = None
    per_output: dict | None = None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "settings": self.settings,
            "epochs": self.epochs,
            "steps": self.steps,
            "seconds": round(self.seconds, 2),
            "accuracy": self.accuracy,
            "mse": self.mse,
            "per_output": self.per_output,
            "tflite_bytes": self.tflite_bytes,
            "tflite_gzip_bytes": self.tflite_gzip_bytes,
            "layers": {
                name: {"setting": d.setting, "reason": d.reason}
                for name, d in self.decisions.items()
            },
            "notes": list(self.notes),
            "details": self.details,
        }


@dataclasses.dataclass
class TrainingContext:
    """Everything a stage needs besides the model and its config.

    Attributes:
        train: the prepared training data (training.data.TrainData).
        epochs: fine-tuning epochs per stage.
        validation: prepared validation data evaluated after each epoch.
        val_samples: labelled validation samples (accuracy per stage).
        teacher / distill: distil from `teacher` with these settings.
        loss / optimizer / compiled_from: see `training.trainer.fine_tune`.
        verbose: 0 silent, 1 progress lines and Keras progress bars.
        samples: inputs to check rewrites and copies on.
        done: names of the stages that ran before this one, in order.
        produced: what those stages left in the weights (their `produces`),
            e.g. {"sparsity"}: what a later stage must preserve.
        callbacks: the user's Keras callbacks, run in every stage's fit (see
            `training.callbacks`).
        strategy: the tf.distribute.Strategy the run trains under (None: default).
        epochs_run: per stage name, the epochs its fit ran when a callback stopped it
            early (its record counts those).
        checkpoint: the run's `training.checkpoint.RunCheckpoint` (compress()'s
            checkpoint_dir), or None: each fine-tune saves every epoch and resumes.
    """

    train: object
    epochs: int
    validation: object | None
    val_samples: data_inputs.Samples | None
    teacher: object | None
    distill: Distill | None
    loss: object
    optimizer: object
    compiled_from: object
    verbose: int
    samples: data_inputs.Samples | None = None
    done: list[str] = dataclasses.field(default_factory=list)
    produced: set[str] = dataclasses.field(default_factory=set)
    callbacks: tuple = ()
    strategy: object = None
    epochs_run: dict = dataclasses.field(default_factory=dict)
    checkpoint: object = None

    @property
    def total_steps(self) -> int:
        return self.epochs * self.train.steps_per_epoch


def check_same_outputs(reference, candidate, sample: data_inputs.Samples, what: str) -> None:
    """Raises ModelError when `candidate` does not reproduce `reference` on `sample`."""
    ref = models.keras_outputs(reference, sample)
    got = models.keras_outputs(candidate, sample)
    for r, g in zip(ref, got, strict=True):
        scale = max(float(np.max(np.abs(r))), 1e-6)
        diff = float(np.max(np.abs(r - g))) / scale
        if diff > COPY_MAX_REL_DIFF:
            raise ModelError(
                f"The {what} does not reproduce the model. Expected a relative difference <= "
                f"{COPY_MAX_REL_DIFF:g}. Received: {diff:.3g}"
            )


def chosen_layers(decisions: dict[str, Decision], done: str, able: str) -> list[str]:
    """The layers a plan selected; an error listing every reason when there are none.

    Raises:
        RecipeError: no layer was selected.
    """
    chosen = [n for n, d in decisions.items() if d.setting is not None]
    if not chosen:
        reasons = "; ".join(f"{n}: {d.reason}" for n, d in decisions.items()) or "no weights"
        raise RecipeError(
            f"No layer can be {done}. Expected at least one {able} layer. Received: {reasons}"
        )
    return chosen


class Stage:
    """One training stage of the pipeline; subclass it and register an instance.

    Class attributes:
        name: the recipe key ("prune"); also the report's stage name.
        title / verb: for messages ("the pruning stage", "a recipe that prunes").
        config_class: the stage's config class (validated in __init__,
            get_config / from_config).
        order: position in the pipeline; smaller runs first.
        engine: NATIVE or TF_KERAS (see the module docstring).
        wrappers: {engine wrapper class name: what a model in it is}, for the
            error that refuses to chain a stage after a model still wrapped.
        hands_back_keras3: whether the result can be put back into the user's
            Keras 3 architecture (False for QAT: its fake-quantization
            wrappers have no Keras 3 counterpart); `tf_keras_note` then tells
            the user why result.model is tf_keras.
        settings: {command-line setting: config field} this stage takes
            (e.g. {"target_sparsity": "target_sparsity"}).
        produces: what the stage leaves in the weights for later stages to
            preserve: "sparsity" (zeros), "clusters" (shared values).
        learning_rate_scale: the default share of the run's learning rate
            when the config has no `learning_rate_scale` field.
        verifies_conversion: whether `verify` compares the .tflite with the
            Keras model it was converted from (see `verify`).
    """

    name: str = ""
    title: str = ""
    verb: str = ""
    config_class: type = object
    order: int = 100
    engine: str = TF_KERAS
    wrappers: dict = {}
    hands_back_keras3: bool = True
    tf_keras_note: str = ""
    verifies_conversion: bool = False
    settings: dict = {}
    produces: tuple[str, ...] = ()
    learning_rate_scale: float = 1.0

    # -- checks before anything runs ------------------------------------------------------

    def check_recipe(self, config, recipe) -> None:
        """Refuses a recipe this stage cannot be part of (raises RecipeError)."""

    def check_model(self, model, config) -> None:
        """Refuses a model this stage cannot work on, before any stage trains."""

    def check_strategy(self, model, config, replicas: int) -> None:
        """Refuses, before any stage trains, to run on `replicas` devices where the stage
        cannot train distributed (raises RecipeError); by default it can."""

    def engine_for(self, model, config) -> str:
        """The engine (NATIVE or TF_KERAS) this stage runs `config` on `model` with (the
        user's model); the class's `engine` unless the stage has a choice."""
        return self.engine

    def scale(self, config) -> float:
        """The share of the run's learning rate this stage fine-tunes at."""
        return getattr(config, "learning_rate_scale", self.learning_rate_scale)

    def with_setting(self, config, setting: str, value, recipe_name: str):
        """The config with one command-line `setting` (a key of `settings`) applied."""
        return dataclasses.replace(config, **{self.settings[setting]: value})

    # -- the work ------------------------------------------------------------------------

    def run(self, model, config, ctx: TrainingContext):
        """Applies the technique to `model` (a working copy); returns (model, StageRecord)."""
        raise NotImplementedError(f"stage '{self.name}' does not define run()")

    def load_scope(self):
        """A scope in which a model holding this stage's layers can be cloned or loaded."""
        return contextlib.nullcontext()

    # -- conversion and checks against the .tflite ----------------------------------------

    def converter_options(self, config, quantization: str) -> dict:
        """Converter options this stage asks for (see `export.tflite.convert`).

        Options merge in pipeline order; a later stage's value wins.
        """
        return {}

    def annotate(self, report, row, decision: Decision, tensors: list, record: StageRecord):
        """Puts the stage's setting for one changed layer into its report row and checks
        it against `tensors`, the layer's kernels as the .tflite holds them; a shortfall
        goes into `report.warnings`."""
        row.targets[self.name] = decision.setting

    def verify(self, report, model, content: bytes, samples, config, verbose: int) -> str | None:
        """A whole-model check of the final .tflite against `model` (the Keras model it was
        converted from); findings go into the report.

        Returns:
            None, or the failure (also added to `report.warnings`); `strict=True`
            makes it an error. A stage whose `verify` compares the .tflite with
            its Keras model sets `verifies_conversion`, and compress() then
            skips its own generic comparison.
        """
        return None

    # -- helpers for run() ---------------------------------------------------------------

    def fine_tune(self, ctx: TrainingContext, model, config, **extra) -> str:
        """Fine-tunes `model` in place with the run's one training loop, at this stage's
        share of the run's learning rate; returns a note naming the optimizer and rate."""
        history = trainer.fine_tune(
            model,
            ctx.train,
            ctx.epochs,
            teacher=ctx.teacher,
            distill=ctx.distill,
            loss=ctx.loss,
            optimizer=ctx.optimizer,
            compiled_from=ctx.compiled_from,
            validation=ctx.validation,
            verbose=1 if ctx.verbose else 0,
            learning_rate_scale=self.scale(config),
            what=f"the {self.name} stage",
            user_callbacks=ctx.callbacks,
            stage=self.name,
            checkpoint=ctx.checkpoint.fit_checkpoint(self.name) if ctx.checkpoint else None,
            **extra,
        )
        note = "fine-tuned with " + rate.describe(history.model.optimizer)
        stopped = user_callbacks.stopped_note(history, ctx.epochs)
        if stopped is None:
            return note
        ctx.epochs_run[self.name] = user_callbacks.stopped_early(history, ctx.epochs)
        return f"{note}; {stopped}"

    def native_copy(self, ctx: TrainingContext, model):
        """A working copy of `model` in its own flavour (`core.models.copy_model`, which
        also copies subclassed models), checked to give the same outputs."""
        copy = models.copy_model(model)
        if ctx.samples is not None:
            check_same_outputs(model, copy, ctx.samples, "working copy")
        return copy

    def record(self, ctx: TrainingContext, settings, seconds, model, decisions, notes, **extra):
        """The stage's record, with the validation task metric of the model it hands on
        (accuracy of a classifier output, MSE of a regression output; per output)."""
        scores = None
        if ctx.val_samples is not None and ctx.val_samples.labels is not None:
            roles = output_roles(ctx.compiled_from, ctx.val_samples, ctx.loss)
            names = models.output_names(ctx.compiled_from)
            scores = validation_scores(model, ctx.val_samples, roles, names)
        figures = headline(scores)
        epochs = ctx.epochs_run.get(self.name, ctx.epochs)
        return StageRecord(
            name=self.name,
            settings=settings,
            epochs=epochs,
            steps=epochs * ctx.train.steps_per_epoch,
            seconds=seconds,
            accuracy=figures["accuracy"],
            decisions=decisions,
            notes=notes,
            model=model,
            mse=figures["mse"],
            per_output=figures["per_output"],
            **extra,
        )

    def timed_fine_tune(self, ctx: TrainingContext, model, config, **extra) -> tuple[str, float]:
        """`fine_tune` and its wall time in seconds."""
        start = time.perf_counter()
        note = self.fine_tune(ctx, model, config, **extra)
        return note, time.perf_counter() - start

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.title = cls.title or cls.name
        cls.verb = cls.verb or f"runs {cls.name}"
        cls.tf_keras_note = cls.tf_keras_note or (
            f"result.model is the tf_keras model of the {cls.name} stage: its wrappers have no "
            "Keras 3 counterpart (the .tflite is the deployable model)"
        )

    def __repr__(self) -> str:
        return f"<stage {self.name!r} order={self.order} engine={self.engine}>"
