"""keras-squeeze-compress --recipe=auto: the search through the script (stopped by
--time_budget_s after its first candidate, to stay fast), its table in report.json and the
terminal, and the flags it refuses."""

from __future__ import annotations

import json

import numpy as np
import pytest

from keras_squeeze.api import auto
from keras_squeeze.cli import compress as compress_script
from tests.cli.helpers import run_main


@pytest.fixture
def args(model_path, digits8, tmp_path):
    (x, y), (xt, yt) = digits8
    data = tmp_path / "d.npz"
    np.savez(data, x_train=x[:300], y_train=y[:300], x_test=xt[:100], y_test=yt[:100])
    return [f"--model={model_path}", f"--data={data}", f"--output_dir={tmp_path / 'out'}"]


def test_recipe_auto(args, tmp_path, capsys):
    flags = ["--recipe=auto", "--max_accuracy_drop=0.05", "--time_budget_s=0.001"]
    assert run_main(compress_script, *args, *flags, "--formats=tflite") == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    search = report["search"]
    assert search["chosen"] == "int8" and search["stopped"] and search["max_drop"] == 0.05
    assert [r["candidate"] for r in search["candidates"]] == [
        *auto.POST_TRAINING,
        *auto.TRAINING_NAMES,
    ]
    printed = capsys.readouterr().out
    assert "int8 (chosen)" in printed and auto.SEARCH_STOPPED in printed


def test_recipe_auto_objective_latency(args, tmp_path, capsys):
    flags = ["--recipe=auto", "--objective=latency", "--max_accuracy_drop=0.05"]
    flags += ["--time_budget_s=0.001"]
    assert run_main(compress_script, *args, *flags, "--formats=tflite") == 0
    search = json.loads((tmp_path / "out" / "report.json").read_text())["search"]
    assert search["objective"] == "latency" and search["chosen"] == "int8"
    first = search["candidates"][0]
    assert first["latency_ms"] > 0 and search["latency"]["tied"] == ["int8"]
    printed = capsys.readouterr().out
    assert "Pareto front of p50 latency vs drop" in printed and "latency caveat" in printed


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--recipe=auto", "--target_sparsity=0.5"], "chooses each layer's sparsity"),
        (["--recipe=int8", "--objective=latency"], "search minimises: expected --recipe=auto"),
        (["--recipe=auto", "--objective=speed"], "--objective"),
        (["--recipe=int8", "--time_budget_s=5"], "expected --recipe=auto with it"),
        (["--recipe=auto", "--edgetpu"], "edgetpu does not apply to every candidate"),
    ],
)
def test_recipe_auto_refuses(args, tmp_path, flags, message, capsys):
    assert run_main(compress_script, *args, *flags) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"recipe": "int8", "time_budget_s": 5.0}, "Expected --recipe=auto with it"),
        ({"recipe": "int8", "objective": "latency"}, "objective is what the 'auto' search"),
        ({"recipe": "auto", "tensorboard_dir": "tb"}, "'auto' runs several candidates"),
    ],
)
def test_compress_lib_refuses_before_any_work(tmp_path, kwargs, match):
    from keras_squeeze.cli import compress_lib
    from keras_squeeze.errors import ConfigError

    with pytest.raises(ConfigError, match=match):
        compress_lib.run(
            model=str(tmp_path / "absent.keras"), output_dir=str(tmp_path / "o"), **kwargs
        )
    assert not (tmp_path / "o").exists()
