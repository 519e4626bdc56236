"""Child process of `keras_squeeze.safety.probe`: one native reader on one file.

Run as `python -m keras_squeeze.safety._child '<json>'`; prints one line
starting with `probe.RESULT_MARK` and a JSON answer. A crash or a hang here
is read by the parent as an error about the file.
"""

from __future__ import annotations

import json
import sys

MARK = "KERAS_SQUEEZE_PROBE "


def _limit_memory(limit: int | None) -> None:
    if not limit:
        return
    try:
        import resource

        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):
        pass  # not on this platform: the time limit still holds


def _details(entries) -> list:
    return [[d["name"], [int(s) for s in d["shape"]], str(d["dtype"].__name__)] for d in entries]


def probe_tflite(job: dict) -> dict:
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter, OpResolverType, load_delegate

    delegates = None
    if job.get("delegate"):
        delegates = [load_delegate(job["delegate"], job.get("delegate_options") or {})]
    resolver = (
        OpResolverType.AUTO
        if job.get("use_xnnpack", True)
        else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    interpreter = Interpreter(
        model_path=job["path"],
        experimental_op_resolver_type=resolver,
        experimental_delegates=delegates,
    )
    interpreter.allocate_tensors()
    inputs = interpreter.get_input_details()
    outputs = interpreter.get_output_details()
    if job.get("invoke", True):
        for d in inputs:
            interpreter.set_tensor(d["index"], np.zeros(d["shape"], dtype=d["dtype"]))
        interpreter.invoke()
        for d in outputs:
            interpreter.get_tensor(d["index"])
    return {"inputs": _details(inputs), "outputs": _details(outputs)}


def probe_hdf5(job: dict) -> dict:
    import io
    import zipfile

    import h5py

    counts = {"datasets": 0, "bytes": 0}

    def visit(_name, obj):
        dict(obj.attrs)
        if isinstance(obj, h5py.Dataset):
            value = obj[()]
            counts["datasets"] += 1
            counts["bytes"] += int(getattr(value, "nbytes", 0))

    member = job.get("member")
    if member is not None:
        with zipfile.ZipFile(job["path"]) as archive:
            source = io.BytesIO(archive.read(member))
    else:
        source = job["path"]
    with h5py.File(source, "r") as f:
        dict(f.attrs)
        f.visititems(visit)
    return counts


PROBES = {"tflite": probe_tflite, "hdf5": probe_hdf5}


def main(argv: list[str]) -> int:
    request = json.loads(argv[1])
    _limit_memory(request.get("memory_limit"))
    try:
        answer = PROBES[request["kind"]](request["job"])
    except MemoryError:
        answer = {"error": "MemoryError: the file asks for more memory than the probe allows"}
    except Exception as e:  # reported to the parent, which raises a ModelError
        text = " ".join(str(e).split())[:500]
        answer = {"error": f"{type(e).__name__}: {text}" if text else type(e).__name__}
    print(MARK + json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
