"""What can be benchmarked: .tflite bytes, paths, Artifacts, CompressionResults, and their names."""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Mapping

from keras_squeeze.errors import ConfigError, ModelError
from keras_squeeze.safety.paths import fs_path

EDGETPU_CUSTOM_OP = "edgetpu-custom-op"
_TFLITE_IDENTIFIER = b"TFL3"


@dataclasses.dataclass(frozen=True, repr=False)
class ModelSource:
    """One .tflite to benchmark.

    Attributes:
        name: the label used in tables, JSON and ratios.
        content: the flatbuffer bytes.
        path: the file it came from, if any.
        custom_ops: custom operator codes in the model (e.g. "edgetpu-custom-op").
    """

    name: str
    content: bytes
    path: pathlib.Path | None
    custom_ops: tuple[str, ...]

    @property
    def size_bytes(self) -> int:
        return len(self.content)

    @property
    def needs_edgetpu(self) -> bool:
        return EDGETPU_CUSTOM_OP in self.custom_ops

    def __repr__(self) -> str:
        where = str(self.path) if self.path else "bytes"
        return f"ModelSource({self.name!r}, {self.size_bytes:,} bytes, {where})"


def check_flatbuffer(content: bytes, what: str) -> None:
    """Raises ModelError unless `content` carries the TFLite flatbuffer identifier."""
    if len(content) < 8 or content[4:8] != _TFLITE_IDENTIFIER:
        raise ModelError(
            f"{what} is not a TFLite model. Expected a flatbuffer with the 'TFL3' identifier. "
            f"Received: {len(content)} bytes starting {bytes(content[:8])!r}"
        )


def custom_op_codes(content: bytes) -> tuple[str, ...]:
    """The custom operator codes a .tflite uses (reads only the operator-code table)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(content, 0)
    codes = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM and code.CustomCode():
            codes.append(code.CustomCode().decode("utf-8", "replace"))
    return tuple(codes)


def read_tflite_file(path, purpose: str = "to benchmark") -> tuple[bytes, pathlib.Path]:
    """The bytes of a .tflite file named by a path, and the expanded path.

    Raises:
        ModelError: the path is not an existing, readable file.
    """
    path = fs_path(path, f".tflite file {purpose}", ModelError).expanduser()
    if path.is_dir():
        raise ModelError(
            f"The .tflite file {purpose} is a directory. Expected a path to a .tflite file. "
            f"Received: '{path}'"
        )
    if not path.is_file():
        raise ModelError(
            f"The .tflite file {purpose} does not exist. Expected a path to a .tflite file. "
            f"Received: '{path}'"
        )
    try:
        return path.read_bytes(), path
    except OSError as e:
        raise ModelError(
            f"The .tflite file {purpose} cannot be read. Expected a readable .tflite file. "
            f"Received: '{path}' ({e.strerror or e})"
        ) from e


def _describe(obj) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _load(obj, position: int) -> tuple[bytes, pathlib.Path | None, str]:
    """(content, path, default name) of one model argument."""
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj), None, f"model_{position + 1}"
    if isinstance(obj, (str, os.PathLike)):
        content, path = read_tflite_file(obj)
        return content, path, path.stem
    # An export Artifact (keras_squeeze.export) ...
    if hasattr(obj, "format") and hasattr(obj, "content") and hasattr(obj, "path"):
        if obj.format != "tflite":
            raise ModelError(
                "Only .tflite artifacts can be benchmarked. Expected an Artifact of format "
                f"'tflite'. Received: format='{obj.format}'"
            )
        if obj.content is not None:
            name = pathlib.Path(obj.path).stem if obj.path else f"model_{position + 1}"
            return bytes(obj.content), obj.path, name
        if obj.path is not None:
            return _load(obj.path, position)
    # ... or a CompressionResult (keras_squeeze.compress).
    if isinstance(getattr(obj, "tflite", None), (bytes, bytearray)):
        report = getattr(obj, "report", None)
        name = getattr(report, "recipe", None) or f"model_{position + 1}"
        return bytes(obj.tflite), None, str(name)
    raise ModelError(
        "The model to benchmark is not a .tflite. Expected .tflite bytes, a path, an Artifact "
        f"from keras_squeeze.export or a CompressionResult. Received: {_describe(obj)}"
    )


def unique_names(names: list[str]) -> list[str]:
    """The names with repeats made unique: a, a -> a, a-2."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        if n in seen:
            seen[n] += 1
            n = f"{n}-{seen[n]}"
        seen.setdefault(n, 1)
        out.append(n)
    return out


def resolve_models(models) -> list[ModelSource]:
    """Turns the `models` argument of benchmark() into named, checked sources.

    Args:
        models: one model, a list/tuple of models, or a dict {name: model};
            each model is .tflite bytes, a path, an `Artifact` or a
            `CompressionResult` (its `.tflite`).

    Names come from the dict keys, else the file stem, the recipe of a
    CompressionResult, or "model_<position>"; repeats get "-2", "-3".

    Raises:
        ModelError: a model is of an unsupported kind, missing, or not a flatbuffer.
        ConfigError: no models, or a name that is empty.
    """
    if isinstance(models, Mapping):
        items = list(models.items())
        for key, _ in items:
            if not isinstance(key, str) or not key.strip():
                raise ConfigError(
                    f"Model names must be non-empty strings. Expected a dict {{name: model}}. "
                    f"Received: key {key!r}"
                )
        given = [k for k, _ in items]
        objs = [v for _, v in items]
    elif isinstance(models, (list, tuple)):
        given, objs = None, list(models)
    else:
        given, objs = None, [models]
    if not objs:
        raise ConfigError(
            "There is nothing to benchmark. Expected at least one model. Received: no models"
        )
    loaded = [_load(obj, i) for i, obj in enumerate(objs)]
    names = given if given is not None else unique_names([name for _, _, name in loaded])
    sources = []
    for name, (content, path, _) in zip(names, loaded, strict=True):
        what = f"'{path}'" if path else f"Model '{name}'"
        check_flatbuffer(content, what)
        try:
            custom = custom_op_codes(content)
        except Exception as e:  # struct.error and the like from a damaged flatbuffer
            raise ModelError(
                f"{what} is not a readable TFLite model. Expected an intact .tflite flatbuffer. "
                f"Received: {len(content)} bytes ({type(e).__name__}: {e})"
            ) from e
        sources.append(ModelSource(name, content, path, custom))
    return sources
