"""The package's floors: low-level packages never import high-level ones.

Read from the source with ast (every import, also those inside functions),
so the rule holds without running anything.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "keras_squeeze"
# The ground floor: used by everything, imports (besides itself) only these.
# safety (untrusted files and paths) is below core: core's loaders and atomic
# writes use it, and it uses nothing of the package but errors and _compat.
GROUND = {"core": {"errors", "_compat", "data", "safety"}, "safety": {"errors", "_compat"}}
LOW = (
    "safety",
    "core",
    "stages",
    "data",
    "training",
    "report",
    "export",
    "quantization",
    "pruning",
    "clustering",
    "distillation",
)
HIGH = (
    "api",
    "cli",
    "bench",
    "edgetpu",
    "channel_pruning",
    "depth_pruning",
    "keras_bridge",
    "layer_sensitivity",
)


def imported_packages(source: str) -> list[tuple[int, str]]:
    """(line, second-level keras_squeeze package) for every keras_squeeze import in `source`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "keras_squeeze" and len(parts) > 1:
                found.append((node.lineno, parts[1]))
    return found


def violations(root: pathlib.Path) -> list[str]:
    """Every import that runs up a floor, as "file:line imports keras_squeeze.package"."""
    bad = set()
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if len(parts) < 2 or parts[0] not in LOW:
            continue
        for line, package in imported_packages(path.read_text()):
            allowed = GROUND.get(parts[0])
            forbidden = package in HIGH or (
                allowed is not None and package not in allowed and package != parts[0]
            )
            if forbidden:
                bad.add(f"{path.relative_to(root)}:{line} imports keras_squeeze.{package}")
    return sorted(bad)


def test_low_level_packages_never_import_high_level_ones():
    assert violations(PACKAGE) == []


@pytest.mark.parametrize(
    "folder, source, expected",
    [
        ("export", "from keras_squeeze.api import models\n", "keras_squeeze.api"),
        ("pruning", "def f():\n    import keras_squeeze.cli.common\n", "keras_squeeze.cli"),
        ("core", "from keras_squeeze.report import metrics\n", "keras_squeeze.report"),
        ("stages", "from keras_squeeze.keras_bridge import to_tf_keras\n", "keras_bridge"),
        ("safety", "from keras_squeeze.core import models\n", "keras_squeeze.core"),
    ],
)
def test_the_check_finds_an_import_up_a_floor(tmp_path, folder, source, expected):
    (tmp_path / folder).mkdir()
    (tmp_path / folder / "bad.py").write_text(source)
    (tmp_path / folder / "fine.py").write_text("from keras_squeeze.errors import DataError\n")
    found = violations(tmp_path)
    assert len(found) == 1 and found[0].startswith(f"{folder}/bad.py:") and expected in found[0]
