"""Keras 3 <-> tf_keras bridge figures (issue 3).

- Fidelity and time of `to_tf_keras` and `to_keras3` on keras.applications
  MobileNetV2 (alpha 0.35), MobileNetV3Small (alpha 0.75), ResNet50 and
  EfficientNetB0 at 64x64: random init, randomized BatchNormalization
  statistics, logits out, compared on 8 1/f-noise images.
- What tfmot's whole-model wrappers accept, on the bridged models and on the
  same architectures built natively by tf_keras.applications.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks import common
from benchmarks.common import Table, pink_noise_images

SIZE = 64
RTOL = 1e-5


def _kwargs(name: str) -> dict:
    return {"MobileNetV2": {"alpha": 0.35}, "MobileNetV3Small": {"alpha": 0.75}}.get(name, {})


def _keras3_application(name: str):
    import keras

    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, name)(
        input_shape=(SIZE, SIZE, 3), weights=None, classifier_activation=None, **_kwargs(name)
    )
    rng = np.random.default_rng(0)
    for layer in model.layers:  # non-trivial statistics, so a wrong rebuild shows
        if isinstance(layer, keras.layers.BatchNormalization):
            shapes = [tuple(w.shape) for w in layer.weights]
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, shapes[0]).astype("float32"),
                    rng.normal(0, 0.1, shapes[1]).astype("float32"),
                    rng.normal(0, 0.1, shapes[2]).astype("float32"),
                    rng.uniform(0.5, 1.5, shapes[3]).astype("float32"),
                ]
            )
    return model


def _tf_keras_application(name: str):
    import tf_keras

    return getattr(tf_keras.applications, name)(
        input_shape=(SIZE, SIZE, 3), weights=None, classifier_activation=None, **_kwargs(name)
    )


def _fresh_copy(tf_keras_model):
    """cluster_weights changes the layers it is given: each technique gets a copy."""
    import tf_keras

    copy = tf_keras.models.clone_model(tf_keras_model)
    copy.set_weights(tf_keras_model.get_weights())
    return copy


def _techniques():
    from keras_squeeze._compat import import_tfmot

    tfmot = import_tfmot()
    return {
        "prune_low_magnitude": tfmot.sparsity.keras.prune_low_magnitude,
        "cluster_weights": lambda m: tfmot.clustering.keras.cluster_weights(
            m, number_of_clusters=16
        ),
        "quantize_model": tfmot.quantization.keras.quantize_model,
    }


def run() -> list[Table]:
    from keras_squeeze.keras_bridge import to_keras3, to_tf_keras

    names = common.quick(
        ["MobileNetV2", "MobileNetV3Small", "ResNet50", "EfficientNetB0"], ["MobileNetV2"]
    )
    x = pink_noise_images(8, SIZE, seed=1)
    fidelity = Table(
        f"Keras 3 <-> tf_keras bridge: fidelity and time ({SIZE}x{SIZE}, random init)",
        [
            "model",
            "params",
            "layers",
            "op layers",
            "to_tf_keras s",
            "max |diff|",
            "relative",
            "to_keras3 s",
            "max |diff| back",
            "relative back",
            f"<= {RTOL:g}",
        ],
        notes=[
            "keras.applications with weights=None, classifier_activation=None (logits), "
            "BatchNormalization statistics randomized; MobileNetV2 alpha 0.35, "
            "MobileNetV3Small alpha 0.75",
            "time = rebuild + weight copy + numeric check on 8 1/f-noise images in [-1, 1]; "
            "relative = max |diff| / max |output| (the bridge's acceptance bound is 1e-5)",
            "to_keras3 clones the user's Keras 3 architecture and sets its weights from the "
            "tf_keras model by layer and weight name",
        ],
    )
    tfmot_table = Table(
        "tfmot whole-model wrappers on the bridged models (and on tf_keras.applications)",
        ["model", "built by", "prune_low_magnitude", "cluster_weights", "quantize_model"],
        notes=[
            "whole-model calls with default settings; 'rejected' is tfmot's own error. The "
            "bridged models are rejected where the natively built tf_keras ones are: "
            "Rescaling is in neither tfmot registry; MobileNetV3's squeeze-excite TFOpLambda "
            "ops hit tfmot issue #867 in quantize_model (the op layer gets its input wrapped "
            "in a list: tf.__operators__.add raises on it natively, the bridge's tf.math.add "
            "turns it into an extra axis that the next BatchNormalization rejects)",
            "per-layer wrapping works around both: clone_model with a clone_function that "
            "wraps only supported layers (prune), quantize_annotate_layer on supported layers "
            "then quantize_apply (QAT); see tests/keras_bridge/test_tfmot.py",
        ],
    )
    techniques = _techniques()
    for name in names:
        model = _keras3_application(name)
        start = time.perf_counter()
        tf_keras_model, forward = to_tf_keras(model, x)
        forward_s = time.perf_counter() - start
        start = time.perf_counter()
        _, backward = to_keras3(tf_keras_model, like=model, sample_inputs=x)
        backward_s = time.perf_counter() - start
        ok = forward.agreement.ok and backward.agreement.ok
        fidelity.add(
            name,
            f"{forward.params:,}",
            forward.layers,
            len(forward.op_layers),
            f"{forward_s:.2f}",
            f"{forward.agreement.max_abs_diff:.2e}",
            f"{forward.agreement.relative:.2e}",
            f"{backward_s:.2f}",
            f"{backward.agreement.max_abs_diff:.2e}",
            f"{backward.agreement.relative:.2e}",
            "yes" if ok else "**no**",
        )
        for built_by, source in (
            ("keras_squeeze bridge", tf_keras_model),
            ("tf_keras.applications", _tf_keras_application(name)),
        ):
            cells = [common.engine_verdict(t, _fresh_copy(source)) for t in techniques.values()]
            tfmot_table.add(name, built_by, *cells)
    return [fidelity, tfmot_table]


if __name__ == "__main__":
    for table in run():
        print(table.text(), end="\n\n")
