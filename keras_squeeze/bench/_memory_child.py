"""Child process of `keras_squeeze.bench.memory`: one model's peak memory, as a JSON line.

Run as `python -m keras_squeeze.bench._memory_child '<json job>'`; imports
only numpy and ai_edge_litert before the baseline is taken.
"""

from __future__ import annotations

import json
import sys

import numpy as np


def main(argv: list[str]) -> int:
    from ai_edge_litert.interpreter import Interpreter  # noqa: F401  (loaded before the baseline)

    from keras_squeeze.bench import inputs, memory
    from keras_squeeze.bench.delegates import DelegateSpec, build_interpreter

    job = json.loads(argv[1])
    spec = DelegateSpec(**job["delegate"])
    input_range = tuple(job["input_range"]) if job["input_range"] else None
    rng = np.random.default_rng(job["seed"])
    reset = memory.reset_peak()
    before = memory.read_status()
    baseline = before["VmRSS"] if reset else before["VmHWM"]
    try:
        interpreter = build_interpreter(spec, job["num_threads"], model_path=job["model_path"])
        interpreter.allocate_tensors()
        for detail in interpreter.get_input_details():
            interpreter.set_tensor(detail["index"], inputs.generate(detail, rng, input_range))
        for _ in range(job["invocations"]):
            interpreter.invoke()
    except Exception as e:  # reported to the parent, which raises a BenchmarkError
        print(json.dumps({"error": f"{type(e).__name__}: {' '.join(str(e).split())[:500]}"}))
        return 0
    peak = memory.read_status()["VmHWM"]
    print(json.dumps({"baseline": baseline, "peak": peak, "reset": reset}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
