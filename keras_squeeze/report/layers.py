"""The per-layer table: each Keras layer next to what the .tflite holds for it.

Keras kernels are matched to .tflite constants by value, not by name: tensor
names differ between Keras flavours and converter paths (Keras 3 export
traces twice, so `conv2d` may appear as `conv2d_1`), while values survive
conversion up to quantization error and per-channel scaling (batch-norm
folding), which the per-channel cosine similarity used here ignores.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_squeeze.report.tflite_reader import Tensor, TFLiteModel

KERNEL_NAMES = ("kernel", "depthwise_kernel", "pointwise_kernel", "embeddings")
MATCH_THRESHOLD = 0.9


@dataclasses.dataclass
class LayerRow:
    """One layer of the report.

    Attributes:
        name, type: the Keras layer's name and class name.
        params: number of weight scalars in the Keras layer.
        quantized: how its kernel is stored in the .tflite ("int8 per-channel",
            "float16", "float32", ...), None for layers without a kernel.
        sparsity: measured fraction of zeros in the .tflite kernel.
        clusters: measured number of unique kernel values, reported when a
            clustering stage ran.
        reason: why a technique left the layer as it was, or a note.
        targets: what stages aimed for (e.g. {"sparsity": 0.8}).
        measured: further checks on the .tflite kernel (e.g. the fraction of
            M:N blocks that hold the pattern).
    """

    name: str
    type: str
    params: int
    quantized: str | None = None
    sparsity: float | None = None
    clusters: int | None = None
    reason: str | None = None
    targets: dict = dataclasses.field(default_factory=dict)
    measured: dict = dataclasses.field(default_factory=dict)

    def add_reason(self, reason: str) -> None:
        self.reason = reason if not self.reason else f"{self.reason}; {reason}"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def target_keys(rows) -> list[str]:
    """The stage targets the layer rows carry (LayerRow or report.json dicts), in first-seen
    order: one column each in the per-layer tables (every stage sets its own keys)."""
    keys: dict[str, None] = {}
    for row in rows:
        targets = row.targets if isinstance(row, LayerRow) else (row.get("targets") or {})
        keys.update(dict.fromkeys(targets))
    return list(keys)


def format_target(value) -> str:
    """A target for a table cell: fractions as percentages ("80%"), the rest as written."""
    if value is None:
        return ""
    if isinstance(value, float) and 0.0 <= value <= 1.0:
        return f"{value:.0%}"
    return str(value)


def weight_short_name(variable) -> str:
    """'kernel' for 'conv2d/kernel:0' (tf_keras) or a Keras 3 variable named 'kernel'."""
    name = getattr(variable, "path", None) or variable.name
    return name.split("/")[-1].split(":")[0]


def kernels(layer) -> list[np.ndarray]:
    """The layer's kernel-like weights as numpy arrays, in Keras layout."""
    from keras_squeeze.core.models import layer_weights

    return [
        np.asarray(w.numpy() if hasattr(w, "numpy") else w)
        for w in layer_weights(layer)
        if weight_short_name(w) in KERNEL_NAMES
    ]


def _layouts(kernel: np.ndarray) -> list[np.ndarray]:
    """Ways the converter may lay out a Keras kernel."""
    k = kernel
    out = [k]
    if k.ndim == 2:  # Dense (in, out) -> FULLY_CONNECTED (out, in)
        out.append(k.T)
    elif k.ndim == 3:  # Conv1D (w, in, out) -> CONV_2D (out, 1, w, in)
        out.append(k.transpose(2, 0, 1)[:, None])
    elif k.ndim == 4:
        out.append(k.transpose(3, 0, 1, 2))  # Conv2D HWIO -> OHWI
        out.append(k.reshape(1, k.shape[0], k.shape[1], -1))  # Depthwise -> 1,H,W,C*M
        out.append(k.transpose(2, 0, 1, 3))  # Conv2DTranspose HW(out)(in) -> (out)HW(in)
    elif k.ndim == 5:
        out.append(k.transpose(4, 0, 1, 2, 3))
    return out


# Arrays with more slices than 2 x PROBE_SLICES are first compared on PROBE_SLICES of
# them, spread along the axis: most pairs of same-size arrays hold different weights, told
# apart on a few slices without copying and normalising both arrays whole (on ResNet50's
# int8 file this took the matching from 3.2 s to 0.6 s here, with the same matches).
PROBE_SLICES = 8
PROBE_REJECT = 0.5


def _rows(a: np.ndarray, axis: int, index=None) -> tuple[np.ndarray, np.ndarray]:
    """The slices of `a` along `axis` (those at `index`, or all) as float64 rows, with
    their norms."""
    moved = np.moveaxis(a, axis, 0)
    rows = (moved if index is None else moved[index]).reshape(
        a.shape[axis] if index is None else len(index), -1
    )
    rows = rows.astype(np.float64)
    return rows, np.sqrt(np.einsum("ij,ij->i", rows, rows))


def _slice_cosine(a: np.ndarray, b: np.ndarray, axis: int) -> float:
    if a.shape[axis] > 2 * PROBE_SLICES:  # mean |cosine| of a few slices live in both
        index = np.linspace(0, a.shape[axis] - 1, PROBE_SLICES).astype(int)
        (a2, na), (b2, nb) = _rows(a, axis, index), _rows(b, axis, index)
        live = (na > 0) & (nb > 0)
        if live.any():
            dots = np.abs(np.einsum("ij,ij->i", a2[live], b2[live]))
            probe = float(np.mean(dots / (na[live] * nb[live])))
            if probe < PROBE_REJECT:
                return probe
    (a2, na), (b2, nb) = _rows(a, axis), _rows(b, axis)
    live = (na > 0) & (nb > 0)
    if not live.any():
        return 1.0 if not (na.any() or nb.any()) else 0.0
    if ((na > 0) != (nb > 0)).mean() > 0.05:
        return 0.0
    cos = np.abs(np.einsum("ij,ij->i", a2[live], b2[live])) / (na[live] * nb[live])
    return float(cos.mean())


def similarity(kernel: np.ndarray, values: np.ndarray) -> float:
    """Best per-channel |cosine| between the kernel (in any layout) and a constant."""
    best = 0.0
    for layout in _layouts(kernel):
        if layout.shape != values.shape:
            continue
        for axis in {0, layout.ndim - 1}:
            best = max(best, _slice_cosine(layout, values, axis))
    return best


def match_kernels(
    layers_kernels: dict[str, list[np.ndarray]], model: TFLiteModel
) -> dict[str, list[Tensor]]:
    """Assigns each layer's kernels to distinct .tflite constants (best match first)."""
    constants = [t for t in model.constants() if t.data is not None and t.data.size > 1]
    by_size: dict[int, list[Tensor]] = {}
    for t in constants:
        by_size.setdefault(int(t.data.size), []).append(t)
    scored = []
    values_cache: dict[int, np.ndarray] = {}
    for lname, ks in layers_kernels.items():
        for ki, k in enumerate(ks):
            for t in by_size.get(int(k.size), []):
                if t.index not in values_cache:
                    values_cache[t.index] = t.values()
                score = similarity(k, values_cache[t.index])
                if score >= MATCH_THRESHOLD:
                    scored.append((score, lname, ki, t))
    scored.sort(key=lambda s: -s[0])
    taken_tensors: set[int] = set()
    taken_kernels: set[tuple[str, int]] = set()
    result: dict[str, list[Tensor]] = {}
    for _, lname, ki, t in scored:
        if t.index in taken_tensors or (lname, ki) in taken_kernels:
            continue
        taken_tensors.add(t.index)
        taken_kernels.add((lname, ki))
        result.setdefault(lname, []).append(t)
    return result


def storage(t: Tensor) -> str:
    """How a constant is stored: 'int8 per-channel', 'float16', 'float32', ..."""
    if t.block_size and t.dtype not in ("float32", "float16"):
        return f"{t.dtype} blockwise-{t.block_size}"
    if t.scales is not None and t.dtype not in ("float32", "float16"):
        return f"{t.dtype} {'per-channel' if t.per_channel else 'per-tensor'}"
    return t.dtype


def match_layers(keras_layers, model: TFLiteModel) -> dict[str, list[Tensor]]:
    """Each Keras layer's kernels, found among the .tflite's constants by value."""
    from keras_squeeze.core.models import layer_name

    layer_kernels = {layer_name(layer): kernels(layer) for layer in keras_layers}
    return match_kernels({n: k for n, k in layer_kernels.items() if k}, model)


def layer_rows(keras_layers, model: TFLiteModel, matches=None) -> list[LayerRow]:
    """One row per Keras layer (input layers excluded) with measured .tflite figures."""
    from keras_squeeze.core.models import layer_name, layer_type, layer_weights

    layers = [layer for layer in keras_layers if type(layer).__name__ != "InputLayer"]
    layer_kernels = {layer_name(layer): kernels(layer) for layer in layers}
    if matches is None:
        matches = match_layers(layers, model)
    rows = []
    for layer in layers:
        name = layer_name(layer)
        params = int(sum(int(np.prod(w.shape)) for w in layer_weights(layer)))
        row = LayerRow(name=name, type=layer_type(layer), params=params)
        tensors = matches.get(name, [])
        if tensors:
            kinds = sorted({storage(t) for t in tensors})
            row.quantized = ", ".join(kinds)
            vals = [t.values() for t in tensors]
            total = sum(v.size for v in vals)
            row.sparsity = float(sum(int((v == 0).sum()) for v in vals) / total) if total else None
        elif layer_kernels[name]:
            row.reason = (
                "kernel not found in the .tflite (fused or constant-folded by the converter)"
            )
        elif params:
            row.reason = "no kernel; its weights are folded into neighbouring ops by the converter"
        rows.append(row)
    return rows
