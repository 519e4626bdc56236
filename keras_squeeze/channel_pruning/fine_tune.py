"""Fine-tuning the pruned model: a pluggable step, the package's one training loop by default.

`prune_channels(..., fine_tune=fn)` calls `fn(pruned_model)`; `fn` trains the
model in place (and returns None) or returns the model to use instead, e.g. a
distillation loop with the original model as the teacher (compress() passes
its own). Without `fn`, and with `train_data`, the pruned model is trained by
`training.trainer.fine_tune`, the loop every stage uses: the loss (the
original model's compiled loss, else cross-entropy for classifiers / mean
squared error), the run's optimizer (the given one, else the model's
compiled one, else Adam at 1e-3) at `ChannelPruning.learning_rate_scale` of
its learning rate, Keras progress bars when verbose.
"""

from __future__ import annotations

from collections.abc import Callable

from keras_squeeze.core import models
from keras_squeeze.core.progress import say
from keras_squeeze.data.labels import output_specs
from keras_squeeze.training import callbacks as user_callbacks
from keras_squeeze.training import data as train_data_mod
from keras_squeeze.training import distribute, rate, trainer

FineTune = Callable[[object], object]


def fit(
    model,
    train_data,
    specs,
    *,
    epochs: int,
    loss=None,
    optimizer=None,
    compiled_from=None,
    learning_rate_scale: float,
    batch_size: int = train_data_mod.DEFAULT_BATCH_SIZE,
    validation_data=None,
    verbose: int = 1,
    callbacks=(),
) -> str:
    """Trains `model` in place on `train_data` for `epochs` with the one training loop.

    Returns:
        What was done, e.g. "fine-tuned for 2 epoch(s) with Adam at learning rate 0.0003".
    """
    outputs = output_specs(compiled_from if compiled_from is not None else model)
    train = train_data_mod.prepare(train_data, specs, batch_size, outputs=outputs)
    validation = None
    if validation_data is not None:
        validation = train_data_mod.prepare(
            validation_data, specs, batch_size, argument="validation_data", outputs=outputs
        )
        validation = validation if validation.has_labels else None
    history = trainer.fine_tune(
        model,
        train,
        epochs,
        loss=loss,
        optimizer=optimizer,
        compiled_from=compiled_from,
        learning_rate_scale=learning_rate_scale,
        validation=validation,
        verbose=verbose,
        user_callbacks=callbacks,
        stage="channel-prune",
    )
    done = f"fine-tuned for {epochs} epoch(s) with {rate.describe(history.model.optimizer)}"
    stopped = user_callbacks.stopped_note(history, epochs)
    return done if stopped is None else f"{done}; {stopped}"


def describe_custom(fine_tune: FineTune) -> str:
    return f"custom fine_tune step {getattr(fine_tune, '__name__', type(fine_tune).__name__)}"


def run(
    model, fine_tune, epochs: int, train_data, specs, verbose: int = 1, strategy=None, **fit_args
):
    """Fine-tunes a model whose structure was changed (channels or blocks removed): with
    the user's `fine_tune(model)` when given (the model it returns, if any, replaces
    it), else `epochs` of `fit` (none when 0).

    With a `strategy` (a tf.distribute.Strategy, see `training.distribute`), `fit`
    trains a copy of the model made in the strategy's scope (its variables
    mirrored on the replicas) and the copy replaces the model; the user's
    `fine_tune` is called as it is (it picks its own strategy).

    Returns:
        (model, description of the fine-tuning, or None when there was none).
    """
    if fine_tune is not None:
        description = describe_custom(fine_tune)
        say(verbose, f"fine-tuning: {description}")
        replaced = fine_tune(model)
        if replaced is not None:
            model = models.ensure_model(replaced, "the model fine_tune returned")
        return model, description
    if epochs > 0:
        say(verbose, f"fine-tuning for {epochs} epoch(s)")
        if strategy is None:
            return model, fit(model, train_data, specs, epochs=epochs, verbose=verbose, **fit_args)
        with distribute.scope(strategy):
            model = models.copy_model(model)  # its variables made in the strategy's scope
            done = fit(model, train_data, specs, epochs=epochs, verbose=verbose, **fit_args)
        n = distribute.replicas(strategy)
        return model, f"{done}; on {n} replica(s) of {distribute.name(strategy)}"
    return model, None
