"""Keras model -> .tflite through the TFLite converter, with post-training quantization."""

from __future__ import annotations

import dataclasses
import pathlib
import re
import warnings

from keras_squeeze.core import atomic, models
from keras_squeeze.core.batch import batch_one
from keras_squeeze.core.native_output import NativeOutput
from keras_squeeze.data import inputs as data_inputs
from keras_squeeze.errors import DataError, ExportError, ModelError, VerificationError
from keras_squeeze.export import recurrent
from keras_squeeze.export.artifact import (
    Artifact,
    check_float_fidelity,
    check_outputs_finite,
    verification_samples,
)
from keras_squeeze.export.loadable import check_loadable
from keras_squeeze.export.runtime import TFLiteRunner
from keras_squeeze.export.signature import converter_for
from keras_squeeze.quantization import ptq
from keras_squeeze.report.metrics import Fidelity, compare

DEFAULT_CALIBRATION_SAMPLES = 200


def _representative_dataset(samples: data_inputs.Samples, specs):
    def generator():
        for i in range(samples.count):
            yield {s.name: samples.inputs[k][i : i + 1] for k, s in enumerate(specs)}

    return generator


# e.g. loc(... fused["MatrixDeterminant:", "functional_1/determinant_1/MatrixDeterminant@..."]
# ...): 'tf.MatrixDeterminant' op is neither a custom op nor a flex op
_FAILED_OP = re.compile(r"""fused\["[^"]*:", "([^"@]+)[^"]*"\].*?'tf\.(\w+)' op""")


def failing_layers(text: str, model) -> list[tuple[str, str]]:
    """(Keras layer, TF op) pairs the converter's error names, in the order it names them.

    The converter names an op by its TF name scope ("model/layer_1/Op"), where
    Keras 3's export may have suffixed the layer's name ("_1"); a scope is
    matched to the longest layer name it starts with.
    """
    layers = sorted((la.name for la in models.walk_layers(model)), key=len, reverse=True)
    found: dict[tuple[str, str], None] = {}
    for path, op in _FAILED_OP.findall(text):
        for scope in path.split("/")[:-1]:
            layer = next(
                (n for n in layers if scope == n or re.fullmatch(rf"{re.escape(n)}(_\d+)+", scope)),
                None,
            )
            if layer is not None:
                found[(layer, op)] = None
                break
    return list(found)


def _converter_error(e: Exception, log: NativeOutput) -> str:
    """The error's last "error" line (else the captured log's, else its last line), with
    the ops TFLite's builtins lack when the converter names them."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    logged = [ln.strip() for ln in log.lines() if "error" in ln.lower()]
    errors = [ln for ln in lines if "error" in ln.lower()] or logged
    text = (errors or lines or [type(e).__name__])[-1][:500]
    missing = [ln for ln in lines if ln.startswith(("TF Select ops:", "Custom ops:"))]
    if missing:
        text += " " + "; ".join(missing)[:500]
    if log.text:
        text += f" (the converter printed {len(log.lines())} lines; verbose=2 shows them)"
    return text


def convert(
    model,
    mode: str | ptq.PTQMode = "float32",
    calibration: data_inputs.Samples | None = None,
    inference_input_type: str | None = None,
    inference_output_type: str | None = None,
    verbose: int = 0,
    sparse: bool = False,
    per_tensor_dense: bool = False,
    allow_tf_ops: bool = False,
    keep_float: dict | None = None,
) -> bytes:
    """Converts a Keras model (either flavour) to .tflite bytes.

    Args:
        model: a Keras 3 or tf_keras model with defined inputs.
        mode: a post-training quantization mode name (see `ptq.PTQ_MODES`).
        calibration: representative samples, required by "int8" and "int16x8".
        inference_input_type / inference_output_type: model I/O types allowed
            by the mode (default: the mode's first).
        verbose: 2 shows the converter's own printing.
        sparse: store mostly-zero weights in TFLite's sparse format.
        per_tensor_dense: quantize Dense kernels with one scale per kernel
            (see `ptq.configure_converter`).
        allow_tf_ops: keep ops TFLite's builtins lack as TensorFlow ops (the
            runtime then needs the Flex delegate); otherwise such a model is an
            ExportError naming the layers and ops.
        keep_float: a dict that, for a mode whose conversion passes through a
            float32 .tflite of the model ("int8" and "int16x8": the file the
            converter calibrates; "int4-weights": the file ai-edge-quantizer
            rewrites), gets that float32 file under the returned bytes as key:
            the float baseline without a second conversion (`float_stage`);
            for "float32", the returned file is that baseline.

    Raises:
        DataError: calibration samples are needed and missing.
        RecipeError: "int16x8" for a model with integer inputs (`ptq.check_inputs`).
        RecipeError: "int4-weights" for a model without a weight op
            ai-edge-quantizer stores in int4 (`quantization.int4`).
        ExportError: the converter failed, calibrating would run a recurrent
            WHILE loop (which crashes TensorFlow's calibrator; see
            `export.recurrent`), or the calibrated file holds quantization
            parameters LiteRT's kernels would abort the process on (see
            `export.loadable`).
    """
    mode = ptq.get_mode(mode) if isinstance(mode, str) else mode
    recurrent.check_calibration_safe(model, mode.name)
    in_type = ptq.resolve_io_type(mode, inference_input_type, "inference_input_type")
    out_type = ptq.resolve_io_type(mode, inference_output_type, "inference_output_type")
    specs = models.input_specs(model)
    ptq.check_inputs(mode, specs)
    if mode.needs_calibration and calibration is None:
        raise DataError(
            f"The '{mode.name}' quantization needs representative data to calibrate activation "
            "ranges. Expected representative_data= (about 100-500 typical inputs). Received: None"
        )
    representative = (
        _representative_dataset(calibration, specs) if calibration is not None else None
    )
    # The converter's C++ side prints ("fully_quantize: 0, ...", MLIR and absl
    # lines) to descriptors 1 and 2; kept for the error below, shown at verbose=2.
    log = NativeOutput(enabled=verbose < 2)
    try:
        with log, warnings.catch_warnings():
            # Integer I/O without input statistics is what we ask for: the
            # scale comes from calibration.
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
            # The converter's calibration still builds a tf.lite.Interpreter.
            warnings.filterwarnings("ignore", message=r".*tf\.lite\.Interpreter is deprecated.*")
            converter = converter_for(model)
            captured = float_stage(converter) if keep_float is not None else None
            ptq.configure_converter(
                converter,
                mode,
                representative,
                in_type,
                out_type,
                sparse,
                per_tensor_dense,
                allow_tf_ops,
            )
            if mode.name == "int8-mixed":
                from keras_squeeze.quantization import mixed

                content = mixed.quantize(
                    converter,
                    calibration,
                    models.keras_outputs(model, calibration),
                    [s.name for s in specs],
                    models.output_names(model),
                    verbose,
                )
            else:
                content = bytes(converter.convert())
    except (DataError, ModelError, ExportError):
        raise
    except Exception as e:
        named = failing_layers(f"{e}\n{log.text}", model)
        if named:
            what = ", ".join(f"'{layer}' (tf.{op})" for layer, op in named[:6])
            raise ExportError(
                f"TFLite's builtin ops cannot express layer(s) {what} under '{mode.name}' "
                "quantization. Expected layers the builtin op set covers: replace them, or pass "
                "allow_tf_ops=True to keep them as TensorFlow ops (the runtime then needs the "
                f"Flex delegate). Received: {type(e).__name__}: {_converter_error(e, log)}"
            ) from e
        raise ExportError(
            f"The TFLite converter failed on the model with '{mode.name}' quantization. Expected "
            "a model of TFLite-convertible layers. "
            f"Received: {type(e).__name__}: {_converter_error(e, log)}"
        ) from e
    if mode.name == "int4-weights":
        from keras_squeeze.quantization import int4

        quantized = int4.quantize(content, verbose=verbose)
        if keep_float is not None:
            keep_float[quantized] = content
        return quantized
    if mode.needs_calibration:
        check_loadable(content, mode.name)
    if captured and mode.name in _CALIBRATES_FLOAT:
        keep_float[content] = captured[-1]
    elif keep_float is not None and mode.name == "float32":
        keep_float[content] = content
    return content


# Modes whose converter calibrates a float32 .tflite of the model, then quantizes it.
_CALIBRATES_FLOAT = ("int8", "int16x8")


def float_stage(converter) -> list[bytes]:
    """The float32 .tflite files `converter.convert()` passes on to its quantization, in a
    list that fills as it converts.

    Under full-integer post-training quantization the TFLite converter first converts the
    model to a float32 .tflite, calibrates that file on the representative data and
    quantizes it (`_optimize_tflite_model` in tensorflow/lite/python/lite.py). That file has
    the ops and weights of a float32 conversion of the same model (compared in
    tests/export/test_float_stage.py); it lacks only the few hundred bytes of conversion
    metadata the converter appends to the files it returns. A converter without that step
    fills nothing, and the caller converts the float baseline itself.
    """
    seen: list[bytes] = []
    optimize = getattr(converter, "_optimize_tflite_model", None)
    if optimize is None:
        return seen

    def keep(model, *args, **kwargs):
        seen.append(bytes(model))
        return optimize(model, *args, **kwargs)

    converter._optimize_tflite_model = keep
    return seen


@dataclasses.dataclass
class Checked:
    """A .tflite run on check samples.

    Attributes:
        fidelity: against the reference outputs (the original float model's
            when given), else against `own`'s model.
        own: against the Keras model it was converted from.
        runner: the loaded file, to run more samples on.
    """

    fidelity: Fidelity
    own: Fidelity
    runner: TFLiteRunner


def verify(
    content: bytes | None,
    model,
    samples: data_inputs.Samples,
    mode: str = "float32",
    path: str | None = None,
    reference_outputs=None,
):
    """Loads a .tflite into ai_edge_litert, runs `samples`, compares with `model`.

    A float32 .tflite must reproduce `model` (the model it was converted
    from). The returned fidelity is against `reference_outputs` when given
    (e.g. the original model's, when `model` is a pruned copy), else `model`.

    Returns:
        (Fidelity, TFLiteRunner).

    Raises:
        VerificationError: it does not load or run, produces non-finite outputs,
            or (float32 mode) does not reproduce the model.
    """
    checked = check(content, model, samples, mode, path, reference_outputs)
    return checked.fidelity, checked.runner


def check(
    content: bytes | None,
    model,
    samples: data_inputs.Samples,
    mode: str = "float32",
    path: str | None = None,
    reference_outputs=None,
) -> Checked:
    """`verify`, keeping both fidelities: against the reference and against `model`."""
    specs = models.input_specs(model)
    names = models.output_names(model)
    try:
        runner = TFLiteRunner(content=content, path=path)
        outputs = runner.run(samples, [s.name for s in specs], names)
    except Exception as e:
        if "Flex delegate" in str(e):
            raise VerificationError(
                "The .tflite holds TensorFlow ops (allow_tf_ops=True) that need the Flex "
                "delegate, which this LiteRT lacks (ai_edge_litert and TensorFlow >= 2.20 ship "
                "without it: google-ai-edge/LiteRT#6458), so it cannot be verified here and is "
                "not handed out. Expected a LiteRT with the Flex delegate, or a model TFLite's "
                f"builtin ops cover. Received: {type(e).__name__}: {str(e)[:300]}"
            ) from e
        raise VerificationError(
            "The .tflite could not be run by ai_edge_litert. Expected it to load and run on the "
            f"model's inputs. Received: {type(e).__name__}: {e}"
        ) from e
    check_outputs_finite(outputs, ".tflite model")
    own = compare(models.keras_outputs(model, samples), outputs, names, samples.describe())
    if mode == "float32":
        check_float_fidelity(own, "float32 .tflite")
    fidelity = own
    if reference_outputs is not None:
        fidelity = compare(reference_outputs, outputs, names, samples.describe())
    return Checked(fidelity, own, runner)


def _target_file(path) -> pathlib.Path | None:
    if path is None:
        return None
    path = pathlib.Path(path)
    return atomic.check_writable_dir(path.parent, "output file's directory") / path.name


def to_tflite(
    model,
    path=None,
    *,
    quantization: str = "float32",
    representative_data=None,
    num_calibration_samples: int = DEFAULT_CALIBRATION_SAMPLES,
    inference_input_type: str | None = None,
    inference_output_type: str | None = None,
    verification_data=None,
    dynamic_batch: bool = False,
    verbose: int = 0,
    input_signature=None,
) -> Artifact:
    """Converts a Keras model to .tflite, runs it in ai_edge_litert and checks it.

    Args:
        model: a Keras 3 or tf_keras model, or a path to one.
        path: where to write the .tflite (atomically); None keeps it in memory.
        quantization: "float32", "dynamic", "float16", "int8", "int16x8",
            "int4-weights" or "int8-mixed" (see
            `keras_squeeze.quantization.ptq.PTQ_MODES` for each scheme).
        representative_data: calibration inputs for "int8" / "int16x8": an array,
            (x, y) tuple, tf.data.Dataset or generator; the first
            `num_calibration_samples` samples are used.
        num_calibration_samples: how many samples calibrate (default 200).
        inference_input_type / inference_output_type: "int8" (default), "uint8"
            or "float32" for "int8"; "float32" (default) or "int16" for "int16x8".
        verification_data: inputs to compare the .tflite with the Keras model on;
            defaults to the calibration samples, else synthetic inputs.
        dynamic_batch: keep the batch dimension free (default False: the file
            fixes it at 1, as phones, microcontrollers and the Edge TPU run it;
            see `keras_squeeze.core.batch`).
        input_signature: the inputs of a model without symbolic inputs
            (subclassed), as in `ks.compress`; else read from one batch of
            representative_data / verification_data, else from the shapes Keras
            recorded.

    Returns:
        An Artifact whose `content` is the .tflite bytes and `fidelity` its
        agreement with the Keras model.

    Example:
        >>> art = ks.export.to_tflite(model, "model.tflite", quantization="int8",
        ...                           representative_data=x_train)
        >>> art.fidelity.top1_agreement
        0.995
    """
    model = models.resolve_model(model)
    models.check_finite_weights(model)
    mode = ptq.get_mode(quantization)
    target = _target_file(path)
    signature, data = models.resolve_signature(
        model,
        input_signature,
        {"representative_data": representative_data, "verification_data": verification_data},
    )
    representative_data, verification_data = data.values()
    specs = list(signature.specs)
    calibration = None
    if mode.needs_calibration:
        if representative_data is None:
            raise DataError(
                f"The '{mode.name}' quantization needs representative data to calibrate activation "
                "ranges. Expected representative_data= (an array, (x, y) tuple, tf.data.Dataset or "
                "generator of typical inputs). Received: representative_data=None"
            )
        calibration = data_inputs.take_samples(
            representative_data, specs, num_calibration_samples, "representative_data"
        )
    notes = [mode.scheme]
    check = verification_samples(specs, verification_data, calibration)

    def convert_prepared(prepared_model):
        fixed, reason = (prepared_model, None) if dynamic_batch else batch_one(prepared_model)
        if reason is not None:
            notes.append(
                f"the .tflite keeps a free batch: no fixed-batch copy could be made ({reason})"
            )
        return convert(
            fixed, mode, calibration, inference_input_type, inference_output_type, verbose
        )

    # Recurrent layers take their paths (fused LSTM op, unrolled, loop; see
    # export.recurrent); a Keras 3 LSTM is unrolled here (ks.compress fuses it).
    content, prepared = recurrent.convert_best(
        model, mode.name, check, convert_prepared, dynamic_batch=dynamic_batch
    )
    notes += prepared.notes()
    fidelity, _ = verify(content, model, check, mode.name)
    artifact = Artifact("tflite", None, len(content), fidelity, content=content, notes=notes)
    if target is not None:
        atomic.write_bytes(target, content)
        artifact.path = target
    return artifact
