"""remove_blocks(): a shallower plain Keras model with whole blocks and layers removed."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from keras_squeeze import _compat
from keras_squeeze.channel_pruning import fine_tune as fine_tuning
from keras_squeeze.channel_pruning import flops
from keras_squeeze.channel_pruning.graph import GraphView, graph_view
from keras_squeeze.channel_pruning.scoring import resolve_loss
from keras_squeeze.core import models
from keras_squeeze.core.progress import say
from keras_squeeze.data import inputs as data_inputs
from keras_squeeze.depth_pruning import batchnorm, importance, merging, scoring, surgery
from keras_squeeze.depth_pruning.report import BlockRemovalReport, UnitRow, call_count, depth
from keras_squeeze.depth_pruning.settings import BlockRemoval
from keras_squeeze.depth_pruning.units import Unit, find_units
from keras_squeeze.errors import DataError, ModelError, RecipeError
from keras_squeeze.export.artifact import check_outputs_finite
from keras_squeeze.training import defaults, distribute
from keras_squeeze.training.evaluation import validation_accuracy

MAX_VALIDATION_SAMPLES = 10_000
MAX_LISTED_REASONS = 12
CHECK_SAMPLES = 32
# Folding and merging are exact in real arithmetic; float32 rounding stays far below this.
MERGE_MAX_REL_DIFF = 1e-4
# Samples of the training data BatchNormalization statistics are re-estimated on before
# folding (fold_batchnorm="after"): at 64 per batch, 8 forward passes.
REESTIMATE_SAMPLES = 512


@dataclasses.dataclass
class BlockRemovalResult:
    """The shallower model and what was done.

    Attributes:
        model: the new Keras model (same flavour as the input, plain layers).
        report: a BlockRemovalReport.
        removed: names of the removed units: the identities at inference, then the
            others in the order they were chosen.
    """

    model: object
    report: BlockRemovalReport
    removed: list[str]


def _settings(settings) -> BlockRemoval:
    if settings is None:
        return BlockRemoval()
    if isinstance(settings, BlockRemoval):
        return settings
    if isinstance(settings, dict):
        return BlockRemoval.from_config(settings)
    raise RecipeError(
        "settings must be a BlockRemoval. Expected ks.BlockRemoval(...), its config dict or "
        f"None. Received: {type(settings).__name__}"
    )


def _skipped(skip, units: list[Unit], view: GraphView) -> set[str]:
    """Names of the units `skip` keeps.

    Raises:
        RecipeError: an entry names neither a unit nor a layer of the model.
    """
    names = {u.name for u in units}
    kept, unknown = set(), []
    for entry in skip:
        if entry in names:
            kept.add(entry)
        elif entry in view.calls:
            kept.update(u.name for u in units if entry in u.layers)
        else:
            unknown.append(entry)
    if unknown:
        known = [u.name for u in units if u.removable] or [u.name for u in units]
        shown = ", ".join(map(repr, known[:8])) + (", ..." if len(known) > 8 else "")
        raise RecipeError(
            "skip names units or layers that are not in the model. Expected names of its "
            f"removable units ({shown or 'none'}) or of its layers. Received: {unknown}"
        )
    return kept


def _nothing_removable(units: list[Unit], skipped: set[str]) -> ModelError:
    reasons = []
    for u in units:
        if u.name in skipped and u.removable:
            reasons.append(f"{u.name}: in skip")
        elif not u.removable:
            reasons.append(f"{u.name}: {u.reason}")
    free = [u.name for u in units if u.removable and u.free and u.name not in skipped]
    if free:
        reasons.append(f"{', '.join(free)}: identities at inference (removing them saves nothing)")
    listed = " | ".join(reasons[:MAX_LISTED_REASONS])
    extra = len(reasons) - MAX_LISTED_REASONS
    more = f" | ... ({extra} more)" if extra > 0 else ""
    return ModelError(
        "No block or layer of the model can be removed. Expected residual blocks x + f(x), "
        "or Conv / Dense layers whose input and output shapes match. "
        f"Received: {listed or 'no residual block, Conv or Dense layer'}{more}"
    )


def _subclassed(model) -> ModelError:
    return ModelError(
        "Block removal needs the model's layer graph, which a subclassed model does not "
        "expose. Expected a functional or Sequential model (keras.Model(inputs, outputs) or "
        f"keras.Sequential). Received: a subclassed model of class {type(model).__qualname__}"
    )


def _importance_samples(settings: BlockRemoval, specs, importance_data, train_data):
    source, data = data_inputs.first_available(
        [("importance_data", importance_data), ("train_data", train_data)]
    )
    needs = "labelled data" if settings.needs_labels else "data"
    if data is None:
        raise DataError(
            f"Block removal measures each unit's importance on {needs}. Expected "
            f"importance_data= or train_data= ({'(x, y)' if settings.needs_labels else 'inputs'}"
            f", a few batches are used). Received: neither"
        )
    samples = data_inputs.take_samples(data, specs, settings.importance_samples, source)
    if settings.needs_labels and samples.labels is None:
        raise DataError(
            f"The '{settings.criterion}' criterion compares the task loss, which needs labels. "
            f"Expected (x, y) data, or criterion='output-distance' for inputs alone. Received: "
            f"{source} without labels"
        )
    return samples


def _removal_count_bound(savings: dict[str, float], total: float, budget: float) -> int:
    """The most removals the greedy choice can need: cheapest savings first."""
    cost, n = total, 0
    for saving in sorted(savings.values()):
        if cost <= budget:
            break
        cost -= saving
        n += 1
    return max(n, 1)


def verify_merged(reference, merged, samples: data_inputs.Samples) -> float:
    """The largest output difference of `merged` from `reference`, relative to the largest
    output magnitude.

    Raises:
        ModelError: above `MERGE_MAX_REL_DIFF`.
    """
    worst = 0.0
    ref = models.keras_outputs(reference, samples)
    got = models.keras_outputs(merged, samples)
    for r, g in zip(ref, got, strict=True):
        scale = max(float(np.max(np.abs(r))), 1e-6)
        worst = max(worst, float(np.max(np.abs(r - g))) / scale)
    if worst > MERGE_MAX_REL_DIFF:
        raise ModelError(
            "The model with BatchNormalization folded and linear layers merged does not "
            f"reproduce the model it was made from. Expected a relative difference <= "
            f"{MERGE_MAX_REL_DIFF:g}. Received: {worst:.3g}"
        )
    return worst


def merge_layers(model, fold_batchnorm: bool = True, merge_linear: bool = True):
    """A copy of `model` with BatchNormalization folded in and linear pairs merged.

    Returns:
        (the new model, what was merged as {"kind", "removed", "into"} dicts); the
        model itself when nothing could be merged.
    """
    done: list[dict] = []
    current = model
    passes = [merging.plan_folds] * fold_batchnorm + [merging.plan_merges] * merge_linear
    for planner in passes:
        while True:  # linear merges can chain (A -> B -> C): repeat until none is left
            view = graph_view(current)
            plan, merges = planner(view)
            if not merges:
                break
            current = surgery.rebuild(current, view, plan)
            done += [dataclasses.asdict(m) for m in merges]
            if planner is merging.plan_folds:
                break
    return current, done


def _fold_after(model, settings, tuned: bool, data, check, notes, verbose):
    """Folds `model`'s BatchNormalization (and merges linear pairs) after fine-tuning, its
    statistics first re-estimated on the training data when it was fine-tuned (without
    fine-tuning, the weights and statistics are the original's): (the new model, what was
    merged)."""
    specs, train_data, importance_data = data
    if tuned:
        source, given = data_inputs.first_available(
            [("train_data", train_data), ("importance_data", importance_data)]
        )
        samples = data_inputs.take_samples(given, specs, REESTIMATE_SAMPLES, source)
        names = batchnorm.reestimate(model, samples)
        if names:
            say(verbose, f"block removal: re-estimating {len(names)} BatchNormalization layer(s)")
            notes.append(
                f"statistics of {len(names)} BatchNormalization layer(s) re-estimated on "
                f"{samples.describe()} for the fine-tuned weights"
            )
    folded, merged = merge_layers(model, True, settings.merge_linear)
    if not merged:
        return model, []
    worst = verify_merged(model, folded, check)
    notes.append(
        f"{len(merged)} layer(s) folded or merged into the layer before"
        + (", after fine-tuning" if tuned else "")
        + f" (largest relative output difference {worst:.2g})"
    )
    return folded, merged


def _costs(settings, model, view, units, blocks, verbose):
    """(savings per candidate, total cost, savings to rank by (None: the same), per-unit
    MACs / params, latency ms per unit, the model's CostCount)."""
    per_unit, count = scoring.unit_costs(model, units, view, static=settings.metric == "flops")
    latency, rank = {}, None
    if settings.metric == "flops":
        savings = {u.name: float(per_unit[u.name]["macs"]) for u in blocks}
        total = float(count.macs)
    elif settings.metric == "params":
        savings = {u.name: float(per_unit[u.name]["params"]) for u in blocks}
        total = float(count.params)
    elif settings.metric == "blocks":
        savings = {u.name: 1.0 for u in blocks}
        total = float(sum(1 for u in units if u.removable and not u.free))
        if count.macs is not None:  # which blocks: the least important per MAC saved
            rank = {u.name: float(per_unit[u.name]["macs"]) for u in blocks}
    else:
        say(verbose, f"block removal: measuring the latency each of {len(blocks)} units costs")
        latency, base = scoring.latency_savings(model, view, blocks, verbose)
        savings = dict(latency)
        total = base
    return savings, total, rank, per_unit, latency, count


def remove_blocks(
    model,
    settings: BlockRemoval | dict | None = None,
    *,
    importance_data=None,
    train_data=None,
    validation_data=None,
    epochs: int | None = None,
    loss=None,
    optimizer=None,
    batch_size: int = 32,
    fine_tune: fine_tuning.FineTune | None = None,
    custom_objects: dict | None = None,
    verbose: int = 1,
    strategy=None,
) -> BlockRemovalResult:
    """Removes whole residual blocks and layers that do little; returns a shallower model.

    Finds the removable units on the graph (see `keras_squeeze.depth_pruning.units`),
    measures each one's importance bypassed alone on a few batches (the
    settings' criterion), removes the least important per cost saved until the
    cost is at or below `settings.target` of the original (re-measuring after
    each removal when that is cheap), rebuilds a plain model of the input's
    flavour, merges consecutive linear layers and fine-tunes it; then (the
    default `fold_batchnorm="after"`) re-estimates the BatchNormalization
    statistics of a fine-tuned model on `REESTIMATE_SAMPLES` of the training
    data (else the importance data) and folds each normalization into the layer
    before it. The user's
    model is never changed.

    Args:
        model: a functional or Sequential Keras 3 or tf_keras model, or a path.
        settings: a BlockRemoval (or its config); default: keep 70% of the
            FLOPs, "bypass-loss" importance.
        importance_data: the data importance is measured on ((x, y) for
            "bypass-loss" and "taylor"; inputs are enough for
            "output-distance"); default: `train_data`.
        train_data: labelled data for fine-tuning (and importance).
        validation_data: labelled data to report accuracy before and after.
        epochs: fine-tuning epochs (default `training.defaults.DEFAULT_EPOCHS`
            with `train_data`, else none; 0: no fine-tuning).
        loss: the task loss; default cross-entropy for classifiers, mean
            squared error otherwise (the fine-tuning loop's default).
        optimizer: the run's optimizer (default: the model's compiled one,
            else Adam at 1e-3), at `settings.learning_rate_scale` of its rate.
        batch_size: batch size of in-memory training data.
        fine_tune: a callable `fn(model)` replacing the Model.fit step (e.g. a
            distillation loop); it trains in place or returns the model to use.
        custom_objects: custom layers by name, for loading from a path.
        verbose: 0 silent, 1 a line per step and Keras progress bars.
        strategy: a `tf.distribute.Strategy` to fine-tune under, as in
            `prune_channels` (`batch_size` is then the global batch).

    Returns:
        A BlockRemovalResult with `.model`, `.report` and `.removed`.

    Raises:
        ModelError: not a Keras model, a subclassed model, or no unit can be
            removed (each candidate's reason is listed).
        RecipeError: invalid settings, or a skip entry that names no unit or
            layer of the model.
        DataError: missing or unlabelled data where it is needed.

    Example:
        >>> result = ks.remove_blocks(model, ks.BlockRemoval(target=0.7),
        ...                           train_data=(x, y), epochs=3)
        >>> result.removed
        ['conv2_block3', 'conv4_block5', 'conv4_block4']
    """
    model = models.resolve_model(model, custom_objects)
    strategy = distribute.resolve(strategy)
    settings = _settings(settings)
    if not models.is_graph_model(model):
        raise _subclassed(model)
    view = graph_view(model)
    models.check_finite_weights(model)
    specs = models.input_specs(model)
    units = find_units(view)
    skipped = _skipped(settings.skip, units, view)
    candidates = [u for u in units if u.removable and u.name not in skipped]
    blocks = [u for u in candidates if not u.free]
    if not blocks:
        raise _nothing_removable(units, skipped)
    if epochs is None:
        epochs = defaults.DEFAULT_EPOCHS if train_data is not None and fine_tune is None else 0
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise DataError(f"epochs must be a non-negative integer. Received: epochs={epochs!r}")
    if fine_tune is None and epochs > 0:  # it fits, on the strategy's replicas
        distribute.check_batch(strategy, batch_size)
    if fine_tune is None and epochs > 0 and train_data is None:
        raise DataError(
            f"Fine-tuning for {epochs} epoch(s) needs labelled training data. Expected "
            "train_data=(x, y) or a tf.data.Dataset. Received: train_data=None"
        )
    samples = _importance_samples(settings, specs, importance_data, train_data)
    user_loss = resolve_loss(loss, model) if loss is not None else None
    loss_fn = scoring.task_loss(model, user_loss)
    validation = None
    if validation_data is not None:
        validation = data_inputs.take_samples(
            validation_data, specs, MAX_VALIDATION_SAMPLES, "validation_data"
        )

    say(
        verbose,
        f"block removal: {len(blocks)} removable units of {len(units)} candidates; "
        f"{settings.describe()}",
    )
    savings, total, rank, per_unit, latency_ms, before = _costs(
        settings, model, view, units, blocks, verbose
    )
    budget = settings.target * total
    remeasure = settings.remeasure
    if remeasure is None:
        batches = -(-samples.count // scoring.EVAL_BATCH)
        rounds = _removal_count_bound(savings, total, budget)
        remeasure = scoring.remeasure_default(settings.criterion, len(blocks), rounds, batches)
    by_name = {u.name: u for u in units}
    scorer = scoring.Scorer(view, samples, settings.criterion, loss_fn)

    def measure(names, removed):
        return scorer.scores([by_name[n] for n in names], [by_name[n] for n in removed])

    selection = importance.greedy(
        [u.name for u in blocks], savings, total, budget, measure, remeasure, rank
    )
    gone = [u for u in candidates if u.free] + [by_name[n] for n in selection.removed]
    notes = [settings.describe() + f" ({samples.describe()})"]
    notes.append(
        f"importance measured {selection.rounds} time(s) ({scorer.runs} bypassed runs); "
        + ("re-measured after each removal" if remeasure else "measured once, alone")
    )
    warns = []
    if not selection.reached:
        warns.append(
            f"the target {settings.target:g} of the {settings.metric} cannot be reached by "
            f"removing units: removing every removable one leaves "
            f"{selection.cost / total:.3f} of it"
        )
    say(verbose, f"block removal: removing {', '.join(u.name for u in gone)}")
    plan = surgery.bypass_plan(gone)
    removed_model = surgery.rebuild(model, view, plan)
    check = validation or samples
    check = data_inputs.Samples(
        check.batch(0, min(check.count, CHECK_SAMPLES)),
        None,
        min(check.count, CHECK_SAMPLES),
        None,
        check.source,
    )
    check_outputs_finite(models.keras_outputs(removed_model, check), "model with units removed")

    accuracy = None
    original_acc = validation_accuracy(model, validation)
    if original_acc is not None:
        accuracy = {
            "original": original_acc,
            "removed": validation_accuracy(removed_model, validation),
            "fine_tuned": None,
            "samples": validation.count,
        }
    fold = settings.fold_batchnorm
    merged_model, merged = merge_layers(removed_model, fold == "before", settings.merge_linear)
    if merged:
        worst = verify_merged(removed_model, merged_model, check)
        notes.append(
            f"{len(merged)} layer(s) folded or merged into the layer before, before "
            f"fine-tuning (largest relative output difference {worst:.2g})"
        )
        removed_model = merged_model
    removed_model, description = fine_tuning.run(
        removed_model,
        fine_tune,
        epochs,
        train_data,
        specs,
        verbose,
        loss=user_loss,
        optimizer=optimizer,
        compiled_from=model,
        learning_rate_scale=settings.learning_rate_scale,
        batch_size=batch_size,
        validation_data=validation_data,
        strategy=strategy,
    )
    if fold == "after" and models.is_graph_model(removed_model):
        removed_model, folds = _fold_after(
            removed_model,
            settings,
            description is not None,
            (specs, train_data, importance_data),
            check,
            notes,
            verbose,
        )
        merged += folds
    if description is not None and accuracy is not None:
        accuracy["fine_tuned"] = validation_accuracy(removed_model, validation)

    final = removed_model
    final_view = graph_view(final)
    after = flops.count_flops(final, static=False)
    latency = None
    if settings.metric == "latency" or settings.measure_latency:
        latency = _measure_latency(model, final, verbose)
    rows = _rows(units, skipped, selection, per_unit, latency_ms, candidates)
    report = BlockRemovalReport(
        settings=settings.get_config(),
        keras_flavour=_compat.keras_flavour(model),
        depth_before=depth(view),
        depth_after=depth(final_view),
        layers_before=call_count(view),
        layers_after=call_count(final_view),
        macs_before=before.macs,
        macs_after=after.macs,
        params_before=before.params,
        params_after=after.params,
        units=rows,
        merged=merged,
        latency=latency,
        accuracy=accuracy,
        fine_tuning=description,
        notes=notes,
        warnings=warns,
    )
    for message in warns:
        warnings.warn(message, stacklevel=2)
    say(verbose, f"done: {report.summary()}")
    return BlockRemovalResult(final, report, [u.name for u in gone])


def _measure_latency(original, final, verbose: int) -> dict:
    from keras_squeeze.bench import compare_latency
    from keras_squeeze.export import tflite

    say(verbose, "block removal: timing the float .tflite before and after, interleaved")
    return compare_latency(
        tflite.convert(original), tflite.convert(final), num_threads=1, min_seconds=1.0
    )


def _rows(units, skipped, selection, per_unit, latency_ms, candidates) -> list[UnitRow]:
    step = {name: i + 1 for i, name in enumerate(selection.removed)}
    free = {u.name for u in candidates if u.free}
    rows = []
    for u in units:
        removed = u.name in step or u.name in free
        reason = u.reason
        if reason is None and u.name in skipped:
            reason = "in skip"
        elif reason is None and not removed:
            reason = "the target was met removing units less important per cost saved"
        rows.append(
            UnitRow(
                name=u.name,
                kind=u.kind,
                layers=list(u.layers),
                removable=u.removable,
                removed=removed,
                importance=selection.alone.get(u.name),
                importance_at_removal=selection.at_removal.get(u.name),
                step=step.get(u.name),
                macs=per_unit[u.name]["macs"],
                params=per_unit[u.name]["params"],
                latency_ms=latency_ms.get(u.name),
                reason=reason,
                note=u.note,
            )
        )
    return rows
