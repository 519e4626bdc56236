"""Builds the reference .tflite models from the examples, with manifest.json.

    make models                      # or: python tflite_models/build.py

Each model comes out of one example script (examples/) trained on the built-in
digits at 8x8; the manifest records, per file: the example and recipe that
made it, its bytes and sha256, its accuracy on the 397 test digits (measured
on the file itself with ai_edge_litert), and its input / output shape and
dtype. tests/bench/test_reference_models.py checks the files against the
manifest and benchmarks every one of them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pathlib
import sys
import tempfile

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
MANIFEST = "manifest.json"
IMAGE_SIZE = 8
# Settings the models are built with (the examples' defaults are the same or larger).
SETTINGS = {
    "quickstart_keras3": {"epochs": 30},
    "prune_and_quantize": {"epochs": 12, "finetune_epochs": 4, "target_sparsity": 0.75},
    "qat_edgetpu": {"epochs": 12, "finetune_epochs": 3},
    "distill_student": {"teacher_epochs": 12, "epochs": 30},
}


@dataclasses.dataclass
class Entry:
    """One reference model before it is written."""

    file: str
    example: str
    recipe: str
    content: bytes
    notes: str = ""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def io_spec(content: bytes) -> dict:
    """Input and output shape / dtype of a single-input, single-output .tflite."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=content)
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    return {
        "input": {
            "shape": [int(d) for d in inp["shape_signature"]],
            "dtype": inp["dtype"].__name__,
        },
        "output": {
            "shape": [int(d) for d in out["shape_signature"]],
            "dtype": out["dtype"].__name__,
        },
    }


def tflite_accuracy(content: bytes, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of a .tflite classifier on (x, y), run with ai_edge_litert."""
    from keras_squeeze.data.inputs import Samples
    from keras_squeeze.export.runtime import TFLiteRunner

    runner = TFLiteRunner(content=content)
    samples = Samples(inputs=[x], labels=y, count=len(x), available=len(x), source="test digits")
    (logits,) = runner.run(samples, list(runner.input_details), list(runner.output_details))
    return float(np.mean(np.argmax(logits, axis=-1) == y))


def test_digits(image_size: int = IMAGE_SIZE):
    from keras_squeeze.data import load_digits

    _, (x_test, y_test) = load_digits(image_size)
    return x_test, y_test


def _example(name: str):
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import importlib

    return importlib.import_module(f"examples.{name}")


def quickstart_entries(model, result) -> list[Entry]:
    import keras_squeeze as ks

    float32 = ks.export.to_tflite(model).content
    (x_train, _), _ = ks.data.load_digits(IMAGE_SIZE)
    entries = [
        Entry("small_cnn_float32.tflite", "quickstart_keras3", "float32", float32),
        Entry("small_cnn_int8.tflite", "quickstart_keras3", "int8", result.tflite),
    ]
    for mode in ("float16", "dynamic"):
        content = ks.export.to_tflite(model, quantization=mode, verification_data=x_train).content
        entries.append(Entry(f"small_cnn_{mode}.tflite", "quickstart_keras3", mode, content))
    return entries


def prune_entries(result) -> list[Entry]:
    import keras_squeeze as ks

    target = result.report.stages[0]["settings"]["target_sparsity"]
    return [
        Entry(
            "digits_cnn_float32.tflite",
            "prune_and_quantize",
            "float32 (the model before pruning)",
            ks.export.to_tflite(result.original).content,
        ),
        Entry(
            f"digits_cnn_pruned{round(target * 100)}_int8.tflite",
            "prune_and_quantize",
            f"prune to {target:.0%} + int8",
            result.tflite,
            f"gzip {result.report.compressed.tflite_gzip_bytes:,} bytes",
        ),
    ]


def qat_entries(result) -> list[Entry]:
    return [
        Entry(
            "digits_cnn_qat_uint8io.tflite",
            "qat_edgetpu",
            "qat (uint8 input/output)",
            result.tflite,
            f"Edge TPU: {result.report.edgetpu['ops_on_edgetpu']}/"
            f"{result.report.edgetpu['ops_total']} ops map (batch-1 copy)",
        )
    ]


def student_entries(result) -> list[Entry]:
    return [
        Entry("student_int8.tflite", "distill_student", "distilled student + int8", result.tflite)
    ]


def collect(settings: dict = SETTINGS, scratch=None) -> list[Entry]:
    """Runs the examples and returns their models as entries."""
    scratch = pathlib.Path(scratch or tempfile.mkdtemp(prefix="keras_squeeze-models-"))
    common = {"image_size": IMAGE_SIZE, "verbose": 0}
    model, result = _example("quickstart_keras3").main(
        scratch / "quickstart", **common, **settings["quickstart_keras3"]
    )
    entries = quickstart_entries(model, result)
    prune = _example("prune_and_quantize").main(
        scratch / "prune", **common, **settings["prune_and_quantize"]
    )
    entries += prune_entries(prune)
    qat = _example("qat_edgetpu").main(scratch / "qat", **common, **settings["qat_edgetpu"])
    entries += qat_entries(qat)
    _, student = _example("distill_student").main(
        scratch / "student", **common, **settings["distill_student"]
    )
    entries += student_entries(student)
    return entries


def write_models(entries: list[Entry], out_dir=HERE) -> dict:
    """Writes the .tflite files and manifest.json (atomically); returns the manifest."""
    import tensorflow as tf

    import keras_squeeze as ks
    from keras_squeeze.core import atomic

    out = pathlib.Path(out_dir)
    x_test, y_test = test_digits()
    models = {}
    for e in entries:
        atomic.write_bytes(out / e.file, e.content)
        models[e.file] = {
            "example": f"examples/{e.example}.py",
            "recipe": e.recipe,
            "bytes": len(e.content),
            "sha256": sha256(e.content),
            "accuracy": round(tflite_accuracy(e.content, x_test, y_test), 4),
            **io_spec(e.content),
            "notes": e.notes,
        }
    manifest = {
        "data": f"accuracy: the last {len(y_test)} built-in digits (the test split) at "
        f"{IMAGE_SIZE}x{IMAGE_SIZE}, run with ai_edge_litert on each file",
        "built_with": {"keras_squeeze": ks.__version__, "tensorflow": tf.__version__},
        "models": models,
    }
    atomic.write_text(out / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return manifest


def load_manifest(directory=HERE) -> dict:
    return json.loads((pathlib.Path(directory) / MANIFEST).read_text())


def check_files(directory=HERE) -> list[str]:
    """Differences between the manifest and the files (empty when they match)."""
    directory = pathlib.Path(directory)
    problems = []
    listed = load_manifest(directory)["models"]
    for name, record in listed.items():
        path = directory / name
        if not path.is_file():
            problems.append(f"{name}: missing")
            continue
        data = path.read_bytes()
        if len(data) != record["bytes"]:
            problems.append(f"{name}: {len(data)} bytes, manifest says {record['bytes']}")
        if sha256(data) != record["sha256"]:
            problems.append(f"{name}: sha256 differs from the manifest")
    extra = sorted(p.name for p in directory.glob("*.tflite") if p.name not in listed)
    problems += [f"{name}: not in the manifest" for name in extra]
    return problems


def main() -> None:
    manifest = write_models(collect())
    total = sum(m["bytes"] for m in manifest["models"].values())
    for name, m in manifest["models"].items():
        print(f"{name:36s} {m['bytes']:>9,} bytes  accuracy {m['accuracy']:.4f}  {m['recipe']}")
    print(f"{len(manifest['models'])} models, {total:,} bytes, in {HERE}")


if __name__ == "__main__":
    main()
