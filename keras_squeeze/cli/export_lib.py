"""The library side of keras-squeeze-export: a typed run() the script only calls.

One Keras model file to any of .tflite (with a post-training quantization
mode), ONNX (from the Keras model for float32; from the quantized .tflite, in
QDQ form, otherwise) and a TF Serving SavedModel. Every artifact is loaded back
in its own runtime and compared with the Keras model (ks.export), staged in a
hidden directory and moved into place only when all of them passed.
"""

from __future__ import annotations

import json
import pathlib

from keras_squeeze.cli.custom_objects import resolve as resolve_custom_objects
from keras_squeeze.core.progress import say
from keras_squeeze.data import sources
from keras_squeeze.errors import ConfigError
from keras_squeeze.export.formats import FILE_NAMES, check_formats
from keras_squeeze.safety.paths import check_slots, contained

MANIFEST = "export.json"


def check_options(
    formats,
    quantization: str,
    data: str | None,
    inference_input_type: str | None = None,
    inference_output_type: str | None = None,
) -> None:
    """Refuses formats, modes and types that do not fit together.

    Raises:
        ConfigError: no or unknown formats; int8 / int16x8 without data.
        RecipeError: an unknown quantization mode, or model I/O types the
            mode does not allow.
    """
    from keras_squeeze.quantization import ptq

    check_formats(formats, ConfigError)
    mode = ptq.get_mode(quantization)
    ptq.resolve_io_type(mode, inference_input_type, "inference_input_type")
    ptq.resolve_io_type(mode, inference_output_type, "inference_output_type")
    if mode.needs_calibration and data is None:
        raise ConfigError(
            f"The '{mode.name}' quantization calibrates activation ranges on representative "
            "data. Expected data= 'digits', a .npz or an image folder. Received: data=None"
        )


def table(artifacts: dict) -> str:
    """A compact plain-text table of the exported artifacts."""
    from keras_squeeze.report.summary import format_db

    rows = [("format", "path", "bytes", "SQNR vs Keras", "top-1 agreement")]
    for name, art in artifacts.items():
        fid = art.fidelity
        rows.append(
            (
                name,
                str(art.path),
                f"{art.size_bytes:,}",
                format_db(fid.sqnr_db) if fid else "",
                "" if fid is None or fid.top1_agreement is None else f"{fid.top1_agreement:.2%}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    rule = "-" * max(len(ln) for ln in lines)
    notes = [f"{name}: {'; '.join(a.notes)}" for name, a in artifacts.items() if a.notes]
    return "\n".join([rule, lines[0], rule, *lines[1:], rule, *notes])


def run(
    model: str,
    formats=("tflite",),
    custom_objects=None,
    output_dir: str = "exported",
    quantization: str = "float32",
    data: str | None = None,
    num_calibration_samples: int = 200,
    inference_input_type: str | None = None,
    inference_output_type: str | None = None,
    saved_model_version: int = 1,
    dynamic_batch: bool = False,
    image_range: str | None = None,
    allow_unsafe_deserialization: bool = False,
    verbose: int = 1,
) -> dict:
    """Exports a Keras model file to the given formats, each verified, all or none written.

    Writes `output_dir/model.tflite`, `output_dir/model.onnx`,
    `output_dir/saved_model/<version>/` (only that version directory is
    replaced) and `output_dir/export.json` (the artifact records).

    Args:
        model: path to a .keras / .h5 file or SavedModel directory.
        formats: any of "tflite", "onnx", "saved_model".
        custom_objects: the custom layers and functions the model file needs:
            'module:name' entries (see `keras_squeeze.cli.custom_objects`) or
            a {name: object} dict.
        quantization: the .tflite's post-training mode ("float32", "dynamic",
            "float16", "int8", "int16x8"); the ONNX file carries the same
            quantization (converted from the .tflite); the SavedModel stays
            float (TF Serving runs the Keras graph).
        data: "digits", a .npz or an image folder: calibration samples for
            int8 / int16x8 (training split) and verification inputs
            (validation split). None: verified on synthetic inputs.
        saved_model_version: the SavedModel's version directory (TF Serving).
        dynamic_batch: keep the .tflite's batch free (default: fixed at 1).
        image_range: pixel range of image-folder data.
        allow_unsafe_deserialization: load a model file that carries Python code
            (Lambda layers) and run it (see `keras_squeeze.core.models.load_model`).

    Returns:
        {format: ks.export.Artifact} with the final paths.

    Example:
        >>> export_lib.run("model.keras", formats=("tflite", "onnx"), quantization="int8",
        ...                data="digits", output_dir="exported")
    """
    from keras_squeeze.core import atomic, models
    from keras_squeeze.export import to_onnx, to_saved_model, to_tflite
    from keras_squeeze.export.artifact import Artifact

    formats = tuple(dict.fromkeys(formats))
    check_options(formats, quantization, data, inference_input_type, inference_output_type)
    if saved_model_version < 0:
        raise ConfigError(
            "The SavedModel version is TF Serving's version directory. Expected an integer "
            f">= 0. Received: saved_model_version={saved_model_version}"
        )
    if data is not None:
        sources.check_source(data)
        sources.check_image_range(data, image_range)
    elif image_range is not None:
        sources.check_image_range("", image_range)
    out = atomic.check_writable_dir(output_dir)
    planned = {FILE_NAMES[f]: False for f in formats if f != "saved_model"} | {MANIFEST: False}
    if "saved_model" in formats:
        planned[f"{FILE_NAMES['saved_model']}/{saved_model_version}"] = True
    check_slots(out, planned)  # inside the output directory, and free, before any work
    objects = resolve_custom_objects(custom_objects)
    say(verbose, f"loading {model}")
    keras_model = models.load_model(
        model,
        custom_objects=objects,
        allow_unsafe_deserialization=allow_unsafe_deserialization,
    )
    representative = verification = None
    if data is not None:
        splits = sources.load_source(data, models.input_specs(keras_model), image_range)
        say(verbose, f"data: {splits.description}")
        representative, verification = splits.train, splits.validation
    artifacts: dict[str, Artifact] = {}
    quantized = quantization != "float32"
    with atomic.staging_dir(out.parent) as stage:
        tflite = None
        if "tflite" in formats or ("onnx" in formats and quantized):
            say(verbose, f"converting to .tflite ('{quantization}') and checking it")
            tflite = to_tflite(
                keras_model,
                stage / FILE_NAMES["tflite"] if "tflite" in formats else None,
                quantization=quantization,
                representative_data=representative,
                num_calibration_samples=num_calibration_samples,
                inference_input_type=inference_input_type,
                inference_output_type=inference_output_type,
                verification_data=verification,
                dynamic_batch=dynamic_batch,
                verbose=verbose,
            )
            if "tflite" in formats:
                artifacts["tflite"] = tflite
        if "onnx" in formats:
            say(verbose, "converting to ONNX with tf2onnx and checking it in onnxruntime")
            artifacts["onnx"] = to_onnx(
                keras_model,
                stage / FILE_NAMES["onnx"],
                tflite=tflite.content if quantized else None,
                verification_data=verification,
            )
        if "saved_model" in formats:
            say(verbose, f"writing the SavedModel (saved_model/{saved_model_version}/)")
            artifacts["saved_model"] = to_saved_model(
                keras_model,
                stage / FILE_NAMES["saved_model"],
                version=saved_model_version,
                verification_data=verification,
            )
            if quantized:
                artifacts["saved_model"].notes.append(
                    f"float weights: the '{quantization}' quantization lives in the .tflite "
                    "and ONNX files (TF Serving runs the Keras graph)"
                )
        staged = {name: art.path for name, art in artifacts.items()}
        for art in artifacts.values():
            art.path = contained(out, pathlib.Path(art.path).relative_to(stage))
        record = {
            "model": str(pathlib.Path(model).expanduser().absolute()),
            "quantization": quantization,
            "data": data,
            "artifacts": {name: art.to_dict() for name, art in artifacts.items()},
        }
        atomic.write_text(stage / MANIFEST, json.dumps(record, indent=2) + "\n")
        out.mkdir(parents=True, exist_ok=True)
        for name, path in staged.items():
            atomic.move_into_place(path, artifacts[name].path)
        atomic.move_into_place(stage / MANIFEST, contained(out, MANIFEST))
    print(table(artifacts))
    print(f"artifacts in {out}")
    return artifacts
