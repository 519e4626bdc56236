"""MultiWorkerMirroredStrategy: two worker processes on 127.0.0.1 run the same
keras-squeeze-compress command (--strategy=multi_worker, each with its TF_CONFIG); "prune"
completes on both, the chief (worker 0) writes the artifacts and the checkpoints, the other
worker writes neither. What this exercises: collective ops over gRPC between processes on
one host, each worker one CPU device. Not exercised here: GPUs, TPUs, several hosts.
"""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

from keras_squeeze import _compat

ROOT = pathlib.Path(__file__).parents[2]


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _tiny_keras3(path):
    k = _compat.keras_module(_compat.KERAS3)
    init = k.initializers.GlorotUniform
    inputs = k.Input((8, 8, 1))
    h = k.layers.Conv2D(8, 3, activation="relu", kernel_initializer=init(0))(inputs)
    h = k.layers.Flatten()(h)
    model = k.Model(inputs, k.layers.Dense(10, kernel_initializer=init(1))(h))
    model.compile("adam", k.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.save(path)


@pytest.mark.slow
def test_two_workers_prune_and_only_the_chief_writes(tmp_path, digits8):
    (x, y), (xt, yt) = digits8
    model = tmp_path / "model.keras"
    _tiny_keras3(model)
    data = tmp_path / "digits.npz"
    np.savez(data, x_train=x[:128], y_train=y[:128], x_test=xt[:64], y_test=yt[:64])
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    processes = []
    for index in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "TF_CONFIG": json.dumps(config),
        }
        args = [
            sys.executable,
            "-m",
            "keras_squeeze.cli.compress",
            f"--model={model}",
            f"--data={data}",
            "--recipe=prune",
            "--epochs=2",
            "--batch_size=32",
            "--formats=tflite",
            "--strategy=multi_worker",
            f"--output_dir={tmp_path / f'out{index}'}",
            f"--checkpoint_dir={tmp_path / f'ckpt{index}'}",
            "--verbose=1",
        ]
        log = open(tmp_path / f"worker{index}.log", "w")  # noqa: SIM115 (closed below)
        processes.append(
            (subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env), log)
        )
    codes = []
    for process, log in processes:
        try:
            codes.append(process.wait(timeout=240))
        finally:
            if process.poll() is None:
                process.kill()
            log.close()
    logs = [(tmp_path / f"worker{i}.log").read_text() for i in range(2)]
    assert codes == [0, 0], "\n----\n".join(text[-3000:] for text in logs)
    chief, other = tmp_path / "out0", tmp_path / "out1"
    report = json.loads((chief / "report.json").read_text())
    assert (chief / "model.tflite").stat().st_size > 0
    assert report["training"]["distribute"] == {
        "strategy": "MultiWorkerMirroredStrategy",
        "replicas": 2,
    }
    assert sorted(p.name for p in (tmp_path / "ckpt0").iterdir()) == [
        "manifest.json",
        "prune-0.npz",
    ]
    # The other worker trained the same steps and wrote nothing.
    assert not other.exists() and not (tmp_path / "ckpt1").exists()
    assert "not the chief worker: nothing written" in logs[1]
    assert "artifacts in" in logs[0] and "artifacts in" not in logs[1]
