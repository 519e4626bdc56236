"""Reads a .tflite flatbuffer: tensors, constant weights (dequantized), operators.

Built on the schema bindings that ship with ai_edge_litert, so what is read is
exactly what the runtime loads.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from keras_squeeze.errors import ModelError

_TYPE_TO_NUMPY = {
    "FLOAT32": "float32",
    "FLOAT16": "float16",
    "FLOAT64": "float64",
    "INT32": "int32",
    "UINT8": "uint8",
    "INT64": "int64",
    "BOOL": "bool",
    "INT16": "int16",
    "INT8": "int8",
    "UINT32": "uint32",
    "UINT16": "uint16",
    "UINT64": "uint64",
    "INT4": "int4",
}


@functools.lru_cache(maxsize=1)
def _schema():
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


@functools.lru_cache(maxsize=1)
def _enum_names():
    s = _schema()
    ops = {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_")}
    types = {v: k for k, v in vars(s.TensorType).items() if not k.startswith("_")}
    return ops, types


@dataclasses.dataclass
class Tensor:
    """One tensor of the main subgraph.

    Attributes:
        dtype: numpy-style name of the stored type ("int8", "float16", ...).
        data: the stored constant values (before dequantization), or None for
            activations. Sparse-encoded constants are densified.
        scales, zero_points, quantized_dimension: quantization parameters, if any.
        sparse: whether the flatbuffer stores it with sparsity encoding.
        block_size: for blockwise quantization (int4 weights by ai-edge-quantizer),
            the weights per block along the last axis, and `scales` the
            `(rows, blocks)` scales read from the scale tensor; 0 otherwise.
    """

    index: int
    name: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...]
    dtype: str
    data: np.ndarray | None
    scales: np.ndarray | None
    zero_points: np.ndarray | None
    quantized_dimension: int
    sparse: bool = False
    stored_bytes: int = 0
    block_size: int = 0

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def per_channel(self) -> bool:
        return self.scales is not None and self.scales.size > 1

    def values(self) -> np.ndarray | None:
        """The constant's real values as float32 (dequantized), or None."""
        if self.data is None:
            return None
        data = self.data.astype(np.float32)
        if self.scales is None or self.dtype in ("float32", "float16", "float64"):
            return data
        scales = self.scales.astype(np.float32)
        if self.block_size and data.ndim == 2 and scales.ndim == 2:
            blocks = np.repeat(scales, self.block_size, axis=1)[:, : data.shape[1]]
            return data * blocks.reshape(data.shape)
        zeros = (
            self.zero_points.astype(np.float32)
            if self.zero_points is not None and self.zero_points.size
            else np.zeros_like(scales)
        )
        if scales.size > 1:
            shape = [1] * data.ndim
            shape[self.quantized_dimension] = -1
            scales, zeros = scales.reshape(shape), zeros.reshape(shape)
        return (data - zeros) * scales


@dataclasses.dataclass
class Operator:
    """One operator of the main subgraph, in execution order.

    Attributes:
        opcode: the builtin name ("CONV_2D") or, for a custom op, its custom code.
        version: the operator-code version the converter wrote.
        inputs / outputs: tensor indices (-1 marks an omitted optional input).
        builtin_code: the BuiltinOperator number (CUSTOM for custom ops).
        options: the builtin options as {field: value} (e.g. "fusedActivationFunction",
            "dilationWFactor"), empty when the op has none.
    """

    index: int
    opcode: str  # builtin name ("CONV_2D") or the custom code
    version: int
    inputs: list[int]
    outputs: list[int]
    builtin_code: int = -1
    options: dict = dataclasses.field(default_factory=dict)

    @property
    def is_custom(self) -> bool:
        return self.builtin_code == _schema().BuiltinOperator.CUSTOM


@dataclasses.dataclass
class TFLiteModel:
    tensors: list[Tensor]
    operators: list[Operator]
    inputs: list[int]
    outputs: list[int]
    num_subgraphs: int

    def constants(self) -> list[Tensor]:
        return [t for t in self.tensors if t.is_constant]

    def opcode_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for op in self.operators:
            counts[op.opcode] = counts.get(op.opcode, 0) + 1
        return counts


def _as_array(values, dtype) -> np.ndarray | None:
    if values is None:
        return None
    return np.asarray(values, dtype=dtype)


def _vector(v) -> np.ndarray:
    """Values of a Uint8/Uint16/Int32 vector union member."""
    return np.asarray(v.values if v is not None and v.values is not None else [], dtype=np.int64)


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + c) for each (s, c), vectorised."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(starts, counts) + (np.arange(total) - offsets)


def _densify(sparsity, values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Expands a sparse-encoded constant (TACO format: DENSE / SPARSE_CSR levels).

    Levels follow `traversalOrder`; levels past the tensor's rank are block
    dimensions of the axes in `blockMap`.
    """
    traversal = [int(a) for a in sparsity.traversalOrder]
    block_map = [int(a) for a in (sparsity.blockMap if sparsity.blockMap is not None else [])]
    dims = sparsity.dimMetadata
    rank = len(shape)
    total = int(np.prod(shape, dtype=object))
    pos = np.zeros(1, dtype=np.int64)
    coords = np.zeros((1, len(traversal)), dtype=np.int64)
    for level, dim in enumerate(dims):
        axis = traversal[level]
        if dim.format == 0:  # DENSE
            size = int(dim.denseSize)
            if size < 0 or len(pos) * size > total:
                raise ValueError(f"dense level of size {size} exceeds the shape {shape}")
            counts = np.full(len(pos), size, dtype=np.int64)
            index = np.tile(np.arange(size, dtype=np.int64), len(pos))
            new_pos = np.repeat(pos, size) * size + index
        else:  # SPARSE_CSR
            segments = _vector(dim.arraySegments)
            indices = _vector(dim.arrayIndices)
            counts = segments[pos + 1] - segments[pos]
            if np.any(counts < 0) or int(counts.sum()) > total:
                raise ValueError(f"sparse segments exceed the shape {shape}")
            new_pos = _ranges(segments[pos], counts)
            index = indices[new_pos]
        coords = np.repeat(coords, counts, axis=0)
        coords[:, axis] = index
        pos = new_pos
    block_size = {}
    for level, dim in enumerate(dims):
        if traversal[level] >= rank:
            block_size[traversal[level] - rank] = int(dim.denseSize)
    full = coords[:, :rank].copy()
    for b, axis in enumerate(block_map):
        full[:, axis] = full[:, axis] * block_size[b] + coords[:, rank + b]
    out = np.zeros(shape, dtype=values.dtype)
    out[tuple(full.T)] = values[pos]
    return out


def _options(obj) -> dict:
    """Builtin options of an operator as a plain dict (arrays as lists)."""
    if obj is None:
        return {}
    out = {}
    for key, value in vars(obj).items():
        if isinstance(value, np.ndarray):
            value = value.tolist()
        out[key] = value
    return out


# A sparse constant expands to at most this many dense bytes per stored byte
# (pruned models store 2-10x less than dense); more means a damaged file.
MAX_DENSE_RATIO = 64
MIN_DENSE_LIMIT = 16 * 1024**2


class _Damaged(Exception):
    """A structural fault of the flatbuffer, with the detail for the ModelError."""


def read_tflite(content: bytes, what: str = "The data") -> TFLiteModel:
    """Parses .tflite bytes.

    Every index the file holds (buffers, operator codes, tensors) and every
    constant's size is checked against the rest of the file, so a damaged or
    hostile file gives a ModelError and never an exception of the flatbuffer
    bindings or a huge allocation.

    Args:
        content: the .tflite bytes.
        what: the file, as the error names it (e.g. "'model.tflite'").

    Raises:
        ModelError: the bytes are not a TFLite flatbuffer, or a damaged one.
    """
    content = bytes(content)
    if len(content) < 8 or content[4:8] != b"TFL3":
        raise ModelError(
            f"{what} is not a TFLite model. Expected a flatbuffer with the 'TFL3' identifier. "
            f"Received: {len(content)} bytes starting {content[:8]!r}"
        )
    try:
        return _read(content)
    except _Damaged as e:
        reason = str(e)
    except Exception as e:  # struct.error, ValueError, ... of the bindings on damaged bytes
        kind = type(e).__name__ if type(e).__module__ == "builtins" else type(e).__qualname__
        module = "" if type(e).__module__ == "builtins" else f"{type(e).__module__}."
        reason = f"{module}{kind}: {' '.join(str(e).split())[:300]}"
    raise ModelError(
        f"{what} is not a readable TFLite model: it is damaged or truncated. Expected an intact "
        f".tflite flatbuffer. Received: {len(content):,} bytes ({reason})"
    )


def _index(value, count: int, what: str, optional: bool = False) -> int:
    value = int(value)
    if not (0 <= value < count or (optional and value == -1)):
        raise _Damaged(f"{what} {value} is out of range ({count} in the file)")
    return value


def _constant(t, raw: np.ndarray, np_dtype: str, shape: tuple[int, ...]) -> np.ndarray | None:
    """The stored values of constant `t`, shaped; sparse constants densified."""
    if any(d < 0 for d in shape):
        raise _Damaged(f"constant tensor '{_name(t)}' has a negative dimension {shape}")
    count = int(np.prod(shape, dtype=object))
    if t.sparsity is not None:
        itemsize = np.dtype(np_dtype).itemsize
        limit = max(MIN_DENSE_LIMIT, MAX_DENSE_RATIO * raw.size)
        if count * itemsize > limit:
            raise _Damaged(
                f"sparse constant '{_name(t)}' of shape {shape} would expand {raw.size:,} "
                f"stored bytes to {count * itemsize:,}"
            )
        if raw.size % itemsize:
            raise _Damaged(f"sparse constant '{_name(t)}' holds {raw.size} bytes of {np_dtype}")
        return _densify(t.sparsity, raw.view(np_dtype), shape)
    if np_dtype == "int4":
        if raw.size * 2 < count:
            raise _Damaged(
                f"constant tensor '{_name(t)}' holds {raw.size} bytes; its shape {shape} of "
                f"int4 needs {(count + 1) // 2}"
            )
        packed = raw.astype(np.int16)
        low, high = (packed & 0x0F), (packed >> 4) & 0x0F
        nibbles = np.stack([low, high], axis=-1).reshape(-1)[:count]
        return np.where(nibbles > 7, nibbles - 16, nibbles).astype(np.int8).reshape(shape)
    if np_dtype in ("bool",) or np_dtype.startswith(("int", "uint", "float")):
        itemsize = np.dtype(np_dtype).itemsize
        if shape and raw.size != count * itemsize:
            raise _Damaged(
                f"constant tensor '{_name(t)}' holds {raw.size} bytes; its shape {shape} of "
                f"{np_dtype} needs {count * itemsize}"
            )
        if raw.size % itemsize:
            raise _Damaged(f"constant tensor '{_name(t)}' holds {raw.size} bytes of {np_dtype}")
        data = raw.view(np_dtype)
        return data.reshape(shape) if shape else data
    return None


def _name(t) -> str:
    return (t.name or b"").decode("utf-8", "replace")


def _read(content: bytes) -> TFLiteModel:
    s = _schema()
    op_names, type_names = _enum_names()
    model = s.ModelT.InitFromPackedBuf(content, 0)
    if not model.subgraphs:
        raise _Damaged("the model has no subgraph")
    graph = model.subgraphs[0]
    buffers = model.buffers or []
    codes = model.operatorCodes or []
    graph_tensors = graph.tensors or []
    tensors = []
    for i, t in enumerate(graph_tensors):
        type_name = type_names.get(t.type, str(t.type))
        np_dtype = _TYPE_TO_NUMPY.get(type_name, type_name.lower())
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else []))
        signature = (
            tuple(int(d) for d in t.shapeSignature) if t.shapeSignature is not None else shape
        )
        buf = buffers[_index(t.buffer, len(buffers), f"the buffer index of tensor {i}")]
        raw = None
        stored = 0
        if buf.data is not None and len(buf.data):
            raw = np.asarray(buf.data, dtype=np.uint8)
        elif getattr(buf, "offset", 0) and buf.size:
            if buf.offset < 0 or buf.size < 0 or buf.offset + buf.size > len(content):
                raise _Damaged(
                    f"buffer {t.buffer} points at bytes {buf.offset}..{buf.offset + buf.size}, "
                    "past the end of the file"
                )
            raw = np.frombuffer(content, dtype=np.uint8, count=buf.size, offset=buf.offset)
        data = None
        if raw is not None:
            stored = raw.size
            data = _constant(t, raw, np_dtype, shape)
        q = t.quantization
        scales = _as_array(q.scale, np.float32) if q is not None else None
        zeros = _as_array(q.zeroPoint, np.int64) if q is not None else None
        if scales is not None and scales.size == 0:
            scales = None
        block_size = 0
        if q is not None and q.detailsType == s.QuantizationDetails.BlockwiseQuantization:
            block_size = int(q.details.blockSize)
            scales = ("blockwise", int(q.details.scales))  # read below, once all tensors are
        tensors.append(
            Tensor(
                index=i,
                name=_name(t),
                shape=shape,
                shape_signature=signature,
                dtype=np_dtype,
                data=data,
                scales=scales,
                zero_points=zeros,
                quantized_dimension=int(q.quantizedDimension) if q is not None else 0,
                sparse=t.sparsity is not None,
                stored_bytes=stored,
                block_size=block_size,
            )
        )
    n = len(tensors)
    for t in tensors:
        if isinstance(t.scales, tuple):
            source = tensors[_index(t.scales[1], n, f"the block scales of tensor {t.index}")]
            t.scales = source.data.astype(np.float32) if source.data is not None else None
    operators = []
    for i, op in enumerate(graph.operators or []):
        code = codes[_index(op.opcodeIndex, len(codes), f"the operator code of operator {i}")]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        name = op_names.get(builtin, str(builtin))
        if name == "CUSTOM" and code.customCode:
            name = code.customCode.decode("utf-8", "replace")
        where = f"a tensor index of operator {i} ({name})"
        operators.append(
            Operator(
                index=i,
                opcode=name,
                version=int(code.version),
                inputs=[_index(x, n, where, True) for x in _ints(op.inputs)],
                outputs=[_index(x, n, where) for x in _ints(op.outputs)],
                builtin_code=int(builtin),
                options=_options(op.builtinOptions),
            )
        )
    return TFLiteModel(
        tensors=tensors,
        operators=operators,
        inputs=[_index(x, n, "a model input's tensor index") for x in _ints(graph.inputs)],
        outputs=[_index(x, n, "a model output's tensor index") for x in _ints(graph.outputs)],
        num_subgraphs=len(model.subgraphs),
    )


def _ints(values) -> list[int]:
    return [int(x) for x in (values if values is not None else [])]
