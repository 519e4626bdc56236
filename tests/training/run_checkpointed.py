"""A 4-epoch "prune" of a tiny model with checkpoint_dir, for tests/training/test_checkpoint.py.

Run as a script (the test kills it with SIGKILL): with `--pause MARKER` it
writes MARKER during the second epoch (after its second step) and waits there
to be killed. Without it the run completes, and the script writes JSON to OUT:
the epochs each stage's fit saw, the report's checkpoint summary, a digest of
the compressed model's weights and of the .tflite.

Usage: python run_checkpointed.py CHECKPOINT_DIR OUT [--pause MARKER] [--again]
(--again: call compress() a second time on the same directory and report it too).
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import sys
import time


def tiny_model(flavour: str = "tf_keras"):
    """A small CNN for 8x8 digits, with seeded initializers (the same in every process)."""
    from keras_squeeze import _compat

    k = _compat.keras_module(flavour)
    init = k.initializers.GlorotUniform
    inputs = k.Input((8, 8, 1))
    h = k.layers.Conv2D(8, 3, activation="relu", kernel_initializer=init(0))(inputs)
    h = k.layers.Flatten()(h)
    outputs = k.layers.Dense(10, kernel_initializer=init(1), name="logits")(h)
    return k.Model(inputs, outputs)


def tiny_data(n: int = 128):
    from keras_squeeze.data import load_digits

    (x, y), _ = load_digits(8)
    return x[:n], y[:n]


def model_and_data():
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()
    return tiny_model(), tiny_data()


def callbacks(seen: list, pause: str | None):
    from keras_squeeze import _compat

    k = _compat.keras_module(_compat.TF_KERAS)

    class Watch(k.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_epoch_end(self, epoch, logs=None):
            seen.append([self.stage, epoch])

        def on_train_batch_end(self, batch, logs=None):
            if pause and self.epoch == 1 and batch == 1:
                pathlib.Path(pause).write_text("in epoch 2")
                time.sleep(600)  # killed here

    return [Watch()]


def run(checkpoint_dir: str, pause: str | None) -> dict:
    import numpy as np

    import keras_squeeze as ks

    model, data = model_and_data()
    seen: list = []
    result = ks.compress(
        model,
        "prune",
        train_data=data,
        epochs=4,
        batch_size=32,
        verbose=1,
        callbacks=callbacks(seen, pause),
        checkpoint_dir=checkpoint_dir,
    )
    digest = hashlib.sha256()
    for w in result.model.get_weights():
        digest.update(np.ascontiguousarray(w).tobytes())
    return {
        "seen": seen,
        "checkpoint": result.report.training["checkpoint"],
        "stage_epochs": [s["epochs"] for s in result.report.stages],
        "weights": digest.hexdigest(),
        "tflite_outputs": _tflite_outputs(result.tflite, data[0][:16]),
    }


def _tflite_outputs(content: bytes, x) -> list:
    """The .tflite's outputs (its bytes also hold names, which Keras numbers per process)."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    interpreter.allocate_tensors()
    inp, outp = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    rows = []
    for sample in x:
        scale, zero = inp["quantization"]
        value = np.clip(np.round(sample[None] / scale + zero), -128, 127).astype(inp["dtype"])
        interpreter.set_tensor(inp["index"], value)
        interpreter.invoke()
        rows.append(interpreter.get_tensor(outp["index"])[0].tolist())
    return rows


def main(argv: list[str]) -> None:
    checkpoint_dir, out = argv[0], argv[1]
    pause = argv[argv.index("--pause") + 1] if "--pause" in argv else None
    results = {"first": run(checkpoint_dir, pause)}
    if "--again" in argv:
        results["again"] = run(checkpoint_dir, None)
    pathlib.Path(out).write_text(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1:])
