"""The pipeline's own cost: compress() and save() against the bare engines doing the same work.

Each figure is one call timed in a fresh worker process (`python -m benchmarks.cost
worker '<json>'`), after the model and data are built and before anything else runs, so
imports and model building are outside it; peak memory is the worker's resident-set
high-water mark during the call (reset before it, `keras_squeeze.bench.memory`), less the
resident set before it. The two sides of a comparison run one after the other, and the
ratio is taken within that pair: this machine is shared and its load moves. "int8",
whose target sits close to its figure, runs `INT8_PAIRS` pairs and reports the median.

- "int8": `ks.compress(model, "int8", representative_data=x)` on 100 calibration samples
  (with its float32 baseline, verification on those samples, gzip figures) against the
  TFLite converter's own full-integer call on the same samples.
- "save": `result.save(dir)` (model.tflite, model.onnx, saved_model/1/, each loaded back
  and run, and the reports) against the bare three exports, each loaded and run on the
  same samples once: the .tflite in ai_edge_litert, tf2onnx's `from_keras` in
  onnxruntime, and Keras' SavedModel export through `tf.saved_model.load`.
- "prune" / "cluster" / "qat": compress() with the same fine-tuning steps (one epoch of
  `STEPS` batches of `BATCH`, labels only) against tfmot's guide on a tf_keras copy of the
  architecture (prune_low_magnitude / cluster_weights / quantize_model, fit, strip) and
  the int8 converter call.

The models are Keras 3 keras.applications (what TensorFlow >= 2.16 gives), random
weights, 10 classes, on pink-noise images: cost does not depend on what they learned.
--quick runs the example CNN at 32x32 instead, so that the section's every call runs in
seconds, and every call in one worker process (`QUICK_ONE_WORKER`): a worker's start-up
(importing TensorFlow) is most of a quick call's time. Its ratios say that the section
works, not what the targets are measured on.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

from benchmarks import common
from benchmarks.common import Table

ROOT = pathlib.Path(__file__).resolve().parent.parent
SIZE = common.quick(224, 32)
SAMPLES = common.quick(100, 20)
BATCH = 8
STEPS = common.quick(8, 2)
BARE_BATCH = 4  # the bare checks' batch (keras_squeeze's at 224x224x3: core.models)
# --quick: the example CNN (keras_squeeze.data.example_model at SIZE x SIZE x 3), which
# runs every call of the section in seconds; its figures say that the section runs.
EXAMPLE = "example CNN"
MODELS = common.quick(("MobileNetV2", "ResNet50"), (EXAMPLE,))
# The training rows run on the first model only (ResNet50's training rows would add about
# half an hour here; KS_COST_TRAIN_ALL=1 runs them too).
TRAIN_MODELS = MODELS if os.environ.get("KS_COST_TRAIN_ALL") == "1" else MODELS[:1]
# --quick leaves out "qat" (no target of its own; the slowest worker pair)
TRAIN_WORKS = common.quick(["prune", "cluster", "qat"], ["prune", "cluster"])
# "int8" compress is timed in this many pairs (the median pair is reported).
INT8_PAIRS = common.quick(3, 1)
TARGETS = {"int8": 1.3, "save": 1.3, "cluster vs prune": 2.0, "peak memory (int8)": 2.0}
# --quick: every call of the section in one worker process, one after another, rather
# than one process each (module docstring).
QUICK_ONE_WORKER = common.QUICK


# --- the worker side -----------------------------------------------------------------


def _trained_like(model):
    """`model` with a head whose top class stands clear (its kernel scaled up), as a
    trained head's does: random weights otherwise give near-uniform predictions whose top
    class int8 noise flips, and compress() then takes its failure path (localising the
    first departing layer: a conversion per probe) where a trained model would not."""
    head = [la for la in model._flatten_layers() if type(la).__name__ == "Dense"][-1]
    kernel, bias = head.get_weights()
    head.set_weights([kernel * 50.0, bias])
    return model


def _built(name: str, flavour: str):
    """`name` (a keras.applications model, or EXAMPLE) in `flavour`, random weights."""
    from keras_squeeze import _compat
    from keras_squeeze.data import example_model

    k = _compat.keras_module(flavour)
    k.utils.set_random_seed(0)
    if name == EXAMPLE:
        return _trained_like(example_model((SIZE, SIZE, 3), flavour=flavour))
    application = getattr(k.applications, name)
    return _trained_like(application(weights=None, input_shape=(SIZE, SIZE, 3), classes=10))


def _keras3(name: str):
    from keras_squeeze import _compat

    return _built(name, _compat.KERAS3)


def _tf_keras(name: str):
    from keras_squeeze import _compat

    return _built(name, _compat.TF_KERAS)


def _data():
    import numpy as np

    x = common.pink_noise_images(max(SAMPLES, BATCH * STEPS), SIZE)
    y = np.random.default_rng(0).integers(0, 10, len(x))
    return x, y


def _converter_int8(model, x) -> bytes:
    """The TFLite guide's full-integer call (int8 I/O, builtins only), `SAMPLES` samples."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x[i : i + 1]] for i in range(SAMPLES))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def _bare_exports(model, content: bytes, x, out: pathlib.Path) -> None:
    """The three exports a user would write by hand, each loaded and run on `x` once."""
    import numpy as np
    import onnxruntime
    import tensorflow as tf
    import tf2onnx
    from ai_edge_litert.interpreter import Interpreter

    path = out / "model.tflite"
    path.write_bytes(content)
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    inp, outp = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    scale, zero = inp["quantization"]
    for sample in x:
        q = np.clip(np.round(sample / scale + zero), -128, 127).astype(np.int8)
        interpreter.set_tensor(inp["index"], q[None])
        interpreter.invoke()
        interpreter.get_tensor(outp["index"])
    spec = (tf.TensorSpec((None, *x.shape[1:]), tf.float32, name="input"),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=13)
    (out / "model.onnx").write_bytes(proto.SerializeToString())
    session = onnxruntime.InferenceSession(str(out / "model.onnx"))
    model.export(str(out / "saved_model"), verbose=False)
    serve = tf.saved_model.load(str(out / "saved_model")).signatures["serving_default"]
    for start in range(0, len(x), BARE_BATCH):  # in batches, as keras_squeeze runs them
        batch = x[start : start + BARE_BATCH]
        session.run(None, {session.get_inputs()[0].name: batch})
        serve(tf.constant(batch))
        np.asarray(model(batch, training=False))  # the reference the three are checked against


def _tfmot(recipe: str, model, x, y) -> bytes:
    """tfmot's guide for `recipe` on a tf_keras model: wrap, fit, strip, int8."""
    import tf_keras

    from keras_squeeze import _compat

    tfmot = _compat.import_tfmot()
    callbacks = []
    if recipe == "prune":
        schedule = tfmot.sparsity.keras.PolynomialDecay(0.5, 0.8, 0, STEPS)
        wrapped = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
        callbacks = [tfmot.sparsity.keras.UpdatePruningStep()]
    elif recipe == "cluster":
        cl = tfmot.clustering.keras
        wrapped = cl.cluster_weights(
            model, number_of_clusters=16, cluster_centroids_init=cl.CentroidInitialization.LINEAR
        )
    else:
        wrapped = tfmot.quantization.keras.quantize_model(model)
    wrapped.compile(
        optimizer=tf_keras.optimizers.Adam(1e-4),
        loss=tf_keras.losses.SparseCategoricalCrossentropy(),
    )
    n = BATCH * STEPS
    wrapped.fit(x[:n], y[:n], batch_size=BATCH, epochs=1, verbose=0, callbacks=callbacks)
    if recipe == "prune":
        wrapped = tfmot.sparsity.keras.strip_pruning(wrapped)
    elif recipe == "cluster":
        wrapped = tfmot.clustering.keras.strip_clustering(wrapped)
    return _converter_int8(wrapped, x)


def worker(job: dict) -> dict:
    """One timed call (see the module docstring); returns its seconds and memory."""
    import keras_squeeze as ks
    from keras_squeeze.bench import memory

    name, side, work = job["model"], job["side"], job["work"]
    x, y = _data()
    out = pathlib.Path(tempfile.mkdtemp(prefix="ks_cost_"))
    model = _tf_keras(name) if work in ("prune", "cluster", "qat") and side == "bare" else None
    model = model or _keras3(name)
    calls = {
        ("int8", "bare"): lambda: _converter_int8(model, x),
        ("int8", "keras_squeeze"): lambda: ks.compress(
            model, "int8", representative_data=x[:SAMPLES], verbose=0
        ),
    }
    if work == "save":
        if side == "bare":
            content = _converter_int8(model, x)
            calls[(work, side)] = lambda: _bare_exports(model, content, x[:SAMPLES], out)
        else:
            result = ks.compress(model, "int8", representative_data=x[:SAMPLES], verbose=0)
            calls[(work, side)] = lambda: result.save(out / "squeezed")
    elif work in ("prune", "cluster", "qat"):
        calls[(work, "bare")] = lambda: _tfmot(work, model, x, y)
        calls[(work, "keras_squeeze")] = lambda: ks.compress(
            model,
            work,
            train_data=(x[: BATCH * STEPS], y[: BATCH * STEPS]),
            representative_data=x[:SAMPLES],
            epochs=1,
            batch_size=BATCH,
            distill=False,
            verbose=0,
        )
    reset = memory.reset_peak()
    before = memory.read_status()
    start = time.perf_counter()
    done = calls[(work, side)]()
    seconds = time.perf_counter() - start
    peak = memory.read_status()["VmHWM"]
    shutil.rmtree(out, ignore_errors=True)
    base = before["VmRSS"] if reset else before["VmHWM"]
    report = getattr(done, "report", None)
    return {
        "seconds": seconds,
        "peak_mb": peak / 2**20,
        "added_mb": (peak - base) / 2**20,
        # what else compress() did (e.g. QAT parity failing on these random weights
        # localises the first departing layer: a conversion per probe)
        "warnings": [w[:160] for w in report.warnings] if report is not None else [],
    }


def _gzip_figures(name: str) -> dict:
    """gzip of the model's float32 and int8 .tflite files: exact (level 9) and the
    estimate `report.metrics.gzip_size` gives above its exact-size limit, with their times."""
    import gzip

    from keras_squeeze.export import tflite as tflite_export
    from keras_squeeze.report import metrics

    model = _keras3(name)
    x, _ = _data()
    files = {"float32": tflite_export.convert(model, "float32"), "int8": _converter_int8(model, x)}
    figures = {}
    for kind, content in files.items():
        start = time.perf_counter()
        exact = len(gzip.compress(content, 9, mtime=0))
        exact_s = time.perf_counter() - start
        start = time.perf_counter()
        estimate = metrics.gzip_size(content)
        estimate_s = time.perf_counter() - start
        figures[kind] = dict(
            bytes=len(content),
            exact=exact,
            exact_s=exact_s,
            estimate=estimate,
            estimate_s=estimate_s,
        )
    return figures


# --- the parent side -----------------------------------------------------------------


def _run_worker(jobs: list[dict]) -> list[dict]:
    """The figures of `jobs`, timed one after another in one fresh worker process."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.cost", "worker", json.dumps(jobs)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("[{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"cost worker {jobs} failed ({proc.returncode}): {tail}")
    return json.loads(lines[-1])


# Figures already measured, kept across an interrupted run (KS_COST_KEEP=path).
_KEPT = pathlib.Path(os.environ["KS_COST_KEEP"]) if os.environ.get("KS_COST_KEEP") else None


def _key(job: dict) -> str:
    return json.dumps(job, sort_keys=True)


def _kept() -> dict:
    return json.loads(_KEPT.read_text()) if _KEPT is not None and _KEPT.exists() else {}


def _measured(job: dict, ahead: dict) -> dict:
    """`job`'s figures: kept, measured ahead (`_measure_ahead`), or from a worker of its own."""
    key = _key(job)
    kept = _kept()
    if key not in kept:
        kept[key] = ahead[key] if key in ahead else _run_worker([job])[0]
        if _KEPT is not None:
            _KEPT.write_text(json.dumps(kept))
    return kept[key]


def _pair_jobs(model: str, work: str) -> list[dict[str, dict]]:
    """The jobs of `work`'s pairs: {side: job} per pair, "bare" first."""
    return [
        {
            side: {"model": model, "work": work, "side": side, "size": SIZE}
            | ({"repeat": repeat} if repeat else {})
            for side in ("bare", "keras_squeeze")
        }
        for repeat in range(INT8_PAIRS if work == "int8" else 1)
    ]


def _gzip_job(model: str) -> dict:
    return {"model": model, "work": "gzip", "side": "-", "size": SIZE}


def _works(model: str) -> list[str]:
    return ["int8", "save"] + (TRAIN_WORKS if model in TRAIN_MODELS else [])


def _measure_ahead() -> dict:
    """With QUICK_ONE_WORKER, every job not kept yet, run in one worker in the order the
    tables take them: {key: figures}; else nothing."""
    if not QUICK_ONE_WORKER:
        return {}
    kept = _kept()
    jobs = [
        job
        for model in MODELS
        for work in _works(model)
        for pair in _pair_jobs(model, work)
        for job in pair.values()
    ]
    jobs = [job for job in jobs + [_gzip_job(m) for m in MODELS] if _key(job) not in kept]
    return {_key(job): f for job, f in zip(jobs, _run_worker(jobs) if jobs else [], strict=True)}


def _pair(model: str, work: str, ahead: dict) -> dict:
    """Both sides of `work`, back to back; "int8" (whose target sits near its figure) is
    measured in `INT8_PAIRS` pairs, and each side's figures are the pair of median ratio."""
    pairs = []
    for jobs in _pair_jobs(model, work):
        measured = {}
        for side, job in jobs.items():
            measured[side] = _measured(job, ahead)
            print(
                f"  cost: {model} {work} ({side}): {measured[side]['seconds']:.1f} s, "
                f"+{measured[side]['added_mb']:.0f} MB",
                flush=True,
            )
        pairs.append(measured)
    ratios = [m["keras_squeeze"]["seconds"] / m["bare"]["seconds"] for m in pairs]
    median = sorted(range(len(pairs)), key=lambda i: ratios[i])[len(pairs) // 2]
    return {**pairs[median], "ratios": ratios}


def _verdict(ratio: float, target: float) -> str:
    return "yes" if ratio <= target else "no"


def run() -> list[Table]:
    workers = "all in one worker process" if QUICK_ONE_WORKER else "one worker process each"
    time_rows = Table(
        f"Pipeline cost at {SIZE}x{SIZE}: compress() and save() vs the bare engines "
        f"(seconds of the call, {workers}, pair by pair)",
        [
            "model",
            "work",
            "bare engine s",
            "keras_squeeze s",
            "ratio",
            "target",
            "met",
            "bare peak +MB",
            "keras_squeeze peak +MB",
            "memory ratio",
        ],
    )
    ahead = _measure_ahead()
    pairs = {}
    for model in MODELS:
        for work in _works(model):
            pair = pairs[(model, work)] = _pair(model, work, ahead)
            bare, ours = pair["bare"], pair["keras_squeeze"]
            ratio = ours["seconds"] / bare["seconds"]
            target = TARGETS.get(work)
            mem = ours["added_mb"] / max(bare["added_mb"], 1.0)
            time_rows.add(
                model,
                work,
                f"{bare['seconds']:.1f}",
                f"{ours['seconds']:.1f}",
                f"{ratio:.2f}x"
                + (
                    f" (median of {len(pair['ratios'])} pairs: "
                    + ", ".join(f"{r:.2f}" for r in pair["ratios"])
                    + ")"
                    if len(pair["ratios"]) > 1
                    else ""
                ),
                f"<= {target}x" if target else "reported",
                _verdict(ratio, target) if target else "",
                f"{bare['added_mb']:.0f}",
                f"{ours['added_mb']:.0f}",
                f"{mem:.2f}x" + (" (target <= 2x)" if work == "int8" else ""),
            )
    time_rows.notes.extend(
        [
            f"one call per side, the two sides back to back ('int8': the median of "
            f"{INT8_PAIRS} such pairs); {BATCH * STEPS} training samples "
            f"({STEPS} steps of {BATCH}), {SAMPLES} calibration samples; labels only"
            + (
                "; --quick: every call in one worker process, one after another: the later "
                "ones start warm, and their peak memory counts only growth past what the "
                "earlier ones left"
                if QUICK_ONE_WORKER
                else ""
            ),
            "what 'int8' compress adds to the converter call (cProfile of ResNet50 here): "
            "the batch-1 copy of the model and its check, the verification run of the .tflite, "
            "the report; the Keras outputs it is verified against are computed in a thread "
            "while the converter runs (`core.models.OutputsAhead`), and the float32 baseline "
            "adds nothing: it is the float stage of the int8 conversion "
            "(`export.tflite.float_stage`)",
            "save(): the bare side exports ONNX from the Keras model with tf2onnx and Keras' "
            "SavedModel; save() converts the .tflite to ONNX in QDQ form and checks every file "
            "against the Keras outputs compress() verified with",
        ]
    )
    summary = Table(
        "Cost targets",
        ["model", "figure", "measured", "target", "met"],
    )
    for model in MODELS:
        if (model, "cluster") in pairs:
            cluster = pairs[(model, "cluster")]["keras_squeeze"]["seconds"]
            prune = pairs[(model, "prune")]["keras_squeeze"]["seconds"]
            summary.add(
                model,
                "'cluster' / 'prune' compress time (same steps)",
                f"{cluster / prune:.2f}x ({cluster:.0f} s / {prune:.0f} s)",
                "<= 2x",
                _verdict(cluster / prune, 2.0),
            )
        int8 = pairs[(model, "int8")]
        mem = int8["keras_squeeze"]["added_mb"] / max(int8["bare"]["added_mb"], 1.0)
        summary.add(
            model,
            "'int8' compress peak memory / converter's (added to the process)",
            f"{mem:.2f}x ({int8['keras_squeeze']['added_mb']:.0f} / "
            f"{int8['bare']['added_mb']:.0f} MB)",
            "<= 2x",
            _verdict(mem, 2.0),
        )
    gz = Table(
        "gzip figures: exact gzip -9 vs the estimate report.metrics.gzip_size gives above "
        "16 MiB (every 4th 64 KiB block)",
        ["model", "file", "bytes", "exact gzip", "exact s", "reported gzip", "reported s", "error"],
    )
    for model in MODELS:
        print(f"  cost: {model} gzip", flush=True)
        figures = _measured(_gzip_job(model), ahead)
        for kind, f in figures.items():
            gz.add(
                model,
                kind,
                f"{f['bytes']:,}",
                f"{f['exact']:,}",
                f"{f['exact_s']:.2f}",
                f"{f['estimate']:,}",
                f"{f['estimate_s']:.2f}",
                f"{100 * (f['estimate'] - f['exact']) / f['exact']:+.3f}%",
            )
    return [time_rows, summary, gz]


def _worker_main(argv: list[str]) -> int:
    results = [
        _gzip_figures(job["model"]) if job["work"] == "gzip" else worker(job)
        for job in json.loads(argv[0])
    ]
    print(json.dumps(results), flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        sys.exit(_worker_main(sys.argv[2:]))
    for table in run():
        print(table.text())
