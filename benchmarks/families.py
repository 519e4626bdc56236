"""Every model family through every recipe: a table family x recipe.

Eleven small Keras 3 models, each trained a few epochs on synthetic data with a
learnable rule (a few hundred samples), go through every post-training mode
and the training recipes. Each cell is either the verified artifact (SQNR and
top-1 agreement of the .tflite against the float Keras model, the task metric
of the float model and of the .tflite on held-out data, .tflite bytes over the
float .tflite's) or the one-line KerasSqueezeError a user gets. Anything else
that escapes compress() is a defect and shows as RAW.

python benchmarks/run.py families
"""

from __future__ import annotations

import math
import time
import traceback

import numpy as np

from benchmarks import common
from benchmarks.common import Table

POST_TRAINING = ["float32", "dynamic", "float16", "int8", "int16x8"]
TRAINING = ["prune", "qat", "cluster", "prune-cluster-qat", "channel-prune"]
RECIPES = POST_TRAINING + TRAINING
FINE_TUNE_EPOCHS = 1
MAX_DROP = 0.02
N_TRAIN, N_TEST = common.quick((384, 192), (96, 64))


# A --quick run: every family and every recipe at least once (each fine-tuning is ~5 s of
# set-up), the fine-tunings on families where they are cheap; int8 and dynamic where a
# target or a note reads that cell; int16x8 on a family it verifies on (not token inputs,
# not the ViT); bidirectional GRU / prune keeps a KerasSqueezeError cell (it fails before
# any training).
QUICK_RECIPES = {
    "image CNN": ["qat"],
    "residual/SE CNN": ["int8"],
    "depthwise CNN": ["cluster"],
    "Conv1D audio": ["prune-cluster-qat"],
    "LSTM text": ["int8"],
    "bidirectional GRU": ["dynamic", "int8", "prune"],
    "masked LSTM": ["int8"],
    "transformer text": ["int8"],
    "small ViT": ["float32", "float16"],
    "MLP regression": ["channel-prune"],
    "classifier + box": ["int16x8", "prune"],
}


def _recipes(family: str) -> list[str]:
    """The recipes a family goes through: all of them, or its QUICK_RECIPES."""
    return common.quick(RECIPES, QUICK_RECIPES[family])


# ---------------------------------------------------------------- data with a rule


def quadrant_images(n, seed, size=16):
    """A bright square in one of four quadrants; the class is the quadrant."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, size, size, 3), dtype=np.float32) * 0.3
    y = rng.integers(0, 4, n)
    half = size // 2
    for i, q in enumerate(y):
        r, c = divmod(int(q), 2)
        s = int(rng.integers(3, half + 1))
        r0 = r * half + int(rng.integers(0, half - s + 1))
        c0 = c * half + int(rng.integers(0, half - s + 1))
        x[i, r0 : r0 + s, c0 : c0 + s] += 0.7
    return x, y.astype("int32")


def tones(n, seed, length=128):
    """Audio-like frames: a noisy tone whose frequency band (of 4) is the class."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    freq = (y + 1) * 0.05 + rng.uniform(-0.01, 0.01, n)
    phase = rng.uniform(0, 2 * np.pi, n)
    t = np.arange(length)[None, :]
    x = np.sin(2 * np.pi * freq[:, None] * t + phase[:, None]) + rng.normal(0, 0.3, (n, length))
    return x[..., None].astype(np.float32), y.astype("int32")


def keyword_tokens(n, seed, vocab, length):
    """Token ids in [2, vocab); the class is whether token 1 (the keyword) appears."""
    rng = np.random.default_rng(seed)
    x = rng.integers(2, vocab, (n, length)).astype("int32")
    y = rng.integers(0, 2, n)
    rows = np.flatnonzero(y == 1)
    x[rows, rng.integers(0, length, len(rows))] = 1
    return x, y.astype("int32")


def last_token(n, seed, vocab, length, pad):
    """Token ids in [1, vocab): the class is whether the last (non-padding) token is in
    the upper half of the vocabulary; with `pad` each row ends in zeros."""
    rng = np.random.default_rng(seed)
    x = rng.integers(1, vocab, (n, length)).astype("int32")
    if pad:
        lengths = rng.integers(3, length + 1, n)
        x[np.arange(length)[None, :] >= lengths[:, None]] = 0
    last = x[np.arange(n), (x > 0).sum(axis=1) - 1]
    return x, (last >= vocab // 2).astype("int32")


def shapes(n, seed, size=16):
    """One shape per image (square, ring, plus): (x, classes, boxes (x, y, w, h))."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.05, (n, size, size, 1)).astype(np.float32)
    classes = rng.integers(0, 3, n)
    boxes = np.zeros((n, 4), np.float32)
    for i in range(n):
        s = int(rng.integers(5, 10))
        r, c = (int(v) for v in rng.integers(0, size - s + 1, 2))
        patch = np.zeros((s, s), np.float32)
        if classes[i] == 0:
            patch[:] = 1.0
        elif classes[i] == 1:
            patch[[0, -1], :] = patch[:, [0, -1]] = 1.0
        else:
            patch[s // 2, :] = patch[:, s // 2] = 1.0
        x[i, r : r + s, c : c + s, 0] += patch
        boxes[i] = [(c + s / 2) / size, (r + s / 2) / size, s / size, s / size]
    return x, classes.astype("int32"), boxes


def regression(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype(np.float32)
    y = np.sin(x[:, 0]) + x[:, 1] * x[:, 2] - 0.5 * x[:, 3] + 0.3 * x[:, 4] ** 2
    return x, y[:, None].astype(np.float32)


# ---------------------------------------------------------------- models


def _classifier(model, x, y, epochs, lr=3e-3):
    import keras

    model.compile(
        keras.optimizers.Adam(lr),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0)
    return model


def image_cnn(keras, layers):
    x, y = quadrant_images(N_TRAIN, 1)
    image = keras.Input((16, 16, 3), name="image")
    h = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(image)
    h = layers.MaxPooling2D(name="pool1")(h)
    h = layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(h)
    h = layers.MaxPooling2D(name="pool2")(h)
    h = layers.Flatten(name="flat")(h)
    h = layers.Dense(64, activation="relu", name="fc")(h)
    model = keras.Model(image, layers.Dense(4, name="logits")(h), name="image_cnn")
    return _classifier(model, x, y, 6), (x, y), quadrant_images(N_TEST, 2)


def residual_se_cnn(keras, layers):
    x, y = quadrant_images(N_TRAIN, 3)
    image = keras.Input((16, 16, 3), name="image")
    h = layers.Conv2D(24, 3, padding="same", use_bias=False, name="stem")(image)
    h = layers.ReLU(name="stem_relu")(layers.BatchNormalization(momentum=0.9, name="stem_bn")(h))
    r = layers.Conv2D(24, 3, padding="same", use_bias=False, name="block_conv1")(h)
    r = layers.ReLU(name="block_relu1")(
        layers.BatchNormalization(momentum=0.9, name="block_bn1")(r)
    )
    r = layers.Conv2D(24, 3, padding="same", use_bias=False, name="block_conv2")(r)
    r = layers.BatchNormalization(momentum=0.9, name="block_bn2")(r)
    s = layers.GlobalAveragePooling2D(name="se_squeeze")(r)
    s = layers.Dense(6, activation="relu", name="se_reduce")(s)
    s = layers.Dense(24, activation="sigmoid", name="se_expand")(s)
    s = layers.Reshape((1, 1, 24), name="se_reshape")(s)
    r = layers.Multiply(name="se_scale")([r, s])
    h = layers.ReLU(name="block_out")(layers.Add(name="residual")([h, r]))
    h = layers.MaxPooling2D(4, name="pool")(h)
    h = layers.Flatten(name="flat")(h)
    model = keras.Model(image, layers.Dense(4, name="logits")(h), name="residual_se_cnn")
    return _classifier(model, x, y, 8), (x, y), quadrant_images(N_TEST, 4)


def depthwise_cnn(keras, layers):
    x, y = quadrant_images(N_TRAIN, 5)
    image = keras.Input((16, 16, 3), name="image")
    h = layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False, name="stem")(image)
    h = layers.ReLU(6.0, name="stem_relu6")(
        layers.BatchNormalization(momentum=0.9, name="stem_bn")(h)
    )
    for i, width in enumerate((32, 48)):
        h = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"dw{i}")(h)
        h = layers.ReLU(6.0, name=f"dw{i}_relu6")(
            layers.BatchNormalization(momentum=0.9, name=f"dw{i}_bn")(h)
        )
        h = layers.Conv2D(width, 1, use_bias=False, name=f"pw{i}")(h)
        h = layers.ReLU(6.0, name=f"pw{i}_relu6")(
            layers.BatchNormalization(momentum=0.9, name=f"pw{i}_bn")(h)
        )
    h = layers.Flatten(name="flat")(h)
    model = keras.Model(image, layers.Dense(4, name="logits")(h), name="depthwise_cnn")
    return _classifier(model, x, y, 8), (x, y), quadrant_images(N_TEST, 6)


def conv1d_audio(keras, layers):
    x, y = tones(N_TRAIN, 7)
    frames = keras.Input((128, 1), name="frames")
    h = layers.Conv1D(16, 9, strides=2, activation="relu", name="conv1")(frames)
    h = layers.MaxPooling1D(2, name="pool1")(h)
    h = layers.Conv1D(32, 5, activation="relu", name="conv2")(h)
    h = layers.GlobalAveragePooling1D(name="gap")(h)
    model = keras.Model(frames, layers.Dense(4, name="logits")(h), name="conv1d_audio")
    return _classifier(model, x, y, 10), (x, y), tones(N_TEST, 8)


LSTM_VOCAB, LSTM_LENGTH = 2000, 20


def lstm_text(keras, layers):
    x, y = keyword_tokens(N_TRAIN, 9, LSTM_VOCAB, LSTM_LENGTH)
    ids = keras.Input((LSTM_LENGTH,), dtype="int32", name="tokens")
    h = layers.Embedding(LSTM_VOCAB, 64, name="embedding")(ids)
    h = layers.LSTM(128, name="lstm")(h)
    model = keras.Model(ids, layers.Dense(2, name="logits")(h), name="lstm_text")
    test = keyword_tokens(N_TEST, 10, LSTM_VOCAB, LSTM_LENGTH)
    return _classifier(model, x, y, 6, lr=5e-3), (x, y), test


SEQ_VOCAB, SEQ_LENGTH = 50, 10


def bidirectional_gru(keras, layers):
    x, y = last_token(N_TRAIN, 11, SEQ_VOCAB, SEQ_LENGTH, pad=False)
    ids = keras.Input((SEQ_LENGTH,), dtype="int32", name="tokens")
    h = layers.Embedding(SEQ_VOCAB, 16, name="embedding")(ids)
    h = layers.Bidirectional(layers.GRU(16), name="bigru")(h)
    model = keras.Model(ids, layers.Dense(2, name="logits")(h), name="bidirectional_gru")
    test = last_token(N_TEST, 12, SEQ_VOCAB, SEQ_LENGTH, pad=False)
    return _classifier(model, x, y, 8, lr=1e-2), (x, y), test


def masked_sequence(keras, layers):
    x, y = last_token(N_TRAIN, 13, SEQ_VOCAB, SEQ_LENGTH, pad=True)
    ids = keras.Input((SEQ_LENGTH,), dtype="int32", name="tokens")
    h = layers.Embedding(SEQ_VOCAB, 16, mask_zero=True, name="embedding")(ids)
    h = layers.LSTM(16, name="lstm")(h)
    model = keras.Model(ids, layers.Dense(2, name="logits")(h), name="masked_lstm")
    test = last_token(N_TEST, 14, SEQ_VOCAB, SEQ_LENGTH, pad=True)
    return _classifier(model, x, y, 8, lr=1e-2), (x, y), test


TEXT_VOCAB, TEXT_LENGTH = 100, 16


def _encoder_block(layers, x, width):
    att = layers.MultiHeadAttention(2, width // 2, name="attention")(x, x)
    x = layers.LayerNormalization(name="norm1")(layers.Add(name="res1")([x, att]))
    f = layers.Dense(2 * width, activation="gelu", name="ffn_in")(x)
    f = layers.Dense(width, name="ffn_out")(f)
    x = layers.LayerNormalization(name="norm2")(layers.Add(name="res2")([x, f]))
    return layers.GlobalAveragePooling1D(name="pool")(x)


def transformer_text(keras, layers):
    x, y = keyword_tokens(N_TRAIN, 15, TEXT_VOCAB, TEXT_LENGTH)
    ids = keras.Input((TEXT_LENGTH,), dtype="int32", name="ids")
    h = layers.Embedding(TEXT_VOCAB, 32, name="tokens")(ids)
    # learned positions from ids derived from the input (a product: the converter would
    # fuse `+ arange` into an int32 BiasAdd TFLite lacks)
    position_ids = (ids * 0 + 1) * keras.ops.arange(TEXT_LENGTH, dtype="int32")
    positions = layers.Embedding(TEXT_LENGTH, 32, name="positions")(position_ids)
    h = _encoder_block(layers, layers.Add(name="embed")([h, positions]), 32)
    model = keras.Model(ids, layers.Dense(2, name="logits")(h), name="transformer_text")
    test = keyword_tokens(N_TEST, 16, TEXT_VOCAB, TEXT_LENGTH)
    return _classifier(model, x, y, 8), (x, y), test


def small_vit(keras, layers):
    # the shape task (square, ring or plus anywhere): no position embedding needed
    x, y, _ = shapes(N_TRAIN, 17)
    image = keras.Input((16, 16, 1), name="image")
    h = layers.Conv2D(32, 4, strides=4, name="patches")(image)
    h = layers.Reshape((16, 32), name="patch_tokens")(h)
    h = _encoder_block(layers, h, 32)
    model = keras.Model(image, layers.Dense(3, name="logits")(h), name="small_vit")
    xt, yt, _ = shapes(N_TEST, 18)
    return _classifier(model, x, y, 10), (x, y), (xt, yt)


def mlp_regression(keras, layers):
    x, y = regression(N_TRAIN * 2, 19)
    features = keras.Input((8,), name="features")
    h = layers.Dense(64, activation="relu", name="hidden1")(features)
    h = layers.Dense(64, activation="relu", name="hidden2")(h)
    model = keras.Model(features, layers.Dense(1, name="value")(h), name="mlp_regression")
    model.compile(keras.optimizers.Adam(3e-3), loss="mse")
    model.fit(x, y, batch_size=32, epochs=30, verbose=0)
    return model, (x, y), regression(N_TEST, 20)


def classifier_and_box(keras, layers):
    x, c, b = shapes(N_TRAIN * 2, 21)
    image = keras.Input((16, 16, 1), name="image")
    h = layers.Conv2D(16, 3, activation="relu", name="conv1")(image)
    h = layers.MaxPooling2D(name="pool")(h)
    h = layers.Conv2D(32, 3, activation="relu", name="conv2")(h)
    h = layers.Flatten(name="flat")(h)
    h = layers.Dense(64, activation="relu", name="fc")(h)
    outputs = [layers.Dense(3, name="classes")(h), layers.Dense(4, name="box")(h)]
    model = keras.Model(image, outputs, name="classifier_and_box")
    model.compile(
        keras.optimizers.Adam(2e-3),
        loss=[keras.losses.SparseCategoricalCrossentropy(from_logits=True), "mse"],
        loss_weights=[1.0, 10.0],
    )
    model.fit(x, [c, b], batch_size=32, epochs=12, verbose=0)
    xt, ct, bt = shapes(N_TEST, 22)
    return model, (x, [c, b]), (xt, [ct, bt])


FAMILIES = {
    "image CNN": image_cnn,
    "residual/SE CNN": residual_se_cnn,
    "depthwise CNN": depthwise_cnn,
    "Conv1D audio": conv1d_audio,
    "LSTM text": lstm_text,
    "bidirectional GRU": bidirectional_gru,
    "masked LSTM": masked_sequence,
    "transformer text": transformer_text,
    "small ViT": small_vit,
    "MLP regression": mlp_regression,
    "classifier + box": classifier_and_box,
}


# ---------------------------------------------------------------- measuring


def _metrics(report) -> list[tuple[str, float, float, float]]:
    """(what, float, .tflite, drop in points) per output: accuracy for a classification
    output, relative MSE (MSE / variance of the targets) for a regression output, with the
    plain MSE shown beside it; drop > 0 means worse."""
    rows = []
    acc, reg = report.accuracy, report.regression
    if acc:
        for name, v in (acc.get("per_output") or {acc.get("output") or "": acc}).items():
            label = f"{name} acc" if name else "acc"
            rows.append((label, v["original"], v["compressed"], v["original"] - v["compressed"]))
    if reg:
        per_output = reg.get("per_output") or {reg["output"]: {**reg, "mse": reg}}
        for name, v in per_output.items():
            mse, rel = v["mse"], v["relative_mse"]
            rise = (rel["compressed"] or 0.0) - (rel["original"] or 0.0)
            rows.append((f"{name} MSE", mse["original"], mse["compressed"], rise))
    return rows


def _one_line(error: BaseException, limit: int = 120) -> str:
    text = " ".join(str(error).split()).replace("|", "/")
    return f"{type(error).__name__}: {text[:limit]}{'...' if len(text) > limit else ''}"


def _db(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.1f} dB"


def _warned(report, what) -> bool:
    metric = "accuracy" if what.endswith("acc") else "MSE"
    return any(metric in w and "points" in w for w in report.warnings)


def run() -> list[Table]:
    import keras

    import keras_squeeze as ks
    from keras_squeeze.errors import KerasSqueezeError

    table = Table(
        "Every model family through every recipe (.tflite verified against the float model)",
        [
            "family",
            "params",
            "recipe",
            "result",
            "SQNR",
            "top-1 agreement",
            "task metric: float -> .tflite (drop, points)",
            "bytes ratio",
            "gzip ratio",
            "seconds",
        ],
    )
    raw: list[str] = []
    findings: dict[tuple[str, str], object] = {}
    for family, build in FAMILIES.items():
        keras.utils.set_random_seed(0)
        start = time.perf_counter()
        model, train, test = build(keras, keras.layers)
        print(f"[families] {family}: trained in {time.perf_counter() - start:.0f} s", flush=True)
        params = f"{model.count_params():,}"
        for recipe in _recipes(family):
            keras.utils.set_random_seed(0)
            kwargs = {"representative_data": train[0]}
            if recipe in TRAINING:
                kwargs = {"train_data": train, "epochs": FINE_TUNE_EPOCHS, "distill": False}
            start = time.perf_counter()
            try:
                result = ks.compress(model, recipe, validation_data=test, verbose=0, **kwargs)
            except KerasSqueezeError as e:
                seconds = time.perf_counter() - start
                table.add(
                    family, params, recipe, _one_line(e), "", "", "", "", "", f"{seconds:.0f}"
                )
                findings[family, recipe] = e
                print(f"[families] {family} / {recipe}: {_one_line(e, 300)}", flush=True)
                continue
            except Exception as e:  # a defect: visible as RAW, with its traceback on stdout
                seconds = time.perf_counter() - start
                line = f"RAW {_one_line(e)}"
                table.add(family, params, recipe, line, "", "", "", "", "", f"{seconds:.0f}")
                raw.append(f"{family} / {recipe}: {line}")
                findings[family, recipe] = e
                print(f"[families] {family} / {recipe}: {line}", flush=True)
                traceback.print_exc()
                continue
            seconds = time.perf_counter() - start
            report = result.report
            fid = report.fidelity
            metrics = _metrics(report)
            task = "; ".join(
                f"{what} {before:.3f} -> {after:.3f} ({100 * drop:+.1f})"
                for what, before, after, drop in metrics
            )
            verdict = "verified" + "".join(
                f", {tag} warning"
                for tag, marker in (("departure", "departs from"), ("fidelity", "agrees with"))
                if any(marker in w.lower() for w in report.warnings)
            )
            table.add(
                family,
                params,
                recipe,
                verdict,
                " / ".join(_db(o.sqnr_db) for o in fid.outputs),
                "" if fid.top1_agreement is None else f"{fid.top1_agreement:.1%}",
                task,
                f"{report.size_ratio:.3f}",
                f"{report.gzip_ratio:.3f}",
                f"{seconds:.0f}",
            )
            findings[family, recipe] = (report, metrics)
            print(f"[families] {family} / {recipe}: {table.rows[-1][3:]}", flush=True)
    if common.QUICK:
        table.notes.append(
            "--quick: each family through its QUICK_RECIPES (benchmarks/families.py), every "
            "recipe on at least one family"
        )
    table.notes += _targets(findings, raw)
    table.notes += _int8_notes(findings)
    table.notes += [
        "post-training recipes: ks.compress(model, recipe, representative_data=x_train, "
        "validation_data=(x_test, y_test), verbose=0); training recipes: train_data=(x_train, "
        f"y_train), epochs={FINE_TUNE_EPOCHS}, distill=False, then int8 as their preset says",
        f"each family: a small Keras 3 model trained a few epochs on {N_TRAIN} synthetic samples "
        f"(MLP regression and classifier + box {2 * N_TRAIN}) with a learnable rule; "
        f"metrics on {N_TEST} held-out samples",
        "SQNR per output (output order) and top-1 agreement over classifier outputs: the "
        "compressed .tflite against the float Keras model on the validation inputs; bytes "
        "ratio: compressed .tflite bytes / the float32 .tflite's (gzip ratio: the same, "
        "gzipped)",
        "task metric: accuracy for classifier outputs, MSE for regression outputs; drop in "
        "points is float minus .tflite accuracy, or .tflite minus float relative MSE (MSE / "
        "variance of the targets), x100; positive is worse",
        "a cell that is not 'verified' holds the KerasSqueezeError a user gets (type and "
        "first 120 characters); RAW marks any other exception (a defect)",
    ]
    return [table]


def _int8_notes(findings) -> list[str]:
    """Per family, what its int8 report says about recurrent paths and ops left float."""
    lines = []
    for family in FAMILIES:
        cell = findings.get((family, "int8"))
        if not isinstance(cell, tuple):
            continue
        report, _ = cell
        said = [
            " ".join(n.split())
            for n in report.notes
            if n.startswith(("recurrent layer", "ops left float", "the .tflite keeps a free batch"))
        ]
        said = [n if len(n) <= 240 else n[:240] + "..." for n in said]
        if said:
            lines.append(f"{family}, int8 report says: " + "; ".join(said).replace("|", "/"))
    lines.append(
        "a bytes ratio over 1 (the int8 and training-recipe cells of the bidirectional GRU "
        "and the masked LSTM) comes with an unrolled recurrent layer: full int8 "
        "cannot calibrate a WHILE loop, so the int8 file holds every time step while the float "
        "file holds one loop body; 'dynamic' leaves tensors under 1,024 elements float (the "
        "bidirectional GRU's all are), hence its ratio of 1"
    )
    return lines


def _targets(findings, raw) -> list[str]:
    lines = []
    lines.append(
        "target, no raw exception anywhere: "
        + ("met" if not raw else f"NOT met, {len(raw)} RAW: " + "; ".join(raw))
    )
    recurrent_attention = [
        "LSTM text",
        "bidirectional GRU",
        "masked LSTM",
        "transformer text",
        "small ViT",
    ]
    missing = [
        f"{f} / {r}"
        for f in recurrent_attention
        for r in POST_TRAINING
        if (f, r) in findings and not isinstance(findings[f, r], tuple)
    ]
    lines.append(
        "target, every recurrent and attention cell of every post-training mode verified: "
        + ("met" if not missing else "NOT met: " + ", ".join(missing))
    )
    cell = findings.get(("LSTM text", "int8"))
    if isinstance(cell, tuple):
        report, _ = cell
        ratio, agree = report.size_ratio, report.fidelity.top1_agreement or 0.0
        ok = ratio <= 0.35 and agree >= 0.98
        lines.append(
            f"target, int8 LSTM text classifier (>= 200K parameters) bytes <= 0.35 of float and "
            f"top-1 agreement >= 98%: {'met' if ok else 'NOT met'} ({ratio:.3f}, {agree:.1%})"
        )
    else:
        lines.append(f"target, int8 LSTM text classifier: NOT met (no artifact: {cell})")
    cell = findings.get(("transformer text", "int8"))
    if isinstance(cell, tuple):
        agree = cell[0].fidelity.top1_agreement or 0.0
        lines.append(
            "target, int8 transformer encoder top-1 agreement >= 98%: "
            f"{'met' if agree >= 0.98 else 'NOT met'} ({agree:.1%})"
        )
    else:
        lines.append(f"target, int8 transformer encoder: NOT met (no artifact: {cell})")
    within, warned, silent = 0, 0, []
    for (family, recipe), cell in findings.items():
        if recipe not in TRAINING or not isinstance(cell, tuple):
            continue
        report, metrics = cell
        for what, _, _, drop in metrics:
            if drop <= MAX_DROP:
                within += 1
            elif _warned(report, what):
                warned += 1
            else:
                silent.append(f"{family} / {recipe} {what} ({100 * drop:+.1f})")
    lines.append(
        f"target, training recipes within 2 points of float or a report warning saying not: "
        f"{'met' if not silent else 'NOT met'} ({within} within, {warned} over with a warning"
        + (f", over without a warning: {', '.join(silent)}" if silent else "")
        + ")"
    )
    return lines
