"""prune_channels(): a smaller plain Keras model with whole filters and channels removed."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from keras_squeeze import _compat
from keras_squeeze.channel_pruning import fine_tune as fine_tuning
from keras_squeeze.channel_pruning import flops, importance, scoring, selection, surgery
from keras_squeeze.channel_pruning.dependency import Analysis, Group, analyze
from keras_squeeze.channel_pruning.graph import GraphView, graph_view
from keras_squeeze.channel_pruning.report import ChannelPruningReport, channel_rows
from keras_squeeze.channel_pruning.settings import ChannelPruning
from keras_squeeze.core import models
from keras_squeeze.core.progress import say
from keras_squeeze.data import inputs as data_inputs
from keras_squeeze.data.labels import output_specs
from keras_squeeze.errors import DataError, ModelError, RecipeError
from keras_squeeze.export.artifact import check_outputs_finite
from keras_squeeze.training import callbacks as user_callbacks
from keras_squeeze.training import defaults, distribute
from keras_squeeze.training.evaluation import validation_accuracy

MAX_VALIDATION_SAMPLES = 10_000
MAX_LISTED_REASONS = 12
CHECK_SIZE = 32  # spatial size of the synthetic check inputs for a model without a fixed size
CHECK_SAMPLES = 64  # samples the pruned model runs on before anything else


@dataclasses.dataclass
class ChannelPruningResult:
    """The pruned model, what was kept, and the report.

    Attributes:
        model: the new, smaller Keras model (same flavour as the input, no masks).
        report: a ChannelPruningReport.
        kept: producer layer name -> output channels kept (pruned layers only).
    """

    model: object
    report: ChannelPruningReport
    kept: dict[str, int]


def _settings(settings) -> ChannelPruning:
    if settings is None:
        return ChannelPruning()
    if isinstance(settings, ChannelPruning):
        return settings
    if isinstance(settings, dict):
        return ChannelPruning.from_config(settings)
    raise RecipeError(
        "settings must be a ChannelPruning. Expected ChannelPruning(...), its config dict or "
        f"None. Received: {type(settings).__name__}"
    )


def _check_names(names, view: GraphView, argument: str) -> None:
    missing = [n for n in names if n not in view.calls]
    if missing:
        known = [n.name for n in view.nodes if not n.is_input]
        shown = ", ".join(map(repr, known[:8])) + (", ..." if len(known) > 8 else "")
        raise RecipeError(
            f"{argument} names layers that are not in the model. Expected names of the model's "
            f"layers ({shown}). Received: {missing}"
        )


def _nothing_prunable(analysis: Analysis) -> ModelError:
    reasons = []
    for g in analysis.groups:
        if not g.producers or g.reasons == [f"model input '{g.producers[0]}'"]:
            continue
        reasons.append(f"{g.label}: {'; '.join(g.reasons)}")
    listed = " | ".join(reasons[:MAX_LISTED_REASONS])
    extra = len(reasons) - MAX_LISTED_REASONS
    more = f" | ... ({extra} more)" if extra > 0 else ""
    return ModelError(
        "No channel group of the model can be pruned. Expected Conv / Dense layers whose "
        "outputs reach other analysable layers before a model output. "
        f"Received: {listed or 'no Conv or Dense layer'}{more}"
    )


def _layer_ratios(settings: ChannelPruning, analysis: Analysis) -> dict[int, float]:
    ratios: dict[int, tuple[str, float]] = {}
    for name, ratio in settings.target.items():
        group = analysis.group_of(name)
        if group is None:
            raise RecipeError(
                f"target names a layer without its own output channels. Expected a Conv, Dense, "
                f"SeparableConv or ConvTranspose layer. Received: '{name}'"
            )
        if not group.prunable:
            raise RecipeError(
                f"The layer '{name}' named in target cannot be pruned. Expected a layer whose "
                f"channels are analysable. Received: '{name}' ({'; '.join(group.reasons)})"
            )
        if group.id in ratios and ratios[group.id][1] != ratio:
            other = ratios[group.id][0]
            raise RecipeError(
                f"Layers '{other}' and '{name}' are pruned together (their channels are coupled) "
                f"but were given different fractions. Expected one fraction for the group "
                f"{group.label}. Received: {ratios[group.id][1]} and {ratio}"
            )
        ratios[group.id] = (name, ratio)
    return {gid: r for gid, (_, r) in ratios.items()}


def _allocate(settings, analysis, groups, scores) -> tuple[np.ndarray, list[str]]:
    sizes = np.array([g.size for g in groups], np.int64)
    m = settings.round_to
    if settings.per_layer:
        ratios = _layer_ratios(settings, analysis)
        per_group = np.array([ratios.get(g.id, 1.0) for g in groups])
        return selection.ratio_keep(sizes, per_group, m), []
    cost = flops.cost_model(analysis, groups, settings.metric)
    full = cost(sizes)
    budget = settings.target * full
    if settings.allocation == "uniform":
        keep = selection.uniform_keep(sizes, cost, budget, m)
    else:
        keep = selection.global_keep(sizes, [scores[g.id] for g in groups], cost, budget, m)
    warns = []
    if cost(keep) > budget * (1 + 1e-9):
        warns.append(
            f"the target {settings.target:g} of the {settings.metric} cannot be reached: keeping "
            f"at least {m} channels per group and the channels left whole gives "
            f"{cost(keep) / full:.3f}"
        )
    return keep, warns


def _validation(validation_data, specs, outputs=None):
    if validation_data is None:
        return None
    return data_inputs.take_samples(
        validation_data, specs, MAX_VALIDATION_SAMPLES, "validation_data", outputs=outputs
    )


def _fixed(specs, size: int = CHECK_SIZE):
    """Specs with unknown dimensions set to `size` (for a synthetic run of the pruned model)."""
    return [
        dataclasses.replace(s, shape=tuple(size if d is None else d for d in s.shape))
        for s in specs
    ]


def prune_channels(
    model,
    settings: ChannelPruning | dict | None = None,
    *,
    train_data=None,
    validation_data=None,
    epochs: int | None = None,
    loss=None,
    optimizer=None,
    batch_size: int = 32,
    fine_tune: fine_tuning.FineTune | None = None,
    importance_data=None,
    custom_objects: dict | None = None,
    verbose: int = 1,
    callbacks=None,
    strategy=None,
) -> ChannelPruningResult:
    """Removes whole filters and their channels; returns a new, smaller Keras model.

    Channels coupled through the graph (Conv -> BatchNormalization ->
    activation -> next layer, Depthwise, residual Add / Multiply, Concatenate,
    Flatten -> Dense, squeeze-excite) are pruned together; see
    `keras_squeeze.channel_pruning.dependency`. Groups that cannot be analysed
    are left whole and the report says why. The user's model is never changed.

    Args:
        model: a functional or Sequential Keras 3 or tf_keras model, or a path.
        settings: a ChannelPruning (or its config); default: keep 50% of FLOPs,
            L1 importance, uniform allocation, multiples of 8.
        train_data: labelled data ((x, y), a tf.data.Dataset of (x, y) batches,
            or a generator) for fine-tuning, and for the "taylor" criterion
            when `importance_data` is not given.
        validation_data: labelled data to report accuracy before and after.
        epochs: fine-tuning epochs (default: `training.defaults.DEFAULT_EPOCHS`
            when `train_data` is given, else none; 0: no fine-tuning).
        loss: the training loss; default: the model's compiled loss, else
            cross-entropy for classifiers and mean squared error otherwise.
        optimizer: the run's optimizer (default: the model's compiled one, else
            Adam at 1e-3); the pruned model fine-tunes at
            `settings.learning_rate_scale` of its learning rate (default 0.3:
            the kept weights are trained already).
        batch_size: batch size of in-memory training data.
        fine_tune: a callable `fn(pruned_model)` replacing the Model.fit step;
            it trains in place (returns None) or returns the model to use.
        importance_data: labelled data for the "taylor" criterion.
        custom_objects: custom layers by name, for loading from a path.
        verbose: 0 silent, 1 a line per step and Keras progress bars.
        callbacks: Keras callbacks of the model's flavour for the fine-tuning
            fit (their `stage` attribute is set to "channel-prune"; see
            `training.callbacks`).
        strategy: a `tf.distribute.Strategy` to fine-tune under (default: the
            one in scope, else one device): the pruned model is copied into its
            scope and Keras' fit splits each batch across its replicas, so
            `batch_size` is the global batch and must be a multiple of the
            number of replicas (see `training.distribute`).

    Returns:
        A ChannelPruningResult with `.model`, `.report` and `.kept`.

    Raises:
        ModelError: not a Keras model, a subclassed model, or no channel group
            can be pruned (the reasons are listed).
        RecipeError: invalid settings, a skip or target layer name that is not
            in the model, a target layer that cannot be pruned.
        DataError: missing or unlabelled data where it is needed, or a
            batch_size the strategy's replicas cannot share.
        RecipeError: also a strategy that is not a tf.distribute.Strategy.

    Example:
        >>> result = ks.channel_pruning.prune_channels(
        ...     model, ks.channel_pruning.ChannelPruning(target=0.5),
        ...     train_data=(x, y), epochs=3, validation_data=(x_test, y_test))
        >>> round(result.report.flops_ratio, 2)
        0.49
    """
    model = models.resolve_model(model, custom_objects)
    callbacks = user_callbacks.check_callbacks(callbacks)
    user_callbacks.check_flavour(callbacks, _compat.keras_flavour(model), "Channel pruning")
    strategy = distribute.resolve(strategy)
    settings = _settings(settings)
    view = graph_view(model)
    models.check_finite_weights(model)
    specs = models.input_specs(model)
    _check_names(settings.skip, view, "skip")
    if settings.per_layer:
        _check_names(list(settings.target), view, "target")
    if epochs is None:
        epochs = defaults.DEFAULT_EPOCHS if train_data is not None and fine_tune is None else 0
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise DataError(f"epochs must be a non-negative integer. Received: epochs={epochs!r}")
    if fine_tune is None and epochs > 0:  # it fits, on the strategy's replicas
        distribute.check_batch(strategy, batch_size)
    train_loss = scoring.resolve_loss(loss, model)
    if fine_tune is None and epochs > 0 and train_data is None:
        raise DataError(
            f"Fine-tuning for {epochs} epoch(s) needs labelled training data. Expected "
            "train_data=(x, y) or a tf.data.Dataset. Received: train_data=None"
        )
    taylor = None
    if settings.criterion == "taylor":
        source, data = data_inputs.first_available(
            [("importance_data", importance_data), ("train_data", train_data)]
        )
        if data is None:
            raise DataError(
                "The 'taylor' criterion needs labelled data. Expected importance_data=(x, y) or "
                "train_data=(x, y). Received: neither"
            )
        taylor = data_inputs.take_samples(
            data, specs, settings.taylor_samples, source, outputs=output_specs(model)
        )
        if taylor.labels is None or train_loss is None:
            labels = "given" if taylor.labels is not None else "None"
            raise DataError(
                "The 'taylor' criterion needs labels and a loss. Expected (x, y) data and loss= "
                f"(or a compiled model). Received: labels {labels}, loss={train_loss!r}"
            )
    validation = _validation(validation_data, specs, output_specs(model))

    analysis = analyze(view, settings.skip)
    groups = analysis.prunable
    if not groups:
        raise _nothing_prunable(analysis)
    say(
        verbose, f"channel pruning: {len(groups)} of {len(analysis.groups)} channel groups prunable"
    )
    scores, notes = scoring.group_scores(
        analysis, groups, settings.criterion, model, taylor, train_loss
    )
    keep_counts, warns = _allocate(settings, analysis, groups, scores)
    kept = {
        g.id: importance.top_components(scores[g.id], int(n))
        for g, n in zip(groups, keep_counts, strict=True)
    }
    plans = surgery.plan_layers(analysis, analysis.kept_elements(kept))
    pruned = surgery.rebuild(model, analysis, plans)
    check = data_inputs.synthetic_samples(_fixed(specs), 4)
    if validation is not None:
        count = min(validation.count, CHECK_SAMPLES)
        check = data_inputs.Samples(validation.batch(0, count), None, count, None, "validation")
    check_outputs_finite(models.keras_outputs(pruned, check), "pruned Keras model")

    strict = settings.metric == "flops" and not settings.per_layer
    before = flops.count_flops(model, static=strict)
    after = flops.count_flops(pruned, static=strict)
    report = ChannelPruningReport(
        settings=settings.get_config(),
        keras_flavour=_compat.keras_flavour(model),
        macs_before=before.macs,
        macs_after=after.macs,
        params_before=before.params,
        params_after=after.params,
        target_ratio=None if settings.per_layer else settings.target,
        groups_pruned=sum(1 for g, n in zip(groups, keep_counts, strict=True) if n < g.size),
        groups_total=len(analysis.groups),
        layers=[],
        notes=[settings.describe(), *notes],
        warnings=warns,
    )
    say(verbose, f"pruned: {report.summary()}")
    accuracy = None
    original_acc = validation_accuracy(model, validation)
    if original_acc is not None:
        accuracy = {
            "original": original_acc,
            "pruned": validation_accuracy(pruned, validation),
            "fine_tuned": None,
            "samples": validation.count,
        }
    pruned, description = fine_tuning.run(
        pruned,
        fine_tune,
        epochs,
        train_data,
        specs,
        verbose,
        loss=train_loss,
        optimizer=optimizer,
        compiled_from=model,
        learning_rate_scale=settings.learning_rate_scale,
        batch_size=batch_size,
        validation_data=validation_data,
        callbacks=callbacks,
        strategy=strategy,
    )
    if description is not None and accuracy is not None:
        accuracy["fine_tuned"] = validation_accuracy(pruned, validation)

    report.layers = channel_rows(analysis, graph_view(pruned))
    report.accuracy = accuracy
    report.fine_tuning = description
    for message in warns:
        warnings.warn(message, stacklevel=2)
    say(verbose, f"done: {report.summary()}")
    sizes = {g.id: int(n) for g, n in zip(groups, keep_counts, strict=True)}
    return ChannelPruningResult(pruned, report, _kept_by_layer(groups, sizes))


def _kept_by_layer(groups: list[Group], sizes: dict[int, int]) -> dict[str, int]:
    return {p: int(sizes[g.id]) for g in groups if sizes[g.id] < g.size for p in g.producers}
