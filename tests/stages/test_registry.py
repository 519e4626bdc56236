"""A stage defined outside the package joins the pipeline with one registration.

`GridStage` below is such a stage: its own config, fine-tuning through the
run's one training loop, a converter option, report rows checked against
the .tflite, and a command-line setting. Nothing in keras_squeeze names it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import keras_squeeze as ks
from keras_squeeze import _compat
from keras_squeeze.cli import compress_lib
from keras_squeeze.errors import RecipeError
from keras_squeeze.layer_plan import Decision
from keras_squeeze.stages import NATIVE, Stage, registry
from tests.conftest import assert_weights_equal, weights_snapshot


@dataclasses.dataclass(frozen=True)
class GridConfig:
    step: float = 0.05

    def __post_init__(self):
        if not 0 < self.step <= 1:
            raise RecipeError(f"step must lie in (0, 1]. Received: step={self.step!r}")

    def get_config(self) -> dict:
        return {"step": self.step}

    @classmethod
    def from_config(cls, config: dict) -> GridConfig:
        return cls(**config)


def grid_levels(values: np.ndarray, step: float) -> tuple[int, int]:
    """(distinct values, grid points the values' range spans)."""
    spans = 2 * int(np.floor(np.abs(values).max() / step + 0.5)) + 1
    return int(np.unique(values).size), spans


class GridStage(Stage):
    """Fine-tunes, then rounds every Dense kernel to multiples of `step`."""

    name = "grid"
    title, verb = "grid rounding", "rounds weights to a grid"
    config_class = GridConfig
    order = 90
    engine = NATIVE
    settings = {"grid_step": "step"}

    def run(self, model, config, ctx):
        k = _compat.keras_module(_compat.keras_flavour(model))
        copy = k.models.clone_model(model)
        copy.set_weights(model.get_weights())
        note, seconds = self.timed_fine_tune(ctx, copy, config)
        decisions = {}
        for layer in copy.layers:
            if not layer.weights:
                continue
            if type(layer).__name__ != "Dense":
                decisions[layer.name] = Decision(None, "not a Dense layer")
                continue
            kernel, *rest = layer.get_weights()
            layer.set_weights([np.round(kernel / config.step) * config.step, *rest])
            decisions[layer.name] = Decision(config.step, None)
        notes = [f"Dense kernels rounded to multiples of {config.step}", note]
        return copy, self.record(ctx, config.get_config(), seconds, copy, decisions, notes)

    def converter_options(self, config, quantization):
        return {"per_tensor_dense": True}  # one scale: grid points keep one int8 code each

    def annotate(self, report, row, decision, tensors, record):
        row.targets["grid"] = decision.setting
        for t in tensors:
            levels, spans = grid_levels(t.values(), decision.setting)
            row.measured["grid_levels"] = levels
            if levels > spans:
                report.warnings.append(
                    f"layer '{row.name}' holds {levels} values, more than the {spans} grid points"
                )


@pytest.fixture(scope="module")
def grid_stage():
    stage = ks.register_stage(GridStage())
    try:
        yield stage
    finally:
        ks.unregister_stage("grid")


@pytest.fixture(scope="module")
def grid_result(grid_stage, trained_models, digits8):
    (x, y), (xt, yt) = digits8
    model = trained_models["keras3"]
    before = weights_snapshot(model)
    recipe = ks.Recipe(stages={"grid": GridConfig(step=0.05)})
    result = ks.compress(
        model, recipe, train_data=(x, y), validation_data=(xt, yt), epochs=1, verbose=0
    )
    assert_weights_equal(before, model)
    return result


def test_a_registered_stage_is_part_of_recipes(grid_stage):
    recipe = ks.Recipe(stages={"grid": GridConfig(0.1)}, quantization="float16")
    assert recipe.training_stages == ["grid"] and recipe.name == "grid+float16"
    assert recipe.get_config()["stages"] == {"grid": {"step": 0.1}}
    assert ks.Recipe.from_config(recipe.get_config()) == recipe
    assert registry.order_text() == "channel_prune -> prune -> cluster -> qat -> grid"
    both = ks.Recipe(prune=ks.Prune(), stages={"grid": GridConfig()})
    assert both.training_stages == ["prune", "grid"]


def test_a_registered_stage_runs_inside_compress(grid_result):
    result = grid_result
    report = result.report
    (stage,) = report.stages
    assert stage["name"] == "grid" and stage["settings"] == {"step": 0.05}
    assert "Dense kernels rounded to multiples of 0.05" in stage["notes"]
    assert any(n.startswith("fine-tuned with Adam at learning rate") for n in stage["notes"])
    assert stage["accuracy"] is not None and stage["tflite_bytes"] == len(result.tflite)
    dense = [row for row in report.layers if row.type == "Dense"]
    assert len(dense) == 2
    for row in dense:
        assert row.targets == {"grid": 0.05}
        assert row.quantized == "int8 per-tensor"  # the stage's converter option took effect
        kernel = result.model.get_layer(row.name).get_weights()[0]
        assert row.measured["grid_levels"] <= grid_levels(kernel, 0.05)[1]
    convs = [row for row in report.layers if row.type == "Conv2D"]
    assert convs and all("grid: not a Dense layer" in row.reason for row in convs)
    assert not report.warnings
    assert type(result.model).__module__.startswith("keras.")  # the user's flavour
    markdown = report.to_markdown()
    assert "| grid target |" in markdown and "| 5% |" in markdown


def test_its_report_check_fires_on_a_kernel_off_the_grid(grid_stage, grid_result, digits8):
    """The stage's check, fed a real .tflite whose Dense kernels were never rounded."""
    from keras_squeeze.core import models
    from keras_squeeze.report.layers import match_layers
    from keras_squeeze.report.tflite_reader import read_tflite

    result = grid_result
    (x, _), _ = digits8
    plain = ks.compress(result.original, "int8", representative_data=x, verbose=0)
    matches = match_layers(list(models.walk_layers(result.original)), read_tflite(plain.tflite))
    report = plain.report
    row = next(row for row in report.layers if row.name == "logits")
    record = result.report.stages[0]
    grid_stage.annotate(report, row, Decision(0.5, None), matches["logits"], record)
    assert report.warnings and "more than the" in report.warnings[-1]


def test_its_command_line_setting(grid_stage):
    recipe = ks.Recipe(stages={"grid": GridConfig()})
    changed = compress_lib.resolve_recipe(recipe, grid_step=0.2)
    assert changed.config_of("grid") == GridConfig(0.2) and recipe.config_of("grid").step == 0.05
    with pytest.raises(RecipeError, match=r"grid_step sets the grid rounding stage, which this"):
        compress_lib.resolve_recipe("int8", grid_step=0.2)
    with pytest.raises(RecipeError, match=r"Unknown stage setting.*Received: sparsity"):
        compress_lib.resolve_recipe("int8", sparsity=0.2)


def test_after_an_engine_stage_the_model_comes_back_to_keras3_first(
    grid_stage, trained_models, digits8
):
    (x, y), _ = digits8
    recipe = ks.Recipe(prune=ks.Prune(target_sparsity=0.5), stages={"grid": GridConfig()})
    result = ks.compress(trained_models["keras3"], recipe, train_data=(x, y), epochs=1, verbose=0)
    assert [s["name"] for s in result.report.stages] == ["prune", "grid"]
    assert type(result.model).__module__.startswith("keras.")
    assert [b["direction"] for b in result.report.training["bridge"]] == [
        "keras3->tf_keras",
        "tf_keras->keras3",
    ]


def test_a_native_stage_cannot_follow_one_that_keeps_tf_keras(grid_stage, trained_models, digits8):
    (x, y), _ = digits8
    recipe = ks.Recipe(qat=ks.QAT(), stages={"grid": GridConfig()})
    with pytest.raises(RecipeError, match=r"The grid stage runs on the model in its own Keras"):
        ks.compress(trained_models["keras3"], recipe, train_data=(x, y), verbose=0)


def test_bad_registrations_and_recipes(grid_stage):
    with pytest.raises(RecipeError, match=r"register_stage takes a stage object"):
        ks.register_stage(GridStage)
    with pytest.raises(RecipeError, match=r"A stage named 'grid' is registered already"):
        ks.register_stage(GridStage())

    class Clash(GridStage):
        name = "clash"

    with pytest.raises(RecipeError, match=r"Stage 'grid' already runs at order 90"):
        ks.register_stage(Clash())

    class Odd(GridStage):
        name, order, engine = "odd", 91, "jax"

    with pytest.raises(RecipeError, match=r"Unknown stage engine.*Received: engine='jax'"):
        ks.register_stage(Odd())

    class Dashed(GridStage):
        name, order = "my-stage", 92

    with pytest.raises(RecipeError, match=r"Expected a Python identifier"):
        ks.register_stage(Dashed())
    with pytest.raises(RecipeError, match=r"Only stages registered with register_stage"):
        ks.unregister_stage("prune")
    with pytest.raises(RecipeError, match=r"stages names a stage that is not registered"):
        ks.Recipe(stages={"nope": GridConfig()})
    with pytest.raises(RecipeError, match=r"The prune stage has a keyword of its own"):
        ks.Recipe(stages={"prune": ks.Prune()})
    with pytest.raises(RecipeError, match=r"stages maps a registered stage's name"):
        ks.Recipe(stages=[GridConfig()])
    with pytest.raises(RecipeError, match=r"The grid stage must be a GridConfig.*Received: Prune"):
        ks.Recipe(stages={"grid": ks.Prune()})
    with pytest.raises(RecipeError, match=r"The prune stage must be a ks\.Prune"):
        ks.Recipe(prune=GridConfig())
