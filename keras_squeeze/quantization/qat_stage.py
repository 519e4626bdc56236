"""The quantization-aware training stage: `ks.QAT` in a recipe (tfmot engine, layer by layer)."""

from __future__ import annotations

from keras_squeeze.core import models
from keras_squeeze.core.progress import say
from keras_squeeze.errors import RecipeError
from keras_squeeze.quantization import parity, qat_apply, rewrites
from keras_squeeze.quantization.qat_config import QAT
from keras_squeeze.stages import TF_KERAS, Stage, register_stage
from keras_squeeze.stages.base import check_same_outputs


class QATStage(Stage):
    """Quantization-aware training, layer by layer, preserving earlier sparsity and clusters.

    The result is tfmot's quantization-aware tf_keras model (not stripped: the
    converter reads its learnt ranges), so it does not go back into a Keras 3
    model; the .tflite is the deployable model.
    """

    name = "qat"
    title, verb = "quantization-aware training", "trains quantization-aware"
    config_class = QAT
    order = 80
    engine = TF_KERAS
    wrappers = {
        "QuantizeWrapper": "quantization-aware",
        "QuantizeWrapperV2": "quantization-aware",
    }
    hands_back_keras3 = False
    verifies_conversion = True
    tf_keras_note = (
        "result.model is the quantization-aware tf_keras model: its fake-quantization wrappers "
        "have no Keras 3 counterpart (the .tflite is the deployable model)"
    )

    def check_recipe(self, config: QAT, recipe) -> None:
        if recipe.quantization != "int8":
            raise RecipeError(
                "Quantization-aware training produces a full-integer model. Expected "
                f"quantization='int8' with qat. Received: quantization={recipe.quantization!r}"
            )

    def check_model(self, model, config: QAT) -> None:
        """Quantization-aware training needs the layer graph; refused before any stage trains."""
        if not models.is_graph_model(model):
            raise RecipeError(
                "Quantization-aware training cannot run on a subclassed model: it puts fake-"
                "quantization between layers where the .tflite quantizes (after each layer, with "
                "batch normalization folded into the convolution before it), which needs the "
                "layer graph, and a subclassed model's call() only exists as Python code. "
                "Expected a Sequential or functional model, or the post-training 'int8' recipe "
                "(full integer too, calibrated on representative_data), after 'prune' or "
                "'cluster' if you like. Received: a subclassed model of class "
                f"{type(model).__name__}"
            )

    def run(self, model, config: QAT, ctx):
        rewritten, split = rewrites.split_fused_activations(model)
        notes = []
        if split:
            check_same_outputs(model, rewritten, ctx.samples, "model with split activations")
            model = rewritten
            notes.append(
                f"swish moved out of {len(split)} layers into Activation layers, so training "
                f"quantizes their outputs where the .tflite does: {', '.join(split[:8])}"
                + (" ..." if len(split) > 8 else "")
            )
        decisions = qat_apply.decide(model, config)
        zeros, shared = "sparsity" in ctx.produced, "clusters" in ctx.produced
        quantize_scheme = qat_apply.scheme(zeros, shared)
        kept = sum(1 for d in decisions.values() if d.setting is None)
        kinds = [k for k, on in (("sparsity", zeros), ("clusters", shared)) if on]
        preserving = f" preserving {' and '.join(kinds)}" if kinds else ""
        say(
            ctx.verbose,
            f"quantization-aware training{preserving}: {len(decisions) - kept} layers "
            f"quantize-aware, {kept} float in training (calibrated at conversion)",
        )
        qat_model = qat_apply.apply(model, decisions, quantize_scheme)
        if ctx.samples is not None:
            calibrated = qat_apply.calibrate_ranges(qat_model, model, ctx.samples.inputs)
            notes.append(
                f"activation ranges of {len(calibrated)} layers started at the float model's "
                f"ranges on {ctx.samples.describe()} (the engine starts them at [-6, 6])"
            )
        frozen = None
        if shared:
            frozen = qat_apply.frozen_kernels
            notes.append(
                "kernels frozen during QAT to keep their clusters and zeros exactly (activation "
                "ranges, biases and batch normalization train)"
            )
        note, seconds = self.timed_fine_tune(ctx, qat_model, config, frozen=frozen)
        notes.append(note)
        settings = {**config.get_config(), "scheme": type(quantize_scheme).__name__}
        notes = [f"scheme {type(quantize_scheme).__name__}", *notes]
        return qat_model, self.record(ctx, settings, seconds, qat_model, decisions, notes)

    def load_scope(self):
        return qat_apply.quantize_scope()

    def converter_options(self, config: QAT, quantization: str) -> dict:
        # QAT's own Dense weight quantizer is per tensor already; the converter
        # keeps the scales the model learnt.
        return {"per_tensor_dense": False}

    def annotate(self, report, row, decision, tensors, record) -> None:
        row.targets["qat"] = decision.setting
        if decision.reason:
            row.add_reason(f"qat: {decision.reason}")

    def verify(self, report, model, content, samples, config: QAT, verbose) -> str | None:
        """The QAT Keras model against its .tflite; a loud warning when they disagree."""
        say(verbose, "checking the quantization-aware model agrees with its .tflite")
        roles = list((report.tasks or {}).values())
        report.qat_parity = parity.check(
            model,
            content,
            samples,
            config.min_top1_agreement,
            config.min_sqnr_db,
            classifier=[r == "classification" for r in roles] if roles else None,
        )
        p = report.qat_parity
        if p["ok"]:
            return None
        where = p.get("first_divergent_layer")
        report.warnings.append(
            "THE QUANTIZATION-AWARE KERAS MODEL AND ITS .tflite DISAGREE: "
            f"top-1 agreement {p['top1_agreement']}, SQNR {p['sqnr_db']} dB (expected >= "
            f"{config.min_top1_agreement:.0%} and >= {config.min_sqnr_db} dB)"
            + (f"; they first part at layer '{where}'" if where else "")
        )
        return report.warnings[-1]


STAGE = register_stage(QATStage())
