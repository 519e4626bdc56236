"""Magnitude pruning: coverage on keras.applications models, and XNNPACK sparse
inference latency.

The accuracy of "prune" on the benchmark CNN against the plain tfmot pruning guide
(`_tfmot_script`), and of its settings against each other, is measured in the
significance section (2,000 test digits, 5 seeds, paired tests).
"""

from __future__ import annotations

import collections
import platform
import time
import warnings

import numpy as np

import keras_squeeze as ks
from benchmarks import common
from benchmarks.common import Table
from keras_squeeze.pruning.config import Prune

SPARSITY = 0.8


def _tfmot_script(model, x, y, seed: int, epochs: int | None = None) -> bytes:
    """The tfmot pruning guide: whole-model prune_low_magnitude, PolynomialDecay
    0.50 -> 0.80 ending at the last step, default frequency, Adam, strip, int8."""
    import tf_keras

    from keras_squeeze import _compat

    tfmot = _compat.import_tfmot()
    tf_keras.utils.set_random_seed(seed)
    batch_size = 32
    epochs = epochs or common.FINE_TUNE_EPOCHS
    end_step = int(np.ceil(len(x) / batch_size)) * epochs
    params = {
        "pruning_schedule": tfmot.sparsity.keras.PolynomialDecay(
            initial_sparsity=0.50, final_sparsity=SPARSITY, begin_step=0, end_step=end_step
        )
    }
    pruned = tfmot.sparsity.keras.prune_low_magnitude(model, **params)
    pruned.compile(
        optimizer="adam",
        loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    pruned.fit(
        x,
        y,
        batch_size=batch_size,
        epochs=epochs,
        verbose=0,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep()],
    )
    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    return common.tflite_int8(stripped, x)


# Coverage: keras.applications at 32x32, one epoch of 8 steps (128 digits, batch 16;
# --quick: 2 steps).
COVERAGE_MODELS = common.quick(
    ("MobileNetV2", "MobileNetV3Small", "ResNet50", "EfficientNetB0"), ("MobileNetV2",)
)
COVERAGE_SIZE = 32
SAMPLES = common.quick(128, 32)
BATCH_SIZE = 16
# These two rescale pixels inside the model (include_preprocessing=True).
_RESCALE_INSIDE = ("MobileNetV3Small", "EfficientNetB0")
# A pruned layer whose .tflite kernel is more than this short of its target.
SHORTFALL = 0.05
# XNNPACK sparse inference: MobileNetV2 1.0 at 96x96, its 1x1 convolutions at 80%.
XNNPACK_SIZE = common.quick(96, 32)
XNNPACK_SPARSITY = 0.8
# --quick: the network up to block 5 (its fine-tuning traces and its converter calls cost
# per layer; a third of the layers, with stride-2 pads, 1x1 convolutions and residual adds),
# then pooling and 10 logits; and no "pruned, stored dense" file (one converter call less).
XNNPACK_UNTIL = common.quick(None, "block_5_add")
XNNPACK_STORED_DENSE = not common.QUICK


def _application(module, name: str, size: int, **extra):
    """keras.applications / tf_keras.applications `name`, random init, 10 logits."""
    kwargs = {"MobileNetV2": {"alpha": 0.35}}.get(name, {})
    kwargs.update(extra)
    return getattr(module, name)(
        input_shape=(size, size, 3), weights=None, classes=10, classifier_activation=None, **kwargs
    )


def _digits_rgb(name: str):
    (x, y), _ = ks.data.load_digits(COVERAGE_SIZE)
    x = np.repeat(x[:SAMPLES], 3, axis=-1)
    x = x * 255.0 if name in _RESCALE_INSIDE else x * 2.0 - 1.0
    return x.astype(np.float32), y[:SAMPLES]


def _short(reason: str) -> str:
    return reason.split(";")[0].split(" (")[0][:48]


def _zero_fraction(result) -> tuple[float, float]:
    """(zeros / weights of the kernels found in the .tflite, zeros / all parameters)."""
    from keras_squeeze.report.layers import kernels

    zeros = total = 0.0
    for row in result.report.layers:
        if row.sparsity is None:
            continue
        size = sum(k.size for k in kernels(result.model.get_layer(row.name)))
        zeros += row.sparsity * size
        total += size
    return zeros / total, zeros / result.model.count_params()


def _coverage_cells(name: str) -> tuple[list[str], set[str]]:
    """The ks 'prune' cells of one model, and the layer types short of their target."""
    import keras

    keras.utils.set_random_seed(0)
    model = _application(keras.applications, name, COVERAGE_SIZE)
    x, y = _digits_rgb(name)
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():  # shortfalls are counted in the table instead
            warnings.simplefilter("ignore")
            result = ks.compress(
                model,
                "prune",
                train_data=(x, y),
                epochs=1,
                batch_size=BATCH_SIZE,
                distill=False,
                verbose=0,
            )
    except Exception as e:  # a failure is a result here
        failed = f"failed: {' '.join(str(e).split())[:110]}"
        return [f"{model.count_params():,}", failed, *[""] * 5], set()
    seconds = time.perf_counter() - start
    (stage,) = result.report.stages
    decisions = stage["layers"]
    pruned = [n for n, d in decisions.items() if d["setting"] is not None]
    dense = collections.Counter(
        _short(d["reason"]) for d in decisions.values() if d["setting"] is None
    )
    rows = {r.name: r for r in result.report.layers}
    short = collections.Counter(
        rows[n].type
        for n in pruned
        if rows[n].sparsity is not None and rows[n].sparsity < decisions[n]["setting"] - SHORTFALL
    )
    kernel_zeros, param_zeros = _zero_fraction(result)
    cells = [
        f"{model.count_params():,}",
        f"yes ({len(result.tflite):,} B int8)",
        f"{kernel_zeros:.1%} ({param_zeros:.1%} of all params)",
        f"{len(pruned)} / {len(decisions) - len(pruned)}",
        "; ".join(f"{n}x {r}" for r, n in dense.most_common(2)) or "-",
        ", ".join(f"{n} {t}" for t, n in short.items()) or "none",
        f"{seconds:.0f}",
    ]
    return cells, set(short)


def _coverage() -> Table:
    import tf_keras

    from benchmarks.bridge import _techniques

    prune_low_magnitude = _techniques()["prune_low_magnitude"]
    table = Table(
        f"'prune' coverage on keras.applications ({COVERAGE_SIZE}x{COVERAGE_SIZE}, random init)",
        [
            "model",
            "params",
            "raw tfmot prune_low_magnitude (whole model)",
            "ks 'prune' .tflite",
            "kernel weights zero in the .tflite",
            "layers set to prune / left dense",
            "most common reasons left dense",
            "set to prune but short of target in the .tflite",
            "ks seconds",
        ],
        notes=[
            "keras.applications (Keras 3) with weights=None, classes=10, "
            "classifier_activation=None, MobileNetV2 alpha 0.35; ks.compress(model, 'prune', "
            f"epochs=1, batch_size={BATCH_SIZE}, distill=False): 80% target, int8, through the "
            f"bridge; trained on the first {SAMPLES} digits resized to "
            f"{COVERAGE_SIZE}x{COVERAGE_SIZE}x3 ({SAMPLES // BATCH_SIZE} steps, the schedule "
            "completes); raw tfmot tried on the same architecture built by tf_keras.applications",
            "kernel weights zero: zeros in every kernel found in the .tflite (read back from "
            "the file) over those kernels' weights, kernels left dense included (int8 rounding "
            f"gives them a few zeros); short of target: measured more than {SHORTFALL * 100:.0f} "
            "points below the layer's target",
        ],
    )
    short_types: set[str] = set()
    for name in COVERAGE_MODELS:
        tfmot = common.engine_verdict(
            prune_low_magnitude, _application(tf_keras.applications, name, COVERAGE_SIZE)
        )
        cells, short = _coverage_cells(name)
        short_types |= short
        table.add(name, cells[0], tfmot, *cells[1:])
    if "DepthwiseConv2D" in short_types:
        table.notes.append(
            "DepthwiseConv2D layers are planned for pruning but come out dense: tfmot 0.8.1's "
            "prune registry supports DepthwiseConv2D with no prunable weights "
            "(`DepthwiseConv2D: []`), so its wrapper never masks the depthwise kernel; "
            "compress() warns about each after export"
        )
    return table


def _mobilenet_v2_for_xnnpack():
    """keras.applications MobileNetV2 1.0 with the padding XNNPACK's sparse path needs.

    Keras builds the stem as a 3x3 stride-2 "same" convolution and pads by
    (0, 1) before its stride-2 depthwise convolutions (even sizes); XNNPACK's
    sparse inference (and tfmot's policy, which checks for it) wants a 3x3
    stride-2 "valid" stem after ZeroPadding2D(1) and stride-2 depthwise
    convolutions after ZeroPadding2D(1). Same shapes; nothing else changes.
    """
    import keras

    keras.utils.set_random_seed(0)
    model = _application(keras.applications, "MobileNetV2", XNNPACK_SIZE, alpha=1.0)
    if XNNPACK_UNTIL:
        h = keras.layers.GlobalAveragePooling2D()(model.get_layer(XNNPACK_UNTIL).output)
        model = keras.Model(model.inputs, keras.layers.Dense(10, name="logits")(h))

    def clone(layer):
        config = layer.get_config()
        if layer.name == "Conv1":
            config["padding"] = "valid"
        if type(layer).__name__ == "ZeroPadding2D":
            config["padding"] = ((1, 1), (1, 1))
        return layer.__class__.from_config(config)

    def call(layer, *args, **kwargs):
        if layer.name == "Conv1":
            args = (keras.layers.ZeroPadding2D(((1, 1), (1, 1)), name="Conv1_pad")(args[0]),)
        return layer(*args, **kwargs)

    return keras.models.clone_model(model, clone_function=clone, call_function=call)


def _x86_with_avx() -> bool:
    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686"):
        return False
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1] for line in f if line.startswith("flags")), "")
    except OSError:
        return True  # every x86-64 CPU of the last decade has AVX
    return "avx" in flags.split()


def _xnnpack() -> Table:
    from keras_squeeze.report.tflite_reader import read_tflite

    model = _mobilenet_v2_for_xnnpack()
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (SAMPLES, XNNPACK_SIZE, XNNPACK_SIZE, 3)).astype(np.float32)
    y = rng.integers(0, 10, SAMPLES)
    recipe = ks.Recipe(
        prune=Prune(target_sparsity=XNNPACK_SPARSITY, xnnpack_sparse=True, min_weights=0),
        quantization="float32",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = ks.compress(
            model,
            recipe,
            train_data=(x, y),
            epochs=1,
            batch_size=BATCH_SIZE,
            distill=False,
            verbose=0,
        )
    (stage,) = result.report.stages
    pruned = [n for n, d in stage["layers"].items() if d["setting"] is not None]
    rows = {r.name: r for r in result.report.layers}
    measured = [rows[n].sparsity for n in pruned if rows[n].sparsity is not None]
    dense_name, sparse_name = "dense float32 (not pruned)", "pruned, sparse encoding (ks)"
    models = {dense_name: ks.export.tflite.convert(model, "float32")}
    if XNNPACK_STORED_DENSE:
        models["pruned, stored dense"] = ks.export.tflite.convert(result.model, "float32")
    models[sparse_name] = result.tflite
    latency = common.interleaved_latency(models, threads=1)
    until = f" up to {XNNPACK_UNTIL}" if XNNPACK_UNTIL else ""
    table = Table(
        f"XNNPACK sparse inference: MobileNetV2 1.0{until} {XNNPACK_SIZE}x{XNNPACK_SIZE} "
        "float32, 1 thread",
        [
            "model",
            ".tflite bytes",
            "sparse tensors",
            "DENSIFY ops",
            "p50 ms",
            "mean ms",
            "speed-up vs dense (p50)",
        ],
        notes=[
            f"ks.Recipe(prune=Prune(target_sparsity={XNNPACK_SPARSITY}, xnnpack_sparse=True, "
            "min_weights=0), quantization='float32'): the 1x1 convolutions pruned, their "
            "weights stored in the .tflite's sparse format; trained one epoch of "
            f"{SAMPLES // BATCH_SIZE} steps on random images (accuracy is not the point); "
            f"{len(pruned)} 1x1 convolutions pruned, measured in the .tflite "
            f"{min(measured):.1%}-{max(measured):.1%} zeros",
            "keras.applications MobileNetV2 alpha 1.0, weights=None, with ZeroPadding2D(1) + "
            "'valid' for the stride-2 stem and depthwise convolutions (the form XNNPACK's "
            "sparse path and tfmot's policy accept; same shapes)"
            + (
                f"; only its layers up to {XNNPACK_UNTIL}, then pooling and 10 logits"
                if until
                else ""
            ),
            "ai_edge_litert Interpreter (XNNPACK delegate on by default), num_threads=1, 200 "
            "invocations each after 20 warm-up rounds, the "
            f"{common.number_word(len(models))} models interleaved; {common.machine()}",
        ],
    )
    base = latency[dense_name]["p50_ms"]
    for name, content in models.items():
        tfl = read_tflite(content)
        lat = latency[name]
        table.add(
            name,
            f"{len(content):,}",
            sum(t.sparse for t in tfl.tensors),
            sum(op.opcode == "DENSIFY" for op in tfl.operators),
            f"{lat['p50_ms']:.2f}",
            f"{lat['mean_ms']:.2f}",
            f"{base / lat['p50_ms']:.2f}x",
        )
    if base / latency[sparse_name]["p50_ms"] < 1.1:
        reason = (
            "no gain: the converter did emit sparse weights and DENSIFY ops (see the table), "
            "so the XNNPACK delegate asks for sparse inference (XNN_FLAG_HINT_SPARSE_INFERENCE), "
        )
        if _x86_with_avx():
            reason += (
                "but XNNPACK turns its sparse (NCHW) rewrite off on x86 CPUs with AVX "
                "(xnn_is_chw_compatible_config in google/XNNPACK src/xnnpack/hardware-config.h: "
                "'on processors with AVX ISA dense inference is expected to be faster than "
                "sparse'); the delegate densifies the weights once at load and runs dense "
                "kernels. The gain is for ARM CPUs (phones); measure there with benchmark_model"
            )
        else:
            reason += "but this CPU ran it no faster than dense"
        table.notes.append(reason)
    return table


def run() -> list[Table]:
    tables = []
    for section in (lambda: [_coverage()], lambda: [_xnnpack()]):
        start = time.perf_counter()
        new = section()
        new[-1].notes.append(f"section time {time.perf_counter() - start:.0f} s")
        tables += new
    return tables
