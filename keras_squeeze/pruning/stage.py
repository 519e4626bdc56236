"""The magnitude pruning stage: `ks.Prune` in a recipe, layer by layer.

Two engines, the same plan, schedule, report rows and .tflite check: tfmot's
wrappers on a tf_keras working copy of a layer graph, or the native engine
(`pruning.native`) on a copy in the model's own flavour, for subclassed
models (chosen for them) and for functional ones with `engine="native"`.
"""

from __future__ import annotations

from keras_squeeze.core import models
from keras_squeeze.core.progress import say
from keras_squeeze.errors import RecipeError
from keras_squeeze.layer_plan import plan
from keras_squeeze.pruning import apply as prune_apply
from keras_squeeze.pruning import native
from keras_squeeze.pruning import schedule as prune_schedule
from keras_squeeze.pruning import verify as prune_verify
from keras_squeeze.pruning.config import Prune
from keras_squeeze.stages import NATIVE, TF_KERAS, Stage, chosen_layers, register_stage
from keras_squeeze.stages.base import choose_engine
from keras_squeeze.training import distribute

# A pruned layer this far below its target sparsity in the .tflite is reported.
SPARSITY_TOLERANCE = 0.02


class PruneStage(Stage):
    """Magnitude pruning of every layer the plan selects, fine-tuned, then stripped."""

    name = "prune"
    title, verb = "pruning", "prunes"
    config_class = Prune
    order = 40
    engine = TF_KERAS
    wrappers = {"PruneLowMagnitude": "wrapped for pruning"}
    settings = {"target_sparsity": "target_sparsity"}
    produces = ("sparsity",)

    def check_recipe(self, config: Prune, recipe) -> None:
        if recipe.quantization != "float32" and (
            config.sparse_encoding is True or config.xnnpack_sparse
        ):
            raise RecipeError(
                "Sparse weight storage and XNNPACK's sparse inference work for float32 weights "
                "only (quantized sparse weights gzip worse and XNNPACK cannot run them). Expected "
                "quantization='float32' with sparse_encoding=True or xnnpack_sparse=True. "
                f"Received: quantization={recipe.quantization!r}"
            )

    def engine_for(self, model, config: Prune) -> str:
        return choose_engine(model, config.engine)

    def check_strategy(self, model, config: Prune, replicas: int) -> None:
        if self.engine_for(model, config) == NATIVE:
            distribute.refuse_step_hooks(self.title, replicas, model)

    def check_model(self, model, config: Prune) -> None:
        graph = models.is_graph_model(model)
        if config.engine == "tfmot" and not graph:
            raise RecipeError(
                "The tfmot pruning engine wraps the layers of a layer graph, which a subclassed "
                "model does not have. Expected engine='auto' or 'native' (masks applied after "
                f"every optimizer step). Received: engine='tfmot' on {type(model).__name__}"
            )
        if config.xnnpack_sparse and self.engine_for(model, config) == NATIVE:
            raise RecipeError(
                "xnnpack_sparse prunes by tfmot's XNNPACK latency policy, which reads the layer "
                "graph. Expected a functional or Sequential model with engine='auto' or "
                f"'tfmot'. Received: engine={config.engine!r} on "
                f"{'a functional' if graph else 'a subclassed'} model"
            )

    def with_setting(self, config: Prune, setting: str, value, recipe_name: str):
        if config.m_by_n is not None:
            m, n = config.m_by_n
            raise RecipeError(
                f"The '{recipe_name}' recipe prunes {m} of every {n} weights, a fixed "
                f"{m / n:.0%}: target_sparsity does not apply. Expected the 'prune' recipe for "
                f"a chosen sparsity. Received: target_sparsity={value}"
            )
        return super().with_setting(config, setting, value, recipe_name)

    def run(self, model, config: Prune, ctx):
        engine = self.engine_for(model, config)
        if engine == NATIVE:
            model = self.native_copy(ctx, model)
            infos = native.layer_infos(model, config)
        else:
            policy = prune_apply.xnnpack_policy(model) if config.xnnpack_sparse else None
            infos = prune_apply.layer_infos(model, config, policy)
        decisions = plan(
            infos,
            config.effective_sparsity,
            technique="pruning",
            per_layer=config.layers,
            skip=config.skip,
            keep_first_layer=config.keep_first_layer,
            min_weights=config.min_weights,
        )
        if config.m_by_n:  # per-layer values only switch M:N on or off
            for d in decisions.values():
                if d.setting is not None:
                    d.setting = config.effective_sparsity
        chosen = chosen_layers(decisions, "pruned", "prunable")
        schedule = prune_schedule.derive(
            ctx.total_steps, config.schedule, config.begin_step, config.end_step, config.frequency
        )
        notes = [
            f"{config.schedule} schedule over {ctx.total_steps} steps: masks updated every "
            f"{schedule.frequency} steps from step {schedule.begin_step}, final sparsity "
            f"applied at step {schedule.final_update_step(ctx.total_steps)}",
        ]
        what = (
            f"{config.m_by_n[0]}:{config.m_by_n[1]}"
            if config.m_by_n
            else f"{config.target_sparsity:.0%}"
        )
        say(
            ctx.verbose,
            f"pruning {len(chosen)} of {len(decisions)} weighted layers to {what}; {notes[0]}",
        )
        settings = {**config.get_config(), "engine": "native" if engine == NATIVE else "tfmot"}
        if engine == NATIVE:
            pruner = native.Pruner(model, decisions, config, schedule)
            notes += prune_apply.block_notes(pruner.pruned, config.block_size)
            note, seconds = self.timed_fine_tune(
                ctx,
                model,
                config,
                callbacks=[pruner.callback()],
                after_step=[pruner.apply],
                state=pruner.variables,
            )
            notes += [native.ENGINE_NOTE, note]
            return model, self.record(ctx, settings, seconds, model, decisions, notes)
        chosen_weights = prune_apply.chosen_weights(model, chosen)
        notes += prune_apply.block_notes(chosen_weights, config.block_size)
        pruned = prune_apply.wrap(model, decisions, config, schedule)
        note, seconds = self.timed_fine_tune(ctx, pruned, config, callbacks=prune_apply.callbacks())
        notes.append(note)
        stripped = prune_apply.strip(pruned)
        return stripped, self.record(ctx, settings, seconds, stripped, decisions, notes)

    def converter_options(self, config: Prune, quantization: str) -> dict:
        return {"sparse": config.uses_sparse_encoding(quantization)}

    def annotate(self, report, row, decision, tensors, record) -> None:
        target = float(decision.setting)
        row.targets["sparsity"] = target
        if row.sparsity is not None and row.sparsity < target - SPARSITY_TOLERANCE:
            report.warnings.append(
                f"layer '{row.name}' has {row.sparsity:.1%} zeros in the .tflite, below its "
                f"{target:.0%} target (too few fine-tuning steps for the schedule?)"
            )
        m_by_n = record.settings.get("m_by_n")
        if m_by_n and tensors:
            m, n = m_by_n
            ok = min(prune_verify.m_by_n_fraction(t.values(), m, n) for t in tensors)
            row.targets["m_by_n"] = f"{m}:{n}"
            row.measured["m_by_n_blocks"] = ok
            if ok < 1.0:
                report.warnings.append(
                    f"layer '{row.name}': only {ok:.1%} of its {n}-weight blocks hold {m} zeros"
                )


STAGE = register_stage(PruneStage())
