"""The one fine-tuning loop: Keras `fit`, for either Keras flavour, with or without a teacher.

Every training stage of compress(), channel pruning's fine-tuning and
ks.distill train through `fine_tune`. One `train_step` body serves both
flavours: a small `Model` subclass is made for the student's flavour (so
`fit`, progress bars and callbacks such as tfmot's pruning-step update work
as usual), and its losses are plain TF ops.

Its defaults, the same for every caller, are in `training.defaults`.
"""

from __future__ import annotations

import dataclasses
import functools

from keras_squeeze import _compat
from keras_squeeze.core import models
from keras_squeeze.distillation import losses as kd
from keras_squeeze.distillation.config import AUTO, Distill
from keras_squeeze.errors import DataError, ModelError, RecipeError
from keras_squeeze.training import callbacks as user_callbacks_mod
from keras_squeeze.training import losses, rate
from keras_squeeze.training.defaults import DEFAULT_LEARNING_RATE


@dataclasses.dataclass
class Task:
    """What the student's output means and how labels look."""

    classifier: bool
    student_kind: str
    has_labels: bool
    loss: object = None  # a user loss callable(y_true, y_pred), or None for the default


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
    """A model with the same inputs returning [output, *features]."""
    if not layer_names:
        return model
    if not models.is_graph_model(model):
        raise RecipeError(
            "Feature distillation reads the outputs of inner layers from the layer graph, which a "
            "subclassed model does not expose. Expected a Sequential or functional model, or "
            f"Distill(features=()). Received: features on {type(model).__name__}"
        )
    k = _compat.keras_module(_compat.keras_flavour(model))
    outputs = [model.outputs[0], *[_find_layer(model, n).output for n in layer_names]]
    return k.Model(model.inputs, outputs)


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
            self.teacher_kind = teacher_kind
            self.distill = distill
            self.task = task
            self.projectors = projectors
            pairs = distill.features if (distill is not None and teacher is not None) else ()
            self._student_view = _feature_view(student, [s for _, s in pairs])
            self._teacher_view = _feature_view(teacher, [t for t, _ in pairs]) if teacher else None
            self.loss_tracker = k.metrics.Mean(name="loss")
            self.acc_tracker = k.metrics.Mean(name="accuracy")

        @property
        def metrics(self):
            return [self.loss_tracker, self.acc_tracker]

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

        def _ks_loss(self, x, y, training):
            """(loss, student outputs on the real samples)."""
            task, distill = self.task, self.distill
            mixing = bool(training and self.teacher is not None and distill.mix_inputs)
            if mixing:
                x = _with_mixed_copies(x)
            out = self._student_view(self._ks_inputs(self.student, x), training=training)
            out = list(out) if isinstance(out, (list, tuple)) else [out]
            # With mixing, the first half are the real samples, the second their blends.
            real_out = tf.split(out[0], 2)[0] if mixing else out[0]
            if task.loss is not None:
                task_loss = tf.reduce_mean(task.loss(y, real_out))
            elif task.classifier:
                task_loss = losses.classification_loss(y, real_out, task.student_kind)
            else:
                task_loss = kd.regression_loss(y, real_out)
            if self.teacher is None:
                return task_loss, real_out
            t = self._teacher_view(self._ks_inputs(self.teacher, x), training=False)
            t = list(t) if isinstance(t, (list, tuple)) else [t]
            teacher_out = tf.stop_gradient(t[0])
            if task.classifier:
                soft = kd.kd_loss(
                    teacher_out, out[0], distill.temperature, self.teacher_kind, task.student_kind
                )
            else:
                soft = kd.regression_loss(teacher_out, out[0])
            alpha = distill.alpha if task.has_labels else 1.0
            total = alpha * soft + (1.0 - alpha) * task_loss
            for proj, t_feat, s_feat in zip(self.projectors, t[1:], out[1:], strict=True):
                total += distill.feature_weight * kd.feature_loss(
                    tf.stop_gradient(t_feat), proj(s_feat)
                )
            return total, real_out

        def _ks_track(self, loss, y, out):
            self.loss_tracker.update_state(loss)
            if self.task.classifier and self.task.has_labels:
                hit = tf.cast(tf.equal(tf.argmax(out, -1), losses.class_ids(y)), tf.float32)
                self.acc_tracker.update_state(hit)
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


def resolve_teacher_kind(distill: Distill, teacher) -> str:
    if distill.teacher_outputs == AUTO:
        return losses.output_kind(teacher)
    return distill.teacher_outputs


def make_task(student, train, distill: Distill | None, loss=None) -> Task:
    outputs = len(student.outputs)
    if outputs != 1:
        # The loss reads the first output only: the other heads would drift untrained.
        raise ModelError(
            "Fine-tuning trains a model through one output. Expected a single-output model for "
            "the training recipes (the post-training recipes take any number of outputs). "
            f"Received: {outputs} outputs"
        )
    classifier = losses.is_classifier(student)
    kind = (
        losses.output_kind(student)
        if distill is None or distill.student_outputs == AUTO
        else distill.student_outputs
    )
    if not train.has_labels and distill is None:
        raise DataError(
            f"{train.source} has no labels and no teacher was given. Expected (x, y) data, or "
            "distillation (distill=True or teacher=...) to learn from a teacher's outputs. "
            "Received: inputs only"
        )
    return Task(classifier, kind, train.has_labels, loss)


def check_teacher(teacher, student) -> None:
    """The teacher must be a different model with the student's output shape."""
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
    if len(s_shapes) != 1:
        raise ModelError(
            "Distillation matches one output. Expected a single-output model. "
            f"Received: {len(s_shapes)} outputs"
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
    user_callbacks=(),
    stage: str = "fine-tune",
):
    """Trains `student` in place on `train` (a training.data.TrainData).

    Args:
        student: the model to train (a working copy; never the user's model).
        train: the prepared training data.
        epochs: number of epochs.
        teacher / distill: distil from `teacher` with these settings.
        loss: a callable(y_true, y_pred) replacing the default task loss
            (cross-entropy for classifiers, mean squared error otherwise).
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
        user_callbacks / stage: the user's callbacks (see `training.callbacks`):
            checked to be of the student's flavour, each told `stage` (its
            `.stage` attribute), then run after `callbacks`.

    Returns:
        The Keras History.
    """
    flavour = _compat.keras_flavour(student)
    user_callbacks_mod.check_flavour(user_callbacks, flavour, f"The {stage} stage")
    if teacher is not None:
        distill = distill or Distill()
        check_teacher(teacher, student)
    else:
        distill = None
    task = make_task(student, train, distill, loss)
    projectors = []
    if distill is not None and distill.features:
        projectors = _projectors(student, teacher, distill, flavour)
    teacher_kind = resolve_teacher_kind(distill, teacher) if teacher is not None else None
    trainer = _trainer_class(flavour)(
        student, teacher, distill, task, projectors, teacher_kind, frozen, after_step
    )
    resolved = resolve_optimizer(optimizer, flavour, compiled_from, learning_rate)
    trainer.compile(optimizer=rate.scaled(resolved, learning_rate_scale))
    return trainer.fit(
        train.dataset,
        epochs=epochs,
        steps_per_epoch=train.steps_per_epoch,
        callbacks=[*callbacks, *user_callbacks_mod.for_stage(user_callbacks, stage)],
        validation_data=validation.dataset if validation is not None else None,
        validation_steps=validation.steps_per_epoch if validation is not None else None,
        shuffle=False,  # the dataset is shuffled already
        verbose=verbose,
    )


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
