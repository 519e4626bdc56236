"""Command-line figures (issue: command line, reports, examples, reference models).

- `keras-squeeze-compress` with no flags (train the example CNN on the digits,
  "int8", write ./squeezed/ in all three formats) must finish in under 3
  minutes on this machine and print its table: timed in a fresh process,
  from start to exit, as a user runs it.
- The other scripts, timed the same way: compress with a training recipe,
  export to every format with int8, bench on the reference models, and how
  fast a usage error comes back (no TensorFlow import before the flags are
  checked).
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

from benchmarks import common
from benchmarks.common import Table

DEFAULT_RUN_MAX_SECONDS = 180.0
USAGE_ERROR_MAX_SECONDS = 10.0
ROOT = pathlib.Path(__file__).resolve().parent.parent
# --quick: one epoch where the scripts train, and the export script writes the .tflite
# only (its ONNX and SavedModel writers are also those of the no-flag run, which writes
# all three): each conversion costs seconds.
FLOAT_EPOCHS = common.quick(4, 1)
PRUNE_EPOCHS = common.quick(2, 1)
EXPORT_FORMATS = common.quick(("tflite", "onnx", "saved_model"), ("tflite",))


def _run(
    module: str, args: list[str], cwd: pathlib.Path
) -> tuple[float, subprocess.CompletedProcess]:
    # As a user runs them: the scripts set TensorFlow's log level themselves.
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", f"keras_squeeze.cli.{module}", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    return time.perf_counter() - start, proc


def _printed_table(stdout: str) -> bool:
    return "top-1 agreement" in stdout and ".tflite bytes" in stdout and "artifacts in" in stdout


def run() -> list[Table]:
    timing = Table(
        "Scripts end to end (fresh process, wall time from start to exit)",
        ["command", "seconds", "exit code", "output", "target", "met"],
        notes=[
            "python -m keras_squeeze.cli.<script> (the console scripts run the same main()); "
            "2 cores shared with other jobs",
        ],
    )
    with tempfile.TemporaryDirectory(prefix="keras_squeeze-cli-bench-") as tmp:
        work = pathlib.Path(tmp)
        seconds, proc = _run("compress", [], work)
        files = (
            sorted(p.name for p in (work / "squeezed").iterdir()) if proc.returncode == 0 else []
        )
        ok = proc.returncode == 0 and _printed_table(proc.stdout)
        timing.add(
            "keras-squeeze-compress (no flags)",
            f"{seconds:.1f}",
            proc.returncode,
            f"table printed: {'yes' if ok else 'no'}; {', '.join(files)}",
            f"< {DEFAULT_RUN_MAX_SECONDS:.0f} s, table printed",
            "yes" if ok and seconds < DEFAULT_RUN_MAX_SECONDS else "NO",
        )
        if proc.returncode != 0:
            timing.notes.append(f"no-flag run failed: {proc.stderr.strip().splitlines()[-1:]}")

        import keras_squeeze as ks

        model = ks.data.train_example_model(epochs=FLOAT_EPOCHS, image_size=16)
        model_path = work / "cnn16.keras"
        model.save(model_path)
        references = sorted((ROOT / "tflite_models").glob("*.tflite"))

        def pruned_summary() -> str:
            r = json.loads((work / "pruned" / "report.json").read_text())
            acc = r["accuracy"]
            return (
                f"size {r['size_ratio']:.2f}x, gzip {r['gzip_ratio']:.2f}x, accuracy "
                f"{acc['original']:.3f} -> {acc['compressed']:.3f}, "
                f"{r['latency']['speedup']:.2f}x faster"
            )

        def exported_summary() -> str:
            r = json.loads((work / "exported" / "export.json").read_text())
            return ", ".join(f"{k} {a['bytes']:,} B" for k, a in r["artifacts"].items())

        for label, module, args, describe in (
            (
                "keras-squeeze-compress --recipe=prune --target_sparsity=0.75 "
                f"--epochs={PRUNE_EPOCHS} --benchmark (16x16 CNN file)",
                "compress",
                [
                    f"--model={model_path}",
                    "--recipe=prune",
                    "--target_sparsity=0.75",
                    f"--epochs={PRUNE_EPOCHS}",
                    "--benchmark",
                    "--output_dir=pruned",
                ],
                pruned_summary,
            ),
            (
                f"keras-squeeze-export --formats={','.join(EXPORT_FORMATS)} --quantization=int8 "
                "--data=digits",
                "export",
                [
                    f"--model={model_path}",
                    *(f"--formats={f}" for f in EXPORT_FORMATS),
                    "--quantization=int8",
                    "--data=digits",
                    "--output_dir=exported",
                ],
                exported_summary,
            ),
            (
                f"keras-squeeze-bench on the {len(references)} reference models",
                "bench",
                [f"--model={p}" for p in references] + ["--min_runs=50", "--memory=false"],
                lambda: f"{len(references)} models timed",
            ),
        ):
            seconds, proc = _run(module, args, work)
            timing.add(
                label,
                f"{seconds:.1f}",
                proc.returncode,
                describe() if proc.returncode == 0 else proc.stderr.strip()[-120:],
                "exit 0",
                "yes" if proc.returncode == 0 else "NO",
            )
        seconds, proc = _run("compress", ["--recipe=float16", "--edgetpu"], work)
        timing.add(
            "keras-squeeze-compress --recipe=float16 --edgetpu (usage error)",
            f"{seconds:.1f}",
            proc.returncode,
            proc.stderr.strip()[:80],
            f"exit 2 in < {USAGE_ERROR_MAX_SECONDS:.0f} s",
            "yes" if proc.returncode == 2 and seconds < USAGE_ERROR_MAX_SECONDS else "NO",
        )
    return [timing]


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    for table in run():
        print(table.text())
