"""Runs recipes on a tiny model under MirroredStrategy (two logical CPUs) and one device.

Run as a script (a fresh process: the logical devices must be set before
TensorFlow initialises its devices): prints one JSON object with, per recipe,
both runs' accuracy, the .tflite's sparsity and how far the two .tflite
files' outputs are apart. tests/distribute/test_distributed.py checks it.

Usage: python run_distributed.py FLAVOUR RECIPE [RECIPE ...]
"""

from __future__ import annotations

import json
import pathlib
import sys
import time


def main(flavour: str, recipes: list[str]) -> dict:
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import keras_squeeze as ks
    from keras_squeeze.data import load_digits, train_example_model

    (x, y), (xt, yt) = load_digits(8)
    x, y, xt, yt = x[:128], y[:128], xt[:64], yt[:64]
    model = train_example_model(epochs=2, image_size=8, flavour=flavour, seed=1)
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    out = {
        "replicas": mirrored.num_replicas_in_sync,
        "recipes": {},
        "fine_tune_max_diff": _fine_tune_diff(mirrored, x, y),
        "errors": _errors(ks, model, mirrored, x, y),
    }
    student = _small(flavour)
    runs = {}
    # one fixed setting on both (with neither alpha nor temperature, each would choose its
    # own on the validation data); then the choice itself on two replicas
    for name, strategy, setting in (
        ("default", None, {"alpha": 0.5}),
        ("mirrored", mirrored, {"alpha": 0.5}),
        ("mirrored_choice", mirrored, {}),
    ):
        result = ks.distill(
            model,
            student,
            (x, y),
            epochs=1,
            batch_size=32,
            verbose=0,
            strategy=strategy,
            validation_data=(xt, yt),
            **setting,
        )
        runs[name] = {
            "accuracy": result.report["accuracy"]["student"],
            "distribute": result.report["distribute"],
            "choice": result.report["choice"],
        }
    out["distill"] = runs
    out["prune_channels"] = _structural(ks, model, mirrored, x, y, xt, yt)
    out["remove_blocks"] = _blocks(ks, model, mirrored, x, y)
    out["resume"] = _resume(ks, mirrored)
    for recipe in recipes:
        runs = {}
        for name, strategy in (("default", None), ("mirrored", mirrored)):
            tf.keras.utils.set_random_seed(0)
            start = time.perf_counter()
            result = ks.compress(
                model,
                recipe,
                train_data=(x, y),
                validation_data=(xt, yt),
                epochs=2,
                batch_size=32,
                verbose=0,
                strategy=strategy,
            )
            rows = [r for r in result.report.layers if r.targets.get("sparsity")]
            runs[name] = {
                "seconds": round(time.perf_counter() - start, 1),
                "accuracy": result.report.accuracy["compressed"],
                "min_sparsity": min((r.sparsity for r in rows), default=None),
                "target_sparsity": max((r.targets["sparsity"] for r in rows), default=None),
                "distribute": result.report.training["distribute"],
                "warnings": list(result.report.warnings),
                "outputs": _tflite_outputs(result.tflite, xt),
            }
        a, b = (np.asarray(runs[k].pop("outputs")) for k in ("default", "mirrored"))
        out["recipes"][recipe] = {
            **runs,
            "top1_agreement": float(np.mean(a.argmax(-1) == b.argmax(-1))),
            "max_abs_diff": float(np.max(np.abs(a - b))),
        }
    return out


def _small(flavour):
    from keras_squeeze import _compat

    k = _compat.keras_module(flavour)
    init = k.initializers.GlorotUniform
    inputs = k.Input((8, 8, 1))
    h = k.layers.Conv2D(4, 3, activation="relu", kernel_initializer=init(0))(inputs)
    h = k.layers.Flatten()(h)
    return k.Model(inputs, k.layers.Dense(10, kernel_initializer=init(1), name="logits")(h))


def _fine_tune_diff(mirrored, x, y):
    """Largest weight difference after 8 SGD steps of the one loop, two replicas vs one,
    on a tf_keras model without batch normalization (whose batch statistics are per
    replica): the replicas' shares of the loss must add up to one device's step."""
    import contextlib

    import numpy as np

    from keras_squeeze import _compat
    from keras_squeeze.core import models
    from keras_squeeze.training import data as train_data
    from keras_squeeze.training import trainer

    model = _small(_compat.TF_KERAS)
    weights = {}
    for name, strategy in (("default", None), ("mirrored", mirrored)):
        with strategy.scope() if strategy else contextlib.nullcontext():
            copy = models.copy_model(model)
            data = train_data.prepare((x, y), models.input_specs(model), 32)
            trainer.fine_tune(copy, data, 2, optimizer="sgd", verbose=0)
        weights[name] = copy.get_weights()
    moved = max(
        float(np.max(np.abs(a - b)))
        for a, b in zip(model.get_weights(), weights["default"], strict=True)
    )
    assert moved > 1e-4, moved  # it trained
    return max(
        float(np.max(np.abs(a - b)))
        for a, b in zip(weights["default"], weights["mirrored"], strict=True)
    )


def _structural(ks, model, mirrored, x, y, xt, yt):
    """prune_channels fine-tuned on one device and on two replicas: accuracy after
    fine-tuning, and what the report says (remove_blocks shares its fine-tuning step,
    channel_pruning.fine_tune.run)."""
    runs = {}
    for name, strategy in (("default", None), ("mirrored", mirrored)):
        result = ks.prune_channels(
            model,
            train_data=(x, y),
            validation_data=(xt, yt),
            epochs=1,
            batch_size=32,
            verbose=0,
            strategy=strategy,
        )
        runs[name] = {
            "accuracy": result.report.accuracy["fine_tuned"],
            "fine_tuning": result.report.fine_tuning,
        }
    return runs


def _blocks(ks, model, mirrored, x, y):
    """remove_blocks fine-tuned on two replicas: its BatchNormalization statistics are
    re-estimated on the mirrored copy and folded (the notes, the layers left)."""
    from tests.depth_pruning.builders import randomize_bn, residual_cnn

    result = ks.remove_blocks(
        randomize_bn(residual_cnn(model_flavour(model))),
        ks.BlockRemoval(importance_samples=16),
        train_data=(x, y),
        epochs=1,
        batch_size=32,
        strategy=mirrored,
        verbose=0,
    )
    return {
        "fine_tuning": result.report.fine_tuning,
        "notes": result.report.notes,
        "layers": [type(layer).__name__ for layer in result.model.layers],
    }


def _resume(ks, mirrored):
    """ "qat" on two replicas with checkpoint_dir: an uninterrupted run, and one that crashes
    in its second epoch of three and is called again: the largest weight difference."""
    import tempfile

    import numpy as np
    import tensorflow as tf

    from tests.training.run_checkpointed import tiny_data, tiny_model
    from tests.training.test_checkpoint import _crash_in_epoch_2

    model, data = tiny_model(), tiny_data()
    directory = pathlib.Path(tempfile.mkdtemp())

    def run(name, callbacks=()):
        tf.keras.utils.set_random_seed(0)
        return ks.compress(
            model,
            "qat",
            train_data=data,
            epochs=3,
            batch_size=32,
            verbose=0,
            strategy=mirrored,
            checkpoint_dir=directory / name,
            callbacks=list(callbacks),
        )

    whole = run("whole")
    try:
        run("crashed", [_crash_in_epoch_2("tf_keras")])
    except RuntimeError as e:
        crash = str(e)
    resumed = run("crashed")
    return {
        "crash": crash,
        "checkpoint": resumed.report.training["checkpoint"],
        "max_diff": max(
            float(np.max(np.abs(a - b)))
            for a, b in zip(whole.model.get_weights(), resumed.model.get_weights(), strict=True)
        ),
    }


def model_flavour(model):
    from keras_squeeze import _compat

    return _compat.keras_flavour(model)


def _errors(ks, model, mirrored, x, y):
    """{case: [error class, message]} for what is refused under two replicas."""
    from tests.depth_pruning.builders import residual_cnn

    cases = {
        "channel_odd_batch": lambda: ks.prune_channels(
            model, train_data=(x, y), batch_size=31, strategy=mirrored, verbose=0
        ),
        "blocks_odd_batch": lambda: ks.remove_blocks(
            residual_cnn(model_flavour(model)),
            train_data=(x, y),
            batch_size=31,
            strategy=mirrored,
            verbose=0,
        ),
        "odd_batch": lambda: ks.compress(
            model, "prune", train_data=(x, y), batch_size=31, strategy=mirrored, verbose=0
        ),
        "native_prune": lambda: ks.compress(
            model,
            ks.Recipe(prune=ks.Prune(engine="native")),
            train_data=(x, y),
            strategy=mirrored,
            verbose=0,
        ),
    }
    found = {}
    for name, call in cases.items():
        try:
            call()
        except ks.errors.KerasSqueezeError as e:
            found[name] = [type(e).__name__, str(e)]
        else:
            found[name] = None
    return found


def _tflite_outputs(content: bytes, x):
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    interpreter.allocate_tensors()
    inp, outp = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    rows = []
    for sample in x:
        value = sample[None]
        if inp["dtype"] != np.float32:
            scale, zero = inp["quantization"]
            value = np.clip(np.round(value / scale + zero), -128, 127).astype(inp["dtype"])
        interpreter.set_tensor(inp["index"], value)
        interpreter.invoke()
        got = interpreter.get_tensor(outp["index"])[0].astype(np.float32)
        if outp["dtype"] != np.float32:
            scale, zero = outp["quantization"]
            got = (got - zero) * scale
        rows.append(got)
    return np.stack(rows).tolist()


if __name__ == "__main__":
    print("RESULT " + json.dumps(main(sys.argv[1], sys.argv[2:])))
