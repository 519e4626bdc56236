"""tf.distribute for fine-tuning: the strategy a run trains under, checked before training.

`strategy=` on compress() and ks.distill takes any `tf.distribute.Strategy`
(default: the strategy in scope, `tf.distribute.get_strategy()`, when the
caller is inside `strategy.scope()`; else TensorFlow's default one-device
strategy). Everything that makes variables for training (the working copies,
the engine's wrappers, the teacher, the trainer and its optimizer) is created
inside `strategy.scope()`, and Keras' `fit` distributes the data: each global
batch of `batch_size` samples is split across the replicas, so `batch_size`
is the global batch and must divide by the number of replicas. The learning
rate is not scaled with the number of replicas: at the same global batch a
run on N devices takes the same steps as one on one device.
"""

from __future__ import annotations

import contextlib

from keras_squeeze.errors import DataError, RecipeError


def resolve(strategy):
    """The strategy to train under: `strategy`, else the one in scope, else None (default).

    Raises:
        RecipeError: `strategy` is not a tf.distribute.Strategy.
    """
    import tensorflow as tf

    if strategy is None:
        return tf.distribute.get_strategy() if tf.distribute.has_strategy() else None
    if not isinstance(strategy, tf.distribute.Strategy):
        raise RecipeError(
            "strategy must be a tf.distribute.Strategy. Expected e.g. "
            "strategy=tf.distribute.MirroredStrategy(), or None for the strategy in scope. "
            f"Received: {type(strategy).__name__}"
        )
    return strategy


def replicas(strategy) -> int:
    return 1 if strategy is None else int(strategy.num_replicas_in_sync)


def check_batch(strategy, batch_size: int) -> None:
    """Refuses a global batch that the replicas cannot share evenly.

    Raises:
        DataError: batch_size not a multiple of the number of replicas.
    """
    n = replicas(strategy)
    if batch_size % n:
        raise DataError(
            f"batch_size is the global batch, split evenly across the {n} replicas of "
            f"{name(strategy)}. Expected a multiple of {n}. Received: "
            f"batch_size={batch_size}"
        )


def scope(strategy):
    """`strategy.scope()`, or a null context for no strategy (or the one already in scope)."""
    if strategy is None:
        return contextlib.nullcontext()
    import tensorflow as tf

    if tf.distribute.has_strategy() and tf.distribute.get_strategy() is strategy:
        return contextlib.nullcontext()
    return strategy.scope()


# tf.distribute's public names; e.g. MultiWorkerMirroredStrategy's class is named
# CollectiveAllReduceStrategy.
PUBLIC_NAMES = (
    "MultiWorkerMirroredStrategy",
    "MirroredStrategy",
    "TPUStrategy",
    "OneDeviceStrategy",
    "experimental.CentralStorageStrategy",
    "experimental.ParameterServerStrategy",
)


def name(strategy) -> str:
    """The strategy's public tf.distribute name (its class name for another kind)."""
    import tensorflow as tf

    for public in PUBLIC_NAMES:
        cls = tf.distribute
        for part in public.split("."):
            cls = getattr(cls, part, None)
        if isinstance(cls, type) and isinstance(strategy, cls):
            return public.rsplit(".", 1)[-1]
    return type(strategy).__name__


def describe(strategy) -> dict | None:
    """For the report: the strategy's name and number of replicas (None without one)."""
    if strategy is None:
        return None
    return {"strategy": name(strategy), "replicas": replicas(strategy)}


def refuse_step_hooks(title: str, replicas: int, model) -> None:
    """A native engine that re-applies its constraint after every optimizer step (pruning
    masks, cluster assignments) does so with assignments this package has not made safe
    across replicas: such a stage is refused on several replicas before anything trains.

    Raises:
        RecipeError: naming the stage and the way out.
    """
    if replicas > 1:
        raise RecipeError(
            f"The {title} stage's native engine (for subclassed models or engine='native') "
            "re-applies its constraint after every optimizer step, which does not run "
            "distributed. Expected engine='auto' or 'tfmot' on a Sequential or functional "
            f"model, or one device (strategy=None). Received: {replicas} replicas, "
            f"{type(model).__name__}"
        )


def is_chief(strategy=None) -> bool:
    """Whether this process writes the run's files (artifacts, checkpoints).

    Every process of a one-host strategy is the chief. Under
    MultiWorkerMirroredStrategy (TF_CONFIG) it is the task of type "chief", else
    worker 0 when the cluster has no chief; the other workers train the same
    steps and write nothing.
    """
    if strategy is None:
        import tensorflow as tf

        strategy = tf.distribute.get_strategy() if tf.distribute.has_strategy() else None
    resolver = getattr(strategy, "cluster_resolver", None) if strategy is not None else None
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and int(resolver.task_id) == 0 and not has_chief
