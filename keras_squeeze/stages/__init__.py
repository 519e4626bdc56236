"""Training stages: the `Stage` interface and the registry every stage joins.

See `keras_squeeze.stages.base` for what a stage owns and
`keras_squeeze.stages.registry` for how the pipeline finds it.
"""

from keras_squeeze.stages.base import (
    NATIVE,
    TF_KERAS,
    Stage,
    StageRecord,
    TrainingContext,
    chosen_layers,
    validation_accuracy,
)
from keras_squeeze.stages.registry import (
    get_stage,
    order_text,
    register_stage,
    stages,
    unregister_stage,
    wrappers,
)

__all__ = [
    "NATIVE",
    "TF_KERAS",
    "Stage",
    "StageRecord",
    "TrainingContext",
    "chosen_layers",
    "get_stage",
    "order_text",
    "register_stage",
    "stages",
    "unregister_stage",
    "validation_accuracy",
    "wrappers",
]
