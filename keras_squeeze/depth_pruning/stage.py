"""The block removal stage: `ks.BlockRemoval` in a recipe (in the model's own flavour).

Runs first (before channel pruning): importance is measured on a few batches
of the run's training data, the chosen units are removed, linear layers
merged, and the shallower model is fine-tuned with the run's loop (distilled
from the original by default); BatchNormalization's statistics are then
re-estimated on the training data and folded (`BlockRemoval.fold_batchnorm`).
The result is a new plain model, which the later stages take like any model.
"""

from __future__ import annotations

import time

from keras_squeeze.core import models
from keras_squeeze.data import inputs as data_inputs
from keras_squeeze.depth_pruning.remove import remove_blocks
from keras_squeeze.depth_pruning.settings import BlockRemoval
from keras_squeeze.errors import DataError
from keras_squeeze.layer_plan import Decision
from keras_squeeze.stages import NATIVE, Stage, register_stage

# Report rows list at most this many units one per line in the stage notes.
MAX_UNIT_NOTES = 40


def importance_data(ctx, specs, config: BlockRemoval):
    """A few batches of the run's training data, as (x, y) (or x without labels).

    Raises:
        DataError: the criterion needs labels and the training data has none.
    """
    train = ctx.train
    samples = data_inputs.take_samples(
        train.dataset, specs, config.importance_samples, train.source
    )
    x = samples.inputs[0] if len(samples.inputs) == 1 else list(samples.inputs)
    if train.has_labels:
        return (x, samples.labels)
    if config.needs_labels:
        raise DataError(
            f"The '{config.criterion}' block removal criterion compares the task loss, which "
            f"needs labels. Expected (x, y) {train.source}, or "
            "ks.BlockRemoval(criterion='output-distance') for inputs alone. Received: "
            f"{train.source} without labels"
        )
    return x


class BlockRemovalStage(Stage):
    """Removes whole blocks and layers, folds and merges, fine-tunes the shallower model."""

    name = "block_removal"
    title, verb = "block removal", "removes blocks"
    config_class = BlockRemoval
    order = 10
    engine = NATIVE

    def run(self, model, config: BlockRemoval, ctx):
        start = time.perf_counter()
        notes = []

        def fine_tune(shallower):
            notes.append(self.fine_tune(ctx, shallower, config))

        specs = models.input_specs(model)
        validation = ctx.val_samples
        if validation is not None and validation.labels is not None:
            x = validation.inputs[0] if len(validation.inputs) == 1 else list(validation.inputs)
            validation = (x, validation.labels)
        else:
            validation = None
        result = remove_blocks(
            model,
            config,
            importance_data=importance_data(ctx, specs, config),
            train_data=ctx.train.dataset,  # BatchNormalization statistics are re-estimated on it
            validation_data=validation,
            epochs=0,  # the run's loop fine-tunes (fine_tune), not remove_blocks' fit
            fine_tune=fine_tune if ctx.epochs > 0 else None,
            loss=ctx.loss,
            verbose=ctx.verbose,
        )
        report = result.report
        decisions = _decisions(report, {layer.name for layer in models.walk_layers(result.model)})
        unit_notes = [u.describe() for u in report.units if u.removable]
        if len(unit_notes) > MAX_UNIT_NOTES:
            extra = len(unit_notes) - MAX_UNIT_NOTES
            unit_notes = [*unit_notes[:MAX_UNIT_NOTES], f"... {extra} more (see details.units)"]
        record = self.record(
            ctx,
            config.get_config(),
            time.perf_counter() - start,
            result.model,
            decisions,
            [report.summary(), *unit_notes, *report.merge_notes(), *report.notes, *notes],
            details=report.to_dict(),
        )
        return result.model, record

    def annotate(self, report, row, decision, tensors, record) -> None:
        for key, names in decision.setting.items():
            row.targets[key] = ", ".join(names)
        if decision.reason:
            row.add_reason(f"{self.name}: {decision.reason}")


def _decisions(report, final_layers: set[str]) -> dict[str, Decision]:
    """Per layer of the result: what was folded or merged into it ({"folded": names,
    "merged": names}), and why the unit it belongs to stayed."""
    merged: dict[str, dict[str, list[str]]] = {}
    for merge in report.merged:
        if merge["into"] in final_layers:
            key = "folded" if merge["kind"] == "bn" else "merged"
            merged.setdefault(merge["into"], {}).setdefault(key, []).append(merge["removed"])
    reasons: dict[str, str] = {}
    for unit in report.units:
        anchor = next((n for n in unit.layers if n in final_layers), None)
        if unit.removed or anchor is None or anchor in reasons:
            continue
        if unit.removable:
            imp = "" if unit.importance is None else f" (importance {unit.importance:.4g})"
            why = f"kept{imp}: {unit.reason}"
        else:
            why = f"cannot be removed: {unit.reason}"
        reasons[anchor] = f"{unit.kind} unit '{unit.name}' {why}"
    return {
        name: Decision(merged.get(name), reasons.get(name))
        for name in dict.fromkeys([*merged, *reasons])
    }


STAGE = register_stage(BlockRemovalStage())
