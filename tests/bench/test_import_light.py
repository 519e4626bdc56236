"""Importing the harness loads neither TensorFlow nor the runtime nor matplotlib."""

from __future__ import annotations

import subprocess
import sys


def test_import_is_light():
    code = (
        "import sys, keras_squeeze.bench, keras_squeeze.cli.bench_lib; "
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'keras', 'tf_keras', 'ai_edge_litert', 'matplotlib')]; print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]"
