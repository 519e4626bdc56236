"""Channel pruning figures (issue 10).

- MobileNetV2 (alpha 1.0, 96x96) and ResNet50 (64x64), random init, pruned to
  50% of FLOPs (L1 importance, uniform allocation, multiples of 8): the pruned
  model runs and converts, FLOPs ratio, and .tflite latency against the
  original float model (float pruned, and int8 on top of pruning), 1 thread,
  XNNPACK, measured interleaved in one run.
- The digits example CNN (30 epochs, 16x16) pruned to 50% of FLOPs and
  fine-tuned with plain Model.fit: test accuracy before and after.
"""

from __future__ import annotations

import itertools
import time
import warnings

import keras
import numpy as np

import keras_squeeze as ks
from benchmarks import common
from benchmarks.common import Table, interleaved_latency, pink_noise_images
from keras_squeeze.channel_pruning import ChannelPruning, prune_channels

TARGET = 0.5
FLOPS_TOLERANCE = 0.05  # relative
FLOAT_SPEEDUP = 1.6
INT8_SPEEDUP = 2.5
MAX_ACCURACY_DROP = 0.015
FINE_TUNE_EPOCHS = 5


def _models():
    keras.utils.set_random_seed(0)
    yield (
        "MobileNetV2 1.0 96x96",
        keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=1.0, weights=None),
        96,
    )
    keras.utils.set_random_seed(0)
    yield "ResNet50 64x64", keras.applications.ResNet50(input_shape=(64, 64, 3), weights=None), 64


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _speed(structure: Table, latency: Table) -> None:
    for name, model, size in itertools.islice(_models(), common.quick(None, 1)):
        start = time.perf_counter()
        result = prune_channels(model, ChannelPruning(TARGET), verbose=0)
        prune_s = time.perf_counter() - start
        report = result.report
        images = pink_noise_images(200, size, seed=0)
        check = images[:16]
        original = ks.export.to_tflite(model, verification_data=check)
        pruned = ks.export.to_tflite(result.model, verification_data=check)
        with warnings.catch_warnings():
            # Random-init classifiers give near-uniform softmax outputs, which int8
            # output quantization flattens: their top-1 agreement says nothing here.
            warnings.filterwarnings("ignore", message=".*agrees with the float model on only")
            original_int8 = ks.compress(model, "int8", representative_data=images, verbose=0)
            pruned_int8 = ks.compress(result.model, "int8", representative_data=images, verbose=0)
        ratio = report.flops_ratio
        structure.add(
            name,
            f"{report.macs_before / 1e6:,.1f}M",
            f"{report.macs_after / 1e6:,.1f}M",
            f"{ratio:.3f}",
            f"{TARGET} ± {FLOPS_TOLERANCE:.0%}",
            _yes(abs(ratio / TARGET - 1) <= FLOPS_TOLERANCE),
            f"{report.params_before / 1e6:.2f}M -> {report.params_after / 1e6:.2f}M",
            f"{original.size_bytes / 1e6:.1f} MB -> {pruned.size_bytes / 1e6:.1f} MB",
            f"yes (top-1 {pruned.fidelity.top1_agreement:.0%}, {prune_s:.0f} s)",
        )
        lat = interleaved_latency(
            {
                "original float32": original.content,
                "pruned float32": pruned.content,
                "original int8": original_int8.tflite,
                "pruned int8": pruned_int8.tflite,
            }
        )
        base = lat["original float32"]["p50_ms"]
        targets = {"pruned float32": FLOAT_SPEEDUP, "pruned int8": INT8_SPEEDUP}
        for variant, v in lat.items():
            speedup = base / v["p50_ms"]
            target = targets.get(variant)
            latency.add(
                name,
                variant,
                f"{v['p50_ms']:.2f}",
                f"{v['mean_ms']:.2f}",
                f"{speedup:.2f}x",
                f">= {target}x" if target else "",
                _yes(speedup >= target) if target else "",
            )


def _digits(accuracy: Table) -> None:
    (x, y), (xt, yt) = ks.data.load_digits(16)
    start = time.perf_counter()
    cnn = ks.data.train_example_model(epochs=30, image_size=16, seed=0)
    accuracy.notes.append(
        f"example CNN trained 30 epochs on 1,400 digits at 16x16 in "
        f"{time.perf_counter() - start:.0f} s; accuracy on the 397 test digits"
    )
    for criterion in ("l1", "taylor"):
        keras.utils.set_random_seed(0)
        result = prune_channels(
            cnn,
            ChannelPruning(TARGET, criterion=criterion),
            train_data=(x, y),
            validation_data=(xt, yt),
            epochs=FINE_TUNE_EPOCHS,
            verbose=0,
        )
        acc, report = result.report.accuracy, result.report
        drop = acc["original"] - acc["fine_tuned"]
        accuracy.add(
            criterion,
            f"{report.flops_ratio:.3f}",
            f"{acc['original']:.4f}",
            f"{acc['pruned']:.4f}",
            f"{acc['fine_tuned']:.4f}",
            f"{drop * 100:+.2f}",
            f"<= {MAX_ACCURACY_DROP * 100:.1f}",
            _yes(drop <= MAX_ACCURACY_DROP),
        )
    accuracy.notes.append(
        f"prune_channels rows: {report.fine_tuning}, batch 32, on the 1,400 training digits; "
        f"kept channels {result.kept}"
    )
    recipe = ks.Recipe(channel_prune=ChannelPruning(TARGET), quantization="float32")
    for distill in (True, False):
        keras.utils.set_random_seed(0)
        result = ks.compress(
            cnn,
            recipe,
            train_data=(x, y),
            validation_data=(xt, yt),
            epochs=FINE_TUNE_EPOCHS,
            distill=distill,
            verbose=0,
        )
        acc = result.report.accuracy
        drop = acc["original"] - acc["compressed"]
        accuracy.add(
            f"l1 in ks.compress, {'distilled (default)' if distill else 'labels only'}",
            f"{result.report.stages[0]['details']['flops_ratio']:.3f}",
            f"{acc['original']:.4f}",
            "",
            f"{acc['compressed']:.4f}",
            f"{drop * 100:+.2f}",
            f"<= {MAX_ACCURACY_DROP * 100:.1f}",
            _yes(drop <= MAX_ACCURACY_DROP),
        )
    accuracy.notes.append(
        "ks.compress rows: the 'channel-prune' stage with float32 output, accuracy of the "
        ".tflite; fine-tuning with the model's compiled optimizer (Adam 1e-3), distilled from "
        "the original with the default ks.Distill() or on labels only"
    )


def run() -> list[Table]:
    structure = Table(
        "Channel pruning to 50% of FLOPs: structure (random init, L1, uniform, multiples of 8)",
        [
            "model",
            "MACs before",
            "MACs after",
            "FLOPs ratio",
            "target",
            "met",
            "params",
            "float .tflite",
            "runs and converts",
        ],
        notes=[
            "MACs of Conv / Depthwise / Dense layers at the model's input size, batch 1 "
            "(FLOPs = 2 x MACs); weights=None (random init), 1000 classes",
        ],
    )
    latency = Table(
        "Channel pruning latency vs the original float32 .tflite, XNNPACK, 1 thread",
        ["model", "variant", "p50 ms", "mean ms", "speed-up vs original float32", "target", "met"],
        notes=[
            "200 invocations each after 20 warm-up rounds, the four models alternating "
            "(interleaved) in one process with ai_edge_litert",
            "int8 = ks.compress(model, 'int8') calibrated on 200 1/f-noise images in [-1, 1]: "
            "int8 weights per-channel symmetric, int8 activations per-tensor asymmetric "
            "(speed only: on random-init weights the int8 outputs are not meaningful)",
        ],
    )
    accuracy = Table(
        "Digits CNN pruned to 50% of FLOPs, fine-tuned (prune_channels + Model.fit; ks.compress)",
        [
            "criterion",
            "FLOPs ratio",
            "original",
            "pruned",
            f"fine-tuned ({FINE_TUNE_EPOCHS} epochs)",
            "drop (points; < 0 is a gain)",
            "target",
            "met",
        ],
    )
    _speed(structure, latency)
    _digits(accuracy)
    return [structure, latency, accuracy]


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    for table in run():
        print(table.text(), end="\n\n")
