"""ks.sensitivity: the per-layer table ranks deliberately fragile layers first, leaves the
model as it was, round-trips through JSON, and refuses bad arguments with their message.

The model is built so that each column has a known answer:
- "sparse_a": an identity kernel (16 non-zeros of 256): pruning to 90% keeps every
  non-zero and clustering keeps its two values, so every drop is exactly zero, and int8
  stores it exactly;
- "dense_mix": a dense random kernel whose every weight carries signal: every pruning
  rate costs metric;
- "outlier_head": a kernel with huge weights on inputs that are always zero (the
  columns "dense_mix" zeroes): harmless in float, but the per-channel int8 scale they set
  rounds every ordinary weight to zero, so its own int8 error is the worst by far.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import keras_squeeze as ks
from keras_squeeze.layer_sensitivity import (
    ErrorProbe,
    ProbeResult,
    register_error_probe,
    unregister_error_probe,
)
from keras_squeeze.layer_sensitivity.probes import cluster_probe, prune_probe
from tests.conftest import assert_weights_equal, weights_snapshot

FEATURES = 16


def fragile_model():
    import keras

    rng = np.random.default_rng(0)
    inputs = keras.Input((FEATURES,), name="features")
    x = keras.layers.Dense(FEATURES, name="sparse_a")(inputs)
    x = keras.layers.Dense(FEATURES, name="dense_mix")(x)
    outputs = keras.layers.Dense(2, name="outlier_head")(x)
    model = keras.Model(inputs, outputs, name="fragile")
    zeros = np.zeros(FEATURES, "float32")
    model.get_layer("sparse_a").set_weights([np.eye(FEATURES, dtype="float32"), zeros])
    mix = rng.normal(size=(FEATURES, FEATURES)).astype("float32") / 4
    mix[:, 12:] = 0.0  # outputs 12..15 are always zero
    model.get_layer("dense_mix").set_weights([mix, zeros])
    head = rng.normal(size=(FEATURES, 2)).astype("float32") / 4
    head[12:] = 1000.0  # huge weights on the always-zero inputs
    model.get_layer("outlier_head").set_weights([head, np.zeros(2, "float32")])
    return model


@pytest.fixture(scope="module")
def measured():
    model = fragile_model()
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, FEATURES)).astype("float32")
    y = np.asarray(model(x)) + 0.01 * rng.normal(size=(200, 2)).astype("float32")
    before = weights_snapshot(model)
    table = ks.sensitivity(model, (x, y), num_debug_samples=40, verbose=0)
    return model, before, table, (x, y)


def test_rows_and_columns(measured):
    _, _, table, _ = measured
    assert [r.name for r in table.layers] == ["sparse_a", "dense_mix", "outlier_head"]
    assert [n for n, _ in table.drop_probes] == [
        "prune_0.5",
        "prune_0.7",
        "prune_0.9",
        "cluster_16",
        "cluster_8",
    ]
    assert [n for n, _ in table.error_probes] == ["int8", "int4"]
    assert table.metric == "relative MSE" and table.complete
    assert table.layer("sparse_a").kernel_params == FEATURES * FEATURES


def test_int8_ranks_the_outlier_layer_first(measured):
    _, _, table, _ = measured
    assert table.ranked("int8")[0].name == "outlier_head"
    head = table.layer("outlier_head").errors["int8"]
    assert head["sqnr_db"] < 3.0, head  # its ordinary weights round to zero
    for name in ("sparse_a", "dense_mix"):
        assert table.layer(name).errors["int8"]["sqnr_db"] > 25.0, table.table()
    assert table.ranked("int8.rmse")[0].name == "outlier_head"


def test_int4_ranks_the_outlier_layer_first(measured):
    """int4 per output channel: the head's ordinary weights share a scale with 1000s."""
    _, _, table, _ = measured
    assert table.ranked("int4")[0].name == "outlier_head", table.table()
    head = table.layer("outlier_head").errors["int4"]
    assert head["rmse"] is None  # an output SQNR, no per-op RMSE
    identity = table.layer("sparse_a").errors["int4"]["sqnr_db"]
    assert identity > head["sqnr_db"] + 20, table.table()  # 1.0 and 0.0 are exact in int4
    assert any(n.startswith("int4: SQNR of the outputs") for n in table.notes), table.notes


def test_weight_probes_rank_dense_kernels_above_the_sparse_one(measured):
    _, _, table, _ = measured
    sparse = table.layer("sparse_a")
    assert all(abs(v) < 1e-6 for v in sparse.drops.values()), sparse.drops
    mix = table.layer("dense_mix")
    assert mix.drops["prune_0.9"] > mix.drops["prune_0.5"] > 0.01, mix.drops
    assert table.ranked()[-1].name == "sparse_a"
    assert table.ranked("prune_0.9")[-1].name == "sparse_a"


def test_the_model_is_unchanged(measured):
    model, before, _, (x, y) = measured
    assert_weights_equal(before, model)
    np.testing.assert_allclose(np.asarray(model(x)), y, atol=0.1)


def test_json_round_trip_table_and_save(measured, tmp_path):
    _, _, table, _ = measured
    text = table.to_json()
    again = ks.Sensitivity.from_json(text)
    assert again.to_dict() == table.to_dict()
    assert again.ranked("int8")[0].name == "outlier_head"
    exact = ks.Sensitivity.from_dict(json.loads(text))
    exact.layers[0].errors["int8"] = {"sqnr_db": float("inf"), "rmse": 0.0}
    assert json.loads(exact.to_json())["layers"][0]["errors"]["int8"]["sqnr_db"] == "inf"
    assert ks.Sensitivity.from_json(exact.to_json()).layers[0].errors["int8"]["sqnr_db"] > 1e308
    text_table = table.table()
    assert "outlier_head" in text_table and "int8 SQNR dB" in text_table
    written = table.save(tmp_path / "sens")
    assert sorted(written) == ["sensitivity.json", "sensitivity.png"]
    assert (tmp_path / "sens" / "sensitivity.png").read_bytes().startswith(b"\x89PNG")
    saved = ks.Sensitivity.from_json((tmp_path / "sens" / "sensitivity.json").read_text())
    assert saved.to_dict() == table.to_dict()


def test_classifier_of_the_other_flavour_without_labels(trained_models, digits8):
    from keras_squeeze import _compat

    model = trained_models[_compat.TF_KERAS]
    before = weights_snapshot(model)
    (x, _), _ = digits8
    table = ks.sensitivity(
        model, x[:64], prune_rates=(0.9,), cluster_counts=(), num_debug_samples=8, verbose=0
    )
    assert table.metric == "top-1 agreement with the original model"
    assert table.baseline == 1.0
    kinds = {r.type for r in table.layers}
    assert {"Conv2D", "Dense"} <= kinds
    assert all(r.errors["int8"] is not None for r in table.layers), table.table()
    assert all(r.drops["prune_0.9"] is not None for r in table.layers)
    assert_weights_equal(before, model)


def test_time_budget_stops_and_says_so(measured, capsys):
    model, _, _, data = measured
    table = ks.sensitivity(model, data, time_budget_s=1e-9, verbose=1)
    assert not table.complete
    assert all(v is None for r in table.layers for v in r.drops.values())
    assert "stopped at the time budget" in table.notes[-1]
    assert "stopped at the time budget" in capsys.readouterr().out
    assert "'-' cells were not measured" in table.table()


def test_a_failing_error_probe_leaves_its_column_empty(measured, capsys):
    model, _, _, data = measured

    def broken(ctx):
        raise RuntimeError("no converter for this form")

    def partial(ctx):
        return ProbeResult({"dense_mix": {"sqnr_db": 12.0, "rmse": 0.5}}, ["partial: a note"])

    register_error_probe(ErrorProbe("broken", "broken", broken))
    register_error_probe(ErrorProbe("partial", "partial", partial))
    try:
        table = ks.sensitivity(
            model, data, errors=("broken", "partial"), prune_rates=(), cluster_counts=()
        )
    finally:
        unregister_error_probe("broken")
        unregister_error_probe("partial")
    row = table.layer("dense_mix")
    assert row.errors == {"broken": None, "partial": {"sqnr_db": 12.0, "rmse": 0.5}}
    assert "no converter for this form" in row.skipped["broken"]
    assert "broken: not measured (RuntimeError: no converter" in " ".join(table.notes)
    assert "partial: a note" in table.notes
    assert "broken not measured" in capsys.readouterr().out
    assert table.ranked("partial")[0].name == "dense_mix"


def test_probe_maths():
    kernel = np.random.default_rng(0).normal(size=(3, 3, 4, 8)).astype("float32")
    pruned = prune_probe(0.7).apply(kernel, "Conv2D")
    assert abs(float((pruned == 0).mean()) - 0.7) < 0.01
    clustered = cluster_probe(8).apply(kernel, "Conv2D")
    assert clustered.shape == kernel.shape and clustered.dtype == kernel.dtype
    assert max(len(np.unique(clustered[..., c])) for c in range(8)) == 8  # per channel
    assert len(np.unique(cluster_probe(8).apply(kernel[0, 0], "Dense"))) == 8  # per tensor
    assert cluster_probe(16).apply(kernel[0, 0, :2, :4], "Dense") == (
        "8 weights, fewer than 16 clusters"
    )
    assert "fewer than 16 clusters" in cluster_probe(16).apply(kernel[:1, :1, :4], "Conv2D")


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"prune_rates": (1.5,)}, ks.ConfigError, r"Expected a value in \(0, 1\). Received: 1.5"),
        ({"prune_rates": 0.5}, ks.ConfigError, "prune_rates is a list of settings"),
        ({"cluster_counts": (1,)}, ks.ConfigError, "Expected an integer >= 2. Received: 1"),
        ({"layers": ["nope"]}, ks.ConfigError, r"does not have.*Received: \['nope'\]"),
        ({"errors": ["int5"]}, ks.ConfigError, r"Unknown error probe.*'int5'"),
        ({"time_budget_s": 0}, ks.ConfigError, "positive number of seconds"),
        ({"num_samples": 0}, ks.DataError, "num_samples must be a positive integer"),
        ({"data": None}, ks.DataError, "Received: data=None"),
    ],
)
def test_bad_arguments(measured, kwargs, error, match):
    model, _, _, data = measured
    kwargs = {"data": data, **kwargs}
    with pytest.raises(error, match=match):
        ks.sensitivity(model, kwargs.pop("data"), verbose=0, **kwargs)


def test_bad_arguments_of_the_table(measured, tmp_path):
    import keras

    _, _, table, _ = measured
    flat = keras.Sequential([keras.Input((4, 4)), keras.layers.Flatten(name="flat")])
    flat_data = np.zeros((4, 4, 4), "float32")
    with pytest.raises(ks.ConfigError, match=r"without a kernel.*Received: \['flat'\]"):
        ks.sensitivity(flat, flat_data, layers=["flat"], verbose=0)
    with pytest.raises(ks.ConfigError, match=r"Unknown sensitivity column.*by='prune_0.3'"):
        table.ranked("prune_0.3")
    with pytest.raises(ks.ConfigError, match=r"Unknown sensitivity column.*Received: 'nope'"):
        table.value(table.layers[0], "nope")
    with pytest.raises(ks.ConfigError, match="No layer of that name"):
        table.layer("nope")
    with pytest.raises(ks.ConfigError, match="Received: schema 7"):
        ks.Sensitivity.from_dict({"schema": 7})
    with pytest.raises(ks.ConfigError, match=r"Expected the text of a sensitivity\.json"):
        ks.Sensitivity.from_json("{not json")
    with pytest.raises(ks.ConfigError, match="register_error_probe takes an ErrorProbe"):
        register_error_probe(lambda ctx: None)
    with pytest.raises(ks.ConfigError, match="Received: name='int 4'"):
        register_error_probe(ErrorProbe("int 4", "int4", lambda ctx: None))
    file = tmp_path / "a_file"
    file.write_text("x")
    with pytest.raises(ks.OutputError, match="is a file"):
        table.save(file)


def test_two_inputs_and_two_outputs():
    import keras

    a = keras.Input((8,), name="zeta")
    b = keras.Input((4,), name="alpha")
    x = keras.layers.Dense(8, name="mix")(keras.layers.Concatenate()([b, a]))
    model = keras.Model(
        [a, b], [keras.layers.Dense(3, name="cls")(x), keras.layers.Dense(1, name="reg")(x)]
    )
    rng = np.random.default_rng(2)
    xs = [rng.normal(size=(48, 8)).astype("float32"), rng.normal(size=(48, 4)).astype("float32")]
    table = ks.sensitivity(model, xs, prune_rates=(0.9,), cluster_counts=(), num_debug_samples=8,
                           verbose=0)  # fmt: skip
    assert table.metric.endswith("(the worst output's drop)")
    assert [r.name for r in table.layers] == ["mix", "cls", "reg"]
    assert all(r.errors["int8"] is not None for r in table.layers), table.notes
    assert table.layer("mix").drops["prune_0.9"] > 0


def test_a_recurrent_layer():
    import keras

    inputs = keras.Input((6, 4), name="sequence")
    x = keras.layers.LSTM(8, name="lstm")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, name="head")(x))
    xs = np.random.default_rng(3).normal(size=(48, 6, 4)).astype("float32")
    table = ks.sensitivity(model, xs, prune_rates=(0.9,), cluster_counts=(), num_debug_samples=8,
                           verbose=0)  # fmt: skip
    lstm = table.layer("lstm")
    assert lstm.type == "LSTM" and lstm.kernel_params == 4 * 32 + 8 * 32  # and recurrent
    assert lstm.errors["int8"] is not None, table.notes  # calibrated on an unrolled copy
    assert lstm.drops["prune_0.9"] > 0


def test_token_ids_attention_and_a_subclassed_model(digits8):
    import keras

    from tests import subclassed

    ids = keras.Input((6,), dtype="int32", name="ids")
    x = keras.layers.Embedding(40, 8, name="embed")(ids)
    x = keras.layers.MultiHeadAttention(2, 4, name="attention")(x, x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    model = keras.Model(ids, keras.layers.Dense(3, name="head")(x))
    tokens = np.random.default_rng(4).integers(0, 40, size=(40, 6)).astype("int32")
    table = ks.sensitivity(model, tokens, prune_rates=(0.9,), cluster_counts=(), num_debug_samples=6,
                           verbose=0)  # fmt: skip
    assert [r.name for r in table.layers] == ["embed", "attention", "head"]
    assert table.layer("attention").kernel_params == 4 * 8 * 8  # query, key, value, output
    assert all(r.errors["int8"] is not None for r in table.layers), table.table()

    (x, _), _ = digits8
    sub = subclassed.cnn("keras3")
    sub(x[:1])
    before = weights_snapshot(sub)
    table = ks.sensitivity(sub, x[:32], prune_rates=(0.9,), cluster_counts=(), num_debug_samples=6,
                           verbose=0)  # fmt: skip
    assert [r.type for r in table.layers] == ["Conv2D", "Conv2D", "Dense", "Dense"]
    assert all(r.errors["int8"] is not None for r in table.layers), table.table()
    assert_weights_equal(before, sub)
