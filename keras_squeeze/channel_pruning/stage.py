"""The channel pruning stage: `ks.ChannelPruning` in a recipe (in the model's own flavour)."""

from __future__ import annotations

import time

from keras_squeeze.channel_pruning.prune import prune_channels
from keras_squeeze.channel_pruning.settings import ChannelPruning
from keras_squeeze.layer_plan import Decision
from keras_squeeze.stages import NATIVE, Stage, register_stage


class ChannelPruneStage(Stage):
    """Removes whole channels, then fine-tunes the smaller plain model with the run's loop.

    Runs natively (a Keras 3 model stays Keras 3): the result is a new model
    with no wrappers, which the later stages take like any model.
    """

    name = "channel_prune"
    title, verb = "channel pruning", "prunes channels"
    config_class = ChannelPruning
    order = 20
    engine = NATIVE

    def run(self, model, config: ChannelPruning, ctx):
        start = time.perf_counter()
        notes = []

        def fine_tune(pruned):
            notes.append(self.fine_tune(ctx, pruned, config))

        result = prune_channels(model, config, fine_tune=fine_tune, verbose=ctx.verbose)
        report = result.report
        decisions = {}
        for row in report.layers:
            if row.channels_before != row.channels_after:
                decisions[row.name] = Decision((row.channels_before, row.channels_after), None)
            elif row.reason:
                decisions[row.name] = Decision(None, row.reason)
        record = self.record(
            ctx,
            config.get_config(),
            time.perf_counter() - start,
            result.model,
            decisions,
            [report.summary(), *report.notes, *notes],
            details=report.to_dict(),
        )
        return result.model, record

    def annotate(self, report, row, decision, tensors, record) -> None:
        before, after = decision.setting
        row.targets["channels"] = f"{before} -> {after}"


STAGE = register_stage(ChannelPruneStage())
