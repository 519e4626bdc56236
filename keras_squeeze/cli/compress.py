r"""keras-squeeze-compress: compress a Keras model file and write verified artifacts.

With no flags it trains the example CNN on the built-in digits briefly,
compresses it with "int8" and writes ./squeezed/.

    keras-squeeze-compress --model=model.keras --recipe=int8 --data=data.npz \
        --output_dir=out/
"""

from __future__ import annotations

import os
import sys

from absl import app, flags
from absl import logging as absl_logging

from keras_squeeze.cli import common

_RECIPES = ("dynamic", "float16", "int8", "int16x8", "float32")
_IO_TYPES = ("int8", "uint8", "float32", "int16")

_MODEL = flags.DEFINE_string(
    "model", None, "Path to a .keras / .h5 file or SavedModel directory. Default: the example CNN."
)
_RECIPE = flags.DEFINE_enum("recipe", "int8", _RECIPES, "Compression recipe.")
_DATA = flags.DEFINE_string(
    "data",
    "digits",
    "'digits' (built-in) or a .npz with x/y arrays, for calibration and validation.",
)
_OUTPUT_DIR = flags.DEFINE_string("output_dir", "squeezed", "Where the artifacts and reports go.")
_EPOCHS = flags.DEFINE_integer(
    "epochs", 8, "Training epochs of the example model (without --model).", lower_bound=1
)
_NUM_CALIBRATION_SAMPLES = flags.DEFINE_integer(
    "num_calibration_samples", 200, "Samples that calibrate int8 / int16x8.", lower_bound=1
)
_INPUT_TYPE = flags.DEFINE_enum(
    "inference_input_type", None, _IO_TYPES, "Model input type of the .tflite (recipe default)."
)
_OUTPUT_TYPE = flags.DEFINE_enum(
    "inference_output_type", None, _IO_TYPES, "Model output type of the .tflite (recipe default)."
)
_FORMATS = flags.DEFINE_multi_enum(
    "formats",
    ["tflite", "onnx", "saved_model"],
    ["tflite", "onnx", "saved_model"],
    "Formats to write.",
)
_VERBOSE = flags.DEFINE_integer(
    "verbose",
    1,
    "0 quiet, 1 a line per stage, 2 also tracebacks and converter output.",
    lower_bound=0,
    upper_bound=2,
)


@flags.multi_flags_validator(
    ["recipe", "inference_input_type", "inference_output_type"],
    message="--inference_input_type / --inference_output_type do not fit --recipe "
    "(int8: int8, uint8 or float32; int16x8: float32 or int16; others: float32)",
)
def _check_io_types(values) -> bool:
    from keras_squeeze.quantization.ptq import PTQ_MODES

    allowed = PTQ_MODES[values["recipe"]].io_types
    return all(
        values[k] in (None, *allowed) for k in ("inference_input_type", "inference_output_type")
    )


def main(argv) -> int:
    common.check_no_positional(argv)
    if _VERBOSE.value < 2:
        absl_logging.set_verbosity(absl_logging.WARNING)
    from keras_squeeze.cli import compress_lib

    return common.run_guarded(
        lambda: compress_lib.run(
            model=_MODEL.value,
            recipe=_RECIPE.value,
            output_dir=_OUTPUT_DIR.value,
            data=_DATA.value,
            epochs=_EPOCHS.value,
            num_calibration_samples=_NUM_CALIBRATION_SAMPLES.value,
            inference_input_type=_INPUT_TYPE.value,
            inference_output_type=_OUTPUT_TYPE.value,
            formats=tuple(dict.fromkeys(_FORMATS.value)),
            verbose=_VERBOSE.value,
        ),
        verbose=_VERBOSE.value,
        program="keras-squeeze-compress",
    )


def run_main() -> None:
    """Console-script entry point."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    app.run(main, flags_parser=common.flags_parser("keras-squeeze-compress"))


if __name__ == "__main__":
    sys.exit(run_main())
