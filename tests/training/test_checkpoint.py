"""checkpoint_dir= on compress(): a run killed with SIGKILL in its second epoch of four
resumes and ends where an uninterrupted run ends; a finished run does not train again;
another run's directory and an unwritable one are refused.

The kill and the runs it is compared with happen in fresh processes
(tests/training/run_checkpointed.py: a tiny tf_keras CNN, "prune", 4 epochs of 4 steps,
seeded, op determinism on). Tolerance: none. Without Dropout or other random layers the
resumed run's weights are bitwise those of the uninterrupted run, and so are its .tflite's
outputs.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

import keras_squeeze as ks
from keras_squeeze.errors import CheckpointError, OutputError
from keras_squeeze.training import checkpoint
from tests.training.run_checkpointed import tiny_data, tiny_model

SCRIPT = pathlib.Path(__file__).with_name("run_checkpointed.py")
ROOT = SCRIPT.parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}


def _start(tmp, name, *extra):
    log = open(tmp / f"{name}.log", "w")  # noqa: SIM115 (closed with the process)
    args = [sys.executable, str(SCRIPT), str(tmp / name), str(tmp / f"{name}.json"), *extra]
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=ENV), log


def _finish(process, log, tmp, name, timeout=300):
    code = process.wait(timeout=timeout)
    log.close()
    assert code == 0, (tmp / f"{name}.log").read_text()[-4000:]
    return json.loads((tmp / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("checkpointed")
    marker = tmp / "in_epoch_2"
    # The uninterrupted run (then restarted once it finished) alongside the one killed.
    whole = _start(tmp, "whole", "--again")
    killed, killed_log = _start(tmp, "resumed", "--pause", str(marker))
    deadline = time.monotonic() + 240
    while not marker.exists():
        assert killed.poll() is None, (tmp / "resumed.log").read_text()[-4000:]
        assert time.monotonic() < deadline, "the run never reached its second epoch"
        time.sleep(0.2)
    killed.send_signal(signal.SIGKILL)
    assert killed.wait(timeout=60) == -signal.SIGKILL
    killed_log.close()
    manifest = json.loads((tmp / "resumed" / "manifest.json").read_text())
    resumed = _finish(*_start(tmp, "resumed"), tmp, "resumed")
    return {
        "whole": _finish(*whole, tmp, "whole"),
        "whole_log": (tmp / "whole.log").read_text(),
        "whole_dir": tmp / "whole",
        "resumed": resumed["first"],
        "manifest_at_kill": manifest,
        "log": (tmp / "resumed.log").read_text(),
    }


def test_killed_run_had_saved_its_first_epoch(runs):
    manifest = runs["manifest_at_kill"]
    assert manifest["fits"] == {"prune-0": {"epochs_done": 1, "finished": False}}
    assert manifest["stages"] == {} and manifest["finished"] is False


def test_resumed_run_trains_only_the_epochs_left(runs):
    resumed = runs["resumed"]
    assert resumed["seen"] == [["prune", 1], ["prune", 2], ["prune", 3]]
    assert resumed["checkpoint"]["resumed_epochs"] == {"prune-0": 1}
    assert resumed["checkpoint"]["finished_before"] is False
    assert resumed["stage_epochs"] == [4]
    assert "the prune stage: 1 of 4 epochs restored from checkpoint_dir; resuming" in runs["log"]


def test_resumed_run_ends_like_the_uninterrupted_one(runs):
    whole, resumed = runs["whole"]["first"], runs["resumed"]
    assert whole["seen"] == [["prune", e] for e in range(4)]
    assert resumed["weights"] == whole["weights"]
    assert resumed["tflite_outputs"] == whole["tflite_outputs"]


def test_restart_after_completion_trains_nothing(runs):
    again, whole = runs["whole"]["again"], runs["whole"]["first"]
    assert again["seen"] == []
    assert again["checkpoint"]["finished_before"] is True
    assert again["checkpoint"]["stages_restored"] == ["prune"]
    assert again["weights"] == whole["weights"]
    assert again["tflite_outputs"] == whole["tflite_outputs"]


def test_finished_restart_says_so(runs):
    assert "holds this run, finished: no stage trains again" in runs["whole_log"]


# In this process: what is refused before anything trains (the run of the fixture above
# left a finished checkpoint of the tiny model in its directory).


@pytest.fixture(scope="module")
def tiny():
    return tiny_model(), tiny_data()


def _refused(model, data, directory, recipe="prune", **extra):
    return ks.compress(
        model,
        recipe,
        train_data=data,
        epochs=4,
        batch_size=32,
        verbose=0,
        checkpoint_dir=directory,
        **extra,
    )


@pytest.mark.parametrize(
    "change, field",
    [("recipe", "recipe"), ("model", "model"), ("data", "data"), ("epochs", "epochs")],
)
def test_another_runs_directory_refused(runs, tiny, change, field):
    model, (x, y) = tiny
    directory = runs["whole_dir"]
    before = (directory / "manifest.json").read_text()
    args = {"model": model, "data": (x, y), "directory": directory}
    extra = {}
    if change == "recipe":
        extra["recipe"] = "prune-2:4"
    elif change == "model":
        other = tiny_model()
        other.set_weights([w * 0.5 for w in model.get_weights()])
        args["model"] = other
    elif change == "data":
        args["data"] = (x[:96], y[:96])  # 3 batches an epoch instead of 4
    with pytest.raises(
        CheckpointError, match=rf"belongs to another run.*Received: different {field}"
    ):
        if change == "epochs":
            ks.compress(
                model,
                "prune",
                train_data=(x, y),
                epochs=3,
                batch_size=32,
                verbose=0,
                checkpoint_dir=directory,
            )
        else:
            _refused(args["model"], args["data"], args["directory"], **extra)
    assert (directory / "manifest.json").read_text() == before  # nothing mixed in


def test_unwritable_checkpoint_dir_refused_before_training(tmp_path, tiny):
    model, data = tiny
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    seen = []
    with pytest.raises(OutputError, match=r"The checkpoint_dir cannot be written"):
        _refused(model, data, blocker / "checkpoints", callbacks=[_watch(seen)])
    with pytest.raises(OutputError, match=r"The checkpoint_dir is a file"):
        _refused(model, data, blocker, callbacks=[_watch(seen)])
    assert seen == []


def test_directory_of_other_files_refused(tmp_path, tiny):
    model, data = tiny
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(CheckpointError, match=r"holds files but no manifest\.json"):
        _refused(model, data, tmp_path)


def test_unreadable_manifest_refused(tmp_path, tiny):
    model, data = tiny
    (tmp_path / checkpoint.MANIFEST).write_text("{not json")
    with pytest.raises(CheckpointError, match=r"manifest cannot be read"):
        _refused(model, data, tmp_path)


def test_checkpoint_dir_ignored_without_training(tmp_path, tiny):
    model, (x, _) = tiny
    with pytest.warns(UserWarning, match="checkpoint_dir is ignored: the 'dynamic' recipe"):
        ks.compress(
            model, "dynamic", checkpoint_dir=tmp_path / "c", verbose=0, representative_data=x[:8]
        )
    assert not (tmp_path / "c").exists()


def _watch(seen):
    from keras_squeeze import _compat

    class Watch(_compat.keras_module(_compat.TF_KERAS).callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.append("trained")

    return Watch()


def _crash_in_epoch_2(flavour):
    from keras_squeeze import _compat

    class Crash(_compat.keras_module(flavour).callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == 1 and batch == 1:
                raise RuntimeError("crash in epoch 2")

    return Crash()


@pytest.mark.parametrize("stage, flavour", [("prune", "tf_keras"), ("cluster", "keras3")])
def test_native_engine_resumes_after_a_crash(tmp_path, tiny, stage, flavour):
    """The native engines keep state outside the model (masks; latent weights, centroids
    and assignments) and a step count: both come back with the checkpoint, in either
    Keras flavour (the native engines train the model in its own)."""
    import numpy as np
    import tensorflow as tf

    model, data = (tiny[0] if flavour == "tf_keras" else tiny_model(flavour)), tiny[1]
    config = ks.Prune(engine="native") if stage == "prune" else ks.Cluster(engine="native")
    recipe = ks.Recipe(**{stage: config})

    def run(directory, callbacks=()):
        tf.keras.utils.set_random_seed(0)
        return ks.compress(
            model,
            recipe,
            train_data=data,
            epochs=3,
            batch_size=32,
            verbose=0,
            checkpoint_dir=directory,
            callbacks=list(callbacks),
        )

    whole = run(tmp_path / "whole")
    with pytest.raises(RuntimeError, match="crash in epoch 2"):
        run(tmp_path / "crashed", [_crash_in_epoch_2(flavour)])
    resumed = run(tmp_path / "crashed")
    assert resumed.report.training["checkpoint"]["resumed_epochs"] == {f"{stage}-0": 1}
    assert resumed.report.stages[0]["settings"]["engine"] == "native"
    for a, b in zip(whole.model.get_weights(), resumed.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_checkpoint_that_cannot_be_written_stops_the_run(tmp_path, tiny):
    from keras_squeeze import _compat

    model, data = tiny
    directory = tmp_path / "ckpt"

    class TakeTheFileName(_compat.keras_module(_compat.TF_KERAS).callbacks.Callback):
        def on_train_begin(self, logs=None):  # the manifest exists by now
            (directory / "prune-0.npz").mkdir()  # the epoch's file cannot replace a directory

    with pytest.raises(CheckpointError, match=r"could not be written to checkpoint_dir"):
        ks.compress(
            model,
            "prune",
            train_data=data,
            epochs=2,
            batch_size=32,
            verbose=0,
            checkpoint_dir=directory,
            callbacks=[TakeTheFileName()],
        )
