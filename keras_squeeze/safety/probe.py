"""Native readers run in a child process: a crash or a hang there is an error here.

The LiteRT interpreter and HDF5 are C/C++ code; on a damaged or hostile file
they can crash the process (SIGSEGV) or loop forever (a few flipped bytes in
a .tflite or .h5 are enough). `run_in_child` runs one probe in a fresh Python
process (`python -m keras_squeeze.safety._child`) under a time limit and an
address-space limit, and turns every way it can end badly into a `ModelError`
that names the file:

- killed by a signal (a crash): "... crashed the TFLite runtime (SIGSEGV) ...";
- no answer within the time limit (a hang): the child is killed;
- a Python error in the child: its type and message.

A probe that passes means the same bytes are safe to open in this process
with the same reader.

Example:
    >>> probe_tflite(content, "'model.tflite'")       # raises ModelError if damaged
    {'inputs': [...], 'outputs': [...]}
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile

from keras_squeeze.errors import ModelError
from keras_squeeze.safety._child import MARK as RESULT_MARK

DEFAULT_TIMEOUT_S = 120.0
# Address space of a probe child: the interpreter, numpy and the model (mapped)
# fit well inside; a file that asks for more is refused instead of exhausting
# the machine.
DEFAULT_MEMORY_LIMIT = 8 * 1024**3
_PACKAGE_ROOT = str(pathlib.Path(__file__).resolve().parents[2])


def signal_name(number: int) -> str:
    """'SIGSEGV' for 11: the name of the signal that killed a child."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _tail(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no output"


def run_in_child(
    kind: str,
    job: dict,
    what: str,
    runtime: str,
    expected: str,
    *,
    timeout: float | None = None,
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
    return_errors: bool = False,
) -> dict:
    """Runs probe `kind` of `keras_squeeze.safety._child` on `job` in a fresh process.

    Args:
        kind: the probe ("tflite" or "hdf5").
        job: its JSON-ready arguments.
        what: the file, as error messages name it (e.g. "'model.tflite'").
        runtime: the native reader, as error messages name it.
        expected: what the file should have been ("an intact .tflite flatbuffer").
        timeout: seconds before the child is killed (default DEFAULT_TIMEOUT_S).
        memory_limit: the child's address-space limit in bytes (None: no limit).
        return_errors: return a Python error of the reader as {"error": "Type: message"}
            instead of raising (a crash or a hang still raises).

    Returns:
        The probe's answer (a dict).

    Raises:
        ModelError: the child crashed, hung, or reported an error (unless return_errors).
    """
    timeout = DEFAULT_TIMEOUT_S if timeout is None else timeout
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (_PACKAGE_ROOT, os.environ.get("PYTHONPATH")) if p
    )
    payload = json.dumps({"kind": kind, "job": job, "memory_limit": memory_limit})
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "keras_squeeze.safety._child", payload],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise ModelError(
            f"{what} did not finish loading in the {runtime} within {timeout:g} s (the child "
            f"process reading it was stopped): the file is damaged or hostile. Expected "
            f"{expected}. Received: no answer"
        ) from e
    answers = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_MARK)]
    if proc.returncode < 0:
        raise ModelError(
            f"{what} crashed the {runtime} ({signal_name(-proc.returncode)}) in the child "
            f"process reading it: the file is damaged or hostile. Expected {expected}. "
            f"Received: exit code {proc.returncode} (stderr: {_tail(proc.stderr)})"
        )
    if proc.returncode != 0 or not answers:
        raise ModelError(
            f"{what} could not be read by the {runtime} in a child process. Expected "
            f"{expected}. Received: exit code {proc.returncode}: {_tail(proc.stderr)}"
        )
    answer = json.loads(answers[-1][len(RESULT_MARK) :])
    if "error" in answer and not return_errors:
        raise ModelError(
            f"{what} could not be read by the {runtime}. Expected {expected}. "
            f"Received: {answer['error']}"
        )
    return answer


def probe_tflite(
    source,
    what: str,
    *,
    use_xnnpack: bool = True,
    delegate: str | None = None,
    delegate_options: dict | None = None,
    invoke: bool = True,
    timeout: float | None = None,
    return_errors: bool = False,
) -> dict:
    """Loads a .tflite in ai_edge_litert in a child process: build, allocate, one invoke.

    Args:
        source: the .tflite bytes or a path.
        what: the file, as error messages name it.
        use_xnnpack: False builds with the built-in kernels only.
        delegate, delegate_options: an external delegate library to load first.
        invoke: also run one inference on zero inputs.
        timeout: seconds before the child is killed (default DEFAULT_TIMEOUT_S).
        return_errors: return the interpreter's refusal as {"error": ...} instead of
            raising (the caller reproduces it with its own message); a crash or a
            hang still raises.

    Returns:
        {"inputs": [[name, shape, dtype], ...], "outputs": [...]}, or {"error": ...}.

    Raises:
        ModelError: the file crashes or hangs the interpreter, or is refused by it.
    """
    with tempfile.TemporaryDirectory(prefix="keras_squeeze-probe-") as tmp:
        if isinstance(source, (bytes, bytearray, memoryview)):
            path = pathlib.Path(tmp) / "model.tflite"
            path.write_bytes(bytes(source))
        else:
            path = pathlib.Path(source)
        job = {
            "path": str(path),
            "use_xnnpack": use_xnnpack,
            "delegate": delegate,
            "delegate_options": dict(delegate_options or {}),
            "invoke": invoke,
        }
        return run_in_child(
            "tflite",
            job,
            what,
            "TFLite runtime (ai_edge_litert)",
            "an intact .tflite flatbuffer",
            timeout=timeout,
            return_errors=return_errors,
        )


def probe_hdf5(path, what: str, *, timeout: float | None = None) -> dict:
    """Opens an HDF5 file with h5py in a child process and reads every attribute and dataset.

    Returns:
        {"datasets": count, "bytes": total dataset bytes}.

    Raises:
        ModelError: the file crashes, hangs or is refused by HDF5.
    """
    return run_in_child(
        "hdf5",
        {"path": str(path)},
        what,
        "HDF5 library (h5py)",
        "an intact HDF5 file",
        timeout=timeout,
    )
