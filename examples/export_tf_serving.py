r"""Export for TF Serving, and how to query the served model.

    python examples/export_tf_serving.py
    docker run -p 8501:8501 \
        --mount type=bind,source=$PWD/squeezed/serving/digits,target=/models/digits \
        -e MODEL_NAME=digits -t tensorflow/serving
    curl -d @squeezed/serving/request.json http://localhost:8501/v1/models/digits:predict
    python examples/export_tf_serving.py --query http://localhost:8501

ks.export.to_saved_model writes <base>/<version>/ with a `serving_default`
signature keyed by the model's input and output names, and checks it by
loading it back with tf.saved_model.load (what TF Serving loads). The REST
API takes {"signature_name": ..., "instances": [...]} at
/v1/models/<name>:predict and answers {"predictions": [...]}.
"""

from __future__ import annotations

import json
import pathlib
import sys
import urllib.request

import numpy as np

import keras_squeeze as ks

MODEL_NAME = "digits"


def rest_request(x: np.ndarray, input_name: str) -> dict:
    """The body of a TF Serving REST predict call (row format, one instance per sample)."""
    return {
        "signature_name": "serving_default",
        "instances": [{input_name: sample.tolist()} for sample in x],
    }


def query(server_url: str, body: dict, model_name: str = MODEL_NAME, timeout=30.0) -> np.ndarray:
    """POSTs `body` to a running TF Serving and returns its predictions."""
    request = urllib.request.Request(
        f"{server_url.rstrip('/')}/v1/models/{model_name}:predict",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return np.asarray(json.load(response)["predictions"])


def serving_signature(version_dir):
    """The SavedModel's serving_default signature (what `saved_model_cli show` lists)."""
    import tensorflow as tf

    return tf.saved_model.load(str(version_dir)).signatures["serving_default"]


def serve_locally(version_dir, body: dict) -> np.ndarray:
    """Runs the request through the SavedModel's serving_default signature, as TF Serving does."""
    import tensorflow as tf

    signature = serving_signature(version_dir)
    (name,) = {k for instance in body["instances"] for k in instance}
    batch = np.asarray([instance[name] for instance in body["instances"]], np.float32)
    outputs = signature(**{name: tf.constant(batch)})
    return next(iter(outputs.values())).numpy()


def main(
    output_dir="squeezed/serving",
    epochs: int = 12,
    image_size: int = 8,
    server_url: str | None = None,
    version: int = 1,
):
    """Exports the example CNN for TF Serving and shows the request that queries it.

    Returns:
        (the SavedModel Artifact, the request body, the predictions of the
        local serving_default call).
    """
    _, (x_test, y_test) = ks.data.load_digits(image_size=image_size)
    model = ks.data.train_example_model(epochs=epochs, image_size=image_size)
    base = f"{output_dir}/{MODEL_NAME}"
    artifact = ks.export.to_saved_model(model, base, version=version, verification_data=x_test[:64])
    print(f"SavedModel: {artifact.path} ({artifact.size_bytes:,} bytes), {artifact.notes[0]}")
    (input_name,) = serving_signature(artifact.path).structured_input_signature[1]
    body = rest_request(x_test[:3], input_name)
    request = pathlib.Path(output_dir, "request.json")
    request.write_text(json.dumps(body))
    print("Serve it and query it:")
    print(
        f"  docker run -p 8501:8501 --mount type=bind,source={pathlib.Path(base).absolute()},"
        f"target=/models/{MODEL_NAME} -e MODEL_NAME={MODEL_NAME} -t tensorflow/serving"
    )
    print(f"  curl -d @{request} http://localhost:8501/v1/models/{MODEL_NAME}:predict")
    local = serve_locally(artifact.path, body)
    print(f"labels {y_test[:3].tolist()}, served predictions {local.argmax(-1).tolist()}")
    if server_url:
        remote = query(server_url, body)
        print(f"{server_url} predicts {remote.argmax(-1).tolist()}")
    return artifact, body, local


if __name__ == "__main__":
    url = sys.argv[sys.argv.index("--query") + 1] if "--query" in sys.argv else None
    main(server_url=url)
