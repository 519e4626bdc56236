"""Recurrent layers through the TFLite converter: one conversion path per layer.

What TensorFlow 2.21's converter does with Keras recurrent layers (LSTM, GRU,
SimpleRNN, Bidirectional, any `keras.layers.RNN`), measured here:

- a Keras 3 recurrent layer becomes a TFLite WHILE loop. The float modes
  ("float32", "dynamic", "float16") run it at batch 1; with a free batch its
  tensor lists have no static element shape and conversion fails. Calibrating
  such a loop for "int8" or "int16x8" crashes the process (a segmentation
  fault in the calibrator), whatever the loop holds;
- a tf_keras LSTM on its standard implementation (tanh, sigmoid, a bias, no
  recurrent dropout, no mask) becomes the fused UNIDIRECTIONAL_SEQUENCE_LSTM
  op (a Bidirectional one: two, the backward one on a REVERSE_V2 of the
  sequence), at batch 1, for variable lengths too, and calibrates for "int8".
  The op has no 16x8 kernel ("int16x8" refuses it). It keeps its state in
  variable tensors across invocations: a runtime resets them before each
  inference (`reset_all_variables()`), as `export.runtime.TFLiteRunner` does;
- `unroll=True` turns a layer of fixed sequence length into that many copies
  of its cell (plain FULLY_CONNECTED / LOGISTIC / TANH ops sharing the
  weights): no loop, so it calibrates, and it converts with a free batch too.
  A tf_keras GRU or SimpleRNN has no fused op.

So each recurrent layer takes one of three paths (`plan`): FUSED (the tf_keras
LSTM op; a Keras 3 model is rebuilt as tf_keras by the caller's `rebuild`,
the bridge, which checks the rebuild numerically), UNROLLED (a verified copy
with `unroll=True`; needs a fixed length), or WHILE_LOOP (the layer as it is;
float modes at batch 1 only). `prepare` makes the model to convert;
`check_calibration_safe` refuses, before the converter runs, a calibrating
conversion that would run a WHILE loop, so no such graph is ever calibrated.

Example:
    >>> prepared = prepare(model, "int8", samples)
    >>> prepared.notes()
    ["recurrent layer 'gru' (GRU): unrolled over its 10 time steps ..."]
"""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np

from keras_squeeze import _compat
from keras_squeeze.core import graph, models
from keras_squeeze.core.batch import batch_one
from keras_squeeze.errors import ExportError, KerasSqueezeError, ModelError, VerificationError

FUSED = "fused op"
UNROLLED = "unrolled"
WHILE_LOOP = "while loop"
PATHS = (FUSED, UNROLLED, WHILE_LOOP)
FUSED_OP = "UNIDIRECTIONAL_SEQUENCE_LSTM"
CALIBRATED_MODES = ("int8", "int16x8", "int8-mixed")
# Below this a fused integer LSTM is compared with the unrolled layers (see convert_best).
FUSED_MIN_SQNR_DB = 20.0
# An unrolled copy reorders float arithmetic, nothing more.
COPY_MAX_REL_DIFF = 1e-4
_WRAPPERS = ("Bidirectional",)
_RESET_NOTE = (
    "the op keeps its state in variable tensors between invocations: call the interpreter's "
    "reset_all_variables() before each inference (verification here does)"
)


@dataclasses.dataclass(frozen=True)
class Recurrent:
    """One recurrent layer of a model, as the converter will see it.

    Attributes:
        name: the layer's name.
        kind: its class, e.g. "LSTM" or "Bidirectional(GRU)".
        length: the fixed sequence length it reads, or None when variable.
        masked: whether a mask reaches it (Embedding(mask_zero=True), Masking).
        unrolled: whether its config already says `unroll=True`.
        not_fusable: why a tf_keras copy of it would not take the fused LSTM op
            (None when it would).
    """

    name: str
    kind: str
    length: int | None
    masked: bool
    unrolled: bool
    not_fusable: str | None

    @property
    def is_lstm(self) -> bool:
        return self.kind in ("LSTM", "Bidirectional(LSTM)")


@dataclasses.dataclass(frozen=True)
class LayerPath:
    """The conversion path of one recurrent layer and why it was chosen."""

    name: str
    kind: str
    path: str
    reason: str

    def note(self) -> str:
        return f"recurrent layer '{self.name}' ({self.kind}): {self.path}, {self.reason}"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Prepared:
    """The model to convert and the path each recurrent layer takes in it.

    Attributes:
        model: the model to hand to the converter (the one given when nothing
            changed, else a verified copy: a tf_keras rebuild, unrolled layers).
        paths: one LayerPath per recurrent layer, in graph order.
        rebuild_error: why a tf_keras rebuild for fused LSTMs failed, if it did.
        extra: how the path was chosen, when it was measured (`convert_best`).
    """

    model: object
    paths: list[LayerPath]
    rebuild_error: str | None = None
    extra: list[str] = dataclasses.field(default_factory=list)

    def notes(self) -> list[str]:
        notes = [p.note() for p in self.paths] + list(self.extra)
        if self.rebuild_error:
            notes.append(
                "the LSTM layers could not be rebuilt as tf_keras for the fused op "
                f"({self.rebuild_error}); they took the paths above instead"
            )
        return notes


def _is_recurrent(layer) -> bool:
    names = {cls.__name__ for cls in type(layer).__mro__}
    return bool(names & {"RNN", "ConvRNN"}) and _compat.keras_flavour(layer) is not None


def _inner(layer):
    """The recurrent layer a wrapper holds (Bidirectional's forward layer), or None."""
    if type(layer).__name__ in _WRAPPERS:
        inner = getattr(layer, "forward_layer", None) or getattr(layer, "layer", None)
        return inner if inner is not None and _is_recurrent(inner) else None
    return None


def _activation_name(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return str(value.get("config", {}).get("name") or value.get("class_name"))
    return getattr(value, "__name__", str(value))


def _not_fusable(layer) -> str | None:
    """None when a tf_keras LSTM of this config takes the fused op, else why not."""
    if type(layer).__name__ != "LSTM" or type(layer).__module__.split(".")[0] not in (
        "keras",
        "tf_keras",
    ):
        return f"a {type(layer).__name__} has no fused TFLite op"
    config = layer.get_config()
    checks = [
        (_activation_name(config.get("activation")) == "tanh", "its activation is not tanh"),
        (
            _activation_name(config.get("recurrent_activation")) == "sigmoid",
            "its recurrent_activation is not sigmoid",
        ),
        (config.get("use_bias", True), "it has no bias"),
        (not config.get("recurrent_dropout"), "it has recurrent_dropout"),
        (not config.get("stateful"), "it is stateful"),
        (not config.get("time_major"), "it is time-major"),
    ]
    for ok, why in checks:
        if not ok:
            return f"{why}: the fused op needs tf_keras' standard LSTM"
    return None


def _kind(layer) -> str:
    inner = _inner(layer)
    return (
        f"{type(layer).__name__}({type(inner).__name__})"
        if inner is not None
        else (type(layer).__name__)
    )


def find(model) -> list[Recurrent]:
    """The recurrent layers of a functional or Sequential model, in graph order.

    Other models (subclassed: no layer graph) give the recurrent layers Keras lists,
    with an unknown length.
    """
    found: dict[str, Recurrent] = {}
    calls = []
    if models.is_graph_model(model):
        with contextlib.suppress(AttributeError, TypeError, ValueError, IndexError, KeyError):
            calls = [(graph.node_layer(n), n) for n in graph.walk(model)]
    if not calls:
        # every tracked layer, the recurrent wrappers themselves included (walk_layers
        # goes on into an RNN to its cell)
        flatten = getattr(model, "_flatten_layers", None)
        tracked = list(flatten(include_self=False)) if flatten else []
        calls = [(layer, None) for layer in tracked or models.walk_layers(model)]
    for layer, node in calls:
        inner = _inner(layer)
        if not (_is_recurrent(layer) or inner is not None):
            continue
        cell_layers = [layer] if inner is None else [layer.forward_layer, layer.backward_layer]
        length, masked = None, False
        if node is not None:
            inputs = graph.node_inputs(node)
            if inputs:
                shape = list(inputs[0].shape)
                length = int(shape[1]) if len(shape) > 2 and shape[1] is not None else None
                masked = graph.has_mask(inputs[0])
        reasons = [r for r in (_not_fusable(c) for c in cell_layers) if r]
        earlier = found.get(layer.name)  # a shared layer: one record over its calls
        found[layer.name] = Recurrent(
            name=layer.name,
            kind=_kind(layer),
            length=length if earlier is None or earlier.length == length else None,
            masked=masked or (earlier is not None and earlier.masked),
            unrolled=all(bool(c.get_config().get("unroll")) for c in cell_layers),
            not_fusable=reasons[0] if reasons else None,
        )
    return list(found.values())


def _needs_loop_free(mode: str, dynamic_batch: bool, why_free: str | None) -> str | None:
    """Why a WHILE loop cannot be shipped under `mode`, or None when it can."""
    if mode in CALIBRATED_MODES:
        return f"'{mode}' calibration cannot run a WHILE loop: it crashes TensorFlow's calibrator"
    if dynamic_batch:
        why = why_free or "dynamic_batch=True"
        return f"a WHILE loop does not convert with a free batch ({why})"
    return None


def _fuse_reason(r: Recurrent, mode: str, dynamic_batch: bool, blocked: str | None) -> str | None:
    """None when layer `r` takes the fused op under these settings, else why not."""
    if not r.is_lstm:
        return f"a {r.kind} has no fused TFLite op"
    if r.not_fusable is not None:
        return r.not_fusable
    if r.masked:
        return "a mask reaches it: the converter fuses unmasked LSTMs only"
    if r.unrolled:
        return "its config asks for unroll=True"
    if mode == "int16x8":
        return f"the {FUSED_OP} op has no 16x8 quantization in TFLite"
    if dynamic_batch:
        return "the fused op converts at a fixed batch only (dynamic_batch=True)"
    return blocked


NO_TF_KERAS = "no tf_keras copy of the model is at hand: ks.compress rebuilds one"
MEASURED_WORSE = "the fused op measured worse on this model, as the next note says"


def plan(
    model,
    mode: str,
    *,
    dynamic_batch: bool = False,
    fuse_blocked: str | None = None,
    why_free: str | None = None,
):
    """The conversion path of each recurrent layer of `model` under `mode`.

    Args:
        model: a Keras model of either flavour.
        mode: the post-training mode name ("float32", "dynamic", "float16",
            "int8", "int16x8").
        dynamic_batch: whether the .tflite keeps a free batch.
        fuse_blocked: why LSTMs cannot take the fused op whatever their config
            (e.g. `NO_TF_KERAS`: a Keras 3 model and no tf_keras rebuild), or
            None when they can.
        why_free: why the batch stays free when the caller did not ask for it
            (no batch-1 copy could be made).

    Returns:
        One LayerPath per recurrent layer (none for a model without any).

    Raises:
        ModelError: a layer needs unrolling (to calibrate, or for a free batch)
            and its sequence length is not fixed.
    """
    paths = []
    if not dynamic_batch and not models.is_graph_model(model) and not _batch_one(model):
        dynamic_batch = True  # core.batch.batch_one cannot copy it: it keeps a free batch
        why_free = why_free or "a subclassed model keeps a free batch"
    for r in find(model):
        why_not = _fuse_reason(r, mode, dynamic_batch, fuse_blocked)
        loop_free = _needs_loop_free(mode, dynamic_batch, why_free)
        if why_not is None:
            ops = f"two {FUSED_OP} ops, one on the reversed sequence" if "(" in r.kind else FUSED_OP
            paths.append(LayerPath(r.name, r.kind, FUSED, f"as {ops}; {_RESET_NOTE}"))
        elif r.unrolled:
            paths.append(LayerPath(r.name, r.kind, UNROLLED, "as its config asks (unroll=True)"))
        elif loop_free is None:
            paths.append(
                LayerPath(
                    r.name,
                    r.kind,
                    WHILE_LOOP,
                    f"a TFLite WHILE op, run at batch 1 under '{mode}' ({why_not})",
                )
            )
        elif not models.is_graph_model(model):
            # its copies (a fixed-batch trace among them) are rebuilt from the class, which
            # would lose an unroll set on one: the loop would reach the calibrator, which
            # crashes on it
            raise ModelError(
                f"The recurrent layer '{r.name}' ({r.kind}) of the subclassed model "
                f"'{model.name}' must be unrolled ({loop_free}; {why_not}), and a subclassed "
                "model has no layer graph to copy with unroll=True. Expected a functional or "
                "Sequential model on keras.Input(shape=(T, ...)), or its recurrent layers built "
                f"with unroll=True. Received: a {type(model).__name__} under '{mode}'"
            )
        elif r.length is None:
            raise ModelError(
                f"The recurrent layer '{r.name}' ({r.kind}) reads sequences of variable length, "
                f"and {loop_free}, so it must be unrolled, which needs a fixed length ({why_not}). "
                "Expected a fixed sequence length: build the model on keras.Input(shape=(T, ...)) "
                "and pad every sequence to T (keras.utils.pad_sequences), or use a float mode "
                "('float32', 'dynamic', 'float16') with dynamic_batch=False, which keeps the loop. "
                f"Received: input shape {_shape_text(model, r)} under '{mode}'"
                + (" with dynamic_batch=True" if dynamic_batch and not why_free else "")
            )
        else:
            paths.append(
                LayerPath(
                    r.name,
                    r.kind,
                    UNROLLED,
                    f"over its {r.length} time steps: {loop_free}, and {why_not}",
                )
            )
    return paths


def _batch_one(model) -> bool:
    """Whether a model's own inputs already fix the batch at 1."""
    try:
        return {t.shape[0] for t in model.inputs} == {1}
    except (AttributeError, TypeError, ValueError):
        return False


def _shape_text(model, r: Recurrent) -> str:
    specs = models.input_specs(model)
    return ", ".join(f"{s.name}: (batch, {', '.join(map(str, s.shape))})" for s in specs) or "?"


def _unrolled_config(config: dict) -> dict:
    config = dict(config)
    if "unroll" in config:
        config["unroll"] = True
    for key in ("layer", "backward_layer"):
        inner = config.get(key)
        if isinstance(inner, dict) and isinstance(inner.get("config"), dict):
            config[key] = {**inner, "config": _unrolled_config(inner["config"])}
    return config


def unrolled_copy(model, names, samples=None, scopes=()):
    """A copy of `model` whose layers in `names` are unrolled (`unroll=True`), same weights.

    Checked to reproduce `model` on `samples` (relative difference <= 1e-4).

    Raises:
        ExportError: the model cannot be cloned with those layers unrolled.
        VerificationError: the copy does not reproduce the model.
    """
    names = set(names)
    k = _compat.keras_module(_compat.keras_flavour(model))

    def clone(layer):
        config = layer.get_config()
        if layer.name in names:
            config = _unrolled_config(config)
        return type(layer).from_config(config)

    try:
        with contextlib.ExitStack() as stack:
            for scope in scopes:
                stack.enter_context(scope)
            copy = k.models.clone_model(model, clone_function=clone)
            copy.set_weights(model.get_weights())
    except (ValueError, TypeError, NotImplementedError, KeyError, AttributeError) as e:
        raise ExportError(
            f"The model '{model.name}' could not be copied with its recurrent layers "
            f"({', '.join(sorted(names))}) unrolled. Expected layers whose config round-trips "
            f"(get_config / from_config). Received: {type(e).__name__}: {e}"
        ) from e
    if samples is not None:
        check_same(model, copy, samples, "unrolled copy")
    return copy


def check_same(model, copy, samples, what: str) -> None:
    """Raises VerificationError when `copy` does not reproduce `model` on `samples`."""
    from keras_squeeze.data.inputs import Samples

    few = Samples([a[:16] for a in samples.inputs], None, min(samples.count, 16), None, "check")
    for a, b in zip(models.keras_outputs(model, few), models.keras_outputs(copy, few), strict=True):
        scale = max(float(np.max(np.abs(a))), 1e-6)
        diff = float(np.max(np.abs(a - b))) / scale
        if not diff <= COPY_MAX_REL_DIFF:
            raise VerificationError(
                f"The {what} of '{model.name}' does not reproduce the model. Expected a relative "
                f"difference <= {COPY_MAX_REL_DIFF:g}. Received: {diff:.3g}"
            )


def prepare(
    model, mode: str, samples=None, *, dynamic_batch=False, rebuild=None, scopes=(), fuse=True
):
    """The model to convert under `mode`, each recurrent layer on its path (see `plan`).

    Args:
        model: a Keras model of either flavour.
        mode: the post-training mode name.
        samples: inputs the copies are checked on (`data.inputs.Samples`).
        dynamic_batch: whether the .tflite keeps a free batch.
        rebuild: a callable(model, samples) -> tf_keras model, checked to
            reproduce `model` (the bridge's `to_tf_keras`), for the fused LSTM
            op of a Keras 3 model; without it Keras 3 LSTMs are unrolled or
            kept as loops.
        scopes: context managers the model's custom layers need to clone.
        fuse: False unrolls LSTMs too (see `convert_best`).

    A WHILE loop converts at batch 1 only: a model keeping one gets its batch-1
    copy here (`core.batch.batch_one`); when none can be made, its layers are
    unrolled instead (or refused, for a variable length).

    Returns:
        A `Prepared`: the model (itself when no recurrent layer needs a change).

    Raises:
        ModelError: a layer must be unrolled and its length is not fixed.
        ExportError / VerificationError: a copy could not be made or disagrees.
    """
    tf_keras = _compat.keras_flavour(model) == _compat.TF_KERAS
    blocked = None
    if not fuse:
        blocked = MEASURED_WORSE
    elif not tf_keras and rebuild is None:
        blocked = NO_TF_KERAS
    paths = plan(model, mode, dynamic_batch=dynamic_batch, fuse_blocked=blocked)
    if not paths:
        return Prepared(model, [])
    error = None
    work = model
    if not tf_keras and any(p.path == FUSED for p in paths):
        try:
            work = rebuild(model, samples)
        except KerasSqueezeError as e:
            error = str(e).split(". Expected")[0]
            blocked = "its tf_keras rebuild failed, as a later note says"
            paths = plan(model, mode, dynamic_batch=dynamic_batch, fuse_blocked=blocked)
    if not dynamic_batch and any(p.path == WHILE_LOOP for p in paths):
        # A loop converts at batch 1 only: the batch-1 copy now, or no loop at all.
        fixed, reason = batch_one(work, scopes)
        if reason is None:
            work = fixed
        else:
            why = f"no batch-1 copy of the model could be made: {reason.split('. Expected')[0]}"
            paths = plan(model, mode, dynamic_batch=True, fuse_blocked=blocked, why_free=why)
    already = {r.name for r in find(work) if r.unrolled}
    to_unroll = [p.name for p in paths if p.path == UNROLLED and p.name not in already]
    if to_unroll:
        work = unrolled_copy(work, to_unroll, samples, scopes)
    return Prepared(work, paths, error)


def convert_best(model, mode: str, samples, convert, **prepare_args):
    """Prepares `model` (see `prepare`), converts it with `convert(prepared_model)`, and
    under a calibrated mode checks a fused LSTM's result: below FUSED_MIN_SQNR_DB
    against the Keras model on `samples` (TFLite's integer LSTM kernel loses weakly
    trained models whose states stay tiny), the LSTMs are unrolled instead and the
    better of the two .tflite files is kept, with a note saying so.

    Returns:
        (.tflite bytes, the Prepared they came from).
    """
    prepared = prepare(model, mode, samples, **prepare_args)
    content = convert(prepared.model)
    if mode not in CALIBRATED_MODES or not any(p.path == FUSED for p in prepared.paths):
        return content, prepared
    fused_db = _sqnr(content, prepared.model, samples)
    if fused_db >= FUSED_MIN_SQNR_DB:
        return content, prepared
    try:
        unrolled = prepare(model, mode, samples, **{**prepare_args, "fuse": False})
        other = convert(unrolled.model)
    except KerasSqueezeError:
        return content, prepared  # e.g. a variable length: the fused op is the only path
    unrolled_db = _sqnr(other, unrolled.model, samples)
    comparison = (
        f"the fused {FUSED_OP} reached SQNR {fused_db:.1f} dB against the Keras model on "
        f"{samples.describe()}, the unrolled layers {unrolled_db:.1f} dB"
    )
    if unrolled_db > fused_db:
        unrolled.extra.append(f"LSTMs unrolled rather than fused: {comparison}")
        return other, unrolled
    prepared.extra.append(f"LSTMs fused: {comparison}")
    return content, prepared


def _sqnr(content: bytes, model, samples) -> float:
    from keras_squeeze.export.runtime import TFLiteRunner
    from keras_squeeze.report.metrics import sqnr_db

    runner = TFLiteRunner(content=content)
    specs = models.input_specs(model)
    names = models.output_names(model)
    outputs = runner.run(samples, [s.name for s in specs], names)
    reference = models.keras_outputs(model, samples)
    return min(sqnr_db(r, o) for r, o in zip(reference, outputs, strict=True))


def check_calibration_safe(model, mode: str) -> None:
    """Refuses to calibrate a model whose .tflite would hold a recurrent WHILE loop.

    TensorFlow 2.21's calibrator crashes the process on a WHILE loop, so the
    refusal comes before the converter runs. `prepare` gives a model that
    passes (fused or unrolled layers).

    Raises:
        ExportError: naming the layers and what to do.
    """
    if mode not in CALIBRATED_MODES:
        return
    tf_keras = _compat.keras_flavour(model) == _compat.TF_KERAS
    loops = [
        r
        for r in find(model)
        if not r.unrolled
        and _fuse_reason(r, "int8", False, None if tf_keras else NO_TF_KERAS) is not None
    ]
    if loops:
        names = ", ".join(f"'{r.name}' ({r.kind})" for r in loops)
        raise ExportError(
            f"The model's recurrent layers {names} would convert to a WHILE loop, which "
            f"'{mode}' calibration cannot run (it crashes TensorFlow's calibrator). Expected "
            "recurrent layers unrolled over a fixed length or fused (ks.compress and "
            "ks.export.to_tflite prepare such a copy; keras_squeeze.export.recurrent.prepare "
            "makes one). Received: a model with those layers as they are"
        )
