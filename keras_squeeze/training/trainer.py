"""The one fine-tuning loop: Keras `fit`, for either Keras flavour, with or without a teacher.

Every training stage of compress(), channel pruning's fine-tuning and
ks.distill train through `fine_tune`. One `train_step` body serves both
flavours: a small `Model` subclass is made for the student's flavour (so
`fit`, progress bars and callbacks such as tfmot's pruning-step update work
as usual), and its losses are plain TF ops.

Its defaults, the same for every caller, are in `training.defaults`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
from collections.abc import Mapping

import numpy as np

from keras_squeeze import _compat
from keras_squeeze.core import models
from keras_squeeze.core.progress import say
from keras_squeeze.distillation import losses as kd
from keras_squeeze.distillation.config import AUTO, Distill
from keras_squeeze.errors import (
    CheckpointError,
    DataError,
    ModelError,
    NonFiniteError,
    RecipeError,
)
from keras_squeeze.training import callbacks as user_callbacks_mod
from keras_squeeze.training import checkpoint as checkpoint_mod
from keras_squeeze.training import losses, rate, tasks
from keras_squeeze.training.defaults import DEFAULT_LEARNING_RATE


@dataclasses.dataclass
class Task:
    """What the student's outputs mean and how labels look.

    Attributes:
        outputs: one `training.tasks.OutputTask` per student output, in order.
        has_labels: whether the training data has labels.
    """

    outputs: list[tasks.OutputTask]
    has_labels: bool

    @property
    def classifier(self) -> bool:
        """Whether the (first) output is a classifier."""
        return self.outputs[0].classifier

    @property
    def student_kind(self) -> str:
        """Logits or probabilities: the first classifier output's kind (else the first's)."""
        first = next((o for o in self.outputs if o.classifier), self.outputs[0])
        return first.kind

    @property
    def loss(self):
        return self.outputs[0].loss


def _find_layer(model, name: str):
    """A layer by name, also through tfmot wrappers (prune_low_magnitude_x, quant_x)."""
    for layer in model.layers:
        inner = getattr(layer, "layer", None)
        if layer.name == name or (inner is not None and inner.name == name):
            return layer
    raise RecipeError(
        f"No layer named '{name}' for feature distillation. Expected one of the model's layer "
        f"names. Received: '{name}' (model '{model.name}')"
    )


def _feature_view(model, layer_names):
    """A model with the same inputs returning [*outputs, *features]."""
    if not layer_names:
        return model
    if not models.is_graph_model(model):
        raise RecipeError(
            "Feature distillation reads the outputs of inner layers from the layer graph, which a "
            "subclassed model does not expose. Expected a Sequential or functional model, or "
            f"Distill(features=()). Received: features on {type(model).__name__}"
        )
    k = _compat.keras_module(_compat.keras_flavour(model))
    outputs = [*model.outputs, *[_find_layer(model, n).output for n in layer_names]]
    return k.Model(model.inputs, outputs)


def _as_list(out, names):
    """Model outputs as a list in output order (dict outputs by name)."""
    if isinstance(out, Mapping):
        return [out[n] for n in names]
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _with_mixed_copies(x):
    """The batch followed by its mixup copies: lambda * x + (1 - lambda) * x[perm]."""
    import tensorflow as tf

    inputs = list(x) if isinstance(x, (list, tuple)) else [x]
    batch = tf.shape(inputs[0])[0]
    perm = tf.random.shuffle(tf.range(batch))
    lam = tf.random.uniform([batch])
    mixed = []
    for v in inputs:
        shape = tf.concat([[batch], tf.ones([tf.rank(v) - 1], tf.int32)], axis=0)
        w = tf.cast(tf.reshape(lam, shape), v.dtype)
        mixed.append(tf.concat([v, w * v + (1 - w) * tf.gather(v, perm)], axis=0))
    return mixed[0] if not isinstance(x, (list, tuple)) else type(x)(mixed)


@functools.lru_cache(maxsize=2)
def _trainer_class(flavour: str):
    import tensorflow as tf

    k = _compat.keras_module(flavour)

    class Trainer(k.Model):
        """Trains `student`; `teacher`, when given, is only run for its outputs."""

        def __init__(
            self,
            student,
            teacher,
            distill,
            task,
            projectors,
            teacher_kind,
            frozen=None,
            after_step=(),
        ):
            super().__init__(name="keras_squeeze_trainer")
            self.frozen = frozen
            self._ks_after_step = tuple(after_step)
            self.student = student
            self.teacher = teacher
            # One kind per output; a single kind applies to every output.
            n = len(task.outputs)
            self.teacher_kinds = (
                list(teacher_kind)
                if isinstance(teacher_kind, (list, tuple))
                else [teacher_kind] * n
            )
            self.distill = distill
            self.task = task
            self.projectors = projectors
            pairs = distill.features if (distill is not None and teacher is not None) else ()
            self._student_view = _feature_view(student, [s for _, s in pairs])
            self._teacher_view = _feature_view(teacher, [t for t, _ in pairs]) if teacher else None
            self._student_names = _output_names(student)
            self._teacher_names = _output_names(teacher) if teacher is not None else None
            self.loss_tracker = k.metrics.Mean(name="loss")
            self._ks_trackers = _trackers(k, task)

        @property
        def metrics(self):
            return [self.loss_tracker, *(t for _, t in self._ks_trackers)]

        def call(self, inputs, training=False):
            return self.student(self._ks_inputs(self.student, inputs), training=training)

        @staticmethod
        def _ks_inputs(model, x):
            """The batch's inputs as `model` takes them (a dict for a subclassed model whose
            signature is a dict; tf.data gives one tensor or a tuple)."""
            signature = models.signature_of(model)
            if signature is None:
                return x
            return models.pack(signature, list(x) if isinstance(x, (list, tuple)) else [x])

        def _ks_variables(self):
            variables = list(self.student.trainable_variables)
            if self.frozen is not None:
                variables = [v for v in variables if not self.frozen(v)]
            for p in self.projectors:
                variables += list(p.trainable_variables)
            return variables

        def _ks_labels(self, y):
            """One label tensor per output (the data yields a tuple for several outputs)."""
            ys = list(y) if len(self.task.outputs) > 1 else [y]
            return [tf.convert_to_tensor(v) for v in ys]

        def _ks_task_loss(self, output, y, pred):
            if output.loss is not None:
                return tf.reduce_mean(output.loss(y, pred))
            if output.classifier:
                return losses.classification_loss(y, pred, output.kind)
            return kd.regression_loss(_like(y, pred), pred)

        def _ks_loss(self, x, y, training):
            """(loss, student outputs on the real samples, one per output)."""
            task, distill = self.task, self.distill
            n = len(task.outputs)
            mixing = bool(training and self.teacher is not None and distill.mix_inputs)
            if mixing:
                x = _with_mixed_copies(x)
            out = self._student_view(self._ks_inputs(self.student, x), training=training)
            out = _as_list(out, self._student_names)
            # With mixing, the first half are the real samples, the second their blends.
            real_out = [tf.split(o, 2)[0] if mixing else o for o in out[:n]]
            if task.has_labels:
                ys = self._ks_labels(y)
                task_loss = _weighted_sum(
                    task.outputs,
                    [
                        self._ks_task_loss(o, t, p)
                        for o, t, p in zip(task.outputs, ys, real_out, strict=True)
                    ],
                )
            else:  # inputs only: the teacher's outputs are the whole target (alpha 1 below)
                task_loss = tf.constant(0.0)
            if self.teacher is None:
                return task_loss, real_out
            t = self._teacher_view(self._ks_inputs(self.teacher, x), training=False)
            t = _as_list(t, self._teacher_names)
            softs = []
            for i, output in enumerate(task.outputs):
                teacher_out = tf.stop_gradient(t[i])
                if output.classifier:
                    softs.append(
                        kd.kd_loss(
                            teacher_out,
                            out[i],
                            distill.temperature,
                            self.teacher_kinds[i],
                            output.kind,
                        )
                    )
                else:
                    softs.append(kd.regression_loss(teacher_out, out[i]))
            soft = _weighted_sum(task.outputs, softs)
            alpha = distill.alpha if task.has_labels else 1.0
            total = alpha * soft + (1.0 - alpha) * task_loss
            for proj, t_feat, s_feat in zip(self.projectors, t[n:], out[n:], strict=True):
                total += distill.feature_weight * kd.feature_loss(
                    tf.stop_gradient(t_feat), proj(s_feat)
                )
            return total, real_out

        def _ks_track(self, loss, y, out):
            self.loss_tracker.update_state(loss)
            if self.task.has_labels:
                ys = self._ks_labels(y)
                for i, tracker in self._ks_trackers:
                    if self.task.outputs[i].classifier:
                        ids = losses.class_ids(ys[i])
                        hit = tf.cast(tf.equal(tf.argmax(out[i], -1), ids), tf.float32)
                        tracker.update_state(hit)
                    else:
                        target = tf.cast(_like(ys[i], out[i]), out[i].dtype)
                        tracker.update_state(tf.reduce_mean(tf.square(out[i] - target)))
            return {m.name: m.result() for m in self.metrics}

        def train_step(self, data):
            x, y = data
            variables = self._ks_variables()
            with tf.GradientTape() as tape:
                loss, out = self._ks_loss(x, y, training=True)
                regularization = self.student.losses
                full = loss + tf.add_n(regularization) if regularization else loss
                # Under tf.distribute the replicas' gradients are summed: each replica's
                # share is 1/N of its batch mean, so N replicas step like one device.
                full = full / tf.distribute.get_strategy().num_replicas_in_sync
            grads = tape.gradient(full, variables)
            self.optimizer.apply_gradients(zip(grads, variables, strict=True))
            for hook in self._ks_after_step:  # e.g. pruning masks, cluster assignments
                hook()
            return self._ks_track(loss, y, out)

        def test_step(self, data):
            x, y = data
            loss, out = self._ks_loss(x, y, training=False)
            return self._ks_track(loss, y, out)

    return Trainer


@functools.lru_cache(maxsize=2)
def _finite_guard_class(flavour: str):
    k = _compat.keras_module(flavour)

    class FiniteGuard(k.callbacks.Callback):
        """Stops training at once when the loss, a weight or a quantization range is NaN
        or Inf, naming what was training, the epoch and the step."""

        def __init__(self, student, what: str):
            super().__init__()
            self.student, self.what, self.epoch = student, what, 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def _stop(self, found: str, step: str):
            raise NonFiniteError(
                f"{self.what[:1].upper()}{self.what[1:]} stopped: {found} at epoch "
                f"{self.epoch + 1}{step}. Expected finite values; a lower learning rate usually "
                "fixes this (learning_rate_scale=0.1 on the stage, or a smaller optimizer "
                "learning rate). Received: the values above"
            )

        def on_train_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(float(loss)):
                self._stop(f"the loss became {float(loss)}", f", step {batch + 1}")

        def on_epoch_end(self, epoch, logs=None):
            for w in self.student.weights:  # trainable and not: also QAT's ranges
                value = np.asarray(w.numpy())
                if value.dtype.kind == "f" and not np.isfinite(value).all():
                    name = getattr(w, "path", None) or w.name
                    self._stop(f"the weight '{name}' holds NaN or Inf", " (its end)")

    return FiniteGuard


def _weighted_sum(outputs, values):
    """Sum of per-output losses, each times its output's weight (one output: the loss)."""
    import tensorflow as tf

    if len(values) == 1:
        return values[0]
    return tf.add_n([o.weight * v for o, v in zip(outputs, values, strict=True)])


def _like(y, pred):
    """Regression targets in the prediction's shape: (n,) targets for a (n, 1) output get
    their unit axis (instead of broadcasting to (n, n))."""
    import tensorflow as tf

    if y.shape.rank is not None and pred.shape.rank is not None and y.shape.rank < pred.shape.rank:
        return tf.reshape(y, tf.shape(pred))
    return y


def _output_names(model) -> list[str]:
    from keras_squeeze.core.models import output_names

    return output_names(model)


def _trackers(k, task) -> list:
    """(output index, Mean metric) pairs: top-1 accuracy of each classifier output, mean
    squared error of each regression output; "accuracy" / "mse" for a one-output model."""
    if len(task.outputs) == 1:
        name = "accuracy" if task.outputs[0].classifier else "mse"
        return [(0, k.metrics.Mean(name=name))]
    return [
        (i, k.metrics.Mean(name=f"{o.name}_{'accuracy' if o.classifier else 'mse'}"))
        for i, o in enumerate(task.outputs)
    ]


def resolve_optimizer(
    optimizer, flavour: str, fallback_from=None, learning_rate: float = DEFAULT_LEARNING_RATE
):
    """A fresh optimizer of the student's flavour.

    `optimizer` may be None (the model's compiled optimizer, else Adam at
    `learning_rate`), a name ("adam"), or an optimizer instance of either
    flavour (rebuilt from its class name and learning rate when the flavours
    differ).
    """
    k = _compat.keras_module(flavour)
    source = optimizer
    if source is None and fallback_from is not None:
        source = getattr(fallback_from, "optimizer", None)
    if source is None:
        return k.optimizers.Adam(learning_rate=learning_rate)
    if isinstance(source, str):
        return k.optimizers.get(source)
    if isinstance(source, dict):
        return k.optimizers.get(source)
    if _compat.keras_flavour(source) == flavour:
        return type(source).from_config(source.get_config())
    name = type(source).__name__
    lr = source.get_config().get("learning_rate", DEFAULT_LEARNING_RATE)
    try:
        return getattr(k.optimizers, name)(
            learning_rate=float(lr) if not isinstance(lr, dict) else lr
        )
    except (AttributeError, TypeError, ValueError) as e:
        raise RecipeError(
            f"The optimizer cannot be used for fine-tuning. Expected a Keras optimizer, its name, "
            f"or None. Received: {name} ({e})"
        ) from e


def resolve_teacher_kind(distill: Distill, teacher):
    """Logits or probabilities: one kind for a one-output teacher, else a list per output."""
    if distill.teacher_outputs != AUTO:
        return distill.teacher_outputs
    if len(models.output_names(teacher)) == 1:
        return losses.output_kind(teacher)
    return losses.output_kinds(teacher)


def make_task(student, train, distill: Distill | None, loss=None, compiled_from=None) -> Task:
    """Each output's role, kind and loss (see `training.tasks`), from the training data's
    labels, `loss` and the compiled loss of `compiled_from` (else of the student)."""
    kind = AUTO if distill is None else distill.student_outputs
    if not train.has_labels and distill is None:
        raise DataError(
            f"{train.source} has no labels and no teacher was given. Expected (x, y) data, or "
            "distillation (distill=True or teacher=...) to learn from a teacher's outputs. "
            "Received: inputs only"
        )
    outputs = tasks.output_tasks(
        student,
        getattr(train, "label_sample", None),
        loss,
        compiled_from=compiled_from,
        student_kind=kind,
    )
    return Task(outputs, train.has_labels)


def check_teacher(teacher, student) -> None:
    """The teacher must be a different model with the student's output shapes."""
    if teacher is student:
        raise ModelError(
            "The teacher is the student itself. Expected a separate (usually larger or "
            "original) model. Received: the same object for teacher and student"
        )
    t_shapes = models.output_shapes(teacher)
    s_shapes = models.output_shapes(student)
    if t_shapes != s_shapes:
        raise ModelError(
            "The teacher's and the student's outputs differ in shape. Expected the same "
            f"output shapes. Received: teacher {t_shapes}, student {s_shapes}"
        )


def fine_tune(
    student,
    train,
    epochs: int,
    *,
    teacher=None,
    distill: Distill | None = None,
    loss=None,
    optimizer=None,
    compiled_from=None,
    learning_rate: float = DEFAULT_LEARNING_RATE,
    learning_rate_scale: float = 1.0,
    callbacks=(),
    validation=None,
    frozen=None,
    after_step=(),
    verbose: int = 1,
    what: str = "fine-tuning",
    user_callbacks=(),
    stage: str = "fine-tune",
    checkpoint=None,
    state=(),
):
    """Trains `student` in place on `train` (a training.data.TrainData).

    Args:
        student: the model to train (a working copy; never the user's model).
        train: the prepared training data.
        epochs: number of epochs.
        teacher / distill: distil from `teacher` with these settings.
        loss: the task loss: one loss (a Keras loss name, object or
            callable(y_true, y_pred)) for every output, a list in output order
            or a dict keyed by output name; missing entries fall back to the
            compiled loss of `compiled_from`, then to cross-entropy for a
            classifier output and mean squared error otherwise (see
            `training.tasks`).
        optimizer: see `resolve_optimizer`; `compiled_from` supplies the
            compiled optimizer when `optimizer` is None, else Adam at
            `learning_rate`.
        learning_rate_scale: multiplies that optimizer's learning rate (a
            stage's share of the run's rate; see training.rate).
        callbacks: Keras callbacks of the student's flavour (the engine's own).
        validation: a training.data.TrainData evaluated after each epoch.
        frozen: optional predicate on a trainable variable: True keeps it fixed.
        after_step: callables run inside the training step right after every
            optimizer step (traced with it, so TF ops only): how a technique
            without wrappers keeps its constraint, e.g. pruning masks or
            cluster assignments re-applied to the weights.
        verbose: Keras verbosity (1 = progress bars).
        what: what is training, for messages ("the prune stage").
        user_callbacks / stage: the user's callbacks (see `training.callbacks`):
            checked to be of the student's flavour, each told `stage` (its
            `.stage` attribute), then run after `callbacks`.
        checkpoint: a `training.checkpoint.FitCheckpoint`: the state of its last
            finished epoch is restored before `fit` (which then starts after it,
            with that epoch's data order; a finished fine-tune trains no
            epoch), and the state is saved after every epoch.
        state: variables outside the model that are part of its training
            state (a native engine's masks, centroids and assignments), saved
            and restored with it.

    Returns:
        The Keras History; `history.initial_epoch` is the epochs restored.

    Raises:
        NonFiniteError: the loss became NaN or Inf (checked every step), or a
            weight or quantization range did (checked every epoch); training
            stops at once.
    """
    flavour = _compat.keras_flavour(student)
    user_callbacks_mod.check_flavour(user_callbacks, flavour, f"The {stage} stage")
    if teacher is not None:
        distill = distill or Distill()
        check_teacher(teacher, student)
    else:
        distill = None
    task = make_task(student, train, distill, loss, compiled_from=compiled_from)
    projectors = []
    if distill is not None and distill.features:
        projectors = _projectors(student, teacher, distill, flavour)
    teacher_kind = resolve_teacher_kind(distill, teacher) if teacher is not None else None
    trainer = _trainer_class(flavour)(
        student, teacher, distill, task, projectors, teacher_kind, frozen, after_step
    )
    resolved = resolve_optimizer(optimizer, flavour, compiled_from, learning_rate)
    trainer.compile(optimizer=rate.scaled(resolved, learning_rate_scale))
    initial, last, dataset, saving = 0, epochs, train.dataset, []
    if checkpoint is not None:
        checkpoint.extra = tuple(state)
        initial = checkpoint.restore(trainer, trainer._ks_variables())
        last = initial if checkpoint.finished else epochs
        dataset = checkpoint_mod.advance(train, initial)
        saving = [checkpoint.callback(trainer, flavour)]
        if initial:
            done = "finished earlier, not trained again" if last == initial else "resuming"
            say(
                verbose,
                f"{what}: {initial} of {epochs} epochs restored from checkpoint_dir; {done}",
            )
    try:
        history = trainer.fit(
            dataset,
            epochs=last,
            initial_epoch=initial,
            steps_per_epoch=train.steps_per_epoch,
            callbacks=[
                *callbacks,
                _finite_guard_class(flavour)(student, what),
                *user_callbacks_mod.for_stage(user_callbacks, stage),
                *saving,
            ],
            validation_data=validation.dataset if validation is not None else None,
            validation_steps=validation.steps_per_epoch if validation is not None else None,
            shuffle=False,  # the dataset is shuffled already
            verbose=verbose,
        )
    except BaseException:
        if checkpoint is not None:  # the last epoch's file on disk before the error goes up
            with contextlib.suppress(CheckpointError):
                checkpoint.wait()
        raise
    history.initial_epoch = initial
    if checkpoint is not None:
        checkpoint.finish(initial + len(history.epoch))
    return history


def _projectors(student, teacher, distill, flavour):
    k = _compat.keras_module(flavour)
    projectors = []
    for t_name, s_name in distill.features:
        t_shape = tuple(_find_layer(teacher, t_name).output.shape)
        s_shape = tuple(_find_layer(student, s_name).output.shape)
        if t_shape[1:-1] != s_shape[1:-1]:
            raise RecipeError(
                f"Feature distillation pairs layers with the same spatial shape. Expected "
                f"'{s_name}' to match '{t_name}' {t_shape[1:-1]}. Received: {s_shape[1:-1]}"
            )
        proj = k.layers.Dense(t_shape[-1], use_bias=False, name=f"kd_projection_{s_name}")
        proj.build(s_shape)
        projectors.append(proj)
    return projectors
