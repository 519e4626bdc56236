from __future__ import annotations

import gzip
import math

import numpy as np
import pytest

from keras_squeeze.report import metrics


def test_sqnr_known_values():
    ref = np.ones(100)
    assert metrics.sqnr_db(ref, ref) == math.inf
    # noise power 1% of signal power -> 20 dB
    assert metrics.sqnr_db(ref, ref + 0.1) == pytest.approx(20.0)
    assert metrics.sqnr_db(np.zeros(3), np.ones(3)) == -math.inf
    with pytest.raises(ValueError, match="Shapes differ"):
        metrics.sqnr_db(np.ones(3), np.ones(4))


def test_top1_and_accuracy():
    a = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    b = np.array([[0.8, 0.2], [0.9, 0.1], [0.7, 0.3]])
    assert metrics.top1_agreement(a, b) == pytest.approx(2 / 3)
    assert metrics.accuracy(a, np.array([0, 1, 1])) == pytest.approx(2 / 3)


def test_gzip_size_is_deterministic_and_real():
    data = b"abc" * 1000
    assert metrics.gzip_size(data) == len(gzip.compress(data, 9, mtime=0))
    assert metrics.gzip_size(data) < len(data)


def test_compare_aggregates_per_output():
    ref = [np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[1.0], [2.0]])]
    cand = [np.array([[0.9, 0.1], [0.6, 0.4]]), np.array([[1.0], [2.5]])]
    f = metrics.compare(ref, cand, ["cls", "reg"], "2 samples")
    assert f.samples == 2
    assert f.top1_agreement == 0.5  # only the classifier output counts
    assert f.outputs[1].top1_agreement is None
    assert f.max_abs_diff == pytest.approx(0.6)
    assert f.sqnr_db == min(o.sqnr_db for o in f.outputs)
    d = f.to_dict()
    assert d["outputs"][0]["name"] == "cls"
    exact = metrics.compare(ref, ref, ["cls", "reg"], "x").to_dict()
    assert exact["sqnr_db"] == "inf"  # JSON has no infinity


def test_gzip_size_of_a_large_file_is_estimated_closely_and_deterministically():
    rng = np.random.default_rng(0)
    weights = (rng.standard_normal(3 * 2**20) * 0.05).astype(np.float32).tobytes()  # 12 MiB
    zeros = bytes(4 * 2**20)
    codes = rng.integers(-8, 8, 5 * 2**20).astype(np.int8).tobytes()
    data = weights + zeros + codes + weights[: 2**20]  # 22 MiB of mixed kinds
    assert len(data) > metrics.GZIP_EXACT_BYTES
    exact = len(gzip.compress(data, 9, mtime=0))
    estimate = metrics.gzip_size(data)
    assert estimate == metrics.gzip_size(data)
    assert abs(estimate - exact) / exact < 0.01
