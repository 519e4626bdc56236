"""Structured channel pruning: remove whole filters for a smaller, faster dense model.

    from keras_squeeze.channel_pruning import ChannelPruning, prune_channels
    result = prune_channels(model, ChannelPruning(target=0.5, metric="flops"),
                            train_data=(x, y), epochs=3, validation_data=(x_test, y_test))
    result.model      # a new, smaller plain Keras model of the same flavour
    result.report     # channels per layer, MACs / params before and after, accuracy

Modules by role: `settings` (ChannelPruning), `graph` (the layer graph of
either Keras flavour), `rules` (the table of built-in layers), `dependency`
(channel groups), `importance` and `selection` (numpy maths), `scoring`
(importance from a model), `flops` (MAC / parameter counting), `surgery`
(rebuilding the model), `fine_tune`, `report`, `prune` (the entry point).
"""

from keras_squeeze.channel_pruning.dependency import Analysis, Group, analyze
from keras_squeeze.channel_pruning.flops import CostCount, count_flops
from keras_squeeze.channel_pruning.graph import graph_view
from keras_squeeze.channel_pruning.prune import ChannelPruningResult, prune_channels
from keras_squeeze.channel_pruning.report import ChannelPruningReport, ChannelRow
from keras_squeeze.channel_pruning.settings import ChannelPruning

__all__ = [
    "Analysis",
    "ChannelPruning",
    "ChannelPruningReport",
    "ChannelPruningResult",
    "ChannelRow",
    "CostCount",
    "Group",
    "analyze",
    "count_flops",
    "graph_view",
    "prune_channels",
]
