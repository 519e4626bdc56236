"""Peak memory of one model, measured in a fresh child process (Linux).

Scheme, per model:

1. A child Python process imports numpy and ai_edge_litert (nothing else of
   TensorFlow), then resets its peak resident set by writing "5" to
   /proc/self/clear_refs (Linux >= 4.0), so VmHWM restarts at the current
   VmRSS, and reads that VmRSS as the baseline.
2. It loads the delegate (if any), builds the interpreter from the .tflite
   file (`model_path`, memory-mapped like benchmark_model does), calls
   allocate_tensors(), sets generated inputs and runs `invocations` inferences.
3. peak = VmHWM - baseline: the largest growth of the resident set caused by
   the model: the mapped model pages touched, the interpreter, XNNPACK's
   packed weights and workspace, the tensor arena, the delegate, the thread
   pool's stacks, and the input arrays. Shared libraries loaded by the
   imports, and the Python interpreter itself, are excluded.

A child per model keeps models from sharing (and hiding) each other's freed
heap, and keeps the measuring process's own history (TensorFlow, Keras) out.
Where clear_refs cannot be written the baseline is the import-time VmHWM and
the figure is marked as an upper bound.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tempfile

from keras_squeeze.bench.delegates import DelegateSpec
from keras_squeeze.bench.results import MemoryFootprint
from keras_squeeze.bench.sources import ModelSource
from keras_squeeze.errors import BenchmarkError
from keras_squeeze.safety.probe import signal_name

DEFAULT_TIMEOUT_S = 300.0
METHOD = (
    "child process: VmHWM - VmRSS after imports (peak reset via /proc/self/clear_refs), over "
    "interpreter creation, allocate_tensors and {n} inferences"
)
METHOD_NO_RESET = (
    "child process: VmHWM - VmHWM after imports (clear_refs not writable: an upper bound), over "
    "interpreter creation, allocate_tensors and {n} inferences"
)


def parse_status(text: str) -> dict[str, int]:
    """{"VmHWM": bytes, "VmRSS": bytes, ...} from the text of /proc/<pid>/status."""
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        parts = value.split()
        if key.startswith("Vm") and len(parts) == 2 and parts[1] == "kB":
            out[key] = int(parts[0]) * 1024
    return out


def read_status() -> dict[str, int]:
    return parse_status(pathlib.Path("/proc/self/status").read_text())


def reset_peak() -> bool:
    """Resets this process's VmHWM to its VmRSS; False where not permitted."""
    try:
        pathlib.Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_memory(
    source: ModelSource,
    spec: DelegateSpec,
    num_threads: int,
    invocations: int = 5,
    input_range: tuple[float, float] | None = None,
    seed: int = 0,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> MemoryFootprint:
    """Measures one model's peak memory in a child process (see the module docstring).

    Raises:
        BenchmarkError: not on Linux, or the child failed or timed out.
    """
    if not pathlib.Path("/proc/self/status").exists():
        raise BenchmarkError(
            "Peak memory is measured from /proc (Linux). Expected a Linux host. Received: "
            f"{sys.platform}; pass measure_memory=False"
        )
    with tempfile.TemporaryDirectory(prefix="keras_squeeze-mem-") as tmp:
        path = source.path
        if path is None:
            path = pathlib.Path(tmp) / "model.tflite"
            path.write_bytes(source.content)
        job = {
            "model_path": str(path),
            "num_threads": num_threads,
            "delegate": spec.to_dict(),
            "invocations": invocations,
            "input_range": list(input_range) if input_range else None,
            "seed": seed,
        }
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "keras_squeeze.bench._memory_child", json.dumps(job)],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise BenchmarkError(
                f"Measuring the memory of model '{source.name}' timed out. Expected it to finish "
                f"within {timeout:.0f} s. Received: no answer (pass measure_memory=False to skip)"
            ) from e
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode < 0:
        raise BenchmarkError(
            f"Model '{source.name}' crashed the TFLite runtime ({signal_name(-proc.returncode)}) "
            "in the child process measuring its memory: the file is damaged or hostile. "
            f"Expected an intact .tflite. Received: exit code {proc.returncode}"
        )
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise BenchmarkError(
            f"Measuring the memory of model '{source.name}' failed. Expected the model to load "
            f"and run in a fresh process. Received: exit code {proc.returncode}: {tail}"
        )
    data = json.loads(lines[-1])
    if "error" in data:
        raise BenchmarkError(
            f"Measuring the memory of model '{source.name}' failed. Expected the model to load "
            f"and run in a fresh process. Received: {data['error']}"
        )
    method = METHOD if data["reset"] else METHOD_NO_RESET
    return MemoryFootprint(
        peak_bytes=max(0, data["peak"] - data["baseline"]),
        method=method.format(n=invocations),
        peak_rss_bytes=data["peak"],
    )
