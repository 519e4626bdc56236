"""`import keras_squeeze` is cheap and side-effect free; tfmot cannot flip tf.keras."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest


def _run(code: str, env_extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env.update(env_extra or {})
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_loads_no_tensorflow_and_changes_no_environment():
    out = _run(
        """
        import json, os, sys
        before = dict(os.environ)
        import keras_squeeze as ks
        heavy = [m for m in ("tensorflow", "keras", "tf_keras", "tensorflow_model_optimization",
                              "tf2onnx", "onnxruntime", "ai_edge_litert") if m in sys.modules]
        print(json.dumps({"heavy": heavy, "env_changed": dict(os.environ) != before,
                          "version": ks.__version__, "has_compress": callable(ks.compress)}))
        """
    )
    assert out["heavy"] == []
    assert out["env_changed"] is False
    assert out["version"]
    assert out["has_compress"] is True


def test_public_names_resolve():
    out = _run(
        """
        import json
        import keras_squeeze as ks
        names = ["compress", "Recipe", "RECIPES", "CompressionResult", "Report", "load_model",
                 "KerasSqueezeError", "export", "data"]
        missing = [n for n in names if getattr(ks, n, None) is None]
        export = [n for n in ("to_tflite", "to_onnx", "to_saved_model") if not hasattr(ks.export, n)]
        print(json.dumps({"missing": missing, "export_missing": export}))
        """
    )
    assert out == {"missing": [], "export_missing": []}


@pytest.mark.parametrize("touch_tf_keras_first", [False, True])
def test_tfmot_import_leaves_tf_keras_as_keras3(touch_tf_keras_first):
    out = _run(
        f"""
        import json, os
        import tensorflow as tf
        if {touch_tf_keras_first}:
            tf.keras.layers
        from keras_squeeze import _compat
        tfmot = _compat.import_tfmot()
        print(json.dumps({{
            "tf_keras_module": tf.keras.__name__,
            "env": os.environ.get("TF_USE_LEGACY_KERAS"),
            "tfmot": tfmot.__name__,
            "prune": hasattr(tfmot.sparsity.keras, "prune_low_magnitude"),
        }}))
        """
    )
    assert out["tf_keras_module"].startswith("keras"), out
    assert out["env"] is None
    assert out["tfmot"] == "tensorflow_model_optimization"
    assert out["prune"] is True


def test_tfmot_import_keeps_a_users_legacy_setting():
    out = _run(
        """
        import json, os
        from keras_squeeze import _compat
        _compat.import_tfmot()
        import tensorflow as tf
        print(json.dumps({"env": os.environ.get("TF_USE_LEGACY_KERAS"),
                          "tf_keras_module": tf.keras.__name__}))
        """,
        {"TF_USE_LEGACY_KERAS": "1"},
    )
    assert out["env"] == "1"
    assert out["tf_keras_module"].startswith("tf_keras")


def test_compress_does_not_change_the_users_keras():
    out = _run(
        """
        import json, os
        import numpy as np
        import keras
        import tensorflow as tf
        import keras_squeeze as ks
        m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        ks.compress(m, "dynamic", verbose=0)
        ks._compat.import_tfmot()
        print(json.dumps({"env": os.environ.get("TF_USE_LEGACY_KERAS"),
                          "tf_keras_module": tf.keras.__name__,
                          "is_keras3_layer": isinstance(tf.keras.layers.Dense(2), keras.layers.Layer)}))
        """
    )
    assert out["env"] is None
    assert out["tf_keras_module"].startswith("keras")
    assert out["is_keras3_layer"] is True
