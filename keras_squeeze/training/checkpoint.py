"""Runs that resume after a crash: `checkpoint_dir=` on compress().

Every fine-tune of the run (each training stage's `fit` through the one loop,
`training.trainer.fine_tune`) saves its state at the end of every epoch: every
variable of the model it trains (weights, the engine's masks, cluster
centroids, quantization ranges and step counters, batch-normalization
statistics), of its distillation projections and of its optimizer (moments and
step count). A run started again with the same arguments resumes each fine-tune
after its last finished epoch, with the data order of that epoch (the shuffle
is advanced past the epochs done); a stage that finished is run again with its
last weights restored and no epoch left to train, so it is not trained again,
and the weights it hands on are checked against the ones it ended with.

`checkpoint_dir` holds:

    manifest.json         the run's identity (model fingerprint, recipe, data
                          shapes, epochs, batch size, optimizer, data-order seed),
                          each fine-tune's progress and each finished stage with
                          the fingerprint of the weights it ended with
    <stage>-<n>.npz       the n-th fine-tune of that stage at its last finished epoch

Both are written atomically (`core.atomic`): a kill leaves the previous epoch's
file or the new one, never half of one. A directory whose manifest names
another run (other model, recipe, data shapes, epochs, ...) is refused with a
CheckpointError before anything trains; so is one that holds other files
and no manifest. Under MultiWorkerMirroredStrategy only the chief writes (the
directory must then be one every worker reads, e.g. shared storage).

What is not saved: the state of the user's own callbacks (EarlyStopping's
patience count) and the random state of layers that draw random numbers while
training (Dropout): with such layers a resumed run is a valid run of the
recipe but not bitwise the uninterrupted one. Without them, on CPU with the
same seed, a resumed run ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import io
import json
import pathlib
import threading

import numpy as np

from keras_squeeze import _compat
from keras_squeeze.core import atomic, models
from keras_squeeze.errors import CheckpointError

MANIFEST = "manifest.json"
FORMAT = 1


def _plain(value):
    """`value` as plain JSON types (so a manifest read back compares equal)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def fingerprint(arrays) -> str:
    """sha256 of arrays' dtypes, shapes and bytes, in order."""
    digest = hashlib.sha256()
    for value in arrays:
        value = np.ascontiguousarray(value)
        digest.update(f"{value.dtype.str}{value.shape}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def model_fingerprint(model) -> str:
    """The model's layer classes, in graph order, and its weights (not its names, which
    Keras numbers per process)."""
    digest = hashlib.sha256(type(model).__name__.encode())
    for layer in models.walk_layers(model):
        digest.update(type(layer).__name__.encode())
    digest.update(fingerprint(np.asarray(w) for w in model.get_weights()).encode())
    return digest.hexdigest()


def _specs(element_spec) -> list:
    import tensorflow as tf

    return [[s.shape.as_list(), s.dtype.name] for s in tf.nest.flatten(element_spec)]


def identity(model, recipe, train, *, epochs: int, batch_size: int, optimizer, seed: int = 0):
    """What makes two runs the same run: a restart must match it field by field."""
    describe = optimizer if optimizer is None or isinstance(optimizer, str) else None
    if describe is None and optimizer is not None:
        describe = {"class": type(optimizer).__name__, "config": optimizer.get_config()}
    return _plain(
        {
            "model": model_fingerprint(model),
            "recipe": recipe.get_config(),
            "data": {
                "train": _specs(train.dataset.element_spec),
                "steps_per_epoch": train.steps_per_epoch,
                "labels": train.has_labels,
            },
            "epochs": epochs,
            "batch_size": batch_size,
            "optimizer": describe,
            "seed": seed,
        }
    )


def check_dir(path) -> pathlib.Path:
    """`checkpoint_dir` as an absolute path, checked to be (or become) a writable directory.

    Raises:
        OutputError: a file, or not writable.
    """
    return atomic.check_writable_dir(path, "checkpoint_dir")


class RunCheckpoint:
    """One run's checkpoint directory: its manifest and its fine-tunes' files.

    Attributes:
        directory: the directory.
        manifest: {"format", "identity", "fits": {key: {"epochs_done", "finished"}},
            "stages": {name: {"weights", "epochs"}}, "finished"}.
        finished_before: whether the run had finished when it was opened.
        resumed: {fine-tune key: epochs restored} of this call.
        restored_stages: the stages this call found finished and did not train again.
    """

    def __init__(self, directory: pathlib.Path, manifest: dict, writer: bool):
        self.directory = directory
        self.manifest = manifest
        self.writer = writer
        self.finished_before = bool(manifest.get("finished"))
        self.resumed: dict[str, int] = {}
        self.restored_stages: list[str] = []
        self._slots: dict[str, int] = {}

    @classmethod
    def open(cls, directory, run_identity: dict, writer: bool = True) -> RunCheckpoint:
        """The run's checkpoint in `directory`, new or the one a previous call left.

        Raises:
            OutputError: not a writable directory.
            CheckpointError: the directory holds another run, an unreadable
                manifest, or other files and no manifest.
        """
        directory = check_dir(directory)
        path = directory / MANIFEST
        if path.exists():
            try:
                manifest = json.loads(path.read_text())
                saved = manifest["identity"]
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise CheckpointError(
                    "checkpoint_dir's manifest cannot be read. Expected the manifest.json a "
                    f"compress(checkpoint_dir=...) call wrote. Received: '{path}' ({e})"
                ) from e
            differ = sorted(
                k for k in set(saved) | set(run_identity) if saved.get(k) != run_identity.get(k)
            )
            if differ:
                raise CheckpointError(
                    "checkpoint_dir belongs to another run: its checkpoints are not mixed into "
                    "this one. Expected the same model, recipe, data shapes, epochs, batch size "
                    "and optimizer as the run that wrote it, or another (new or empty) "
                    f"checkpoint_dir. Received: different {', '.join(differ)} in '{directory}'"
                )
            return cls(directory, manifest, writer)
        if directory.exists() and any(directory.iterdir()):
            names = sorted(p.name for p in directory.iterdir())[:5]
            raise CheckpointError(
                "checkpoint_dir holds files but no manifest.json, so it is not a checkpoint of "
                "this run. Expected a new or empty directory, or one a compress(checkpoint_dir"
                f"=...) call wrote. Received: '{directory}' with {names}"
            )
        manifest = {"format": FORMAT, "identity": run_identity, "fits": {}, "stages": {}}
        manifest["finished"] = False
        run = cls(directory, manifest, writer)
        run.write_manifest()
        return run

    def write_manifest(self) -> None:
        if self.writer:
            atomic.write_text(
                self.directory / MANIFEST, json.dumps(self.manifest, indent=1, sort_keys=True)
            )

    @property
    def finished(self) -> bool:
        return bool(self.manifest.get("finished"))

    def fit_checkpoint(self, stage: str) -> FitCheckpoint:
        """The checkpoint of the stage's next fine-tune (a stage may fine-tune more than once)."""
        n = self._slots.get(stage, 0)
        self._slots[stage] = n + 1
        return FitCheckpoint(self, f"{stage}-{n}")

    def stage_done(self, stage: str, model, epochs: int) -> bool:
        """Records a finished stage and the weights it hands on; for a stage finished in an
        earlier call, checks that it handed on the same weights.

        Returns:
            Whether the stage had finished in an earlier call.

        Raises:
            CheckpointError: the restored stage does not reproduce the weights it ended with.
        """
        weights = fingerprint(np.asarray(w) for w in model.get_weights())
        earlier = self.manifest["stages"].get(stage)
        if earlier is not None:
            if earlier["weights"] != weights:
                raise CheckpointError(
                    f"The {stage} stage restored from checkpoint_dir does not hand on the weights "
                    "it ended with. Expected the weights whose fingerprint the manifest records. "
                    f"Received: {weights[:12]} instead of {earlier['weights'][:12]} in "
                    f"'{self.directory}'"
                )
            self.restored_stages.append(stage)
            return True
        self.manifest["stages"][stage] = {"weights": weights, "epochs": epochs}
        self.write_manifest()
        return False

    def run_done(self) -> None:
        self.manifest["finished"] = True
        self.write_manifest()

    def summary(self) -> dict:
        """For the report: where, what was resumed, which stages were restored finished."""
        return {
            "directory": str(self.directory),
            "finished_before": self.finished_before,
            "resumed_epochs": dict(self.resumed),
            "stages_restored": list(self.restored_stages),
        }


class FitCheckpoint:
    """One fine-tune's epoch checkpoints: restored before its fit, saved after every epoch."""

    def __init__(self, run: RunCheckpoint, key: str):
        self.run, self.key = run, key
        self.path = run.directory / f"{key}.npz"
        self.extra: tuple = ()  # variables outside the model (training.trainer's `state`)
        self._writer: threading.Thread | None = None
        self._failed: BaseException | None = None

    @property
    def _entry(self) -> dict:
        return self.run.manifest["fits"].setdefault(self.key, {"epochs_done": 0, "finished": False})

    @property
    def finished(self) -> bool:
        return bool(self.run.manifest["fits"].get(self.key, {}).get("finished"))

    def state(self, trainer) -> tuple[list, list]:
        """(the trained variables: student, projections and `extra`; the optimizer's)."""
        variables = list(trainer.student.weights)
        for projector in trainer.projectors:
            variables += list(projector.weights)
        variables += list(self.extra)
        optimizer = trainer.optimizer.variables
        return variables, list(optimizer() if callable(optimizer) else optimizer)

    def restore(self, trainer, trained_variables) -> int:
        """Builds the optimizer for `trained_variables` and restores the last finished epoch's
        state into the trainer; returns the number of epochs done (0 without a file).

        Raises:
            CheckpointError: the file does not fit the model being trained.
        """
        if not self.path.exists():
            return 0
        with trainer.distribute_strategy.scope():
            trainer.optimizer.build(trained_variables)
        variables, optimizer = self.state(trainer)
        try:
            with np.load(self.path, allow_pickle=False) as saved:
                epoch = int(saved["epoch"])
                values = [saved[f"v{i}"] for i in range(int(saved["n_variables"]))]
                slots = [saved[f"o{i}"] for i in range(int(saved["n_optimizer"]))]
        except (OSError, ValueError, KeyError) as e:
            raise CheckpointError(
                f"A checkpoint in checkpoint_dir cannot be read. Expected the .npz file "
                f"compress() wrote. Received: '{self.path}' ({e})"
            ) from e
        pairs = list(zip(variables, values, strict=False)) + list(
            zip(optimizer, slots, strict=False)
        )
        shapes_match = all(tuple(v.shape) == tuple(a.shape) for v, a in pairs)
        if len(values) != len(variables) or len(slots) != len(optimizer) or not shapes_match:
            raise CheckpointError(
                f"The checkpoint '{self.path.name}' does not fit the model this stage trains. "
                f"Expected {len(variables)} model and {len(optimizer)} optimizer variables of "
                f"the same shapes. Received: {len(values)} and {len(slots)}"
            )
        for variable, value in pairs:
            variable.assign(value)
        self.run.resumed[self.key] = epoch
        return epoch

    def save(self, trainer, epochs_done: int) -> None:
        """Saves the state at the end of epoch `epochs_done`: the values are read now, and
        written (atomically, the .npz then the manifest) in a thread while the next epoch
        trains; the next save, `wait` and `finish` wait for it."""
        if not self.run.writer:
            return
        self.wait()
        variables, optimizer = self.state(trainer)
        arrays = {f"v{i}": np.array(v.numpy()) for i, v in enumerate(variables)}
        arrays.update({f"o{i}": np.array(v.numpy()) for i, v in enumerate(optimizer)})
        arrays.update(
            epoch=np.int64(epochs_done),
            n_variables=np.int64(len(variables)),
            n_optimizer=np.int64(len(optimizer)),
        )
        self._writer = threading.Thread(
            target=self._write, args=(arrays, epochs_done), name=f"checkpoint {self.key}"
        )
        self._writer.start()

    def _write(self, arrays: dict, epochs_done: int) -> None:
        try:
            buffer = io.BytesIO()
            np.savez(buffer, **arrays)
            atomic.write_bytes(self.path, buffer.getvalue())
            self._entry["epochs_done"] = epochs_done
            self.run.write_manifest()
        except BaseException as e:  # raised again by wait(), in the training thread
            self._failed = e

    def wait(self) -> None:
        """Waits for the last save to be on disk.

        Raises:
            CheckpointError: it could not be written.
        """
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.join()
        failed, self._failed = self._failed, None
        if failed is not None:
            raise CheckpointError(
                "A checkpoint could not be written to checkpoint_dir. Expected a writable "
                f"directory with room for it. Received: '{self.path}' ({failed})"
            ) from failed

    def finish(self, epochs_done: int) -> None:
        self.wait()
        entry = self._entry
        if not entry["finished"]:
            entry.update(epochs_done=epochs_done, finished=True)
            self.run.write_manifest()

    def callback(self, trainer, flavour: str):
        """A Keras callback of `flavour` that saves after every epoch (run last, after the
        user's callbacks, so an epoch that stops training is saved as it ended)."""
        k = _compat.keras_module(flavour)
        checkpoint = self

        class EpochCheckpoint(k.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                checkpoint.save(trainer, epoch + 1)

            def on_train_end(self, logs=None):
                checkpoint.wait()

        return EpochCheckpoint()


def advance(train, epochs_done: int):
    """`train.dataset` with the data order of epoch `epochs_done + 1` next: Keras draws a new
    iterator (a new shuffle) per epoch from a dataset of one epoch, and reads one iterator
    on from a repeated one."""
    dataset = train.dataset
    if epochs_done == 0:
        return dataset
    if int(dataset.cardinality()) == train.steps_per_epoch:
        for _ in range(epochs_done):
            next(iter(dataset))  # each new iterator draws the next epoch's order
        return dataset
    return dataset.skip(epochs_done * train.steps_per_epoch)
