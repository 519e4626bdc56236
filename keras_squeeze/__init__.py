"""keras_squeeze: compress a Keras model in one call.

    import keras_squeeze as ks
    result = ks.compress(model, recipe="int8", representative_data=x_train)
    result.save("squeezed/")

Importing this package is cheap and has no side effects: TensorFlow, tfmot and
the exporters load on first use, and the user's `tf.keras` is left as it was.
"""

from __future__ import annotations

import importlib

from keras_squeeze._version import __version__
from keras_squeeze.errors import (
    AccuracyBudgetWarning,
    BenchmarkError,
    BridgeError,
    CheckpointError,
    ConfigError,
    DataError,
    DelegateError,
    DependencyError,
    DeviceError,
    ExportError,
    KerasSqueezeError,
    ModelError,
    NonFiniteError,
    OutputError,
    RecipeError,
    VerificationError,
)

# Public name -> module that defines it; loaded on first attribute access.
_LAZY_ATTRS = {
    "compress": "keras_squeeze.api.compress",
    "CompressionResult": "keras_squeeze.api.result",
    "Recipe": "keras_squeeze.api.recipe",
    "RECIPES": "keras_squeeze.api.recipe",
    "load_model": "keras_squeeze.core.models",
    "Report": "keras_squeeze.report.report",
    "Fidelity": "keras_squeeze.report.metrics",
    "Prune": "keras_squeeze.pruning.config",
    "Distill": "keras_squeeze.distillation.config",
    "distill": "keras_squeeze.distillation.api",
    "benchmark": "keras_squeeze.bench",
    "BenchmarkResult": "keras_squeeze.bench",
    "QAT": "keras_squeeze.quantization.qat_config",
    "Cluster": "keras_squeeze.clustering.config",
    "ChannelPruning": "keras_squeeze.channel_pruning.settings",
    "prune_channels": "keras_squeeze.channel_pruning.prune",
    "count_flops": "keras_squeeze.channel_pruning.flops",
    "BlockRemoval": "keras_squeeze.depth_pruning.settings",
    "remove_blocks": "keras_squeeze.depth_pruning.remove",
    "register_layer": "keras_squeeze.keras_bridge.registry",
    "unregister_layer": "keras_squeeze.keras_bridge.registry",
    "Stage": "keras_squeeze.stages",
    "register_stage": "keras_squeeze.stages",
    "unregister_stage": "keras_squeeze.stages",
    "sensitivity": "keras_squeeze.layer_sensitivity.measure",
    "Sensitivity": "keras_squeeze.layer_sensitivity.table",
}
_LAZY_SUBMODULES = (
    "export",
    "data",
    "quantization",
    "report",
    "bench",
    "keras_bridge",
    "channel_pruning",
    "depth_pruning",
    "distillation",
    "pruning",
    "clustering",
    "stages",
    "edgetpu",
    "layer_sensitivity",
)

__all__ = [
    "AccuracyBudgetWarning",
    "BenchmarkError",
    "BridgeError",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "DelegateError",
    "DependencyError",
    "DeviceError",
    "ExportError",
    "KerasSqueezeError",
    "ModelError",
    "NonFiniteError",
    "OutputError",
    "RecipeError",
    "VerificationError",
    "__version__",
    *_LAZY_ATTRS,
    *_LAZY_SUBMODULES,
]


def __getattr__(name: str):
    if name in _LAZY_ATTRS:
        value = getattr(importlib.import_module(_LAZY_ATTRS[name]), name)
    elif name in _LAZY_SUBMODULES:
        value = importlib.import_module(f"keras_squeeze.{name}")
    else:
        raise AttributeError(f"module 'keras_squeeze' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
