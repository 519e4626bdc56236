"""compress()'s second step: the recipe's training stages, in registry order, on copies.

Each stage comes from the stage registry (`keras_squeeze.stages`). A stage
with the TF_KERAS engine works on a verified tf_keras working copy (a Keras 3
model is rebuilt by the bridge, a tf_keras model cloned; either is checked to
give the same outputs); a NATIVE stage works on the model in its own flavour
and returns a new model. When the user's model is Keras 3 and every engine
stage can hand its result back, the result is put back into a Keras 3 copy
of the user's own architecture.
"""

from __future__ import annotations

import dataclasses

from keras_squeeze import _compat
from keras_squeeze.core import models
from keras_squeeze.core.progress import say
from keras_squeeze.data import inputs as data_inputs
from keras_squeeze.data.labels import output_specs
from keras_squeeze.distillation.api import copy_model
from keras_squeeze.distillation.config import Distill
from keras_squeeze.errors import ModelError, RecipeError
from keras_squeeze.stages import NATIVE, TF_KERAS, TrainingContext, registry
from keras_squeeze.stages.base import check_same_outputs, validation_accuracy
from keras_squeeze.training import callbacks as user_callbacks
from keras_squeeze.training import data as train_data_mod
from keras_squeeze.training import distribute, rate, trainer
from keras_squeeze.training.evaluation import label_forms


@dataclasses.dataclass
class Trained:
    """What the training stages produced.

    Attributes:
        model: the model to convert (the user's model when nothing trained).
        records: one StageRecord per stage, in order.
        info: the fine-tuning settings for the report (None without training).
    """

    model: object
    records: list
    info: dict | None = None

    @property
    def stages(self) -> list:
        return [registry.get_stage(r.name) for r in self.records]


def sample_data(samples: data_inputs.Samples):
    """Samples as model input data: one array, or a list for several inputs."""
    return samples.inputs[0] if len(samples.inputs) == 1 else list(samples.inputs)


def verified_copy(model, sample: data_inputs.Samples):
    """A tf_keras working copy of `model`, checked to give the same outputs.

    A Keras 3 model is rebuilt as tf_keras by the bridge (which checks the
    rebuild numerically); a tf_keras model is cloned and checked here.

    Returns:
        (copy, BridgeReport or None).

    Raises:
        ModelError: a subclassed model (no layer graph), a model the bridge
            cannot rebuild, or a copy that disagrees with the model.
    """
    if _compat.keras_flavour(model) == _compat.KERAS3:
        from keras_squeeze.keras_bridge import to_tf_keras

        return to_tf_keras(model, sample_inputs=sample_data(sample))
    k = _compat.keras_module(_compat.TF_KERAS)
    try:
        copy = k.models.clone_model(model)
    except (ValueError, TypeError, NotImplementedError) as e:
        raise ModelError(
            "The model cannot be copied for training. Expected a Sequential or functional model "
            "(a subclassed model has no layer graph: use a post-training recipe such as 'int8'). "
            f"Received: {type(model).__name__} ({e})"
        ) from e
    copy.set_weights(model.get_weights())
    check_same_outputs(model, copy, sample, "working copy")
    return copy, None


def check_chainable(model) -> None:
    """Refuses a model still in engine wrappers: stages must start from a plain model.

    Raises:
        RecipeError: naming the wrapper and the order stages run in.
    """
    wrapped = registry.wrappers()
    for layer in models.walk_layers(model):
        state = wrapped.get(type(layer).__name__)
        if state is not None:
            raise RecipeError(
                f"The model is already {state} (layer '{layer.name}'), and the engine cannot "
                f"chain another training stage after that. Expected a plain float model; "
                f"stages run in the order {registry.order_text()}, so give the float model one "
                "ks.Recipe with all the stages (e.g. ks.Recipe(prune=ks.Prune(), "
                f"cluster=ks.Cluster(), qat=ks.QAT())). Received: a model with "
                f"{type(layer).__name__} layers"
            )


def check_order(stages: list, flavour: str, engines: list | None = None) -> None:
    """Refuses a native stage after an engine stage that cannot hand back a Keras 3 model.

    Raises:
        RecipeError: naming both stages.
    """
    blocking = None
    for stage, engine in zip(stages, engines or [s.engine for s in stages], strict=True):
        if engine == TF_KERAS and not stage.hands_back_keras3:
            blocking = blocking or stage
        elif engine == NATIVE and blocking is not None and flavour == _compat.KERAS3:
            raise RecipeError(
                f"The {stage.name} stage runs on the model in its own Keras flavour, and the "
                f"{blocking.name} stage before it leaves a tf_keras model with no Keras 3 "
                f"counterpart. Expected {stage.name} to run before {blocking.name}. Received: "
                f"{' -> '.join(s.name for s in stages)}"
            )


def check_models(stages: list, engines: list, recipe, model) -> None:
    """Every stage's own check of the model (`Stage.check_model`), before any stage trains;
    a stage that runs through tfmot needs a layer graph.

    Raises:
        ModelError, RecipeError: the first stage that refuses the model.
    """
    for stage, engine in zip(stages, engines, strict=True):
        stage.check_model(model, recipe.config_of(stage.name))
        if engine == TF_KERAS:
            models.require_graph(model, f"The {stage.title} stage (through tfmot)")


def check_rates(stages: list, recipe, ctx: TrainingContext) -> None:
    """Fails before any training when a stage's learning-rate scale cannot apply.

    Raises:
        RecipeError: the run's optimizer has a schedule without an initial rate.
    """
    scales = [s.scale(recipe.config_of(s.name)) for s in stages]
    scales = [scale for scale in scales if scale != 1.0]
    if scales:  # one optimizer: whether its rate can be scaled does not depend on the factor
        flavour = _compat.TF_KERAS  # the engine stages train tf_keras copies
        rate.scaled(trainer.resolve_optimizer(ctx.optimizer, flavour, ctx.compiled_from), scales[0])


def check_distributed(stages: list, engines: list, recipe, job) -> None:
    """Each stage's `check_strategy`, and every callback's Keras flavour against the flavour
    its stage trains in (tf_keras through tfmot), before any stage trains.

    Raises:
        RecipeError: a stage that cannot train on the strategy's replicas, or a callback
            of the wrong flavour.
    """
    n = distribute.replicas(job.fit.strategy)
    for stage, engine in zip(stages, engines, strict=True):
        stage.check_strategy(job.model, recipe.config_of(stage.name), n)
        flavour = _compat.TF_KERAS if engine == TF_KERAS else job.flavour
        user_callbacks.check_flavour(job.fit.callbacks, flavour, f"The {stage.name} stage")


def default_teacher(original, distill: Distill | None, teacher):
    """The teacher for distillation: the one given, else a frozen copy of the original.

    The copy keeps the original's Keras flavour; a teacher of either flavour can
    teach a student of either flavour.
    """
    if teacher is not None:
        return models.ensure_model(teacher, "teacher")
    if distill is None:
        return None
    # a graph model by clone (an uncompiled copy when its compile config cannot be
    # rebuilt); a subclassed one from its class (core.models.copy_model)
    graph = models.is_graph_model(original)
    frozen = copy_model(original) if graph else models.copy_model(original)
    frozen.trainable = False
    return frozen


def context(job) -> TrainingContext:
    """The run's data, teacher, loss and optimizer, prepared once for every stage."""
    fit = job.fit
    outputs = output_specs(job.model)
    train = train_data_mod.prepare(
        fit.train_data, job.specs, fit.batch_size, fit.steps_per_epoch, outputs=outputs
    )
    validation = None
    if job.validation is not None and job.validation.labels is not None:
        validation = train_data_mod.prepare(
            fit.validation_data,
            job.specs,
            fit.batch_size,
            argument="validation_data",
            outputs=outputs,
        )
    distill = job.recipe.distill_config
    teacher = default_teacher(job.model, distill, fit.teacher)
    if fit.teacher is not None and distribute.replicas(fit.strategy) > 1:
        teacher = models.copy_model(teacher)  # its variables made in the strategy's scope
        teacher.trainable = False
    if teacher is not None and distill is None:
        distill = Distill()
    return TrainingContext(
        train=train,
        epochs=fit.epochs,
        validation=validation,
        val_samples=job.validation,
        teacher=teacher,
        distill=distill,
        loss=fit.loss,
        optimizer=fit.optimizer,
        compiled_from=job.model,
        verbose=job.verbose,
        samples=job.check,
        callbacks=fit.callbacks,
        strategy=fit.strategy,
    )


def open_checkpoint(job, ctx):
    """The run's checkpoint in `checkpoint_dir` (None without one), checked to be this run's.

    Raises:
        CheckpointError: the directory holds another run.
    """
    fit = job.fit
    if fit.checkpoint_dir is None:
        return None
    from keras_squeeze.training import checkpoint

    identity = checkpoint.identity(
        job.model,
        job.recipe,
        ctx.train,
        epochs=fit.epochs,
        batch_size=fit.batch_size,
        optimizer=fit.optimizer,
    )
    run = checkpoint.RunCheckpoint.open(
        fit.checkpoint_dir, identity, writer=distribute.is_chief(fit.strategy)
    )
    if run.finished:
        say(
            job.verbose,
            f"checkpoint_dir {run.directory} holds this run, finished: no stage trains again "
            "(each one's last weights are restored); converting its result",
        )
    elif run.manifest["fits"]:
        say(job.verbose, f"resuming the run in checkpoint_dir {run.directory}")
    return run


def train(job) -> Trained:
    """Runs the recipe's training stages on working copies; the user's model is unchanged."""
    if not job.training:
        return Trained(job.model, [])
    stages, recipe = job.stages, job.recipe
    # Each stage's engine is decided on the user's model (a copy keeps its kind).
    engines = [s.engine_for(job.model, recipe.config_of(s.name)) for s in stages]
    check_models(stages, engines, recipe, job.model)
    check_chainable(job.model)
    check_order(stages, job.flavour, engines)
    check_distributed(stages, engines, recipe, job)
    ctx = context(job)
    check_rates(stages, recipe, ctx)
    ctx.checkpoint = open_checkpoint(job, ctx)
    current, records, bridges = job.model, [], []
    on_copy = False  # whether `current` is a tf_keras working copy
    like = None  # the Keras 3 model that copy was rebuilt from
    for stage, engine in zip(stages, engines, strict=True):
        if engine == TF_KERAS and not on_copy:
            current, like = _working_copy(current, job, bridges)
            on_copy = True
        elif engine == NATIVE and on_copy:
            if like is not None:
                current, like = _back_to_keras3(current, like, job, bridges), None
            on_copy = False
        ctx.done = [r.name for r in records]
        current, record = stage.run(current, recipe.config_of(stage.name), ctx)
        record.model = current
        records.append(record)
        if ctx.checkpoint is not None:
            ctx.checkpoint.stage_done(stage.name, current, record.epochs)
        ctx.produced.update(stage.produces)
    if on_copy and like is not None and all(s.hands_back_keras3 for s in stages):
        current = _back_to_keras3(current, like, job, bridges)
    info = {
        "epochs": ctx.epochs,
        "steps_per_epoch": ctx.train.steps_per_epoch,
        "batch_size": job.fit.batch_size,
        "labels": label_forms(ctx.train, job.model),
        "distill": ctx.distill.get_config() if ctx.distill is not None else None,
        "teacher": (
            "given" if job.fit.teacher is not None else ("original model" if ctx.distill else None)
        ),
        "accuracy_before": validation_accuracy(job.model, job.validation),
        "bridge": bridges,
        "distribute": distribute.describe(ctx.strategy),
        "checkpoint": ctx.checkpoint.summary() if ctx.checkpoint is not None else None,
    }
    if ctx.checkpoint is not None:
        ctx.checkpoint.run_done()
    return Trained(current, records, info)


def _working_copy(model, job, bridges):
    """(verified tf_keras copy, the Keras 3 model it was rebuilt from or None)."""
    say(job.verbose, "making a verified working copy of the model")
    work, bridged = verified_copy(model, job.check)
    if bridged is None:
        return work, None
    bridges.append(bridged.to_dict())
    say(
        job.verbose,
        f"rebuilt the Keras 3 model as tf_keras for the training stages "
        f"({bridged.layers} layers, max |diff| {bridged.agreement.max_abs_diff:.2g})",
    )
    return work, model


def _back_to_keras3(model, like, job, bridges):
    from keras_squeeze.keras_bridge import to_keras3

    back_model, back = to_keras3(model, like=like, sample_inputs=sample_data(job.check))
    bridges.append(back.to_dict())
    say(job.verbose, "put the compressed weights back into a Keras 3 copy of the model")
    return back_model
