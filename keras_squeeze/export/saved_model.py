"""SavedModel export in TF Serving's layout: <base>/<version>/saved_model.pb.

The `serving_default` signature takes the model's inputs by name and returns a
dict keyed by the model's output names, for either Keras flavour.
"""

from __future__ import annotations

import contextlib
import io
import pathlib

from keras_squeeze.core import models
from keras_squeeze.errors import ExportError, VerificationError
from keras_squeeze.export.signature import serving_function


def write(model, path: pathlib.Path, output_names=None) -> None:
    """Writes `model` as a SavedModel directory at `path` (which must not exist); its
    signature's outputs are named `output_names` (in the model's order) when given."""
    import tensorflow as tf

    serve, _ = serving_function(model, output_names)
    module = tf.Module()
    module.model = model
    module.serve = serve
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            tf.saved_model.save(module, str(path), signatures={"serving_default": serve})
    except Exception as e:
        raise ExportError(
            "The SavedModel could not be written. Expected a model tf.saved_model.save can "
            f"trace. Received: {type(e).__name__}: {str(e)[:500]}"
        ) from e


def verify(path, model, samples, reference_outputs=None, output_names=None):
    """Loads the SavedModel with tf.saved_model.load, runs serving_default, compares.

    It must reproduce `model`; the fidelity returned is against
    `reference_outputs` when given, else `model`. `output_names`: as given to
    `write`.
    """
    from keras_squeeze.export.artifact import check_float_fidelity, check_outputs_finite
    from keras_squeeze.export.runtime import saved_model_outputs
    from keras_squeeze.report.metrics import compare

    specs = models.input_specs(model)
    names = list(output_names) if output_names is not None else models.output_names(model)
    try:
        outputs = saved_model_outputs(str(path), samples, [s.name for s in specs], names)
    except Exception as e:
        raise VerificationError(
            "The SavedModel could not be loaded and run. Expected tf.saved_model.load to serve "
            f"'serving_default'. Received: {type(e).__name__}: {str(e)[:500]}"
        ) from e
    check_outputs_finite(outputs, "SavedModel")
    fidelity = compare(models.keras_outputs(model, samples), outputs, names, samples.describe())
    check_float_fidelity(fidelity, "SavedModel")
    if reference_outputs is not None:
        fidelity = compare(reference_outputs, outputs, names, samples.describe())
    return fidelity


def to_saved_model(
    model, path, *, version: int | None = 1, verification_data=None, input_signature=None
):
    """Writes a SavedModel for TF Serving at `path/<version>/` and checks it.

    The `serving_default` signature takes the model's inputs by name and
    returns a dict keyed by its output names. The model is saved as it is
    (float weights): TF Serving runs SavedModels, not .tflite quantization.

    Args:
        model: a Keras 3 or tf_keras model, or a path to one.
        path: the model's base directory (TF Serving's --model_base_path).
        version: the version sub-directory; None writes the SavedModel at `path`.
        verification_data: inputs to compare on; default synthetic inputs.
        input_signature: the inputs of a model without symbolic inputs
            (subclassed), as in `ks.compress`; else read from one batch of
            verification_data, else from the shapes Keras recorded.

    Returns:
        An Artifact whose path is the version directory.

    Example:
        >>> ks.export.to_saved_model(model, "serving/digits")  # serving/digits/1/
    """
    from keras_squeeze.core import atomic
    from keras_squeeze.export.artifact import Artifact, dir_size, verification_samples

    model = models.resolve_model(model)
    if version is not None and (not isinstance(version, int) or version < 0):
        raise ExportError(
            "The SavedModel version must be a non-negative integer (TF Serving's version "
            f"directories). Expected an int >= 0 or None. Received: version={version!r}"
        )
    signature, data = models.resolve_signature(
        model, input_signature, {"verification_data": verification_data}
    )
    base = atomic.check_writable_dir(path, "SavedModel directory")
    target = base / str(version) if version is not None else base
    samples = verification_samples(list(signature.specs), data["verification_data"])
    with atomic.staging_dir(target.parent) as stage:
        staged = stage / "saved_model"
        write(model, staged)
        fidelity = verify(staged, model, samples)
        size = dir_size(staged)
        atomic.move_into_place(staged, target)
    return Artifact(
        "saved_model",
        target,
        size,
        fidelity,
        notes=["serving_default signature; float weights as in the Keras model"],
    )
