from __future__ import annotations

import numpy as np
import pytest

import keras_squeeze as ks
from keras_squeeze.errors import RecipeError
from keras_squeeze.pruning.config import Prune
from keras_squeeze.pruning.verify import m_by_n_fraction, sparsity


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            {"target_sparsity": 1.0},
            r"Expected a value in \[0, 1\)\. Received: target_sparsity=1\.0",
        ),
        ({"target_sparsity": -0.1}, r"Received: target_sparsity=-0\.1"),
        ({"m_by_n": (4, 4)}, r"0 < M < N.*Received: m_by_n=\(4, 4\)"),
        ({"m_by_n": (2, 4), "block_size": (4, 1)}, r"block_size and m_by_n are two different"),
        ({"block_size": (0, 1)}, r"block_size must be two positive integers"),
        ({"schedule": "cosine"}, r"Unknown pruning schedule"),
        (
            {"layers": {"dense": 1.5}},
            r"per-layer sparsity must lie in \[0, 1\).*layers\['dense'\]=1\.5",
        ),
        ({"sparse_encoding": "yes"}, r"sparse_encoding must be True, False or 'auto'"),
        ({"end_step": 1.5}, r"end_step must be an integer step"),
    ],
)
def test_bad_settings(kwargs, match):
    with pytest.raises(RecipeError, match=match):
        Prune(**kwargs)


def test_round_trip_and_effective_sparsity():
    p = Prune(m_by_n=(2, 4), layers={"dense": None}, skip="logits")
    assert p.skip == ("logits",) and p.effective_sparsity == 0.5
    assert Prune.from_config(p.get_config()) == p
    r = ks.Recipe(prune=Prune(block_size=(4, 1)), quantization="float16")
    assert ks.Recipe.from_config(r.get_config()) == r
    assert r.name == "prune+float16"


def test_sparse_storage_only_for_float32():
    with pytest.raises(RecipeError, match=r"float32 weights only.*Received: quantization='int8'"):
        ks.Recipe(prune=Prune(sparse_encoding=True), quantization="int8")
    with pytest.raises(RecipeError, match=r"float32 weights only"):
        ks.Recipe(prune=Prune(xnnpack_sparse=True), quantization="dynamic")
    assert Prune().uses_sparse_encoding("float32") and not Prune().uses_sparse_encoding("int8")


def test_m_by_n_fraction():
    w = np.array([[0, 0, 1, 2, 0, 3, 0, 4]], dtype=np.float32)  # two 4-blocks, both 2:4
    assert m_by_n_fraction(w, 2, 4) == 1.0
    w[0, 0] = 5
    assert m_by_n_fraction(w, 2, 4) == 0.5
    # Conv layout (out, h, w, in) with in=6: the last block is padded with zeros.
    conv = np.zeros((2, 1, 1, 6))
    conv[:, :, :, [0, 1, 4]] = 1
    assert m_by_n_fraction(conv, 2, 4) == 1.0
    assert sparsity(conv) == 0.5
