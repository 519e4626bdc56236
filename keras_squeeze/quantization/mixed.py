"""Mixed precision: full int8, with the most sensitive ops kept float32 until the bound holds.

The "int8-mixed" mode, measured on the calibration samples:

1. The converter calibrates the model as for "int8" (float32 model I/O).
2. `tf.lite.experimental.QuantizationDebugger` measures each quantized op's
   own error: its int8 output against the float op run on the same
   (dequantized) input, as an SQNR in dB over `PROFILE_SAMPLES` samples. A
   low figure is an op int8 cannot represent (a wide-range regression head,
   an unnormalised input).
3. The plain int8 model's outputs are compared with the Keras model's. When
   they are within the bound (`within_bound`), that is the result. Otherwise
   the ops are kept float32 (the converter's `denylisted_nodes`) in order of
   their error, most sensitive first: the smallest number of them that puts
   the outputs within the bound is found by doubling, then bisection; then
   each of those, least sensitive first, goes back to int8 when the bound
   holds without it (`prune_kept`).

Deterministic: the order is the measured error, ties broken by op position;
the same model and samples give the same file. The plan (each op's error,
the ops kept float32 and why, the figures before and after) is stored in
the .tflite (`report.precision.with_plan`) for the report.

The bound: each classification output's top-1 agreement >= `MIN_TOP1` and
SQNR >= `MIN_CLASSIFIER_SQNR_DB`; each other output's SQNR >= `MIN_SQNR_DB`.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from keras_squeeze.errors import ExportError

MIN_TOP1 = 0.995
MIN_CLASSIFIER_SQNR_DB = 20.0
MIN_SQNR_DB = 30.0
PROFILE_SAMPLES = 50
# how many ops' errors the plan stored in the .tflite lists, beyond those kept float32
PLAN_OPS = 12


def bound_text() -> str:
    return (
        f"top-1 agreement >= {MIN_TOP1:.1%} and SQNR >= {MIN_CLASSIFIER_SQNR_DB:g} dB on "
        f"classification outputs, SQNR >= {MIN_SQNR_DB:g} dB on the others"
    )


def within_bound(fidelity) -> bool:
    """Whether a `report.metrics.Fidelity` meets the bound of the module docstring."""
    for out in fidelity.outputs:
        if out.top1_agreement is not None:
            if out.top1_agreement < MIN_TOP1 or out.sqnr_db < MIN_CLASSIFIER_SQNR_DB:
                return False
        elif out.sqnr_db < MIN_SQNR_DB:
            return False
    return True


def op_sqnr_db(signal: float, error: float) -> float:
    """SQNR in dB of an op's output (sum of squares of the float values over the error's)."""
    if error <= 0:
        return float("inf")
    if signal <= 0:
        return float("-inf")
    return float(10.0 * np.log10(signal / error))


def order(errors: dict[str, float], positions: dict[str, int]) -> list[str]:
    """Op output names, most sensitive (lowest SQNR) first; ties by position in the file."""
    return sorted(errors, key=lambda name: (errors[name], positions.get(name, 0), name))


def smallest_passing(count: int, passes) -> int:
    """The smallest k in [0, count] with passes(k), by doubling then bisection (`count`
    when none passes before it); passes(k) is called at most about 2 log2(count) times."""
    if passes(0):
        return 0
    low, k = 0, 1  # low: a k known to fail
    while True:
        if k >= count:
            if count == 0 or not passes(count):
                return count
            high = count
            break
        if passes(k):
            high = k
            break
        low, k = k, k * 2
    while high - low > 1:
        mid = (low + high) // 2
        if passes(mid):
            high = mid
        else:
            low = mid
    return high


def prune_kept(kept: list[str], passes) -> list[str]:
    """`kept` without the ops the bound does not need: each in turn, least sensitive (last)
    first, is tried back at int8 and stays int8 when `passes(the rest)`. (An op kept float32
    can still be needed by a later int8 op that shares its scale, e.g. CONCATENATION, which
    ranks low by its own error.)"""
    kept = list(kept)
    if len(kept) < 2:
        return kept
    for name in reversed(list(kept)):
        rest = [n for n in kept if n != name]
        if passes(rest):
            kept = rest
    return kept


def operand_name(numeric_verify_name: str) -> str:
    """The quantized op's output tensor name in a debugger statistic's key
    ("NumericVerify/{tensor name}{digit}:{index}", as TensorFlow's debugger names it)."""
    name = numeric_verify_name.rsplit(":", 1)[0][len("NumericVerify/") :]
    return name[:-1] if name and name[-1].isdigit() else name


@dataclasses.dataclass
class _Profiled:
    debugger: object
    errors: dict  # {op output tensor name: SQNR dB}
    positions: dict  # {op output tensor name: order in the debug model}


def _profile(converter, samples, verbose: int) -> _Profiled:
    import tensorflow as tf

    from keras_squeeze.core.native_output import NativeOutput

    count = min(PROFILE_SAMPLES, samples.count)

    def dataset():
        for i in range(count):
            yield [a[i : i + 1] for a in samples.inputs]

    metrics = {
        "error": lambda f, q, s, z: float(np.sum((f - (q.astype(np.float32) - z) * s) ** 2)),
        "signal": lambda f, q, s, z: float(np.sum(np.asarray(f, np.float32) ** 2)),
    }
    options = tf.lite.experimental.QuantizationDebugOptions(layer_direct_compare_metrics=metrics)
    log = NativeOutput(enabled=verbose < 2)
    with log, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        warnings.filterwarnings("ignore", message=r".*tf\.lite\.Interpreter is deprecated.*")
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=dataset, debug_options=options
        )
        debugger.run()
    errors, positions = {}, {}
    for i, (key, stats) in enumerate(debugger.layer_statistics.items()):
        name = operand_name(key)
        errors[name] = op_sqnr_db(stats["signal"], stats["error"])
        positions[name] = i
    return _Profiled(debugger, errors, positions)


def _model_with_float(profiled: _Profiled, names: list[str], verbose: int) -> bytes:
    import tensorflow as tf

    from keras_squeeze.core.native_output import NativeOutput

    with NativeOutput(enabled=verbose < 2), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*tf\.lite\.Interpreter is deprecated.*")
        options = tf.lite.experimental.QuantizationDebugOptions(
            denylisted_nodes=list(names) or None
        )
        try:
            profiled.debugger.options = options
        except ValueError:
            # every op denylisted: the setter's debug model has no NumericVerify op to
            # find and refuses; the non-debug model reads the same options
            profiled.debugger._debug_options = options
        return bytes(profiled.debugger.get_nondebug_quantized_model())


def quantize(converter, samples, reference, in_names, out_names, verbose: int = 0) -> bytes:
    """The "int8-mixed" .tflite of a converter set up by `ptq.configure_converter`.

    Args:
        converter: a `tf.lite.TFLiteConverter` with the "int8-mixed" settings.
        samples: the calibration `Samples` (errors are measured on them too).
        reference: the Keras model's outputs on `samples` (one array per output).
        in_names / out_names: the model's input and output names.

    Raises:
        ExportError: the debugger could not quantize or measure the model.
    """
    from keras_squeeze.export.runtime import TFLiteRunner
    from keras_squeeze.report import metrics
    from keras_squeeze.report.precision import with_plan

    try:
        profiled = _profile(converter, samples, verbose)
    except Exception as e:
        raise ExportError(
            "The 'int8-mixed' quantization could not measure each op's int8 error with "
            "TensorFlow's QuantizationDebugger. Expected a model the 'int8' quantization "
            f"converts. Received: {type(e).__name__}: {str(e)[:400]}"
        ) from e
    ranked = order(profiled.errors, profiled.positions)
    measured: dict[tuple, tuple[bytes, object]] = {}

    def candidate(names) -> tuple[bytes, object]:
        key = tuple(names)
        if key not in measured:
            content = _model_with_float(profiled, key, verbose)
            outputs = TFLiteRunner(content=content).run(samples, in_names, out_names)
            measured[key] = (content, metrics.compare(reference, outputs, out_names, ""))
        return measured[key]

    k = smallest_passing(len(ranked), lambda k: within_bound(candidate(ranked[:k])[1]))
    kept = prune_kept(ranked[:k], lambda names: within_bound(candidate(names)[1]))
    content, fidelity = candidate(kept)
    plain = candidate(())[1]
    rank = {name: i for i, name in enumerate(ranked)}
    plan = {
        "mode": "int8-mixed",
        "bound": bound_text(),
        "samples": samples.describe(),
        "met": within_bound(fidelity),
        "int8": _figures(plain),
        "result": _figures(fidelity),
        "candidates_measured": len(measured),
        # the most sensitive ops (all of a small model's), by output tensor name
        "op_sqnr_db": {
            n: metrics.json_float(profiled.errors[n]) for n in ranked[: max(PLAN_OPS, k + 5)]
        },
        "kept": [
            {
                "op": name,
                "precision": "float32",
                "op_sqnr_db": metrics.json_float(profiled.errors[name]),
                "reason": (
                    f"its int8 output's SQNR was {profiled.errors[name]:.1f} dB, the "
                    f"{rank[name] + 1}{_ordinal(rank[name] + 1)} lowest; with it int8"
                    + (" (the other kept ops float32)" if len(kept) > 1 else "")
                    + " the outputs miss the bound"
                ),
            }
            for name in kept
        ],
    }
    return with_plan(content, plan)


def _figures(fidelity) -> dict:
    from keras_squeeze.report import metrics

    return {
        "sqnr_db": metrics.json_float(fidelity.sqnr_db),
        "top1_agreement": fidelity.top1_agreement,
    }


def _ordinal(n: int) -> str:
    if 10 <= n % 100 <= 20:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
