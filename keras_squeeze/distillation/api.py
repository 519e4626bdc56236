"""ks.distill(): train a student from a teacher's soft outputs."""

from __future__ import annotations

import dataclasses

from keras_squeeze import _compat
from keras_squeeze.core import models
from keras_squeeze.core.progress import say
from keras_squeeze.data import inputs as data_inputs
from keras_squeeze.data.labels import output_specs
from keras_squeeze.distillation import choice as choice_mod
from keras_squeeze.distillation.config import DEFAULT_ALPHA, DEFAULT_TEMPERATURE, Distill
from keras_squeeze.errors import DataError, ModelError
from keras_squeeze.training import callbacks as user_callbacks
from keras_squeeze.training import data as train_data_mod
from keras_squeeze.training import defaults, distribute
from keras_squeeze.training import trainer as trainer_mod
from keras_squeeze.training.evaluation import validation_accuracy

DEFAULT_EPOCHS = defaults.DEFAULT_STUDENT_EPOCHS


@dataclasses.dataclass
class DistillResult:
    """The trained student and what was measured.

    Attributes:
        model: the trained student (a copy: the student passed in is unchanged).
        report: settings, output kinds, params, loss history and, with labelled
            validation data, teacher and student accuracy.
    """

    model: object
    report: dict


def copy_model(model):
    """A copy of a functional/Sequential model with the same weights (either flavour).

    Raises:
        ModelError: the model's layers cannot be rebuilt from their configs.
    """
    k = _compat.keras_module(_compat.keras_flavour(model))
    try:
        clone = k.models.clone_model(model)
    except (TypeError, ValueError) as first:
        # Keras 3 compiles the clone from the model's compile config, which fails on a
        # custom loss or metric that is not registered; a copy to run needs no compile.
        try:
            clone = model.__class__.from_config(model.get_config())
        except (TypeError, ValueError, NotImplementedError) as e:
            raise ModelError(
                "The model cannot be copied. Expected a Sequential or functional model whose "
                f"layers have get_config. Received: {type(model).__name__} ({first})"
            ) from e
    clone.set_weights(model.get_weights())
    return clone


def distill(
    teacher,
    student,
    train_data,
    *,
    epochs: int = DEFAULT_EPOCHS,
    temperature: float | None = None,
    alpha: float | None = None,
    features=(),
    feature_weight: float = 1.0,
    teacher_outputs: str = "auto",
    student_outputs: str = "auto",
    validation_data=None,
    optimizer=None,
    loss=None,
    batch_size: int = train_data_mod.DEFAULT_BATCH_SIZE,
    steps_per_epoch: int | None = None,
    verbose: int = 1,
    callbacks=None,
    strategy=None,
) -> DistillResult:
    """Trains a copy of `student` to match `teacher` (logits distillation).

    Loss: alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * task
    loss on labels (+ feature_weight * MSE of paired features). Teachers and
    students may be Keras 3 or tf_keras models, in any combination: one
    training step written in TF ops serves both (Keras 3's own
    keras.distillation only takes Keras 3 models).

    Args:
        teacher: the model to learn from (not trained).
        student: the model to train; a copy is trained and returned.
        train_data: (x, y) arrays, a tf.data.Dataset of (x, y) batches, or a
            callable returning batches. Labels may be class ids or one-hot
            rows; without labels only the teacher's outputs are learnt.
        epochs: training epochs (default 5).
        temperature: T > 0; alpha: weight of the distillation loss in [0, 1]
            (the task loss on labels gets 1 - alpha). Leave both unset to let
            ks.distill choose: with labelled `validation_data` it trains the
            student for `choice.PROBE_EPOCHS` with each of `choice.CANDIDATES`
            (labels only; the fixed default alpha 0.5, T 1; alpha 0.9, T 4) from the same
            initial weights, keeps the best on the validation data and trains
            that one (report["choice"] says which and why); without labelled
            validation data it uses the fixed defaults `config.DEFAULT_ALPHA`
            and `config.DEFAULT_TEMPERATURE`. Giving either one fixes the
            setting (the other takes its default).
        features: (teacher_layer, student_layer) pairs to match.
        teacher_outputs / student_outputs: "logits", "probabilities" or "auto".
        validation_data: (x, y) data; accuracy of both models is reported,
            and the distillation setting is chosen on it (see alpha).
        optimizer: optimizer name or instance (default: the student's compiled
            optimizer, else Adam at 1e-3; the student trains at its full rate).
        loss: replaces the default task loss (cross-entropy for classifiers).
        callbacks: Keras callbacks of the student's flavour, run in its fit
            (their `stage` attribute is set to "distill"; a callback that
            stops training is reported as report["stopped_at_epoch"]).
        strategy: a `tf.distribute.Strategy` to train under (default: the one
            in scope, else one device); the student's copy, a copy of the
            teacher and the optimizer are made in its scope, and `batch_size`
            is the global batch (a multiple of the number of replicas).

    Returns:
        A DistillResult with the trained student copy and a report
        (report["distill"]: the setting trained with; report["choice"]: the
        setting chosen, the reason, and each candidate's validation accuracy).

    Example:
        >>> result = ks.distill(teacher, small_student, (x_train, y_train), epochs=10,
        ...                     validation_data=(x_val, y_val))
        >>> result.report["choice"]["chosen"]    # e.g. 'labels only' or 'alpha=0.5, T=2'
        >>> result.model.evaluate(x_test, y_test)
    """
    teacher = models.ensure_model(teacher, "teacher")
    student = models.ensure_model(student, "student")
    given = alpha is not None or temperature is not None
    config = Distill(
        temperature=DEFAULT_TEMPERATURE if temperature is None else temperature,
        alpha=DEFAULT_ALPHA if alpha is None else alpha,
        teacher_outputs=teacher_outputs,
        student_outputs=student_outputs,
        features=tuple(features),
        feature_weight=feature_weight,
    )
    trainer_mod.check_teacher(teacher, student)
    callbacks = user_callbacks.check_callbacks(callbacks)
    user_callbacks.check_flavour(callbacks, _compat.keras_flavour(student), "Distillation")
    strategy = distribute.resolve(strategy)
    distribute.check_batch(strategy, batch_size)
    specs = models.input_specs(student)
    outputs = output_specs(student)
    train = train_data_mod.prepare(train_data, specs, batch_size, steps_per_epoch, outputs=outputs)
    validation = None
    val_samples = None
    if validation_data is not None:
        validation = train_data_mod.prepare(
            validation_data, specs, batch_size, argument="validation_data", outputs=outputs
        )
        val_samples = data_inputs.take_samples(
            validation_data, specs, None, "validation_data", outputs=outputs
        )
        if val_samples.labels is None:
            raise DataError(
                "validation_data has no labels. Expected (x, y) to measure accuracy. "
                "Received: inputs only"
            )

    def train_with(setting: Distill, n_epochs: int, *, final: bool):
        with distribute.scope(strategy):
            trained = copy_model(student)
            teaching = teacher
            if distribute.replicas(strategy) > 1:  # the teacher's variables mirrored too
                teaching = copy_model(teacher)
                teaching.trainable = False
            history = trainer_mod.fine_tune(
                trained,
                train,
                n_epochs,
                teacher=teaching,
                distill=setting,
                loss=loss,
                optimizer=optimizer,
                compiled_from=student,
                validation=validation if final else None,
                verbose=verbose if final else 0,
                user_callbacks=callbacks if final else (),
                stage="distill",
            )
        return trained, history

    choice = _choose(config, given, student, train, val_samples, train_with, verbose)
    config = choice.config
    trained, history = train_with(config, epochs, final=True)
    report = {
        "distill": config.get_config(),
        "choice": choice.as_report(),
        "teacher_outputs": trainer_mod.resolve_teacher_kind(config, teacher),
        "student_outputs": trainer_mod.make_task(trained, train, config).student_kind,
        "labels": ("one-hot" if train.one_hot else "class ids") if train.has_labels else None,
        "epochs": epochs,
        "teacher_params": models.count_params(teacher),
        "student_params": models.count_params(trained),
        "history": {k: [float(v) for v in vals] for k, vals in history.history.items()},
        "distribute": distribute.describe(strategy),
    }
    stopped = user_callbacks.stopped_early(history, epochs)
    if stopped is not None:
        report["stopped_at_epoch"] = stopped
    student_accuracy = validation_accuracy(trained, val_samples)
    if student_accuracy is not None:
        report["accuracy"] = {
            "teacher": validation_accuracy(teacher, val_samples),
            "student": student_accuracy,
            "samples": val_samples.count,
        }
    return DistillResult(trained, report)


def _choose(
    config, given: bool, student, train, val_samples, train_with, verbose
) -> choice_mod.Choice:
    """The setting to train with: chosen on the validation data when neither alpha nor
    temperature was given and both the training and the validation data have labels
    (`distillation.choice`), else `config` with the reason no choice was made."""
    if given:
        return choice_mod.fixed(config, "alpha or temperature given")
    if not train.has_labels:
        return choice_mod.fixed(config, "no labels in train_data: the teacher's outputs alone")
    if val_samples is None:
        return choice_mod.fixed(config, "no validation_data: the fixed default")

    def probe(candidate, n_epochs):
        setting = dataclasses.replace(
            config, alpha=candidate.alpha, temperature=candidate.temperature
        )
        return train_with(setting, n_epochs, final=False)[0]

    def score(model):
        return validation_accuracy(model, val_samples)

    if score(student) is None:
        return choice_mod.fixed(
            config, "validation accuracy is measured on one-output classifiers only"
        )
    made = choice_mod.choose(probe, score)
    made.config = dataclasses.replace(
        config, alpha=made.config.alpha, temperature=made.config.temperature
    )
    say(verbose, f"distill: {choice_mod.describe(made.config)}, chosen for {made.reason}")
    return made
