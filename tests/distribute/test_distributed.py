"""MirroredStrategy over two logical CPU devices against one device, at the same global batch.

The logical devices must be configured before TensorFlow initialises its
devices, which this test process has done already, so the runs happen in a
fresh process (tests/distribute/run_distributed.py) that prints JSON. The
model is Keras 3: "prune" and "qat" train its tf_keras rebuild through tfmot,
ks.distill trains a Keras 3 student; the loop's step is checked on tf_keras.

Tolerances: the one loop's step is the same on two replicas as on one (SGD,
no batch normalization: weights within 1e-5); whole recipes on the example
CNN are not bitwise equal (batch normalization's statistics are per replica,
16 samples instead of 32, and pruning masks follow the weights' magnitudes),
so their .tflite files must agree on >= 90% of top-1 classes and their
accuracies within 0.1.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).with_name("run_distributed.py")
ROOT = SCRIPT.parents[2]


@pytest.fixture(scope="module")
def runs():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "keras3", "prune", "qat"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-4000:]
    return json.loads(lines[-1][len("RESULT ") :])


def test_two_replicas(runs):
    assert runs["replicas"] == 2


def test_one_step_is_the_same_on_two_replicas(runs):
    assert runs["fine_tune_max_diff"] < 1e-5


@pytest.mark.parametrize("recipe", ["prune", "qat"])
def test_recipe_agrees_with_one_device(runs, recipe):
    run = runs["recipes"][recipe]
    assert run["default"]["distribute"] is None
    assert run["mirrored"]["distribute"] == {"strategy": "MirroredStrategy", "replicas": 2}
    assert run["top1_agreement"] >= 0.9, run
    assert abs(run["default"]["accuracy"] - run["mirrored"]["accuracy"]) <= 0.1, run
    if recipe == "prune":
        for name in ("default", "mirrored"):
            assert run[name]["min_sparsity"] >= run[name]["target_sparsity"] - 0.02, run
            # no sparsity short of its target (the toy model's accuracy drop may be warned)
            assert not [w for w in run[name]["warnings"] if "sparsity" in w], run


def test_distill_agrees_with_one_device(runs):
    d = runs["distill"]
    assert d["mirrored"]["distribute"]["replicas"] == 2
    assert abs(d["default"]["accuracy"] - d["mirrored"]["accuracy"]) <= 0.1, d
    chose = d["mirrored_choice"]["choice"]  # the probes ran on two replicas too
    assert [r["chosen"] for r in chose["candidates"]].count(True) == 1, chose
    assert len(chose["candidates"]) == 3 and chose["probe_epochs"] == 1, chose


def test_refused_on_two_replicas(runs):
    kind, message = runs["errors"]["odd_batch"]
    assert kind == "DataError"
    assert re.search(r"batch_size is the global batch.*Expected a multiple of 2", message)
    kind, message = runs["errors"]["native_prune"]
    assert kind == "RecipeError"
    assert re.search(r"native engine .* does not run distributed", message)


def test_prune_channels_on_two_replicas(runs):
    """prune_channels' fine-tuning under MirroredStrategy: a copy of the pruned model in its
    scope; accuracy within 0.1 of one device (batch normalization statistics per replica)."""
    d = runs["prune_channels"]
    assert d["default"]["fine_tuning"].startswith("fine-tuned for 1 epoch(s)")
    assert "replica" not in d["default"]["fine_tuning"]
    assert d["mirrored"]["fine_tuning"].endswith("; on 2 replica(s) of MirroredStrategy")
    assert abs(d["default"]["accuracy"] - d["mirrored"]["accuracy"]) <= 0.1, d


def test_remove_blocks_on_two_replicas_re_estimates_and_folds(runs):
    d = runs["remove_blocks"]
    assert d["fine_tuning"].endswith("; on 2 replica(s) of MirroredStrategy")
    assert any("BatchNormalization layer(s) re-estimated on 128 samples" in n for n in d["notes"])
    assert any("after fine-tuning" in n for n in d["notes"]), d["notes"]
    assert "BatchNormalization" not in d["layers"]


@pytest.mark.parametrize("case", ["channel_odd_batch", "blocks_odd_batch"])
def test_structural_pruning_refuses_an_odd_global_batch(runs, case):
    kind, message = runs["errors"][case]
    assert kind == "DataError"
    assert re.search(r"batch_size is the global batch.*Expected a multiple of 2.*31", message)


def test_a_run_on_two_replicas_resumes_after_a_crash(runs):
    """checkpoint_dir under MirroredStrategy ("qat", crashed in epoch 2 of 3, called again):
    the same weights as the uninterrupted two-replica run."""
    r = runs["resume"]
    assert r["crash"] == "crash in epoch 2"
    assert r["checkpoint"]["resumed_epochs"] == {"qat-0": 1}
    assert r["max_diff"] == 0.0
