"""Model files are untrusted: what a .keras, .h5 or SavedModel would run is checked first.

A Keras model file is a configuration that the loader turns back into Python
objects. Two kinds of entries make that run code from the file or code the
file chooses:

- a Lambda layer's (or any `__lambda__`'s) marshalled Python bytecode, which
  deserializing executes (tf_keras runs it for .h5 files and tf_keras
  SavedModels whatever `safe_mode` says: its safe mode covers .keras only);
- a reference to a class or function outside Keras ("module": "os",
  "class_name": "function", "config": "system"), which tf_keras' .keras
  loader imports and may call; Keras 3 refuses those itself.

`find_payloads` lists them from the configuration alone, before anything is
deserialized, and `check_model_file` refuses a file that holds one unless
the caller allowed unsafe deserialization. A SavedModel is a TensorFlow
program: `check_saved_model_graph` refuses one whose serving signature runs
ops that read or write files or call back into Python (`FILE_OPS`). The same functions check the
container: a .keras archive must be a readable zip without a decompression
bomb, its config.json valid JSON; HDF5 data (.h5 files, the weights inside a
.keras) is opened in a child process first (`probe.probe_hdf5`), since HDF5
can crash or hang on a damaged file.

Example:
    >>> check_model_file(pathlib.Path("model.h5"), None, allow_unsafe=False)
    ModelError: 'model.h5' holds executable code, which loading would run (...).
    Received: layer 'payload' (Lambda) holds a Python lambda's bytecode (its function). ...
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import zipfile

from keras_squeeze import _compat
from keras_squeeze.errors import ModelError

KERAS_PACKAGES = ("keras", "tf_keras", "keras_hub", "keras_cv", "keras_nlp")
# Keras 3 resolves "builtins" functions in these modules only (serialization_lib).
BUILTIN_MODULES = (
    "activations",
    "constraints",
    "initializers",
    "losses",
    "metrics",
    "optimizers",
    "regularizers",
)
ALLOW_HINT = (
    "If you trust the file, load it with ks.load_model(path, "
    "allow_unsafe_deserialization=True) (command line: --allow_unsafe_deserialization) and "
    "pass the model on"
)
# A .keras archive whose members declare more than this many bytes per stored
# byte, and more than MIN_BOMB_BYTES, is a decompression bomb.
MAX_ZIP_RATIO = 1000
MIN_BOMB_BYTES = 1024**3
MAX_CONFIG_BYTES = 256 * 1024**2


@dataclasses.dataclass(frozen=True)
class Payload:
    """One executable entry of a model configuration.

    Attributes:
        where: the object that holds it, e.g. "layer 'payload' (Lambda)".
        what: what it is, e.g. "a Python lambda's bytecode".
    """

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where} holds {self.what}"


def _where(stack: list[dict]) -> str:
    for d in reversed(stack):
        config = d.get("config")
        name = config.get("name") if isinstance(config, dict) else None
        if isinstance(name, str) and isinstance(d.get("class_name"), str):
            return f"layer '{name}' ({d['class_name']})"
    return "the model configuration"


def _keras_builtin(name: str) -> bool:
    """Whether Keras 3 resolves a "builtins" function of this name (as serialization_lib does)."""
    import keras

    return any(hasattr(getattr(keras, m, None), name) for m in BUILTIN_MODULES)


def _python_builtin(name, registered_name) -> bool:
    """Whether a "builtins" reference names something in Python's builtins module.

    tf_keras' serialization_lib looks such a reference up there by its name, its
    registered name and, for "Outer.inner", Outer; a name found in none of them
    (a custom function saved without its module, "builtins.scaled_tanh") runs
    nothing: the loader fails asking for custom_objects.
    """
    import builtins

    names = [n for n in (name, registered_name) if isinstance(n, str)]
    if isinstance(name, str) and name.count(".") == 1:
        names.append(name.split(".")[0])
    return any(n in vars(builtins) for n in names)


def _registered(name, custom_objects) -> bool:
    if not isinstance(name, str):
        return False
    if custom_objects and (
        name in custom_objects or any(k.endswith(f">{name}") for k in custom_objects)
    ):
        return True
    import keras
    import tf_keras

    return any(k.saving.get_registered_object(name) is not None for k in (keras, tf_keras))


def find_payloads(config, custom_objects: dict | None = None) -> list[Payload]:
    """The executable entries of a Keras configuration (Keras 3, tf_keras or legacy .h5).

    Args:
        config: the parsed configuration (config.json of a .keras, the
            `model_config` attribute of an .h5, a SavedModel's layer metadata).
        custom_objects: names the caller supplies; references to them are not payloads.

    Returns:
        One `Payload` per Lambda bytecode and per reference to code outside
        Keras that is neither in `custom_objects` nor registered with
        `register_keras_serializable`; empty for a plain model.
    """
    found: list[Payload] = []
    # Iterative walk: a deeply nested configuration cannot exhaust the stack.
    todo: list[tuple[object, list[dict]]] = [(config, [])]
    while todo:
        node, stack = todo.pop()
        if isinstance(node, list):
            todo.extend((item, stack) for item in node)
            continue
        if not isinstance(node, dict):
            continue
        here = [*stack, node]
        class_name = node.get("class_name")
        inner = node.get("config")
        if class_name == "__lambda__":
            found.append(Payload(_where(stack), "a Python lambda's bytecode"))
        elif class_name == "Lambda" and isinstance(inner, dict):
            for key, label in (
                ("function_type", "function"),
                ("output_shape_type", "output shape"),
            ):
                if inner.get(key) == "lambda":
                    found.append(Payload(_where(here), f"a Python lambda's bytecode (its {label})"))
        module = node.get("module")
        if isinstance(module, str) and isinstance(class_name, str):
            name = inner if class_name == "function" and isinstance(inner, str) else class_name
            registered = node.get("registered_name") or name
            keras_code = module.split(".", 1)[0] in KERAS_PACKAGES or (
                module == "builtins"
                and isinstance(name, str)
                and (_keras_builtin(name) or not _python_builtin(name, node.get("registered_name")))
            )
            supplied = _registered(registered, custom_objects) or _registered(name, custom_objects)
            if not (keras_code or supplied):
                found.append(
                    Payload(
                        _where(stack) if class_name == "function" else _where(here),
                        f"a reference to '{module}.{name}', Python code outside Keras that is "
                        "neither in custom_objects nor registered",
                    )
                )
        todo.extend((value, here) for key, value in node.items() if key != "module")
    return found


def refuse_payloads(what: str, payloads: list[Payload]) -> None:
    """Raises ModelError listing the payloads, saying why and how to allow them."""
    if not payloads:
        return
    shown = "; ".join(str(p) for p in payloads[:5])
    more = f" (and {len(payloads) - 5} more)" if len(payloads) > 5 else ""
    raise ModelError(
        f"{what} holds executable code, which loading would run (model files are untrusted "
        "by default). Expected a model of Keras layers and registered custom objects only. "
        f"Received: {shown}{more}. {ALLOW_HINT}; for your own custom layers, pass "
        "custom_objects= instead"
    )


def _json(text, what: str, member: str) -> object:
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ModelError(
            f"{what} is damaged: its {member} is not valid JSON. Expected a file saved by "
            f"Keras. Received: {type(e).__name__}: {' '.join(str(e).split())[:200]}"
        ) from e


def read_archive(path: pathlib.Path, what: str) -> tuple[dict, dict, list[str]]:
    """(config, metadata, HDF5 member names) of a .keras archive, checked as a container.

    Raises:
        ModelError: not a readable zip, a decompression bomb, or no valid config.json.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            declared = sum(max(i.file_size, 0) for i in infos)
            stored = max(path.stat().st_size, 1)
            if declared > MIN_BOMB_BYTES and declared > MAX_ZIP_RATIO * stored:
                raise ModelError(
                    f"{what} declares {declared:,} bytes of content in a {stored:,}-byte archive "
                    "(a decompression bomb). Expected a .keras archive saved by Keras. "
                    f"Received: members {[i.filename for i in infos][:10]}"
                )
            names = {i.filename: i for i in infos}
            if "config.json" not in names:
                raise ModelError(
                    f"{what} is not a Keras archive: it has no config.json. Expected a .keras "
                    f"file saved by Keras. Received: members {sorted(names)[:10]}"
                )
            if names["config.json"].file_size > MAX_CONFIG_BYTES:
                raise ModelError(
                    f"{what} has a config.json of {names['config.json'].file_size:,} bytes. "
                    f"Expected a model configuration under {MAX_CONFIG_BYTES:,} bytes. "
                    "Received: an oversized config.json"
                )
            config = _json(archive.read("config.json"), what, "config.json")
            metadata = (
                _json(archive.read("metadata.json"), what, "metadata.json")
                if "metadata.json" in names
                else {}
            )
            h5 = [n for n in names if n.endswith(".h5")]
    except ModelError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as e:
        raise ModelError(
            f"{what} is not a readable .keras archive: it is damaged or truncated. Expected a "
            f"zip archive saved by Keras. Received: {type(e).__name__}: {str(e)[:200]}"
        ) from e
    except Exception as e:  # zlib.error, NotImplementedError (compression), ... of a damaged zip
        raise ModelError(
            f"{what} is not a readable .keras archive: it is damaged. Expected a zip archive "
            f"saved by Keras. Received: {type(e).__name__}: {str(e)[:200]}"
        ) from e
    if not isinstance(config, dict):
        raise ModelError(
            f"{what} is damaged: its config.json is not a model configuration. Expected a JSON "
            f"object. Received: {type(config).__name__}"
        )
    return config, metadata if isinstance(metadata, dict) else {}, h5


def keras_major(version) -> int | None:
    """3 for "3.15.1", 2 for "2.21.0", None when absent or unreadable."""
    if isinstance(version, bytes):
        version = version.decode("utf-8", "replace")
    try:
        return int(str(version).split(".", 1)[0])
    except ValueError:
        return None


def read_h5_config(path: pathlib.Path, what: str) -> tuple[object, int | None]:
    """(model_config, Keras major version) of a legacy .h5, already probed in a child.

    Raises:
        ModelError: no model_config (a weights-only file) or a damaged one.
    """
    import h5py

    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
            version = f.attrs.get("keras_version")
    except Exception as e:  # OSError, KeyError, ... of a damaged file
        raise ModelError(
            f"{what} is not a readable HDF5 model. Expected an .h5 file saved by Keras. "
            f"Received: {type(e).__name__}: {str(e)[:200]}"
        ) from e
    if raw is None:
        raise ModelError(
            f"{what} holds no model configuration (a weights-only .h5?). Expected a whole model "
            "saved with model.save('model.h5'). Received: no 'model_config' attribute"
        )
    config = _json(raw if isinstance(raw, (str, bytes)) else str(raw), what, "model_config")
    return config, keras_major(version)


def read_saved_model_metadata(path: pathlib.Path, what: str) -> list:
    """The layer configurations in a tf_keras SavedModel's keras_metadata.pb.

    Raises:
        ModelError: keras_metadata.pb cannot be parsed.
    """
    from tf_keras.protobuf import saved_metadata_pb2

    metadata = saved_metadata_pb2.SavedMetadata()
    try:
        metadata.ParseFromString((path / "keras_metadata.pb").read_bytes())
    except Exception as e:  # google.protobuf DecodeError, OSError
        raise ModelError(
            f"{what} has a damaged keras_metadata.pb. Expected a SavedModel written by tf_keras. "
            f"Received: {type(e).__name__}: {str(e)[:200]}"
        ) from e
    return [_json(node.metadata, what, "keras_metadata.pb") for node in metadata.nodes]


def _probe_limit(size: int) -> int:
    from keras_squeeze.safety.probe import DEFAULT_MEMORY_LIMIT

    return max(DEFAULT_MEMORY_LIMIT, 3 * size + 2 * 1024**3)


def check_model_file(
    path: pathlib.Path, custom_objects: dict | None, allow_unsafe: bool
) -> list[str]:
    """Checks a .keras or .h5 file before Keras deserializes it; returns the loaders to try.

    The container is checked (zip, JSON, HDF5 in a child process), then the
    configuration is searched for executable entries (`find_payloads`),
    which are refused unless `allow_unsafe`.

    Args:
        path: the model file.
        custom_objects: the caller's custom objects (references to them are fine).
        allow_unsafe: let payloads through (the caller trusts the file).

    Returns:
        The Keras flavours to load it with, in order ("keras3", "tf_keras"):
        the flavour that wrote the file first.

    Raises:
        ModelError: a damaged file, or executable code without `allow_unsafe`.
    """
    from keras_squeeze.safety import probe

    what = f"'{path}'"
    size = path.stat().st_size
    if zipfile.is_zipfile(path):
        config, metadata, h5_members = read_archive(path, what)
        for member in h5_members:
            probe.run_in_child(
                "hdf5",
                {"path": str(path), "member": member},
                f"{what} ({member})",
                "HDF5 library (h5py)",
                "an intact HDF5 file",
                memory_limit=_probe_limit(size),
            )
        major = keras_major(metadata.get("keras_version"))
        loaders = (
            [_compat.TF_KERAS, _compat.KERAS3] if major == 2 else [_compat.KERAS3, _compat.TF_KERAS]
        )
    else:
        probe.run_in_child(
            "hdf5",
            {"path": str(path)},
            what,
            "HDF5 library (h5py)",
            "an intact HDF5 file",
            memory_limit=_probe_limit(size),
        )
        config, major = read_h5_config(path, what)
        loaders = (
            [_compat.KERAS3, _compat.TF_KERAS] if major == 3 else [_compat.TF_KERAS, _compat.KERAS3]
        )
    if not allow_unsafe:
        refuse_payloads(what, find_payloads(config, custom_objects))
    return loaders


def check_saved_model(path: pathlib.Path, custom_objects: dict | None, allow_unsafe: bool) -> None:
    """Checks a tf_keras SavedModel's layer metadata for executable entries.

    Raises:
        ModelError: damaged metadata, or executable code without `allow_unsafe`.
    """
    what = f"'{path}'"
    configs = read_saved_model_metadata(path, what)
    if not allow_unsafe:
        refuse_payloads(what, find_payloads(configs, custom_objects))


# TensorFlow ops that read or write files, or call back into Python, when a graph runs.
FILE_OPS = frozenset(
    {
        "WriteFile",
        "ReadFile",
        "MatchingFiles",
        "Save",
        "SaveV2",
        "SaveSlices",
        "MergeV2Checkpoints",
        "Restore",
        "RestoreV2",
        "RestoreSlice",
        "ImmutableConst",
        "PrintV2",
        "CreateSummaryFileWriter",
        "WriteSummary",
        "WriteScalarSummary",
        "WriteHistogramSummary",
        "WriteImageSummary",
        "WriteAudioSummary",
        "WriteGraphSummary",
        "WriteRawProtoSummary",
        "PyFunc",
        "PyFuncStateless",
        "EagerPyFunc",
    }
)


def serving_ops(path: pathlib.Path, what: str) -> set[str] | None:
    """The op types the SavedModel's serving_default signature runs (None without one).

    Walks back from the signature's outputs through the graph and every
    function it calls (call ops and function-valued attributes, nested).

    Raises:
        ModelError: saved_model.pb cannot be parsed.
    """
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    try:
        saved.ParseFromString((path / "saved_model.pb").read_bytes())
    except Exception as e:  # google.protobuf DecodeError, OSError
        raise ModelError(
            f"{what} has a damaged saved_model.pb. Expected a SavedModel written by TensorFlow. "
            f"Received: {type(e).__name__}: {' '.join(str(e).split())[:200]}"
        ) from e
    if not saved.meta_graphs or "serving_default" not in saved.meta_graphs[0].signature_def:
        return None
    meta = saved.meta_graphs[0]
    nodes = {n.name: n for n in meta.graph_def.node}
    functions = {f.signature.name: f for f in meta.graph_def.library.function}
    signature = meta.signature_def["serving_default"]
    todo = [t.name.split(":")[0].lstrip("^") for t in signature.outputs.values()]
    seen_nodes: set[str] = set()
    seen_functions: set[str] = set()
    ops: set[str] = set()

    def called(node) -> list[str]:
        names = [node.op] if node.op in functions else []
        for value in node.attr.values():
            if value.func.name:
                names.append(value.func.name)
            names += [f.name for f in value.list.func]
        return names

    pending_functions: list[str] = []
    while todo or pending_functions:
        if todo:
            name = todo.pop()
            if name in seen_nodes or name not in nodes:
                continue
            seen_nodes.add(name)
            node = nodes[name]
            ops.add(node.op)
            todo += [i.split(":")[0].lstrip("^") for i in node.input]
            pending_functions += called(node)
            continue
        fname = pending_functions.pop()
        if fname in seen_functions or fname not in functions:
            continue
        seen_functions.add(fname)
        for node in functions[fname].node_def:
            ops.add(node.op)
            pending_functions += called(node)
    return ops


def check_saved_model_graph(path: pathlib.Path, allow_unsafe: bool) -> None:
    """Refuses a SavedModel whose serving signature touches files or calls Python.

    Raises:
        ModelError: the signature runs one of FILE_OPS, without `allow_unsafe`.
    """
    if allow_unsafe:
        return
    what = f"'{path}'"
    ops = serving_ops(path, what)
    bad = sorted((ops or set()) & FILE_OPS)
    if bad:
        raise ModelError(
            f"{what} holds executable code, which running it would execute: its serving_default "
            f"signature runs TensorFlow ops that read or write files or call Python ({bad}). "
            f"Expected a model computation only. Received: a SavedModel whose serving graph "
            f"uses {', '.join(bad)}. {ALLOW_HINT}"
        )
