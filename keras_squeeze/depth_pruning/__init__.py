"""Depth pruning: remove whole residual blocks and layers that do little, merge what merges.

    import keras_squeeze as ks
    result = ks.remove_blocks(model, ks.BlockRemoval(target=0.7, metric="flops"),
                              train_data=(x, y), epochs=3, validation_data=(x_test, y_test))
    result.model      # a new, shallower plain Keras model of the same flavour
    result.report     # each unit with its importance and fate; depth, MACs, params

Modules by role: `settings` (BlockRemoval), `units` (the removable units on
the graph, and why the others cannot go), `importance` (numpy maths and the
greedy choice), `scoring` (importance and costs from a model), `surgery`
(rebuilding the model, and running it with units bypassed), `merging`
(BatchNormalization folding, linear-layer merging), `report`, `remove` (the
entry point) and `stage` (the "block_removal" training stage).
"""

from keras_squeeze.depth_pruning.remove import BlockRemovalResult, merge_layers, remove_blocks
from keras_squeeze.depth_pruning.report import BlockRemovalReport, UnitRow
from keras_squeeze.depth_pruning.settings import BlockRemoval
from keras_squeeze.depth_pruning.units import Unit, find_units

__all__ = [
    "BlockRemoval",
    "BlockRemovalReport",
    "BlockRemovalResult",
    "Unit",
    "UnitRow",
    "find_units",
    "merge_layers",
    "remove_blocks",
]
