"""Benchmark inputs: generated in each model input's real range and dtype, or given.

Generated inputs (seeded, so every run and every model sees the same values):

- quantized integer inputs (int8/uint8/int16 with a scale): integers drawn
  uniformly over the whole range of the dtype, [qmin, qmax]. The converter
  derives scale and zero point from the calibrated float range, so this is
  the quantized image of that range: real = (q - zero_point) * scale spans
  [(qmin - zp) * scale, (qmax - zp) * scale]. With `input_range=(lo, hi)`,
  floats drawn uniformly in [lo, hi] are quantized instead.
- float inputs: uniform in `input_range`, default [-1, 1] (the range
  MobileNet-style models expect; pass e.g. (0, 1) for inputs scaled by 1/255).
- other integer inputs (ids, counts): uniform integers in [0, 9], or in
  [lo, hi] with `input_range`; bool inputs: fair coin flips.

Given inputs (`inputs=`) are float or integer arrays in the model's float
domain; a quantized input receives them quantized with its own scale and zero
point, so a float and an int8 model can be fed the same data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from keras_squeeze.errors import ConfigError, DataError

DEFAULT_FLOAT_RANGE = (-1.0, 1.0)
DEFAULT_INT_RANGE = (0, 9)


def quantization(detail: Mapping) -> tuple[float, int] | None:
    """(scale, zero_point) of a quantized integer tensor, else None."""
    dtype = np.dtype(detail["dtype"])
    scale, zero = detail.get("quantization", (0.0, 0))
    if dtype.kind in "iu" and scale:
        return float(scale), int(zero)
    return None


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype) -> np.ndarray:
    """q = clip(round(x / scale) + zero_point, qmin, qmax), rounding half to even."""
    info = np.iinfo(dtype)
    q = np.round(np.asarray(x, np.float64) / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def check_input_range(input_range) -> tuple[float, float] | None:
    if input_range is None:
        return None
    try:
        lo, hi = (float(v) for v in input_range)
    except (TypeError, ValueError) as e:
        raise ConfigError(
            f"input_range must be two numbers (low, high). Expected e.g. (0.0, 1.0). "
            f"Received: {input_range!r}"
        ) from e
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ConfigError(
            f"input_range must be finite with low < high. Expected e.g. (0.0, 1.0). "
            f"Received: {input_range!r}"
        )
    return lo, hi


def generate(
    detail: Mapping, rng: np.random.Generator, input_range: tuple[float, float] | None = None
) -> np.ndarray:
    """One generated input for a tensor detail (from Interpreter.get_input_details())."""
    dtype = np.dtype(detail["dtype"])
    shape = tuple(int(d) for d in detail["shape"])
    q = quantization(detail)
    if q is not None:
        if input_range is None:
            info = np.iinfo(dtype)
            return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
        return quantize(rng.uniform(*input_range, size=shape), *q, dtype)
    if dtype.kind == "f":
        lo, hi = input_range or DEFAULT_FLOAT_RANGE
        return rng.uniform(lo, hi, size=shape).astype(dtype)
    if dtype.kind in "iu":
        lo, hi = (int(np.ceil(v)) for v in (input_range or DEFAULT_INT_RANGE))
        return rng.integers(lo, hi, size=shape, endpoint=True).astype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    raise DataError(
        f"Inputs of dtype {dtype} cannot be generated (input '{detail['name']}'). Expected "
        "numeric or bool inputs, or inputs= given. Received: a model input of that dtype"
    )


def describe(detail: Mapping, input_range: tuple[float, float] | None = None) -> str:
    """How `generate` fills this input, for the result's notes."""
    dtype = np.dtype(detail["dtype"])
    q = quantization(detail)
    if q is not None:
        scale, zero = q
        info = np.iinfo(dtype)
        if input_range is None:
            lo, hi = (info.min - zero) * scale, (info.max - zero) * scale
            return (
                f"{dtype.name} uniform over [{info.min}, {info.max}] (real [{lo:.4g}, {hi:.4g}] "
                f"via scale {scale:.4g}, zero point {zero})"
            )
        return f"{dtype.name}: uniform real [{input_range[0]:g}, {input_range[1]:g}] quantized"
    if dtype.kind == "f":
        lo, hi = input_range or DEFAULT_FLOAT_RANGE
        return f"{dtype.name} uniform in [{lo:g}, {hi:g}]"
    if dtype.kind in "iu":
        lo, hi = input_range or DEFAULT_INT_RANGE
        return f"{dtype.name} uniform integers in [{int(np.ceil(lo))}, {int(np.ceil(hi))}]"
    return f"{dtype.name} random"


def _match(value: np.ndarray, detail: Mapping, label: str) -> np.ndarray:
    """Casts (quantizing where needed) and shapes one given input to its tensor."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise DataError(
            f"inputs has non-numeric values for {label}. Expected numeric arrays. "
            f"Received: dtype {arr.dtype}"
        )
    shape = tuple(int(d) for d in detail["shape"])
    if arr.shape != shape and (1, *arr.shape) == shape:
        arr = arr[None]
    if arr.shape != shape:
        raise DataError(
            f"inputs does not match {label}. Expected an array of shape {shape} (or "
            f"{shape[1:]} without the batch axis). Received: shape {arr.shape}"
        )
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise DataError(
            f"inputs has NaN or Inf for {label}. Expected finite values. Received: non-finite"
        )
    dtype = np.dtype(detail["dtype"])
    q = quantization(detail)
    if q is not None and arr.dtype.kind == "f":
        return quantize(arr, *q, dtype)
    return arr.astype(dtype)


def _names(detail: Mapping, signature_names: Mapping[int, str]) -> set[str]:
    name = str(detail["name"])
    out = {name, name.split(":")[0]}
    if detail["index"] in signature_names:
        out.add(signature_names[detail["index"]])
    return out


def arrange(
    inputs,
    details: Sequence[Mapping],
    model_name: str,
    signature_names: Mapping[int, str] | None = None,
) -> list[np.ndarray]:
    """Given inputs in the order of `details` (Interpreter.get_input_details()).

    Args:
        inputs: an array (single-input models), a list/tuple in the
            interpreter's input order, or a dict keyed by input name (tensor
            name, with or without ":0", or signature input name).
        signature_names: {tensor index: signature input name}.
    """
    signature_names = signature_names or {}
    labels = [f"input '{d['name']}' of model '{model_name}'" for d in details]
    if isinstance(inputs, Mapping):
        out = []
        for d, label in zip(details, labels, strict=True):
            keys = _names(d, signature_names) & set(inputs)
            if not keys:
                raise DataError(
                    f"inputs has no entry for {label}. Expected keys among "
                    f"{sorted(_names(d, signature_names))}. Received: keys {sorted(inputs)}"
                )
            out.append(_match(inputs[sorted(keys)[0]], d, label))
        return out
    if isinstance(inputs, (list, tuple)):
        if len(inputs) != len(details):
            raise DataError(
                f"inputs does not give one array per input of model '{model_name}'. Expected "
                f"{len(details)} arrays. Received: {len(inputs)}"
            )
        return [_match(v, d, lb) for v, d, lb in zip(inputs, details, labels, strict=True)]
    if len(details) != 1:
        raise DataError(
            f"inputs is a single array but model '{model_name}' has {len(details)} inputs. "
            f"Expected a list or dict of arrays. Received: {type(inputs).__name__}"
        )
    return [_match(inputs, details[0], labels[0])]
