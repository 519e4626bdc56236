"""Quantization-aware training figures (issue 5).

- The benchmark CNN: plain tfmot QAT scripted as its guide shows (`_tfmot_qat`)
  against keras_squeeze "int8" (PTQ) and "qat", with .tflite accuracy, size and
  QAT Keras vs .tflite agreement, is measured in the significance section (2,000
  test digits, 5 seeds, paired tests).
- Coverage on keras.applications (random init, 32x32, a few training steps):
  whether raw tfmot quantize_model accepts the architecture, whether "qat"
  gives a .tflite, the fraction of int8 ops, layers left float, parity.
"""

from __future__ import annotations

import collections
import time
import warnings

import numpy as np

import keras_squeeze as ks
from benchmarks import common
from benchmarks.common import Table
from keras_squeeze.edgetpu.checks import check_types
from keras_squeeze.report.metrics import format_db
from keras_squeeze.report.tflite_reader import read_tflite

SIZE = 32
APPLICATIONS = {
    "MobileNetV2": {"alpha": 0.35},
    "MobileNetV3Small": {"alpha": 0.75, "minimalistic": False},
    "ResNet50": {},
    "EfficientNetB0": {},
}
if common.QUICK:
    APPLICATIONS = {"MobileNetV2": APPLICATIONS["MobileNetV2"]}
RESCALES_INSIDE = ("MobileNetV3Small", "EfficientNetB0")  # built-in Rescaling: 0..255 input


def _tfmot_qat(model, x, y, seed: int, epochs: int | None = None) -> bytes:
    """The tfmot QAT guide: whole-model quantize_model, Adam, sparse CE from logits, int8."""
    import tf_keras

    from keras_squeeze import _compat

    tfmot = _compat.import_tfmot()
    tf_keras.utils.set_random_seed(seed)
    q_aware = tfmot.quantization.keras.quantize_model(model)
    q_aware.compile(
        optimizer="adam",
        loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    q_aware.fit(x, y, batch_size=32, epochs=epochs or common.FINE_TUNE_EPOCHS, verbose=0)
    return common.tflite_int8(q_aware, x)


def _int8_ops(content: bytes) -> tuple[int, int, str]:
    """(ops whose tensors are all 8-bit with int32 biases, all ops, the others by
    opcode with the non-8-bit types they touch)."""
    tfl = read_tflite(content)
    others = collections.Counter()
    for op in tfl.operators:
        if check_types(tfl, op):
            used = {tfl.tensors[i].dtype for i in op.inputs + op.outputs if i >= 0}
            others[(op.opcode, "/".join(sorted(used - {"int8", "uint8"})))] += 1
    n_int8 = len(tfl.operators) - sum(others.values())
    text = ", ".join(f"{op} x{n} ({types})" for (op, types), n in sorted(others.items()))
    return n_int8, len(tfl.operators), text


def _float_layers(result) -> str:
    stage = next(s for s in result.report.stages if "layers" in s)
    reasons = collections.Counter(
        (d["reason"] or "").split(":")[0].split(" (")[0]
        for d in stage["layers"].values()
        if d["setting"] is None
    )
    return "; ".join(f"{n} {r}" for r, n in reasons.most_common()) or "none"


def _application(name: str, **kwargs):
    """A random-init keras.applications model with randomized BatchNormalization
    statistics: with the initial ones the logits of most of these are ~1e-11,
    which int8 turns into zeros and any parity figure into a trivial one."""
    import keras

    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, name)(**kwargs)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            g, b, m, v = (tuple(w.shape) for w in layer.weights)
            new = [rng.uniform(0.5, 1.5, g), rng.normal(0, 0.1, b), rng.normal(0, 0.1, m)]
            layer.set_weights([w.astype("float32") for w in [*new, rng.uniform(0.5, 1.5, v)]])
    return model


def _coverage() -> Table:
    import tf_keras

    from keras_squeeze import _compat

    tfmot = _compat.import_tfmot()
    (x, y), _ = ks.data.load_digits(SIZE)
    x, y = np.repeat(x[:64], 3, axis=-1), y[:64]
    table = Table(
        f"'qat' coverage on keras.applications ({SIZE}x{SIZE}, random init, 4 training steps)",
        [
            "model",
            "raw tfmot quantize_model",
            "'qat' .tflite",
            "int8 ops",
            "non-int8 ops",
            "left float in training",
            "parity SQNR",
            "parity top-1",
            "float top-1 classes",
            "wall s (CPU s)",
        ],
        notes=[
            "weights=None (BatchNormalization statistics randomized), classes=10, "
            "classifier_activation=None; MobileNetV2 alpha 0.35, "
            "MobileNetV3Small alpha 0.75; 64 digits resized to 32x32 in 3 channels "
            "(x255 for the models with a built-in Rescaling, else [-1, 1]), 1 epoch of batch 16",
            "raw tfmot: quantize_model on the same architecture built by tf_keras.applications",
            "int8 ops: every input/output 8-bit, biases int32 (the Edge TPU's type rule)",
            "parity on random-init models after 4 steps is weak evidence: their logits hardly "
            "depend on the input (float top-1 classes: distinct classes the float model predicts "
            "on the 64 inputs), so top-1 agreement is near-trivial; SQNR compares whole logit "
            "vectors ('exact': the int8 outputs match bit for bit)",
        ],
    )
    for name, kwargs in APPLICATIONS.items():
        start, cpu = time.perf_counter(), time.process_time()
        common_kwargs = dict(
            input_shape=(SIZE, SIZE, 3), weights=None, classes=10, classifier_activation=None
        )
        native = getattr(tf_keras.applications, name)(**common_kwargs, **kwargs)
        accepted = common.engine_verdict(tfmot.quantization.keras.quantize_model, native)
        del native
        model = _application(name, **common_kwargs, **kwargs)
        xs = x * 255.0 if name in RESCALES_INSIDE else x * 2.0 - 1.0
        classes = len(set(model.predict(xs, verbose=0).argmax(-1)))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                opts = dict(epochs=1, batch_size=16, distill=False, verbose=0)
                result = ks.compress(model, "qat", train_data=(xs, y), **opts)
        except Exception as e:  # the table reports what failed
            table.add(name, accepted, f"failed: {str(e)[:100]}", *[""] * 7)
            continue
        n_int8, n_ops, others = _int8_ops(result.tflite)
        p = result.report.qat_parity
        table.add(
            name,
            accepted,
            f"yes ({len(result.tflite) / 1e6:.2f} MB)",
            f"{n_int8}/{n_ops} ({n_int8 / n_ops:.0%})",
            others or "none",
            _float_layers(result),
            format_db(float(p["sqnr_db"])),
            f"{p['top1_agreement']:.0%}",
            f"{classes} of 10",
            f"{time.perf_counter() - start:.0f} ({time.process_time() - cpu:.0f})",
        )
    return table


def run() -> list[Table]:
    start = time.perf_counter()
    tables = [_coverage()]
    tables[-1].notes.append(f"section time {time.perf_counter() - start:.0f} s")
    return tables
