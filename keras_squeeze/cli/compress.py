r"""keras-squeeze-compress: compress a Keras model file and write verified artifacts.

With no flags it trains the example CNN on the built-in digits briefly,
compresses it with "int8" and writes ./squeezed/.

    keras-squeeze-compress --model=model.keras --recipe=int8 --data=data.npz \
        --output_dir=out/
    keras-squeeze-compress --model=model.keras --recipe=prune --target_sparsity=0.6 \
        --data=images/ --image_range=0-1 --epochs=4 --benchmark
    keras-squeeze-compress --model=model.keras --recipe=qat --edgetpu \
        --inference_input_type=uint8 --inference_output_type=uint8
    keras-squeeze-compress --model=old_model.h5 --custom_objects=my_layers:Swish
    keras-squeeze-compress --flagfile=compress.flags

--data is "digits", a .npz with x/y arrays, or an image folder with one
sub-folder per class. Exit codes: 0 done, 1 the job failed, 2 bad or
contradictory flags.
"""

from __future__ import annotations

import sys

from absl import flags

from keras_squeeze.api.recipe import RECIPES
from keras_squeeze.cli import common
from keras_squeeze.data import sources
from keras_squeeze.export.formats import FORMATS

PROGRAM = "keras-squeeze-compress"
FLAGS = common.new_flag_values(__doc__)

_MODEL = common.define_model_flag(
    FLAGS,
    "Path to a .keras / .h5 file or SavedModel directory. Default: the example CNN, trained "
    "on the built-in digits.",
)
_CUSTOM_OBJECTS = common.define_custom_objects_flag(FLAGS)
_RECIPE = flags.DEFINE_enum(
    "recipe",
    "int8",
    [*RECIPES, "auto"],
    "Compression recipe; auto: the smallest candidate within --max_accuracy_drop (default "
    "0.01) on the validation split.",
    flag_values=FLAGS,
)
_DATA, _IMAGE_RANGE = common.define_data_flags(
    FLAGS, sources.DIGITS, "training, calibration and validation data."
)
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", "squeezed", "Where the artifacts and reports go.", flag_values=FLAGS
)
_EPOCHS = flags.DEFINE_integer(
    "epochs",
    None,
    "Fine-tuning epochs of training recipes (default 2), and the training epochs of the "
    "example CNN when --model is not given (default 8).",
    lower_bound=1,
    flag_values=FLAGS,
)
_BATCH_SIZE = flags.DEFINE_integer(
    "batch_size",
    32,
    "Batch size of fine-tuning and image folders.",
    lower_bound=1,
    flag_values=FLAGS,
)
_TARGET_SPARSITY = flags.DEFINE_float(
    "target_sparsity",
    None,
    "Fraction of weights to zero in each pruned layer, in [0, 1) (recipes that prune; "
    "default 0.8).",
    lower_bound=0.0,
    upper_bound=1.0,
    flag_values=FLAGS,
)
_CLUSTERS = flags.DEFINE_integer(
    "clusters",
    None,
    "Number of weight clusters per layer (recipes that cluster; default 16).",
    lower_bound=2,
    upper_bound=256,
    flag_values=FLAGS,
)
_NUM_CALIBRATION_SAMPLES, _INPUT_TYPE, _OUTPUT_TYPE = common.define_conversion_flags(FLAGS)
_DISTILL = flags.DEFINE_boolean(
    "distill",
    None,
    "Fine-tune against the original model's outputs (training recipes; default on). "
    "--nodistill trains on the labels only.",
    flag_values=FLAGS,
)
_TEMPERATURE = flags.DEFINE_float(
    "distill_temperature",
    None,
    "Distillation temperature T > 0 (default 1).",
    lower_bound=1e-6,
    flag_values=FLAGS,
)
_ALPHA = flags.DEFINE_float(
    "distill_alpha",
    None,
    "Weight of the distillation loss in [0, 1]; labels get 1 - alpha (default 0.5).",
    lower_bound=0.0,
    upper_bound=1.0,
    flag_values=FLAGS,
)
_EDGETPU = flags.DEFINE_boolean(
    "edgetpu",
    False,
    "Also prepare for a Coral Edge TPU: a batch-1 int8 model_for_edgetpu.tflite checked "
    "against its op table, compiled when edgetpu_compiler is installed (int8 recipes).",
    flag_values=FLAGS,
)
_DYNAMIC_BATCH = flags.DEFINE_boolean(
    "dynamic_batch",
    False,
    "Keep the .tflite's batch dimension free (default: fixed at 1, what phones, "
    "microcontrollers and the Edge TPU run).",
    flag_values=FLAGS,
)
_BENCHMARK = flags.DEFINE_boolean(
    "benchmark",
    False,
    "Also time the original float32 and the compressed .tflite on this CPU, interleaved.",
    flag_values=FLAGS,
)
_MAX_ACCURACY_DROP = flags.DEFINE_float(
    "max_accuracy_drop",
    None,
    "The most of the model's metric the compressed .tflite may lose on the validation split, "
    "in [0, 1) (0.01: one point of accuracy; points of relative MSE for regression); a "
    "larger drop is a loud warning in the terminal and the report.",
    lower_bound=0.0,
    flag_values=FLAGS,
)
flags.register_validator(
    "max_accuracy_drop",
    lambda value: value is None or value < 1.0,
    message="--max_accuracy_drop must be under 1 (a fraction of the metric, e.g. 0.01)",
    flag_values=FLAGS,
)
_SENSITIVITY_ONLY = flags.DEFINE_boolean(
    "sensitivity_only",
    False,
    "Compress nothing: measure each layer's sensitivity (int8 error, metric drop when "
    "pruned or clustered alone) on the validation split and write sensitivity.json / .png.",
    flag_values=FLAGS,
)
flags.register_multi_flags_validator(
    ["sensitivity_only", "max_accuracy_drop"],
    lambda values: not (values["sensitivity_only"] and values["max_accuracy_drop"] is not None),
    message="--max_accuracy_drop holds a compressed result to a budget; --sensitivity_only "
    "compresses nothing",
    flag_values=FLAGS,
)
_TIME_BUDGET_S = flags.DEFINE_float(
    "time_budget_s",
    None,
    "With --recipe=auto: start no candidate after this many seconds and keep the best so far.",
    lower_bound=0.0,
    flag_values=FLAGS,
)
flags.register_validator(
    "time_budget_s",
    lambda value: value is None or value > 0,
    message="--time_budget_s must be a positive number of seconds",
    flag_values=FLAGS,
)


def _auto_only(name: str, what: str) -> None:
    """A validator: flag `name` set only with --recipe=auto."""
    flags.register_multi_flags_validator(
        ["recipe", name],
        lambda values: values["recipe"] == "auto" or values[name] is None,
        message=f"--{name} {what}: expected --recipe=auto with it",
        flag_values=FLAGS,
    )


_auto_only("time_budget_s", "bounds the 'auto' search")
_OBJECTIVE = flags.DEFINE_enum(
    "objective",
    None,
    ["size", "latency"],
    "With --recipe=auto: what to minimise within --max_accuracy_drop: size (gzip bytes, the "
    "default) or latency (p50 of each candidate's .tflite on this CPU, timed interleaved; "
    "timings on a loaded machine vary from run to run).",
    flag_values=FLAGS,
)
_auto_only("objective", "is what the 'auto' search minimises")
_FORMATS_FLAG = flags.DEFINE_multi_enum(
    "formats", list(FORMATS), FORMATS, "Formats to write (repeat the flag).", flag_values=FLAGS
)
_STRATEGY = flags.DEFINE_enum(
    "strategy",
    "default",
    ["default", "mirrored", "multi_worker"],
    "tf.distribute strategy of fine-tuning: default (one device), mirrored (every local "
    "GPU, else the CPU) or multi_worker (MultiWorkerMirroredStrategy over the workers "
    "TF_CONFIG names; only the chief writes --output_dir). --batch_size is the global batch.",
    flag_values=FLAGS,
)
_CHECKPOINT_DIR = flags.DEFINE_string(
    "checkpoint_dir",
    None,
    "Save every training stage's state at the end of each epoch to DIR; run the same command "
    "again after a crash to resume after the last finished epoch.",
    flag_values=FLAGS,
)
_TENSORBOARD_DIR = flags.DEFINE_string(
    "tensorboard_dir",
    None,
    "Write TensorBoard logs of every training stage's fit to DIR/<stage>.",
    flag_values=FLAGS,
)
_ALLOW_UNSAFE = common.define_unsafe_flag(FLAGS)
_VERBOSE = common.define_verbose_flag(FLAGS)


def _lib():
    from keras_squeeze.cli import compress_lib

    return compress_lib


@flags.multi_flags_validator(
    ["recipe", "inference_input_type", "inference_output_type"],
    message="--inference_input_type / --inference_output_type do not fit --recipe "
    "(int8 recipes: int8, uint8 or float32; int16x8: float32 or int16; others: float32)",
    flag_values=FLAGS,
)
def _check_io_types(values) -> bool:
    from keras_squeeze.quantization.ptq import PTQ_MODES

    if values["recipe"] not in RECIPES:  # auto: compress() refuses any I/O type
        return True
    allowed = PTQ_MODES[RECIPES[values["recipe"]].quantization].io_types
    return all(
        values[k] in (None, *allowed) for k in ("inference_input_type", "inference_output_type")
    )


@flags.multi_flags_validator(["recipe", "target_sparsity", "clusters"], flag_values=FLAGS)
def _check_stage_settings(values) -> bool:
    return common.validate(
        lambda: _lib().resolve_recipe(
            values["recipe"], target_sparsity=values["target_sparsity"], clusters=values["clusters"]
        )
    )


@flags.multi_flags_validator(
    [
        "recipe",
        "model",
        "custom_objects",
        "epochs",
        "distill",
        "distill_temperature",
        "distill_alpha",
        "edgetpu",
    ],
    flag_values=FLAGS,
)
def _check_options(values) -> bool:
    return common.validate(
        lambda: _lib().check_options(
            RECIPES.get(values["recipe"], values["recipe"]),
            model=values["model"],
            custom_objects=values["custom_objects"],
            epochs=values["epochs"],
            distill=values["distill"],
            distill_temperature=values["distill_temperature"],
            distill_alpha=values["distill_alpha"],
            edgetpu=values["edgetpu"],
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
            recipe=_RECIPE.value,
            output_dir=_OUTPUT_DIR.value,
            data=_DATA.value,
            epochs=_EPOCHS.value,
            num_calibration_samples=_NUM_CALIBRATION_SAMPLES.value,
            inference_input_type=_INPUT_TYPE.value,
            inference_output_type=_OUTPUT_TYPE.value,
            formats=tuple(dict.fromkeys(_FORMATS_FLAG.value)),
            target_sparsity=_TARGET_SPARSITY.value,
            clusters=_CLUSTERS.value,
            distill=_DISTILL.value,
            distill_temperature=_TEMPERATURE.value,
            distill_alpha=_ALPHA.value,
            edgetpu=_EDGETPU.value,
            dynamic_batch=_DYNAMIC_BATCH.value,
            benchmark=_BENCHMARK.value,
            batch_size=_BATCH_SIZE.value,
            image_range=_IMAGE_RANGE.value,
            allow_unsafe_deserialization=_ALLOW_UNSAFE.value,
            verbose=_VERBOSE.value,
            strategy=_STRATEGY.value,
            tensorboard_dir=_TENSORBOARD_DIR.value,
            checkpoint_dir=_CHECKPOINT_DIR.value,
            max_accuracy_drop=_MAX_ACCURACY_DROP.value,
            sensitivity_only=_SENSITIVITY_ONLY.value,
            time_budget_s=_TIME_BUDGET_S.value,
            objective=_OBJECTIVE.value,
        ),
    )


def run_main() -> None:
    """Console-script entry point."""
    common.run_script(main, PROGRAM, FLAGS)


if __name__ == "__main__":
    sys.exit(run_main())
