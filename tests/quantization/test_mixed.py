"""int8-mixed: full int8 with the ops int8 cannot represent kept float32, measured."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_squeeze as ks
from keras_squeeze.quantization import mixed
from keras_squeeze.report import precision
from keras_squeeze.report.metrics import Fidelity, OutputFidelity
from keras_squeeze.report.tflite_reader import read_tflite


@pytest.fixture(scope="module")
def unnormalised():
    """A classifier whose first input feature spans +-3,000 while its classes depend on the
    others (in [-3, 3]): one int8 scale for the whole input erases them."""
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    x = rng.normal(size=(192, 8)).astype(np.float32)
    x[:, 0] *= 1000.0
    inp = keras.Input((8,), name="features")
    h = keras.layers.Dense(32, activation="relu", name="first")(inp)
    h = keras.layers.Dense(32, activation="relu", name="middle")(h)
    model = keras.Model(inp, keras.layers.Dense(4, name="logits")(h))
    kernel, bias = model.get_layer("first").get_weights()
    kernel[0] *= 1e-4  # the wide feature hardly matters
    model.get_layer("first").set_weights([kernel * 3.0, bias])
    y = model.predict(x, verbose=0).argmax(axis=1)
    return model, x, y


@pytest.fixture(scope="module")
def results(unnormalised):
    model, x, y = unnormalised
    common = dict(representative_data=x[:96], validation_data=(x[96:], y[96:]), verbose=0)
    with pytest.warns(UserWarning, match="DEPARTS FROM THE KERAS MODEL"):
        plain = ks.compress(
            model,
            "int8",
            inference_input_type="float32",
            inference_output_type="float32",
            **common,
        )
    return {
        "int8": plain,
        "int8-mixed": ks.compress(model, "int8-mixed", **common),
        "again": ks.compress(model, "int8-mixed", **common),
    }


def test_mixed_keeps_the_sensitive_op_float_and_is_closer_to_float(results):
    plain, mix = results["int8"].report, results["int8-mixed"].report
    assert plain.fidelity.top1_agreement < 0.8  # plain int8 loses it
    assert mix.fidelity.top1_agreement >= 0.95  # held-out samples; 100% on the calibration ones
    assert mix.fidelity.sqnr_db > plain.fidelity.sqnr_db + 15
    assert mix.accuracy["compressed"] > plain.accuracy["compressed"] + 0.2
    rows = {row.name: row for row in mix.layers}
    assert rows["first"].quantized == "float32"
    assert rows["first"].reason.startswith("kept float32 by int8-mixed: its int8 output's SQNR")
    counts = mix.precision["counts"]
    assert counts.get("int8", 0) >= 1 and counts.get("float32", 0) >= 1  # still mixed
    plan = mix.precision["plan"]
    assert plan["met"] and "first" in plan["kept"][0]["op"]
    assert plan["int8"]["top1_agreement"] < 0.8
    assert any(n.startswith("int8-mixed kept") for n in mix.notes)
    assert mix.size_ratio < 1.0


def test_a_mixed_file_is_not_called_float32(results):
    report = results["int8-mixed"].report
    assert report.precision["float32_only"] is False and "note" not in report.precision
    assert not any(precision.INT8_MIXED_FLOAT32 in w for w in report.warnings)
    assert precision.FLOAT32_FILE not in report.to_markdown()


def wide_hidden_regression():
    """A regression MLP that int8-mixed must keep all float32: one hidden unit carries a
    +-5,000 feature (and a bias of 5,000) the output hardly reads, the others the small
    features it does read. The input and the hidden tensor each get one int8 scale, which
    that unit sets: with either op at int8 the small values round away."""
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    inp = keras.Input((8,), name="features")
    h = keras.layers.Dense(16, activation="relu", name="hidden")(inp)
    model = keras.Model(inp, keras.layers.Dense(2, name="values")(h), name="wide")
    kernel, bias = np.zeros((8, 16), "f4"), np.full(16, 3.0, "f4")
    kernel[0, 0], bias[0] = 1.0, 5000.0
    kernel[1:, 1:] = rng.normal(scale=0.5, size=(7, 15))
    model.get_layer("hidden").set_weights([kernel, bias])
    head = rng.normal(size=(16, 2)).astype("f4")
    head[0] = 1e-5
    model.get_layer("values").set_weights([head, np.zeros(2, "f4")])
    x = rng.normal(size=(160, 8)).astype("f4")
    x[:, 0] *= 1000.0
    return model, x, np.asarray(model(x))


def test_mixed_that_keeps_every_op_float32_says_it_is_a_float32_file(tmp_path):
    import json

    from keras_squeeze.report.summary import terminal_summary

    model, x, y = wide_hidden_regression()
    with pytest.warns(UserWarning, match=f"{precision.INT8_MIXED_FLOAT32}.*a float32 file"):
        result = ks.compress(
            model,
            "int8-mixed",
            representative_data=x[:80],
            validation_data=(x[80:], y[80:]),
            verbose=0,
        )
    report = result.report
    assert set(report.precision["counts"]) == {"float32"} and report.precision["float32_only"]
    assert len(report.precision["plan"]["kept"]) == report.precision["counts"]["float32"]
    assert report.precision["plan"]["int8"]["sqnr_db"] < mixed.MIN_SQNR_DB  # int8 loses it
    assert report.fidelity.sqnr_db > 100  # the float32 file it is
    said = f"int8-mixed made {precision.FLOAT32_FILE}"
    assert said in report.precision["note"]
    assert f"(**every op float32 (2 ops): {said}**)" in report.to_markdown()
    assert said in terminal_summary(report)
    assert any(w.startswith(precision.INT8_MIXED_FLOAT32) for w in report.warnings)
    result.save(tmp_path / "out", formats=("tflite",))
    saved = json.loads((tmp_path / "out" / "report.json").read_text())["precision"]
    assert saved["float32_only"] is True and said in saved["note"]
    assert (
        f"**Warning:** {precision.INT8_MIXED_FLOAT32}"
        in (tmp_path / "out" / "report.md").read_text()
    )


def test_mixed_is_deterministic(results):
    assert results["int8-mixed"].tflite == results["again"].tflite


def test_plan_round_trips_through_the_file(results):
    content = results["int8-mixed"].tflite
    plan = precision.read_plan(content)
    again = precision.with_plan(content, {**plan, "note": "replaced"})
    assert precision.read_plan(again)["note"] == "replaced"
    assert precision.read_plan(results["int8"].tflite) is None
    ops = precision.op_precisions(read_tflite(again))
    assert [op.precision for op in ops] == [
        op.precision for op in precision.op_precisions(read_tflite(content))
    ]


def test_smallest_passing_finds_the_first_k():
    for count in (0, 1, 2, 5, 9):
        for first in range(count + 1):
            calls = []

            def passes(k, first=first, calls=calls):
                calls.append(k)
                return k >= first

            assert mixed.smallest_passing(count, passes) == first
            assert len(calls) <= 2 * max(1, count).bit_length() + 2
    assert mixed.smallest_passing(4, lambda k: False) == 4


def test_order_is_by_error_then_position():
    errors = {"b": 3.0, "a": 3.0, "c": -1.0, "d": float("inf")}
    assert mixed.order(errors, {"a": 2, "b": 1, "c": 3, "d": 0}) == ["c", "b", "a", "d"]
    assert mixed.operand_name("NumericVerify/dense/MatMul;dense/Relu1:11") == (
        "dense/MatMul;dense/Relu"
    )
    assert mixed.op_sqnr_db(100.0, 1.0) == pytest.approx(20.0)


def test_bound():
    def fid(*outputs):
        return Fidelity(
            0.0,
            None,
            0.0,
            1,
            "",
            [OutputFidelity(f"o{i}", s, 0.0, t) for i, (s, t) in enumerate(outputs)],
        )

    assert mixed.within_bound(fid((25.0, 1.0), (31.0, None)))
    assert not mixed.within_bound(fid((25.0, 0.99)))
    assert not mixed.within_bound(fid((19.0, 1.0)))
    assert not mixed.within_bound(fid((29.0, None)))


def test_prune_kept_returns_ops_the_bound_does_not_need_to_int8():
    needed = {"a", "c"}
    calls = []

    def passes(names):
        calls.append(tuple(names))
        return needed <= set(names)

    assert mixed.prune_kept(["a", "b", "c", "d"], passes) == ["a", "c"]
    assert calls[0] == ("a", "b", "c")  # the least sensitive is tried first
    assert mixed.prune_kept(["a"], lambda names: False) == ["a"]
