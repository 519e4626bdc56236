"""The user's Keras callbacks in every fine-tune: checked once, told the stage, early stops noted.

`callbacks=` on compress(), ks.distill and prune_channels is a list of Keras
callbacks of the Keras flavour the model trains in (tf_keras for the stages
that run through tfmot, the model's own flavour for the native ones). The same
objects run in every stage's `fit`, through the one loop
(`training.trainer.fine_tune`); before each stage's `fit` each gets the
attribute `stage` set to the stage's name ("prune", "qat", "distill",
"channel-prune", ...), so `self.stage` tells a callback which stage it sees.
A callback that stops training (EarlyStopping, or `model.stop_training =
True`) ends that stage early; the next stage starts from its model, and the
stage's notes say at which epoch it stopped.
"""

from __future__ import annotations

from keras_squeeze import _compat
from keras_squeeze.errors import DependencyError, RecipeError


def _is_callback(obj) -> bool:
    return any(
        base.__name__ == "Callback" and _compat.keras_flavour(base) is not None
        for base in type(obj).__mro__
    )


def check_callbacks(callbacks) -> tuple:
    """`callbacks` (None or a list / tuple of Keras callbacks) as a tuple.

    Raises:
        RecipeError: not a list of Keras callbacks.
    """
    if callbacks is None:
        return ()
    if not isinstance(callbacks, (list, tuple)):
        raise RecipeError(
            "callbacks must be a list of Keras callbacks. Expected e.g. "
            f"callbacks=[keras.callbacks.EarlyStopping()]. Received: {type(callbacks).__name__}"
        )
    for cb in callbacks:
        if not _is_callback(cb):
            raise RecipeError(
                "Each of callbacks must be a Keras callback (a subclass of keras.callbacks."
                "Callback or tf_keras.callbacks.Callback). Expected Keras callbacks. Received: "
                f"{type(cb).__name__}"
            )
    return tuple(callbacks)


def check_flavour(callbacks, flavour: str, where: str) -> None:
    """Refuses callbacks of another Keras flavour than the one `where` trains in.

    Raises:
        RecipeError: naming the callback, both flavours and the stage.
    """
    for cb in callbacks:
        own = _compat.keras_flavour(cb)
        if own != flavour:
            package = "tf_keras" if flavour == _compat.TF_KERAS else "keras"
            raise RecipeError(
                f"{where} trains a {flavour} model, and Keras runs only callbacks of the "
                f"model's own Keras flavour. Expected {package}.callbacks callbacks for it (the "
                "stages that run through tfmot train a tf_keras working copy, also of a Keras 3 "
                f"model). Received: {type(cb).__name__} from {own}"
            )


def for_stage(callbacks, stage: str) -> list:
    """The callbacks, each told the stage it is about to see (`callback.stage`)."""
    for cb in callbacks:
        cb.stage = stage
    return list(callbacks)


def stopped_early(history, epochs: int) -> int | None:
    """The number of epochs a fit ran when a callback stopped it before `epochs`, else None
    (the epochs restored from a checkpoint count: `history.initial_epoch`)."""
    ran = getattr(history, "initial_epoch", 0) + len(history.epoch)
    return ran if ran < epochs else None


def stopped_note(history, epochs: int) -> str | None:
    ran = stopped_early(history, epochs)
    if ran is None:
        return None
    return f"stopped early by a callback at epoch {ran} of {epochs}"


def require_tensorboard() -> None:
    """Keras' TensorBoard callback writes with TensorBoard's summary ops.

    Raises:
        DependencyError: the tensorboard package is not installed.
    """
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None:
        raise DependencyError(
            "TensorBoard logs are written with the tensorboard package's summary ops, and it "
            "is not installed. Expected `pip install tensorboard` (the version of your "
            "TensorFlow). Received: no tensorboard module"
        )


def stage_tensorboard(log_dir: str, flavour: str):
    """A Keras TensorBoard callback of `flavour` that logs each stage to `log_dir/<stage>`.

    Example:
        >>> tb = stage_tensorboard("logs", "tf_keras")   # logs/prune/train, logs/qat/train
        >>> ks.compress(model, "prune-cluster-qat", train_data=(x, y), callbacks=[tb])

    Raises:
        DependencyError: the tensorboard package is not installed.
    """
    import os

    require_tensorboard()
    base = _compat.keras_module(flavour).callbacks.TensorBoard

    class StageTensorBoard(base):
        def set_model(self, model):  # Keras calls it at the start of every fit
            self.log_dir = os.path.join(log_dir, getattr(self, "stage", "fine-tune"))
            super().set_model(model)

    return StageTensorBoard(log_dir=log_dir)
