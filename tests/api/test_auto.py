"""compress(model, "auto"): the smallest candidate within the budget, no larger than any fixed
preset that meets it, the search table, determinism, the time budget, and bad input.

The classifier's labels are its own float predictions, so its original accuracy is 1.0 and
a candidate's drop is its disagreement with the float model. Its hidden kernels are a few
large weights over tiny noise: magnitude pruning to 90% or clustering to 8 values changes
nothing that matters, so the sensitivity table gives every hidden layer a setting and the
training candidates have something to find. The regression MLP's targets are its own float
outputs: any quantization error is a drop, so max_accuracy_drop=0 is met by no candidate.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import keras_squeeze as ks
from keras_squeeze.api import auto, auto_latency
from keras_squeeze.api.reporting import within
from keras_squeeze.report import search as search_report
from tests import conftest

BUDGET = 0.05
FEATURES = 16


def sparse_kernel(rng, rows, cols):
    kernel = rng.normal(scale=1e-4, size=(rows, cols)).astype("float32")
    picks = rng.choice(rows * cols, size=(rows * cols) // 12, replace=False)
    kernel.flat[picks] = rng.normal(scale=0.6, size=picks.size)
    return kernel


@pytest.fixture(scope="module")
def classifier():
    import keras

    keras.utils.set_random_seed(0)  # the head's initial weights
    rng = np.random.default_rng(0)
    inputs = keras.Input((FEATURES,), name="features")
    x = keras.layers.Dense(64, activation="relu", name="wide")(inputs)
    x = keras.layers.Dense(64, activation="relu", name="mid")(x)
    outputs = keras.layers.Dense(4, name="head")(x)
    model = keras.Model(inputs, outputs, name="mlp")
    model.get_layer("wide").set_weights([sparse_kernel(rng, FEATURES, 64), np.zeros(64, "f4")])
    model.get_layer("mid").set_weights([sparse_kernel(rng, 64, 64), np.zeros(64, "f4")])
    x = rng.normal(size=(400, FEATURES)).astype("float32")
    y = np.argmax(np.asarray(model(x)), -1)
    return model, x, y


def search_classifier(classifier, **kwargs):
    """compress(model, "auto") of the classifier: half its samples validate, half calibrate."""
    model, x, y = classifier
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ks.compress(
            model,
            "auto",
            validation_data=(x[:200], y[:200]),
            representative_data=x[200:],
            max_accuracy_drop=BUDGET,
            verbose=0,
            **kwargs,
        )


@pytest.fixture(scope="module")
def searched(classifier):
    return search_classifier(classifier)


def test_auto_is_within_budget_and_no_larger_than_any_fixed_preset_that_meets_it(
    classifier, searched
):
    model, x, y = classifier
    report = searched.report
    assert report.accuracy_budget["met"] and within(report.accuracy_budget["drop"], BUDGET)
    chosen = report.search["chosen"]
    assert report.recipe == chosen
    meeting = []
    for preset in auto.POST_TRAINING:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fixed = ks.compress(
                model,
                preset,
                validation_data=(x[:200], y[:200]),
                representative_data=x[200:],
                max_accuracy_drop=BUDGET,
                verbose=0,
            ).report
        if fixed.accuracy_budget["met"]:
            meeting.append((preset, fixed.compressed.tflite_gzip_bytes))
    assert meeting
    assert all(report.compressed.tflite_gzip_bytes <= gz for _, gz in meeting), meeting


def test_the_search_table_lists_every_candidate_and_renders(searched, tmp_path, capsys):
    search = searched.report.search
    rows = {r["candidate"]: r for r in search["candidates"]}
    assert list(rows) == list(auto.POST_TRAINING)  # no train_data: post-training only
    tried = [r for r in rows.values() if r["status"] == "tried"]
    assert rows[search["chosen"]]["chosen"] and rows[search["chosen"]]["within_budget"]
    for r in tried:
        assert r["gzip_bytes"] > 0 and r["tflite_bytes"] > r["gzip_bytes"] * 0.5
        assert r["drop"] is not None and r["seconds"] > 0
        assert r["within_budget"] == within(r["drop"], BUDGET)
    for r in rows.values():
        if r["status"] == "skipped":
            assert r["note"] and r["gzip_bytes"] is None
    # The Pareto front: no tried row on it is beaten on both gzip bytes and drop.
    front = [r for r in tried if r["pareto"]]
    assert rows[search["chosen"]] in front or any(
        o["gzip_bytes"] <= rows[search["chosen"]]["gzip_bytes"] for o in front
    )
    for r in front:
        assert not any(o["gzip_bytes"] < r["gzip_bytes"] and o["drop"] < r["drop"] for o in tried)
    md = searched.report.to_markdown()
    assert "## Auto search" in md and f"| {search['chosen']} (chosen) |" in md
    assert "Auto search" in ks.report.html.to_html(searched.report)
    assert f"{search['chosen']} (chosen)" in searched.report.table()
    searched.save(tmp_path / "out")
    assert (tmp_path / "out" / "report_search.png").read_bytes()[:4] == b"\x89PNG"
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["search"]["chosen"] == search["chosen"]
    assert len(saved["search"]["candidates"]) == len(rows)


def test_the_search_is_deterministic(classifier, searched):
    again = search_classifier(classifier)
    keys = ("candidate", "status", "tflite_bytes", "gzip_bytes", "drop", "within_budget")
    first = [{k: r[k] for k in keys} for r in searched.report.search["candidates"]]
    second = [{k: r[k] for k in keys} for r in again.report.search["candidates"]]
    assert first == second
    assert again.tflite == searched.tflite


def test_the_time_budget_stops_the_search_with_the_best_so_far(classifier, capsys):
    model, x, y = classifier
    with pytest.warns(UserWarning, match=auto.SEARCH_STOPPED):
        result = ks.compress(
            model,
            "auto",
            validation_data=(x[:200], y[:200]),
            representative_data=x[200:],
            train_data=(x, y),
            max_accuracy_drop=BUDGET,
            time_budget_s=1e-3,
        )
    search = result.report.search
    assert search["stopped"]
    statuses = [r["status"] for r in search["candidates"]]
    assert statuses[0] == "tried" and set(statuses[1:]) == {"not tried"}
    assert len(statuses) == len(auto.POST_TRAINING) + len(auto.TRAINING_NAMES)
    assert search["chosen"] == "int8"
    assert any(auto.SEARCH_STOPPED in w for w in result.report.warnings)
    assert auto.SEARCH_STOPPED in capsys.readouterr().out
    assert auto.SEARCH_STOPPED in result.report.to_markdown()


@pytest.fixture(scope="module")
def digits_mlp():
    from keras_squeeze.data import load_digits

    (x, y), (xt, yt) = load_digits(8)
    return conftest.digits_mlp(x, y), (x[:400], y[:400]), (xt, yt)


def test_training_candidates_take_their_per_layer_settings_from_sensitivity(digits_mlp):
    model, train, validation = digits_mlp
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = ks.compress(
            model,
            "auto",
            validation_data=validation,
            train_data=train,
            max_accuracy_drop=0.03,
            epochs=1,
            verbose=0,
        )
    rows = {r["candidate"]: r for r in result.report.search["candidates"]}
    # the first training candidate also runs on labels only: the distillation setting is
    # chosen on the validation data (tests/api/test_auto_distill.py)
    names = list(auto.TRAINING_NAMES)
    names.insert(1, "auto-prune, labels only")
    assert list(rows) == [*auto.POST_TRAINING, *names]
    prune, cluster = rows["auto-prune"], rows["auto-cluster"]
    assert prune["status"] == "tried" and cluster["status"] == "tried"
    assert prune["recipe"]["prune"]["layers"]["hidden"] in auto.PRUNE_RATES
    assert cluster["recipe"]["cluster"]["layers"]["hidden"] in auto.CLUSTER_COUNTS
    again = ks.Recipe.from_config(prune["recipe"])  # a row's recipe can be run again as it is
    assert again.name == "auto-prune" and again.prune.layers == prune["recipe"]["prune"]["layers"]
    within = [r for r in rows.values() if r["within_budget"]]
    best = min(within, key=lambda r: r["gzip_bytes"])
    assert result.report.search["chosen"] == best["candidate"]
    assert result.report.compressed.tflite_gzip_bytes == best["gzip_bytes"]
    # Fine-tuned per-layer sparsity and clusters beat every post-training candidate here.
    assert best["kind"] == "training"
    assert result.report.stages  # the chosen candidate's fine-tuning is in its report


@pytest.fixture(scope="module")
def regression():
    """A model whose int8-mixed keeps some ops int8 at max_accuracy_drop=0 (with other
    weights it can keep every op float32, a file that loses nothing and meets any budget):
    seeded, so the model does not depend on which tests ran before."""
    import keras

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(1)
    inputs = keras.Input((12,), name="features")
    x = keras.layers.Dense(128, activation="relu", name="hidden")(inputs)
    outputs = keras.layers.Dense(3, name="values")(x)
    model = keras.Model(inputs, outputs, name="reg")
    x = rng.normal(size=(120, 12)).astype("float32")
    return model, x, np.asarray(model(x))


def test_a_budget_no_candidate_meets_says_what_the_closest_reached(regression):
    model, x, y = regression
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(
            ks.VerificationError,
            match=r"No candidate of the 'auto' search met max_accuracy_drop=0 .*the closest, "
            r"'\w[\w-]*', lost .* points .*most sensitive layers: (hidden|values) \(int8 SQNR",
        ):
            ks.compress(model, "auto", validation_data=(x, y), max_accuracy_drop=0.0, verbose=0)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({}, ks.DataError, "Received: validation_data=None"),
        ({"validation_data": "unlabelled"}, ks.DataError, "validation_data without labels"),
        ({"max_accuracy_drop": 1.0}, ks.RecipeError, r"Expected a value in \[0, 1\)"),
        ({"objective": "speed"}, ks.RecipeError, r"Unknown objective.*\['size', 'latency'\]"),
        ({"time_budget_s": -1}, ks.RecipeError, "time_budget_s=-1"),
        ({"edgetpu": True}, ks.RecipeError, "edgetpu does not apply to every candidate"),
    ],
)
def test_bad_input_is_refused(regression, kwargs, error, match):
    model, x, y = regression
    kwargs = dict(kwargs)
    if kwargs.get("validation_data") == "unlabelled":
        kwargs["validation_data"] = x
    elif "validation_data" not in kwargs and kwargs:
        kwargs["validation_data"] = (x, y)
    with pytest.raises(error, match=match):
        ks.compress(model, "auto", verbose=0, **kwargs)


def test_search_settings_with_a_fixed_recipe_are_refused(regression):
    model, x, _ = regression
    with pytest.raises(ks.RecipeError, match=r"objective sets the 'auto' search.*recipe='int8'"):
        ks.compress(model, "int8", representative_data=x, objective="size", verbose=0)


def test_an_unknown_recipe_names_auto(regression):
    model, x, _ = regression
    with pytest.raises(ks.RecipeError, match=r"compress\(\) also takes 'auto'.*recipe='autom'"):
        ks.compress(model, "autom", representative_data=x, verbose=0)


def test_strict_keeps_no_candidate_that_departs_from_its_keras_model():
    # The sensitivity tests' fragile model: the huge weights on always-zero inputs of its
    # head set per-channel int8 (and int4) scales that round its ordinary weights to zero.
    from tests.layer_sensitivity.test_sensitivity import fragile_model

    model = fragile_model()
    x = np.random.default_rng(1).normal(size=(200, 16)).astype("float32")
    y = np.argmax(np.asarray(model(x)), -1)
    chosen = {}
    for strict in (False, True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = ks.compress(
                model,
                "auto",
                validation_data=(x, y),
                max_accuracy_drop=0.9,
                strict=strict,
                verbose=0,
            )
        chosen[strict] = result.report
    loose, strict = chosen[False], chosen[True]
    assert loose.conversion_parity["ok"] is False  # the smallest within 0.9 departs
    assert strict.conversion_parity["ok"] is True
    assert strict.compressed.tflite_gzip_bytes > loose.compressed.tflite_gzip_bytes
    rows = {r["candidate"]: r for r in strict.search["candidates"]}
    assert loose.search["chosen"] in rows
    assert "departs from the Keras model" in rows[loose.search["chosen"]]["note"]


@pytest.fixture(scope="module")
def timed(classifier):
    return search_classifier(classifier, objective="latency")


def test_latency_times_every_tried_candidate_and_keeps_the_fastest(timed, searched):
    search = timed.report.search
    assert search["objective"] == "latency"
    assert search["latency"]["settings"] == auto_latency.SETTINGS
    rows = {r["candidate"]: r for r in search["candidates"]}
    # no size rule skips a candidate here: each of them is tried and timed
    assert [r["status"] for r in rows.values()] == ["tried"] * len(auto.POST_TRAINING)
    assert any(r["status"] == "skipped" for r in searched.report.search["candidates"])
    for r in rows.values():
        low, high = r["latency_spread_ms"]
        assert 0 < low <= high and r["latency_ms"] > 0
        assert r["latency_runs"] >= auto_latency.SETTINGS["min_runs"]
    eligible = [r for r in rows.values() if r["within_budget"]]
    chosen = rows[search["chosen"]]
    assert chosen["within_budget"] and timed.report.recipe == chosen["candidate"]
    quickest = min(eligible, key=lambda r: r["latency_ms"])
    assert chosen["latency_spread_ms"][0] <= quickest["latency_spread_ms"][1]
    tied = [rows[name] for name in search["latency"]["tied"]]
    assert quickest in tied and chosen in tied
    assert chosen["gzip_bytes"] == min(r["gzip_bytes"] for r in tied)
    # the Pareto front is of latency against the drop
    for r in rows.values():
        beaten = any(
            o["latency_ms"] < r["latency_ms"] and o["drop"] < r["drop"] for o in rows.values()
        )
        assert not (r["pareto"] and beaten)
    assert any(r["pareto"] for r in rows.values())


def test_latency_search_renders_its_timings_and_caveat(timed, tmp_path):
    search = timed.report.search
    text = timed.report.table()
    assert "p50 ms" in text and "Pareto front of p50 latency vs drop" in text
    assert "latency caveat: timed on this machine" in text
    md = timed.report.to_markdown()
    assert "| p50 ms | spread ms |" in md and f"| {search['chosen']} (chosen) |" in md
    assert "- latency caveat:" in md
    assert "p50 ms" in ks.report.html.to_html(timed.report)
    assert any(n.startswith("auto: chose") and "the fastest of" in n for n in timed.report.notes)
    timed.save(tmp_path / "out", formats=("tflite",))
    assert (tmp_path / "out" / "report_search.png").read_bytes()[:4] == b"\x89PNG"
    saved = json.loads((tmp_path / "out" / "report.json").read_text())["search"]
    assert saved["latency"]["harness"] == auto_latency.HARNESS
    assert all(r["latency_ms"] is not None for r in saved["candidates"])


def _timed_row(name, median, low, high, gzip):
    return {
        "candidate": name,
        "latency_ms": median,
        "latency_spread_ms": [low, high],
        "gzip_bytes": gzip,
    }


def test_the_fastest_rule():
    assert auto_latency.fastest([]) == (None, [])
    fast = _timed_row("fast", 1.0, 0.9, 1.1, 500)
    close = _timed_row("close", 1.05, 1.0, 1.2, 300)  # overlaps the fastest's spread
    slow = _timed_row("slow", 2.0, 1.9, 2.1, 100)  # smallest, but plainly slower
    chosen, tied = auto_latency.fastest([slow, close, fast])
    assert chosen is close and tied == [close, fast]
    chosen, tied = auto_latency.fastest([slow, fast])
    assert chosen is fast and tied == [fast]


def test_block_medians_and_measure():
    assert auto_latency.block_medians([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3) == [1.5, 3.5, 5.5]
    assert auto_latency.block_medians([4.0, 2.0], 5) == [4.0, 2.0]  # fewer samples than blocks
    samples = [1.0] * 10 + [3.0] * 10
    assert auto_latency.measure(samples) == (2.0, [1.0, 3.0])


def test_an_int8_mixed_file_that_kept_every_op_float32_is_labelled_float32():
    from tests.quantization.test_mixed import wide_hidden_regression

    model, x, y = wide_hidden_regression()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = ks.compress(
            model,
            "auto",
            validation_data=(x[80:], y[80:]),
            representative_data=x[:80],
            max_accuracy_drop=0.001,
            verbose=0,
        )
    rows = {r["candidate"]: r for r in result.report.search["candidates"]}
    mixed = rows["int8-mixed"]
    assert mixed["status"] == "tried" and mixed["within_budget"]
    assert mixed["precision"] == "float32" and rows["int8"]["precision"] is None
    assert search_report.label(mixed) == "int8-mixed (float32: every op)"
    assert "| int8-mixed (float32: every op) |" in result.report.to_markdown()
    # a smaller file met the budget: the float32 one is not the answer
    assert result.report.search["chosen"] != "int8-mixed"
