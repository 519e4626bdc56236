"""What the terminal shows: only our lines at the default verbosity, TensorFlow's again at 2.

Each script run is a fresh process with real TensorFlow, so TensorFlow's
start-up lines, the converter's calibration summary and LiteRT's delegate
notice are really printed (or not).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from keras_squeeze.cli import common, export
from tests.cli.helpers import error_lines, native_noise, script, script_env

# What TensorFlow prints at start-up depends on the machine (oneDNN on x86, the
# CUDA stub without a GPU): the test compares with a bare import on this one.
_START_UP_MARKERS = ("oneDNN custom operations", "Could not find cuda drivers", "cuInit")


@pytest.fixture(scope="module")
def start_up_lines():
    """The markers TensorFlow prints here when imported with its default log level."""
    proc = subprocess.run(
        [sys.executable, "-c", "import tensorflow as tf; tf.constant(1) + 1"],
        capture_output=True,
        text=True,
        env=script_env(),
        timeout=300,
        check=True,
    )
    return [m for m in _START_UP_MARKERS if m in proc.stderr]


def _compress(model_path, tmp_path, *args):
    return script(
        "compress",
        f"--model={model_path}",
        "--formats=tflite",
        f"--output_dir={tmp_path / 'out'}",
        *args,
        cwd=tmp_path,
    )


def test_default_verbosity_shows_only_our_lines(model_path, tmp_path, start_up_lines):
    proc = _compress(model_path, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert native_noise(proc.stderr) == [], proc.stderr[-3000:]
    for marker in (*_START_UP_MARKERS, "fully_quantize", "XNNPACK"):
        assert marker not in proc.stderr + proc.stdout
    assert "keras_squeeze: converting with 'int8' quantization" in proc.stdout


def test_verbose_2_shows_tensorflow_and_the_converter_again(model_path, tmp_path, start_up_lines):
    proc = _compress(model_path, tmp_path, "--verbose=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for marker in start_up_lines:
        assert marker in proc.stderr, marker
    assert "fully_quantize: 0, inference_type: 6" in proc.stderr


def test_a_failing_tensorflow_import_shows_what_it_printed(tmp_path):
    # A broken TensorFlow install: the lines it printed before failing are shown
    # with the one-line error, even at the default verbosity.
    fake = tmp_path / "broken_install" / "tensorflow"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "import os\n"
        "os.write(2, b'F0000 loader.cc:12] libtensorflow_framework.so.2: cannot open\\n')\n"
        "raise ImportError('libtensorflow_framework.so.2: cannot open shared object file')\n"
    )
    (tmp_path / "m.keras").write_bytes(b"checked after TensorFlow loads")
    path = os.pathsep.join([str(fake.parent), *sys.path])
    proc = script("export", "--model=m.keras", cwd=tmp_path, env={"PYTHONPATH": path})
    assert proc.returncode == common.EXIT_FAILURE
    assert "F0000 loader.cc:12] libtensorflow_framework.so.2: cannot open" in proc.stderr
    (line,) = error_lines(proc.stderr, export.PROGRAM)
    assert line == (
        "keras-squeeze-export: error: unexpected ImportError: libtensorflow_framework.so.2: "
        "cannot open shared object file (--verbose=2 shows the traceback)"
    )


def test_the_log_level_is_set_for_the_job_and_restored(monkeypatch):
    monkeypatch.delenv(common.TF_LOG_LEVEL_ENV, raising=False)
    with common.native_log_level(1):
        assert os.environ[common.TF_LOG_LEVEL_ENV] == common.QUIET_TF_LOG_LEVEL
    assert common.TF_LOG_LEVEL_ENV not in os.environ
    with common.native_log_level(2):
        assert common.TF_LOG_LEVEL_ENV not in os.environ
    # The user's own setting wins.
    monkeypatch.setenv(common.TF_LOG_LEVEL_ENV, "0")
    with common.native_log_level(0):
        assert os.environ[common.TF_LOG_LEVEL_ENV] == "0"
    assert os.environ[common.TF_LOG_LEVEL_ENV] == "0"
