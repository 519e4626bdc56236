"""Edge TPU readiness figures (issue 5): what edgetpu_compiler 16 would map, per architecture.

A static analysis (keras_squeeze.edgetpu.check_edgetpu) of int8 post-training
quantized .tflite files from this TensorFlow's converter, against Coral's
supported-operation table and the operator versions compiler 16 loads. No
compiler or Edge TPU is involved: the figures say which ops would map, where
the compiler would cut to the CPU, and whether it could load the model at all.

Models are random-init (readiness does not depend on the weights), calibrated
on 1/f-noise images.
"""

from __future__ import annotations

import itertools
import statistics
import time

import keras

import keras_squeeze as ks
from benchmarks import common
from benchmarks.common import Table, pink_noise_images
from keras_squeeze.edgetpu import check_edgetpu, with_batch_size

SIZE = common.quick(96, 32)
APPLICATIONS = common.quick(None, 1)  # how many keras.applications models (None: all)
# The example CNN's I/O types at batch 1, and whether the applications also convert with
# their dynamic batch. --quick converts 4 files, not 6: the CNN's dynamic row stands for
# a dynamic batch, the application's batch-1 row for int8 I/O at a fixed batch.
CNN_FIXED_IO = common.quick((None, "uint8", "float32"), ("uint8", "float32"))
APPLICATIONS_DYNAMIC = not common.QUICK


def _applications(size: int):
    keras.utils.set_random_seed(0)
    apps = keras.applications
    yield (
        "MobileNetV2 0.35",
        apps.MobileNetV2(input_shape=(size, size, 3), alpha=0.35, weights=None, classes=10),
    )
    yield (
        "MobileNetV3Small",
        apps.MobileNetV3Small(input_shape=(size, size, 3), weights=None, classes=10),
    )
    yield (
        "EfficientNetB0",
        apps.EfficientNetB0(input_shape=(size, size, 3), weights=None, classes=10),
    )
    yield "ResNet50", apps.ResNet50(input_shape=(size, size, 3), weights=None, classes=10)


def _row(table: Table, name: str, model, x, batch: str, io: str | None) -> None:
    art = ks.export.to_tflite(
        model,
        quantization="int8",
        representative_data=x,
        num_calibration_samples=len(x),
        inference_input_type=io,
        inference_output_type=io,
        dynamic_batch=batch == "dynamic",  # to_tflite fixes the batch at 1 by default
    )
    times = []
    for _ in range(5):
        start = time.perf_counter()
        report = check_edgetpu(art.content)
        times.append((time.perf_counter() - start) * 1e3)
    cut = report.first_cpu_op
    table.add(
        name,
        batch,
        io or "int8",
        len(report.ops),
        report.ops_on_edgetpu,
        report.ops_on_cpu,
        "-" if cut is None else f"#{cut.index} {cut.opcode} v{cut.version}",
        "yes" if report.compilable else "no",
        f"{len(art.content) / 2**20:.2f}",
        f"{statistics.median(times):.1f}",
    )


def run(size: int = SIZE, calibration: int = 32) -> list[Table]:
    table = Table(
        "Edge TPU readiness of int8 PTQ models (static analysis for edgetpu_compiler 16)",
        [
            "model",
            "batch",
            "I/O",
            "ops",
            "on Edge TPU",
            "on CPU",
            "first CPU op (cut)",
            "compiles (predicted)",
            ".tflite MiB",
            "analysis ms (median of 5)",
        ],
        notes=[
            "keras_squeeze.edgetpu.check_edgetpu on the converter's .tflite; no compiler or "
            "device was run (edgetpu_compiler cannot be installed here)",
            f"keras.applications models at {size}x{size}, weights=None, 10 classes; example CNN "
            "at 16x16, untrained; int8 calibrated on "
            f"{calibration} 1/f-noise images",
            "'batch 1' = keras_squeeze.edgetpu.with_batch_size(model, 1) before converting",
            "'compiles (predicted)' is no when the compiler is expected to refuse the model: "
            "here, a RESHAPE whose target shape is computed at run time (dynamic batch)",
            "the analysis does not model memory: recorded compiler-16 logs show about 7-7.5 MiB "
            "of on-chip parameter cache; larger models stream the rest from host memory",
        ],
    )
    digits = pink_noise_images(calibration, 16, channels=1, seed=1)
    cnn = ks.data.example_model((16, 16, 1))
    fixed = with_batch_size(cnn, 1)
    _row(table, "example CNN", cnn, digits, "dynamic", None)
    for io in CNN_FIXED_IO:
        _row(table, "example CNN", fixed, digits, "1", io)
    x = pink_noise_images(calibration, size, seed=0)
    for name, model in itertools.islice(_applications(size), APPLICATIONS):
        if APPLICATIONS_DYNAMIC:
            _row(table, name, model, x, "dynamic", None)
        _row(table, name, with_batch_size(model, 1), x, "1", None)
    return [table]


if __name__ == "__main__":
    for t in run():
        print(t.text())
