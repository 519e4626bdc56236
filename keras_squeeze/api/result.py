"""CompressionResult: the compressed model, its .tflite, the report, and save()."""

from __future__ import annotations

import dataclasses
import pathlib

from keras_squeeze.core import atomic, models
from keras_squeeze.core.progress import say
from keras_squeeze.data.inputs import Samples
from keras_squeeze.errors import RecipeError
from keras_squeeze.export import onnx as onnx_export
from keras_squeeze.export import saved_model as saved_model_export
from keras_squeeze.export import tflite as tflite_export
from keras_squeeze.export.artifact import Artifact, dir_size
from keras_squeeze.export.formats import FILE_NAMES, FORMATS, check_formats
from keras_squeeze.report import charts
from keras_squeeze.report.files import HTML, write_report_files
from keras_squeeze.report.report import Report
from keras_squeeze.safety.paths import check_slots, contained
from keras_squeeze.training import distribute

EDGETPU_INPUT = "model_for_edgetpu.tflite"
EDGETPU_COMPILED = "model_edgetpu.tflite"
# Modes whose .tflite tf2onnx cannot read: their ONNX is the Keras model's, float32, and says so.
NO_ONNX_FORM = {
    "int4-weights": (
        "the Keras model, FLOAT32 WEIGHTS: tf2onnx 1.17 cannot read the int4 tensors of "
        "model.tflite (TFLite type INT4), so the int4 weights are in model.tflite only"
    ),
}
_TFLITE_ONLY = {"int4-weights": "int4", "int8-mixed": "int8"}
# Every chart write_report_files may write; checked before any work like the other names.
CHART_FILES = (
    charts.SIZE,
    charts.ACCURACY,
    charts.LATENCY,
    charts.SPARSITY,
    charts.CLUSTERS,
    charts.SEARCH,
)


@dataclasses.dataclass(repr=False)
class CompressionResult:
    """What compress() returns.

    Attributes:
        model: the compressed Keras model, stripped of training wrappers (for
            post-training recipes, the model passed in: the quantization lives
            in the .tflite).
        tflite: the .tflite bytes, already verified in ai_edge_litert.
        report: the `Report`.
    """

    model: object
    tflite: bytes
    report: Report
    original: object = None
    samples: Samples | None = None
    verbose: int = 0
    edgetpu_tflite: bytes | None = None
    strategy: object = None
    # The Keras outputs compress() verified with (core.models.reused_outputs): save()
    # checks its files against the models as they were when the .tflite was made.
    outputs: dict = dataclasses.field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"CompressionResult(recipe={self.report.recipe!r}, tflite={len(self.tflite):,} bytes, "
            f"size_ratio={self.report.size_ratio:.3f})"
        )

    def save(self, directory, formats=FORMATS) -> pathlib.Path:
        """Writes the artifacts, each loaded back, run and compared before it lands.

        `directory/model.tflite`, `directory/model.onnx`,
        `directory/saved_model/1/` (TF Serving layout, `serving_default`),
        `directory/report.json`, `directory/report.md`, `directory/report.html`
        and, when matplotlib is installed, the `report_*.png` charts; after
        `compress(..., edgetpu=True)` also `model_for_edgetpu.tflite` (batch 1)
        and, when edgetpu_compiler is installed, `model_edgetpu.tflite`. Everything is
        written into a staging directory first and moved into place only when
        all artifacts passed verification, so a failure leaves no partial file.
        The reports name the artifacts by their paths inside `directory`, so a
        copied folder stays right. Under MultiWorkerMirroredStrategy only the
        chief writes: on the other workers save() writes nothing (and says so).

        Args:
            directory: the output directory (created if needed; files of the
                same names are replaced, nothing outside it is touched: a
                sub-directory that is a link to elsewhere is refused).
            formats: which of "tflite", "onnx", "saved_model" to write.

        Returns:
            The output directory.
        """
        formats = check_formats(formats, RecipeError)
        out = atomic.check_writable_dir(directory)
        if not distribute.is_chief(self.strategy):
            say(self.verbose, f"not the chief worker: nothing written to {out} (the chief writes)")
            return out
        slots = {FILE_NAMES[f]: f == "saved_model" for f in formats}
        slots.update(dict.fromkeys(("report.json", "report.md", HTML, *CHART_FILES), False))
        if self.edgetpu_tflite is not None:
            slots.update({EDGETPU_INPUT: False, EDGETPU_COMPILED: False})
        check_slots(out, slots)
        with models.reused_outputs(self.outputs):
            return self._save(out, formats)

    def _save(self, out: pathlib.Path, formats) -> pathlib.Path:
        records: dict[str, Artifact] = {}
        # Every artifact must reproduce the model it was made from; its reported
        # fidelity is against the original float model.
        reference = models.keras_outputs(self.original, self.samples)
        with atomic.staging_dir(out.parent) as stage:
            if "tflite" in formats:
                say(self.verbose, "writing model.tflite and checking it loads and runs")
                path = atomic.write_bytes(stage / FILE_NAMES["tflite"], self.tflite)
                fidelity, _ = tflite_export.verify(
                    None,
                    self.model,
                    self.samples,
                    self.report.quantization,
                    path=str(path),
                    reference_outputs=reference,
                )
                records["tflite"] = Artifact(
                    "tflite", path, len(self.tflite), fidelity, notes=[self.report.scheme]
                )
            if "onnx" in formats:
                say(self.verbose, "converting to ONNX with tf2onnx and checking it in onnxruntime")
                records["onnx"] = self._onnx(stage, reference)
            extra = self._edgetpu(stage, reference) if self.edgetpu_tflite is not None else []
            if "saved_model" in formats:
                say(self.verbose, "writing the SavedModel (saved_model/1/) and checking it")
                path = stage / FILE_NAMES["saved_model"] / "1"
                names = models.output_names(self.original)  # the user's, not quant_<name>
                saved_model_export.write(self.model, path, names)
                fidelity = saved_model_export.verify(
                    path, self.model, self.samples, reference_outputs=reference, output_names=names
                )
                records["saved_model"] = Artifact(
                    "saved_model",
                    path,
                    dir_size(path),
                    fidelity,
                    notes=[
                        "TF Serving layout, serving_default signature, float weights"
                        + (
                            f" (the {_TFLITE_ONLY[self.report.quantization]} weights are in "
                            "model.tflite only)"
                            if self.report.quantization in _TFLITE_ONLY
                            else ""
                        )
                    ],
                )
            self.report.exports = {}
            for name, record in records.items():
                inside = pathlib.PurePosixPath(FILE_NAMES[name])  # relative to `directory`
                record.path = inside / "1" if name == "saved_model" else inside
                self.report.exports[name] = record.to_dict()
            atomic.write_text(stage / "report.json", self.report.to_json())
            atomic.write_text(stage / "report.md", self.report.to_markdown())
            human = write_report_files(self.report, stage)
            out.mkdir(parents=True, exist_ok=True)
            for name in records:
                atomic.move_into_place(stage / FILE_NAMES[name], contained(out, FILE_NAMES[name]))
            for file in (*extra, "report.json", "report.md", *human):
                atomic.move_into_place(stage / file, contained(out, file))
        say(self.verbose, f"saved to {out}")
        return out

    def _edgetpu(self, stage: pathlib.Path, reference) -> list[str]:
        """Writes the batch-1 int8 .tflite, and compiles it when edgetpu_compiler exists."""
        from keras_squeeze.edgetpu import compile_for_edgetpu

        say(self.verbose, "writing model_for_edgetpu.tflite (batch 1) and checking it runs")
        path = atomic.write_bytes(stage / EDGETPU_INPUT, self.edgetpu_tflite)
        fidelity, _ = tflite_export.verify(
            None, self.model, self.samples, "int8", path=str(path), reference_outputs=reference
        )
        info = self.report.edgetpu if self.report.edgetpu is not None else {}
        info["input_file"] = EDGETPU_INPUT
        info["input_fidelity"] = fidelity.to_dict()
        compiled, log = compile_for_edgetpu(self.edgetpu_tflite, stage / EDGETPU_COMPILED)
        self.report.edgetpu = info
        if compiled is None:
            info["compiled"] = False
            info["compiler_note"] = (
                "edgetpu_compiler is not on PATH: compile model_for_edgetpu.tflite where it is "
                "installed (edgetpu_compiler model_for_edgetpu.tflite)"
            )
            return [EDGETPU_INPUT]
        info["compiled"] = True
        info["compiler_log"] = log.to_dict()
        say(self.verbose, "compiled model_edgetpu.tflite with edgetpu_compiler")
        return [EDGETPU_INPUT, EDGETPU_COMPILED]

    def _onnx(self, stage: pathlib.Path, reference) -> Artifact:
        from keras_squeeze.core import models
        from keras_squeeze.export.runtime import TFLiteRunner

        path = stage / FILE_NAMES["onnx"]
        if self.report.quantization in ("float32", *NO_ONNX_FORM):
            content = onnx_export.from_keras(self.model)
            atomic.write_bytes(path, content)
            fidelity, agreement = onnx_export.verify(
                path, self.model, self.samples, reference_outputs=reference
            )
            source = NO_ONNX_FORM.get(self.report.quantization, "the Keras model")
        else:
            specs = models.input_specs(self.original)
            content = onnx_export.from_tflite(
                self.tflite, [s.name for s in specs], models.output_names(self.original)
            )
            atomic.write_bytes(path, content)
            runner = TFLiteRunner(content=self.tflite)
            departs: list[str] = []
            fidelity, agreement = onnx_export.verify(
                path,
                self.model,
                self.samples,
                runner,
                reference_outputs=reference,
                output_names=models.output_names(self.original),
                warnings_out=departs,
            )
            self.report.warnings.extend(w for w in departs if w not in self.report.warnings)
            source = "model.tflite (QDQ form)"
        return Artifact(
            "onnx",
            path,
            len(content),
            fidelity,
            reference="model.tflite" if agreement is not None else None,
            agreement=agreement,
            notes=[f"tf2onnx from {source}, opset {onnx_export.opset_of(content)}"],
        )
