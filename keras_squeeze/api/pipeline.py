"""The training stages of a recipe, run in order on a working copy of the model."""

from __future__ import annotations

import dataclasses
import time
import warnings

import numpy as np

from keras_squeeze import _compat
from keras_squeeze.channel_pruning.settings import ChannelPruning
from keras_squeeze.clustering import apply as cluster_apply
from keras_squeeze.clustering.config import Cluster
from keras_squeeze.core import models
from keras_squeeze.core.progress import say
from keras_squeeze.data import inputs as data_inputs
from keras_squeeze.distillation.config import Distill
from keras_squeeze.errors import ModelError, RecipeError
from keras_squeeze.layer_plan import Decision, plan
from keras_squeeze.pruning import apply as prune_apply
from keras_squeeze.pruning import schedule as prune_schedule
from keras_squeeze.pruning.config import Prune
from keras_squeeze.quantization import qat_apply, rewrites
from keras_squeeze.quantization.qat_config import QAT
from keras_squeeze.report import metrics
from keras_squeeze.training import rate, trainer

# A working copy must reproduce the model it was copied from.
COPY_MAX_REL_DIFF = 1e-5


@dataclasses.dataclass
class StageRecord:
    """What one training stage did, for the report.

    Attributes:
        name: "prune", ...
        settings: the stage's config.
        epochs / steps / seconds: the fine-tune's length and wall time.
        accuracy: the stage's Keras model on the validation data, if labelled.
        decisions: per layer name, the setting applied (None: left as it was)
            and the reason.
        notes: schedule and other facts worth saying.
        tflite_bytes / tflite_gzip_bytes: the stage's model converted with the
            recipe's quantization (filled by compress()).
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
    model: object = dataclasses.field(default=None, repr=False)  # the stage's output model

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "settings": self.settings,
            "epochs": self.epochs,
            "steps": self.steps,
            "seconds": round(self.seconds, 2),
            "accuracy": self.accuracy,
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
    """Everything a stage needs besides the model."""

    train: object  # training.data.TrainData
    epochs: int
    validation: object | None  # training.data.TrainData
    val_samples: data_inputs.Samples | None
    teacher: object | None
    distill: Distill | None
    loss: object
    optimizer: object
    compiled_from: object
    verbose: int
    samples: data_inputs.Samples | None = None  # inputs to check rewrites on

    @property
    def total_steps(self) -> int:
        return self.epochs * self.train.steps_per_epoch


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


def check_same_outputs(reference, candidate, sample: data_inputs.Samples, what: str) -> None:
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


def validation_accuracy(model, ctx: TrainingContext) -> float | None:
    samples = ctx.val_samples
    if samples is None or samples.labels is None or not trainer.losses.is_classifier(model):
        return None
    outputs = models.keras_outputs(model, samples)[0]
    return metrics.accuracy(outputs, data_inputs.class_ids(samples.labels))


ORDER = "channel_prune -> prune -> cluster -> qat"
_WRAPPERS = {
    "QuantizeWrapper": "quantization-aware",
    "QuantizeWrapperV2": "quantization-aware",
    "PruneLowMagnitude": "wrapped for pruning",
    "ClusterWeights": "wrapped for clustering",
}


def check_chainable(model) -> None:
    """Refuses a model still in engine wrappers: stages must start from a plain model.

    Raises:
        RecipeError: naming the wrapper and the order stages run in.
    """
    for layer in models.walk_layers(model):
        state = _WRAPPERS.get(type(layer).__name__)
        if state is not None:
            raise RecipeError(
                f"The model is already {state} (layer '{layer.name}'), and the engine cannot "
                f"chain another training stage after that. Expected a plain float model; "
                f"stages run in the order {ORDER}, so give the float model one ks.Recipe "
                "with all the stages (e.g. ks.Recipe(prune=ks.Prune(), cluster=ks.Cluster(), "
                f"qat=ks.QAT())). Received: a model with {type(layer).__name__} layers"
            )


def _chosen(decisions: dict[str, Decision], done: str, able: str) -> list[str]:
    """The layers a plan selected; an error listing every reason when there are none."""
    chosen = [n for n, d in decisions.items() if d.setting is not None]
    if not chosen:
        reasons = "; ".join(f"{n}: {d.reason}" for n, d in decisions.items()) or "no weights"
        raise RecipeError(
            f"No layer can be {done}. Expected at least one {able} layer. Received: {reasons}"
        )
    return chosen


def check_rates(recipe, ctx: TrainingContext) -> None:
    """Fails before any training when a stage's learning-rate scale cannot apply.

    Raises:
        RecipeError: the run's optimizer has a schedule without an initial rate.
    """
    stages = [getattr(recipe, stage) for stage in recipe.training_stages]
    scales = [getattr(s, "learning_rate_scale", 1.0) for s in stages]
    scales = [scale for scale in scales if scale != 1.0]
    if scales:  # one optimizer: whether its rate can be scaled does not depend on the factor
        flavour = _compat.TF_KERAS  # the engine stages train tf_keras copies
        rate.scaled(trainer.resolve_optimizer(ctx.optimizer, flavour, ctx.compiled_from), scales[0])


def _fine_tune(ctx: TrainingContext, model, scale: float = 1.0, **extra) -> str:
    """One stage's fine-tuning with the run's data, teacher, loss and optimizer.

    `scale` multiplies the optimizer's learning rate for this stage. Returns a
    note naming the optimizer and rate the stage trained with.
    """
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
        learning_rate_scale=scale,
        **extra,
    )
    return "fine-tuned with " + rate.describe(history.model.optimizer)


def _record(ctx: TrainingContext, name, settings, seconds, model, decisions, notes, **extra):
    """The stage's record, with the validation accuracy of the model it hands on."""
    return StageRecord(
        name=name,
        settings=settings,
        epochs=ctx.epochs,
        steps=ctx.total_steps,
        seconds=seconds,
        accuracy=validation_accuracy(model, ctx),
        decisions=decisions,
        notes=notes,
        **extra,
    )


def prune_stage(model, config: Prune, ctx: TrainingContext, done=()):
    """Magnitude pruning of every layer the plan selects, fine-tuned, then stripped."""
    policy = prune_apply.xnnpack_policy(model) if config.xnnpack_sparse else None
    infos = prune_apply.layer_infos(model, config, policy)
    decisions = plan(
        infos,
        config.effective_sparsity,
        technique="pruning",
        per_layer=config.layers,
        skip=config.skip,
        keep_first_layer=config.keep_first_layer,
        min_weights=config.min_weights,
    )
    if config.m_by_n:  # per-layer values only switch M:N on or off
        for d in decisions.values():
            if d.setting is not None:
                d.setting = config.effective_sparsity
    chosen = _chosen(decisions, "pruned", "prunable")
    schedule = prune_schedule.derive(
        ctx.total_steps, config.schedule, config.begin_step, config.end_step, config.frequency
    )
    final = schedule.final_update_step(ctx.total_steps)
    notes = [
        f"{config.schedule} schedule over {ctx.total_steps} steps: masks updated every "
        f"{schedule.frequency} steps from step {schedule.begin_step}, final sparsity applied at "
        f"step {final}",
    ]
    what = (
        f"{config.m_by_n[0]}:{config.m_by_n[1]}"
        if config.m_by_n
        else f"{config.target_sparsity:.0%}"
    )
    say(
        ctx.verbose,
        f"pruning {len(chosen)} of {len(decisions)} weighted layers to {what}; {notes[0]}",
    )
    pruned = prune_apply.wrap(model, decisions, config, schedule)
    start = time.perf_counter()
    notes.append(
        _fine_tune(ctx, pruned, config.learning_rate_scale, callbacks=prune_apply.callbacks())
    )
    seconds = time.perf_counter() - start
    stripped = prune_apply.strip(pruned)
    record = _record(ctx, "prune", config.get_config(), seconds, stripped, decisions, notes)
    return stripped, record


def cluster_stage(model, config: Cluster, ctx: TrainingContext, done=()):
    """Weight clustering of every layer the plan selects, fine-tuned, then stripped."""
    pruned = "prune" in done
    preserve = pruned if config.preserve_sparsity == "auto" else bool(config.preserve_sparsity)
    notes = []
    if preserve and not pruned:
        notes.append("preserve_sparsity is on but no pruning stage ran before: few zeros to keep")
        warnings.warn(notes[-1], stacklevel=3)
    decisions = plan(
        cluster_apply.layer_infos(model, config),
        config.num_clusters,
        technique="clustering",
        per_layer=config.layers,
        skip=config.skip,
        keep_first_layer=config.keep_first_layer,
        min_weights=config.min_weights,
        too_small=cluster_apply.too_small_rule(model, config),
    )
    chosen = _chosen(decisions, "clustered", "clusterable")
    how = f"{config.num_clusters} clusters ({config.init}"
    how += ", per channel for convolutions" if config.per_channel else ""
    how += ", sparsity preserved)" if preserve else ")"
    notes.insert(0, how)
    fallback = cluster_apply.per_tensor_fallbacks(model, decisions, config)
    if fallback:
        notes.append(
            f"clustered per tensor: {', '.join(fallback)} (convolutions without a bias: the "
            "engine's per-channel clustering leaves them unclustered)"
        )
    say(ctx.verbose, f"clustering {len(chosen)} of {len(decisions)} weighted layers to {how}")
    clustered = cluster_apply.wrap(model, decisions, config, preserve)
    start = time.perf_counter()
    notes.append(_fine_tune(ctx, clustered, config.learning_rate_scale))
    seconds = time.perf_counter() - start
    stripped = cluster_apply.strip(clustered)
    settings = {**config.get_config(), "preserve_sparsity": preserve}
    details = {"per_tensor": fallback}
    record = _record(ctx, "cluster", settings, seconds, stripped, decisions, notes, details=details)
    return stripped, record


def qat_stage(model, config: QAT, ctx: TrainingContext, done=()):
    """Quantization-aware training, layer by layer, preserving earlier sparsity/clusters.

    The result is tfmot's quantization-aware tf_keras model (not stripped: the
    converter reads its learnt ranges).
    """
    rewritten, split = rewrites.split_fused_activations(model)
    notes = []
    if split:
        check_same_outputs(model, rewritten, ctx.samples, "model with split activations")
        model = rewritten
        notes.append(
            f"swish moved out of {len(split)} layers into Activation layers, so training "
            f"quantizes their outputs where the .tflite does: {', '.join(split[:8])}"
            + (" ..." if len(split) > 8 else "")
        )
    decisions = qat_apply.decide(model, config)
    pruned, clustered = "prune" in done, "cluster" in done
    quantize_scheme = qat_apply.scheme(pruned, clustered)
    kept = sum(1 for d in decisions.values() if d.setting is None)
    preserving = " preserving sparsity" if pruned else ""
    preserving += (" and" if pruned and clustered else "") + (
        " preserving clusters" if clustered else ""
    )
    say(
        ctx.verbose,
        f"quantization-aware training{preserving}: {len(decisions) - kept} layers quantize-aware, "
        f"{kept} float in training (calibrated at conversion)",
    )
    qat_model = qat_apply.apply(model, decisions, quantize_scheme)
    if ctx.samples is not None:
        calibrated = qat_apply.calibrate_ranges(qat_model, model, ctx.samples.inputs)
        notes.append(
            f"activation ranges of {len(calibrated)} layers started at the float model's "
            f"ranges on {ctx.samples.describe()} (the engine starts them at [-6, 6])"
        )
    frozen = None
    if clustered:
        frozen = qat_apply.frozen_kernels
        notes.append(
            "kernels frozen during QAT to keep their clusters and zeros exactly (activation "
            "ranges, biases and batch normalization train)"
        )
    start = time.perf_counter()
    notes.append(_fine_tune(ctx, qat_model, config.learning_rate_scale, frozen=frozen))
    settings = {**config.get_config(), "scheme": type(quantize_scheme).__name__}
    notes = [f"scheme {type(quantize_scheme).__name__}", *notes]
    seconds = time.perf_counter() - start
    record = _record(ctx, "qat", settings, seconds, qat_model, decisions, notes)
    return qat_model, record


def default_teacher(original, distill: Distill | None, teacher):
    """The teacher for distillation: the one given, else a frozen copy of the original.

    The copy keeps the original's Keras flavour; a teacher of either flavour can
    teach a student of either flavour.
    """
    if teacher is not None:
        return models.ensure_model(teacher, "teacher")
    if distill is None:
        return None
    k = _compat.keras_module(_compat.keras_flavour(original))
    frozen = k.models.clone_model(original)
    frozen.set_weights(original.get_weights())
    frozen.trainable = False
    return frozen


def channel_prune_stage(model, config: ChannelPruning, ctx: TrainingContext, done=()):
    """Removes whole channels (in the model's own flavour), then fine-tunes the smaller model."""
    from keras_squeeze.channel_pruning import prune_channels

    start = time.perf_counter()

    def fine_tune(pruned):
        _fine_tune(ctx, pruned)
        return pruned

    result = prune_channels(model, config, fine_tune=fine_tune, verbose=ctx.verbose)
    report = result.report
    decisions = {}
    for row in report.layers:
        changed = row.channels_before != row.channels_after
        if changed:
            decisions[row.name] = Decision((row.channels_before, row.channels_after), None)
        elif row.reason:
            decisions[row.name] = Decision(None, row.reason)
    notes = [report.summary(), *report.notes]
    record = _record(
        ctx,
        "channel_prune",
        config.get_config(),
        time.perf_counter() - start,
        result.model,
        decisions,
        notes,
        details=report.to_dict(),
    )
    return result.model, record


STAGE_RUNNERS = {"prune": prune_stage, "cluster": cluster_stage, "qat": qat_stage}
# Stages run on the model in its own flavour, before the tf_keras working copy.
NATIVE_STAGES = {"channel_prune": channel_prune_stage}


def run(model, recipe, ctx: TrainingContext, stages=None):
    """Runs training stages in order; returns (model, [StageRecord])."""
    records = []
    for stage in stages if stages is not None else recipe.training_stages:
        done = [r.name for r in records]
        model, record = STAGE_RUNNERS[stage](model, getattr(recipe, stage), ctx, done)
        record.model = model
        records.append(record)
    return model, records
