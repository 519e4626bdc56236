"""The stage registry: one entry per training stage, in pipeline order.

The built-in stages live in their own folders and register themselves when
their module is imported; the registry imports them on first use, so
`import keras_squeeze` stays cheap. A stage defined elsewhere registers with
`register_stage(MyStage())` and is then part of `ks.Recipe`, `compress()`,
the report and the command line like a built-in one.

Everything that used to name stages one by one derives from here: the
pipeline order, the engine wrappers a chained stage refuses, which stages run
in the model's own flavour, the converter options and the per-layer report.
"""

from __future__ import annotations

import importlib
import threading

from keras_squeeze.errors import RecipeError
from keras_squeeze.stages.base import ENGINES, Stage

# Each module registers its stage at import.
BUILTIN_MODULES = (
    "keras_squeeze.channel_pruning.stage",
    "keras_squeeze.pruning.stage",
    "keras_squeeze.clustering.stage",
    "keras_squeeze.quantization.qat_stage",
)

_STAGES: dict[str, Stage] = {}
_lock = threading.RLock()
_loaded = False


def _load_builtins() -> None:
    global _loaded
    with _lock:
        if _loaded:
            return
        _loaded = True
        for module in BUILTIN_MODULES:
            importlib.import_module(module)


def register_stage(stage: Stage) -> Stage:
    """Adds a training stage to the pipeline; returns it.

    Raises:
        RecipeError: not a Stage, a name already registered, a name that is not
            an identifier, an order already taken, or an unknown engine.
    """
    if not isinstance(stage, Stage):
        raise RecipeError(
            "register_stage takes a stage object. Expected an instance of a "
            f"keras_squeeze.stages.Stage subclass. Received: {stage!r}"
        )
    name = stage.name
    if not isinstance(name, str) or not name.isidentifier():
        raise RecipeError(
            "A stage's name is its recipe key. Expected a Python identifier such as 'prune'. "
            f"Received: name={name!r}"
        )
    if stage.engine not in ENGINES:
        raise RecipeError(
            f"Unknown stage engine. Expected one of {ENGINES}. Received: engine={stage.engine!r}"
        )
    with _lock:
        if name in _STAGES and _STAGES[name] is not stage:
            raise RecipeError(
                f"A stage named '{name}' is registered already. Expected a new name, or "
                f"unregister_stage('{name}') first. Received: {stage!r}"
            )
        taken = [s.name for s in _STAGES.values() if s.order == stage.order and s.name != name]
        if taken:
            raise RecipeError(
                f"Stage '{taken[0]}' already runs at order {stage.order}. Expected an order no "
                f"other stage has (built-in: {order_text()}). Received: {stage!r}"
            )
        _STAGES[name] = stage
    return stage


def unregister_stage(name: str) -> None:
    """Removes a stage registered with `register_stage` (built-in stages stay).

    Raises:
        RecipeError: no such stage, or a built-in one.
    """
    _load_builtins()
    with _lock:
        stage = _STAGES.get(name)
        if stage is None or type(stage).__module__ in BUILTIN_MODULES:
            raise RecipeError(
                "Only stages registered with register_stage can be removed. Expected the name "
                f"of one. Received: {name!r}"
            )
        del _STAGES[name]


def stages() -> list[Stage]:
    """Every registered stage, in the order they run."""
    _load_builtins()
    with _lock:
        return sorted(_STAGES.values(), key=lambda s: s.order)


def get_stage(name: str) -> Stage:
    """The stage called `name`.

    Raises:
        RecipeError: no stage of that name is registered.
    """
    for stage in stages():
        if stage.name == name:
            return stage
    raise RecipeError(
        f"Unknown training stage. Expected one of {[s.name for s in stages()]}. Received: {name!r}"
    )


def order_text() -> str:
    """E.g. "channel_prune -> prune -> cluster -> qat"."""
    return " -> ".join(s.name for s in sorted(_STAGES.values(), key=lambda s: s.order))


def wrappers() -> dict[str, str]:
    """{engine wrapper class name: what a model in it is}, over every stage."""
    return {cls: state for s in stages() for cls, state in s.wrappers.items()}
