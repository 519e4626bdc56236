"""ONNX export through tf2onnx.

Float models convert from the Keras model's serving function; quantized models
convert from their .tflite, which tf2onnx turns into QDQ form
(QuantizeLinear / DequantizeLinear around float ops), so the ONNX file carries
the same quantization the .tflite does.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import tempfile
import warnings

import numpy as np

from keras_squeeze.core import models
from keras_squeeze.core.native_output import NativeOutput
from keras_squeeze.errors import ExportError, VerificationError
from keras_squeeze.export.signature import serving_function

# tf2onnx 1.17 writes at most opset 18; int16 QuantizeLinear/DequantizeLinear
# need opset 21, so 16x8 models are upgraded after conversion.
KERAS_OPSET = 17
TFLITE_OPSET = 18
INT16_QDQ_OPSET = 21
# ONNX converted from a .tflite runs the same quantized graph; onnxruntime and
# TFLite may round a few values differently, nothing more.
TFLITE_MIN_SQNR_DB = 30.0
# The file reproduces its .tflite when onnxruntime runs its QDQ nodes one by one, but
# not in the default session, which fuses them into integer kernels.
FUSED_KERNELS_DEPART = "onnxruntime's fused int8 kernels depart from the .tflite on this CPU"


@contextlib.contextmanager
def _quiet_tf2onnx():
    """tf2onnx logs every step, and reads .tflite shapes with the deprecated
    tf.lite.Interpreter (its warning is about tf2onnx, not this package), whose
    XNNPACK delegate announces itself on descriptor 2; a failure shows it all."""
    logger = logging.getLogger("tf2onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    log = NativeOutput()
    try:
        with log, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*tf\.lite\.Interpreter is deprecated.*")
            yield
    except BaseException:
        log.replay()
        raise
    finally:
        logger.setLevel(level)


def from_keras(model, opset: int = KERAS_OPSET) -> bytes:
    """Converts a float Keras model (either flavour) to ONNX bytes.

    Inputs and outputs keep the Keras model's input and output names.
    """
    import tf2onnx

    serve, signature = serving_function(model)
    try:
        with _quiet_tf2onnx():
            proto, _ = tf2onnx.convert.from_function(serve, input_signature=signature, opset=opset)
    except Exception as e:
        raise ExportError(
            "tf2onnx failed to convert the Keras model. Expected layers tf2onnx supports at "
            f"opset {opset}. Received: {type(e).__name__}: {str(e)[:500]}"
        ) from e
    return proto.SerializeToString()


def from_tflite(tflite: bytes, input_names=None, output_names=None) -> bytes:
    """Converts .tflite bytes to ONNX (QDQ form for quantized models).

    Args:
        tflite: the .tflite bytes.
        input_names / output_names: names to give the ONNX graph's inputs and
            outputs, in the .tflite's signature order after name matching;
            None keeps tf2onnx's names.
    """
    import tf2onnx

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.tflite")
        with open(path, "wb") as f:
            f.write(tflite)
        try:
            with _quiet_tf2onnx():
                proto, _ = tf2onnx.convert.from_tflite(path, opset=TFLITE_OPSET)
        except Exception as e:
            raise ExportError(
                "tf2onnx failed to convert the .tflite. Expected TFLite builtin ops that tf2onnx "
                f"supports at opset {TFLITE_OPSET}. Received: {type(e).__name__}: {str(e)[:500]}"
            ) from e
    if _has_wide_integer_qdq(proto):
        _upgrade_for_int16_qdq(proto)
    if input_names is not None or output_names is not None:
        _rename_io(proto, input_names, output_names, _signature_keys(tflite))
    return proto.SerializeToString()


def _signature_keys(tflite: bytes) -> dict:
    """{tensor name: signature key} of the .tflite's signature inputs and outputs.

    tf2onnx names the graph's inputs and outputs after the .tflite's tensors
    ("StatefulPartitionedCall:0", ...), which the converter orders by signature
    key, not in the model's output order: the keys tell which output is which.
    """
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=bytes(tflite))
    if len(interpreter.get_signature_list()) != 1:
        return {}
    runner = interpreter.get_signature_runner()
    names = {
        d["index"]: d["name"]
        for d in (*interpreter.get_input_details(), *interpreter.get_output_details())
    }
    details = {**runner.get_input_details(), **runner.get_output_details()}
    return {names[d["index"]]: key for key, d in details.items() if d["index"] in names}


def _initializers(proto) -> dict:
    return {init.name: init for init in proto.graph.initializer}


def _has_wide_integer_qdq(proto) -> bool:
    """True when a QDQ node carries int16 / int64 data (16x8 models)."""
    from onnx import TensorProto

    wide = {TensorProto.INT16, TensorProto.INT64, TensorProto.UINT16}
    inits = _initializers(proto)
    for node in proto.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            for name in node.input[2:3] if node.op_type == "QuantizeLinear" else node.input[:1]:
                if name in inits and inits[name].data_type in wide:
                    return True
    return False


def _upgrade_for_int16_qdq(proto) -> None:
    """Makes a 16x8 graph valid: int64 bias dequantized offline, opset raised to 21.

    ONNX DequantizeLinear takes int16 from opset 21 but never int64; TFLite's
    16x8 scheme stores biases as int64, so those (constant) dequantizations are
    folded into float initializers.
    """
    from onnx import numpy_helper

    inits = _initializers(proto)
    kept = []
    folded = []
    for node in proto.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in inits:
            q = numpy_helper.to_array(inits[node.input[0]])
            if q.dtype == np.int64:
                scale = numpy_helper.to_array(inits[node.input[1]]).astype(np.float64)
                zero = (
                    numpy_helper.to_array(inits[node.input[2]]).astype(np.float64)
                    if len(node.input) > 2 and node.input[2]
                    else np.zeros_like(scale)
                )
                axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
                if scale.ndim == 1 and scale.size > 1:
                    shape = [1] * q.ndim
                    shape[axis] = -1
                    scale, zero = scale.reshape(shape), zero.reshape(shape)
                real = ((q.astype(np.float64) - zero) * scale).astype(np.float32)
                folded.append(numpy_helper.from_array(real, name=node.output[0]))
                continue
        kept.append(node)
    del proto.graph.node[:]
    proto.graph.node.extend(kept)
    proto.graph.initializer.extend(folded)
    used = {name for node in proto.graph.node for name in node.input}
    used |= {o.name for o in proto.graph.output}
    unused = [i for i in proto.graph.initializer if i.name not in used]
    for init in unused:
        proto.graph.initializer.remove(init)
    for opset in proto.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = max(opset.version, INT16_QDQ_OPSET)
    proto.ir_version = max(proto.ir_version, 10)


def _rename_io(proto, input_names, output_names, keys=None) -> None:
    """Renames the graph's inputs and outputs to the names wanted, matching each wanted name
    to a current one by the current name or its signature key (`keys`: {name: key})."""
    from keras_squeeze.export.runtime import match_names

    keys = keys or {}

    def match(wanted, current):
        by_key = {keys.get(c, c): c for c in current}
        if len(by_key) != len(current):  # keys that do not tell the names apart
            return match_names(wanted, current)
        return [by_key[k] for k in match_names(wanted, list(by_key))]

    renames = {}
    if input_names is not None:
        current = [i.name for i in proto.graph.input if i.name not in _initializers(proto)]
        for new, old in zip(input_names, match(input_names, current), strict=True):
            renames[old] = new
    if output_names is not None:
        current = [o.name for o in proto.graph.output]
        for new, old in zip(output_names, match(output_names, current), strict=True):
            renames[old] = new
    renames = {old: new for old, new in renames.items() if old != new}
    if not renames:
        return
    for value in (*proto.graph.input, *proto.graph.output):
        value.name = renames.get(value.name, value.name)
    for node in proto.graph.node:
        for i, name in enumerate(node.input):
            node.input[i] = renames.get(name, name)
        for i, name in enumerate(node.output):
            node.output[i] = renames.get(name, name)


def verify(
    path,
    model,
    samples,
    tflite_runner=None,
    reference_outputs=None,
    output_names=None,
    warnings_out: list | None = None,
):
    """Runs an .onnx file in onnxruntime and compares it with the model (and its .tflite).

    A float ONNX file must reproduce `model`; one converted from a .tflite must
    reproduce that .tflite. The fidelity returned is against
    `reference_outputs` when given, else `model`. `output_names` (in the
    model's output order) name the file's outputs when they are not the
    model's own (a QAT model's outputs are named quant_<name>).

    When onnxruntime's default session departs from the .tflite but the same file
    run with its QDQ nodes unfused reproduces it, the conversion is faithful and
    the departure is onnxruntime's fused integer kernels on this CPU: that is a
    warning (issued, and appended to `warnings_out`), not an error; the figures
    returned are the default session's.

    Returns:
        (fidelity against the Keras model, agreement with the .tflite or None).

    Raises:
        VerificationError: it does not load or run, or gives non-finite outputs,
            or (float ONNX) does not reproduce the Keras model, or (from a .tflite)
            does not reproduce that .tflite even run unfused.
    """
    from keras_squeeze.export.artifact import check_float_fidelity, check_outputs_finite
    from keras_squeeze.export.runtime import match_names, onnx_outputs
    from keras_squeeze.report.metrics import compare

    specs = models.input_specs(model)
    names = list(output_names) if output_names is not None else models.output_names(model)
    input_names = [s.name for s in specs]
    in_q = tflite_runner.input_quant(input_names) if tflite_runner else None
    try:
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        onnx_names = [o.name for o in session.get_outputs()]
        order = [onnx_names.index(n) for n in match_names(names, onnx_names)]
        out_q_all = tflite_runner.output_quant(names) if tflite_runner else None
        out_q = None
        if out_q_all is not None:  # tflite order == model order; map onto ONNX order
            out_q = [None] * len(onnx_names)
            for model_i, onnx_i in enumerate(order):
                out_q[onnx_i] = out_q_all[model_i]

        def run(fuse=True):
            raw = onnx_outputs(str(path), samples, input_names, in_q, out_q, fuse=fuse)
            return [raw[i] for i in order]

        outputs = run()
    except VerificationError:
        raise
    except Exception as e:
        raise VerificationError(
            "The ONNX model could not be run by onnxruntime. Expected it to load and run on the "
            f"model's inputs. Received: {type(e).__name__}: {str(e)[:500]}"
        ) from e
    check_outputs_finite(outputs, "ONNX model")
    fidelity = compare(models.keras_outputs(model, samples), outputs, names, samples.describe())
    own = fidelity
    if reference_outputs is not None:
        fidelity = compare(reference_outputs, outputs, names, samples.describe())
    agreement = None
    if tflite_runner is not None:
        tflite_out = tflite_runner.run(samples, input_names, names)
        agreement = compare(tflite_out, outputs, names, samples.describe())
        if agreement.sqnr_db < TFLITE_MIN_SQNR_DB:
            unfused = compare(tflite_out, run(fuse=False), names, samples.describe())
            if unfused.sqnr_db < TFLITE_MIN_SQNR_DB:
                raise VerificationError(
                    "The ONNX model does not reproduce the .tflite it was converted from. "
                    f"Expected SQNR >= {TFLITE_MIN_SQNR_DB:.0f} dB against the .tflite. "
                    f"Received: {agreement.summary()} (run unfused: {unfused.summary()})"
                )
            message = (
                f"{FUSED_KERNELS_DEPART}: the file reproduces the .tflite with its QDQ nodes "
                f"run one by one ({unfused.summary()}), but onnxruntime's default session, "
                f"which fuses them into integer kernels, gives {agreement.summary()} (x86 "
                "integer kernels without VNNI can saturate 16-bit intermediate sums). The "
                "figures reported are the default session's; a session with "
                "graph_optimization_level=ORT_ENABLE_BASIC gives the .tflite's outputs"
            )
            warnings.warn(message, UserWarning, stacklevel=2)
            if warnings_out is not None:
                warnings_out.append(message)
    else:
        check_float_fidelity(own, "float ONNX model")
    return fidelity, agreement


def to_onnx(
    model, path=None, *, tflite: bytes | None = None, verification_data=None, input_signature=None
):
    """Exports ONNX through tf2onnx, runs it in onnxruntime and checks it.

    A float model converts from the Keras model. Pass the model's quantized
    .tflite as `tflite` to convert that instead (QDQ form), so the ONNX file
    carries the same int8 / float16 / 16x8 quantization.

    Args:
        model: the Keras model (the reference for verification), or a path.
        path: where to write the .onnx (atomically); None keeps it in memory.
        tflite: .tflite bytes to convert instead of the Keras model.
        verification_data: inputs to compare on; default synthetic inputs.
        input_signature: the inputs of a model without symbolic inputs
            (subclassed), as in `ks.compress`; else read from one batch of
            verification_data, else from the shapes Keras recorded.

    Returns:
        An Artifact with the ONNX bytes, its fidelity against the Keras model
        and, for a .tflite source, its agreement with that .tflite.

    Example:
        >>> art = ks.export.to_onnx(model, "model.onnx")
        >>> art.fidelity.max_abs_diff < 1e-4
        True
    """
    from keras_squeeze.core import atomic
    from keras_squeeze.export.artifact import Artifact, verification_samples
    from keras_squeeze.export.runtime import TFLiteRunner

    model = models.resolve_model(model)
    target = None
    if path is not None:
        path = pathlib.Path(path)
        target = atomic.check_writable_dir(path.parent, "output file's directory") / path.name
    signature, data = models.resolve_signature(
        model, input_signature, {"verification_data": verification_data}
    )
    specs = list(signature.specs)
    samples = verification_samples(specs, data["verification_data"])
    runner = None
    if tflite is not None:
        runner = TFLiteRunner(content=tflite)
        content = from_tflite(tflite, [s.name for s in specs], models.output_names(model))
        notes = [f"converted from the .tflite by tf2onnx (QDQ form, opset {opset_of(content)})"]
    else:
        content = from_keras(model)
        notes = [f"converted from the Keras model by tf2onnx (opset {opset_of(content)})"]
    with atomic.staging_dir(target.parent if target else tempfile.gettempdir()) as stage:
        staged = stage / "model.onnx"
        staged.write_bytes(content)
        departs: list[str] = []
        fidelity, agreement = verify(staged, model, samples, runner, warnings_out=departs)
        notes += [f"warning: {w}" for w in departs]
        artifact = Artifact(
            "onnx",
            None,
            len(content),
            fidelity,
            content=content,
            reference=".tflite" if runner is not None else None,
            agreement=agreement,
            notes=notes,
        )
        if target is not None:
            atomic.move_into_place(staged, target)
            artifact.path = target
    return artifact


def opset_of(content: bytes) -> int:
    import onnx

    proto = onnx.load_from_string(content)
    return max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
