r"""keras-squeeze-export: a Keras model file to .tflite, ONNX and a TF Serving SavedModel.

Each file is loaded back in its own runtime (ai_edge_litert, onnxruntime,
tf.saved_model) and compared with the Keras model before anything is written;
all formats land together or none does.

    keras-squeeze-export --model=model.keras --formats=tflite --formats=onnx \
        --quantization=int8 --data=digits --output_dir=exported/
    keras-squeeze-export --model=model.keras --formats=saved_model --saved_model_version=3
    keras-squeeze-export --model=old_model.h5 --custom_objects=my_layers:scaled_tanh
    keras-squeeze-export --flagfile=export.flags

int8 and int16x8 calibrate on --data ('digits', a .npz with x/y arrays, or an
image folder with one sub-folder per class); a quantized ONNX file is
converted from the quantized .tflite. Exit codes: 0 done, 1 the export failed,
2 bad or contradictory flags.
"""

from __future__ import annotations

import sys

from absl import flags

from keras_squeeze.cli import common
from keras_squeeze.export.formats import FORMATS
from keras_squeeze.quantization.ptq import PTQ_MODES

PROGRAM = "keras-squeeze-export"
FLAGS = common.new_flag_values(__doc__)

_MODEL = common.define_model_flag(FLAGS, "Path to a .keras / .h5 file or SavedModel directory.")
_CUSTOM_OBJECTS = common.define_custom_objects_flag(FLAGS)
_FORMATS_FLAG = flags.DEFINE_multi_enum(
    "formats", ["tflite"], FORMATS, "Formats to write (repeat the flag).", flag_values=FLAGS
)
_QUANTIZATION = flags.DEFINE_enum(
    "quantization",
    "float32",
    list(PTQ_MODES),
    "Post-training quantization of the .tflite (and of the ONNX file, converted from it).",
    flag_values=FLAGS,
)
_DATA, _IMAGE_RANGE = common.define_data_flags(
    FLAGS,
    None,
    "representative samples for int8 / int16x8 and verification inputs (default: synthetic "
    "verification inputs).",
)
_NUM_CALIBRATION_SAMPLES, _INPUT_TYPE, _OUTPUT_TYPE = common.define_conversion_flags(FLAGS)
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", "exported", "Where the files go.", flag_values=FLAGS
)
_DYNAMIC_BATCH = flags.DEFINE_boolean(
    "dynamic_batch",
    False,
    "Keep the .tflite's batch dimension free (default: fixed at 1, what phones, "
    "microcontrollers and the Edge TPU run).",
    flag_values=FLAGS,
)
_SAVED_MODEL_VERSION = flags.DEFINE_integer(
    "saved_model_version",
    1,
    "Version directory of the SavedModel (TF Serving's <base>/<version>/).",
    lower_bound=0,
    flag_values=FLAGS,
)
_ALLOW_UNSAFE = common.define_unsafe_flag(FLAGS)
_VERBOSE = common.define_verbose_flag(FLAGS)

flags.mark_flag_as_required("model", flag_values=FLAGS)


def _lib():
    from keras_squeeze.cli import export_lib

    return export_lib


@flags.multi_flags_validator(
    ["formats", "quantization", "data", "inference_input_type", "inference_output_type"],
    flag_values=FLAGS,
)
def _check_options(values) -> bool:
    return common.validate(
        lambda: _lib().check_options(
            values["formats"] or [],
            values["quantization"],
            values["data"],
            values["inference_input_type"],
            values["inference_output_type"],
        )
    )


def main(argv) -> int:
    return common.script_main(
        argv,
        PROGRAM,
        _VERBOSE.value,
        lambda: _lib().run(
            model=_MODEL.value,
            custom_objects=_CUSTOM_OBJECTS.value,
            formats=tuple(_FORMATS_FLAG.value),
            output_dir=_OUTPUT_DIR.value,
            quantization=_QUANTIZATION.value,
            data=_DATA.value,
            num_calibration_samples=_NUM_CALIBRATION_SAMPLES.value,
            inference_input_type=_INPUT_TYPE.value,
            inference_output_type=_OUTPUT_TYPE.value,
            saved_model_version=_SAVED_MODEL_VERSION.value,
            dynamic_batch=_DYNAMIC_BATCH.value,
            image_range=_IMAGE_RANGE.value,
            allow_unsafe_deserialization=_ALLOW_UNSAFE.value,
            verbose=_VERBOSE.value,
        ),
    )


def run_main() -> None:
    """Console-script entry point."""
    common.run_script(main, PROGRAM, FLAGS)


if __name__ == "__main__":
    sys.exit(run_main())
