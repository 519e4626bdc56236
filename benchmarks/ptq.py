"""Post-training quantization figures (issue: foundation).

- int8 / float32 and float16 / float32 .tflite bytes on the example CNN and on
  MobileNetV2 (alpha 0.35, 96x96, random init, calibrated on 1/f-noise images).
- int8 fidelity and accuracy on the digits CNN.
- int8 vs float32 latency on MobileNetV2 96x96, XNNPACK, 1 thread, interleaved.
"""

from __future__ import annotations

import time

import keras

import keras_squeeze as ks
from benchmarks import common
from benchmarks.common import Table, interleaved_latency, pink_noise_images

INT8_MAX_RATIO = 0.30
FLOAT16_MAX_RATIO = 0.55
MOBILENET_SIZE = common.quick(96, 48)
MOBILENET = f"MobileNetV2 0.35 {MOBILENET_SIZE}x{MOBILENET_SIZE}"


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
            "1/f-noise images in [-1, 1] (natural-image statistics)",
        ],
    )
    fidelity = Table(
        "int8 fidelity on the digits CNN (397 test digits)",
        ["metric", "value", "target", "met"],
    )
    results = {}
    for name, model, rep, val in (
        ("example CNN", cnn, x, (xt, yt)),
        (MOBILENET, mnv2, natural, None),
    ):
        for recipe in ("float32", "float16", "int8"):
            r = ks.compress(model, recipe, representative_data=rep, validation_data=val, verbose=0)
            results[(name, recipe)] = r
        float_bytes = results[(name, "float32")].report.compressed.tflite_bytes
        sizes.add(name, "float32", f"{float_bytes:,}", "1.00", "", "")
        for recipe, target in (("float16", FLOAT16_MAX_RATIO), ("int8", INT8_MAX_RATIO)):
            b = results[(name, recipe)].report.compressed.tflite_bytes
            ratio = b / float_bytes
            sizes.add(name, recipe, f"{b:,}", f"{ratio:.3f}", f"<= {target}", _yes(ratio <= target))

    rep = results[("example CNN", "int8")].report
    agreement = rep.fidelity.top1_agreement
    drop = rep.accuracy["original"] - rep.accuracy["compressed"]
    fidelity.add(
        "top-1 agreement with float", f"{agreement:.2%}", ">= 99%", _yes(agreement >= 0.99)
    )
    fidelity.add("float accuracy", f"{rep.accuracy['original']:.4f}", "", "")
    fidelity.add("int8 .tflite accuracy", f"{rep.accuracy['compressed']:.4f}", "", "")
    fidelity.add("accuracy drop (points)", f"{drop * 100:.2f}", "<= 1", _yes(drop <= 0.01))
    fidelity.add("SQNR vs float", f"{rep.fidelity.sqnr_db:.1f} dB", "", "")
    fidelity.notes.append(f"float training took {train_s:.0f} s; calibration: {rep.calibration}")

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
            "float32": results[(MOBILENET, "float32")].tflite,
            "int8": results[(MOBILENET, "int8")].tflite,
        }
    )
    base = lat["float32"]["p50_ms"]
    for name, v in lat.items():
        latency.add(name, f"{v['p50_ms']:.3f}", f"{v['mean_ms']:.3f}", f"{base / v['p50_ms']:.2f}x")
    return [sizes, fidelity, latency]


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"
