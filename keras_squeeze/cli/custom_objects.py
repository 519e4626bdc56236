"""--custom_objects=module:name: the custom layers and functions a model file needs.

A model saved with a custom activation, layer or loss loads only when Keras is
given the object under the name it was saved with. On the command line each
object is named by where it lives: `module:name` imports `module` (from the
current directory or PYTHONPATH) and takes its attribute `name` (a dotted
path such as `Outer.Inner` reaches a nested attribute); the object is given to
Keras under the last part of the name.

Example:
    >>> resolve(["my_layers:Swish", "my_layers:scaled_tanh"])
    {'Swish': <class 'my_layers.Swish'>, 'scaled_tanh': <function scaled_tanh ...>}
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import os
import re
import sys
from collections.abc import Mapping, Sequence

from keras_squeeze.errors import ConfigError

_SPEC = re.compile(
    r"(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):(?P<name>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)"
)


def parse_spec(spec) -> tuple[str, str]:
    """(module, attribute path) of one 'module:name' entry.

    Raises:
        ConfigError: not of the form 'module:name' with Python identifiers.
    """
    match = _SPEC.fullmatch(spec.strip()) if isinstance(spec, str) else None
    if match is None:
        raise ConfigError(
            "A custom_objects entry names a module and an object in it. Expected "
            f"'module:name', e.g. 'my_layers:Swish'. Received: {spec!r}"
        )
    return match["module"], match["name"]


def check_specs(specs: Sequence[str] | Mapping | None) -> None:
    """Checks the form of every entry without importing anything (flag validators use it).

    A dict of objects needs no check.
    """
    if specs is None or isinstance(specs, Mapping):
        return
    for spec in [specs] if isinstance(specs, str) else specs:
        parse_spec(spec)


def _import(module: str, spec: str):
    # Like `python -m`, look in the current directory first: a console script
    # does not have it on sys.path.
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module)
    except Exception as e:
        raise ConfigError(
            "The module of a custom_objects entry could not be imported. Expected a module "
            "importable from the current directory or PYTHONPATH. Received: "
            f"{spec!r} ({type(e).__name__}: {e})"
        ) from e
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def _attribute(mod, path: str, spec: str):
    obj = mod
    for part in path.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=3)
            hint = f"; close: {', '.join(close)}" if close else ""
            raise ConfigError(
                f"The module of a custom_objects entry has no object '{path}'. Expected a "
                f"class or function defined in {mod.__name__}. Received: {spec!r}{hint}"
            )
        obj = getattr(obj, part)
    if not callable(obj):
        raise ConfigError(
            "A custom_objects entry names something Keras cannot call. Expected a class or "
            f"function. Received: {spec!r} (a {type(obj).__name__})"
        )
    return obj


def resolve(custom_objects: Sequence[str] | Mapping | None) -> dict | None:
    """The {name: object} dict Keras loads a model with.

    Args:
        custom_objects: 'module:name' entries, or a dict (returned as a copy),
            or None.

    Raises:
        ConfigError: an entry not of the form 'module:name', a module that
            does not import, a missing or non-callable attribute, or two
            entries giving one name different objects.
    """
    if custom_objects is None:
        return None
    if isinstance(custom_objects, Mapping):
        return dict(custom_objects)
    if isinstance(custom_objects, str):
        custom_objects = [custom_objects]
    resolved: dict = {}
    for spec in custom_objects:
        module, path = parse_spec(spec)
        obj = _attribute(_import(module, spec), path, spec)
        key = path.rsplit(".", 1)[-1]
        if key in resolved and resolved[key] is not obj:
            raise ConfigError(
                f"Two custom_objects entries give the name '{key}' different objects. Expected "
                f"one object per name. Received: {', '.join(map(repr, custom_objects))}"
            )
        resolved[key] = obj
    return resolved or None


@contextlib.contextmanager
def scope(objects: Mapping | None):
    """Both Keras flavours resolve `objects` by name inside the block.

    Loading is not the only step that looks names up: cloning a model (the
    working copy, the frozen teacher) and rebuilding it in the other flavour
    serialize its config and read it back.
    """
    if not objects:
        yield
        return
    import keras
    import tf_keras

    with (
        keras.saving.custom_object_scope(dict(objects)),
        tf_keras.saving.custom_object_scope(dict(objects)),
    ):
        yield
