"""Which kernels run a model on this host: XNNPACK, built-in, Edge TPU or an external delegate.

- "xnnpack": ai_edge_litert's default, the XNNPACK delegate applied at
  allocate_tensors() (`OpResolverType.AUTO`).
- "none": built-in CPU kernels only
  (`OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES` turns XNNPACK off).
- "edgetpu": the Coral Edge TPU runtime (libedgetpu.so.1 on Linux) loaded
  with `ai_edge_litert.interpreter.load_delegate`; needed by models compiled
  by edgetpu_compiler (`*_edgetpu.tflite`, custom op "edgetpu-custom-op").
- a path or library name: any TFLite external delegate (a shared library
  exporting `tflite_plugin_create_delegate`).
"""

from __future__ import annotations

import ctypes
import dataclasses
import platform
from collections.abc import Mapping, Sequence

from keras_squeeze.bench.sources import EDGETPU_CUSTOM_OP, ModelSource
from keras_squeeze.errors import ConfigError, DelegateError

EDGETPU = "edgetpu"
XNNPACK = "xnnpack"
NONE = "none"
EDGETPU_LIBRARIES = {
    "Linux": "libedgetpu.so.1",
    "Darwin": "libedgetpu.1.dylib",
    "Windows": "edgetpu.dll",
}
EDGETPU_INSTALL_HINT = (
    "the Coral Edge TPU runtime (Debian/Ubuntu: add the coral-edgetpu-stable apt repository of "
    "packages.cloud.google.com and apt-get install libedgetpu1-std) and an Edge TPU attached"
)


def edgetpu_library() -> str:
    """The Edge TPU runtime's library name on this operating system."""
    return EDGETPU_LIBRARIES.get(platform.system(), EDGETPU_LIBRARIES["Linux"])


@dataclasses.dataclass(frozen=True)
class DelegateSpec:
    """How interpreters are built: the resolver and at most one explicit delegate.

    Attributes:
        label: "xnnpack", "none", "edgetpu" or the external library.
        use_xnnpack: whether XNNPACK (the default delegate) may apply.
        library: the shared library of an explicit delegate, or None.
        options: options passed to that delegate.
    """

    label: str
    use_xnnpack: bool
    library: str | None = None
    options: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def load(self) -> list:
        """A fresh delegate object list for one interpreter (empty without a delegate)."""
        if self.library is None:
            return []
        what = "Edge TPU runtime" if self.label == EDGETPU else "external delegate"
        return [load_external(self.library, self.options, what)]

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "use_xnnpack": self.use_xnnpack,
            "library": self.library,
            "options": dict(self.options),
        }


def load_external(library: str, options: Mapping | None = None, what: str = "external delegate"):
    """Loads a TFLite external delegate with a clear error for each way it can fail.

    Raises:
        DelegateError: the library cannot be loaded, is not a TFLite delegate,
            or refuses to start (e.g. no Edge TPU attached).
    """
    from ai_edge_litert.interpreter import load_delegate

    hint = EDGETPU_INSTALL_HINT if what == "Edge TPU runtime" else "the delegate's shared library"
    try:
        lib = ctypes.CDLL(library)
    except OSError as e:
        raise DelegateError(
            f"The {what} could not be loaded. Expected {hint}. Received: '{library}' ({e})"
        ) from e
    missing = [
        s
        for s in ("tflite_plugin_create_delegate", "tflite_plugin_destroy_delegate")
        if not hasattr(lib, s)
    ]
    if missing:
        raise DelegateError(
            f"The {what} library is not a TFLite external delegate. Expected a shared library "
            f"exporting {' and '.join(missing)}. Received: '{library}'"
        )
    try:
        return load_delegate(library, {str(k): str(v) for k, v in (options or {}).items()})
    except (ValueError, RuntimeError) as e:
        raise DelegateError(
            f"The {what} loaded but did not start. Expected a working delegate (for the Edge "
            f"TPU: a device attached and not used by another process). Received: '{library}' "
            f"({str(e).strip() or type(e).__name__})"
        ) from e


def resolve(
    delegate: str | None,
    use_xnnpack: bool,
    sources: Sequence[ModelSource],
    options: Mapping | None = None,
) -> DelegateSpec:
    """Chooses the delegate for a benchmark from the argument and the models.

    Models compiled for the Edge TPU select "edgetpu" when `delegate` is None.

    Raises:
        ConfigError: models need different delegates, or a named delegate
            conflicts with use_xnnpack.
        DelegateError: a model needs the Edge TPU and another delegate was asked for.
    """
    edgetpu_models = [s.name for s in sources if s.needs_edgetpu]
    if delegate is None and edgetpu_models:
        if len(edgetpu_models) != len(sources):
            others = [s.name for s in sources if not s.needs_edgetpu]
            raise ConfigError(
                "Edge TPU models and CPU models cannot share one run's delegate. Expected all "
                f"models compiled for the Edge TPU, or none. Received: Edge TPU {edgetpu_models}, "
                f"CPU {others}"
            )
        delegate = EDGETPU
    if delegate is None or delegate in (XNNPACK, NONE):
        if delegate == XNNPACK and not use_xnnpack:
            raise ConfigError(
                "delegate='xnnpack' contradicts use_xnnpack=False. Expected one of them. "
                "Received: both"
            )
        label = NONE if delegate == NONE or not use_xnnpack else XNNPACK
        if edgetpu_models:
            raise DelegateError(
                f"Model {edgetpu_models[0]!r} was compiled for the Edge TPU (it holds the "
                f"'{EDGETPU_CUSTOM_OP}' op). Expected delegate='edgetpu' (or None) with "
                f"{EDGETPU_INSTALL_HINT}. Received: delegate={delegate!r}"
            )
        return DelegateSpec(label, label == XNNPACK)
    if not isinstance(delegate, str) or not delegate.strip():
        raise ConfigError(
            "delegate must be None, 'xnnpack', 'none', 'edgetpu' or a delegate library path. "
            f"Expected a string. Received: {delegate!r}"
        )
    if delegate == EDGETPU:
        return DelegateSpec(EDGETPU, use_xnnpack, edgetpu_library(), dict(options or {}))
    return DelegateSpec(delegate, use_xnnpack, delegate, dict(options or {}))


def build_interpreter(
    spec: DelegateSpec, num_threads: int, model_content: bytes | None = None, model_path=None
):
    """An ai_edge_litert Interpreter with the spec's resolver and delegate (not yet allocated)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = (
        OpResolverType.AUTO
        if spec.use_xnnpack
        else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    return Interpreter(
        model_content=model_content,
        model_path=None if model_path is None else str(model_path),
        num_threads=num_threads,
        experimental_op_resolver_type=resolver,
        experimental_delegates=spec.load() or None,
    )
