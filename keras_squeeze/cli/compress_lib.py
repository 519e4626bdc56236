"""The library side of keras-squeeze-compress: a typed run() the script only calls.

The checks the script's flag validators run (`resolve_recipe`,
`check_options`, and `keras_squeeze.data.sources.check_exists` /
`check_image_range`) are library functions, so calling run() from Python
refuses the same contradictions with the same messages.
"""

from __future__ import annotations

import sys

from keras_squeeze import _compat
from keras_squeeze.cli.custom_objects import check_specs as check_custom_objects
from keras_squeeze.cli.custom_objects import resolve as resolve_custom_objects
from keras_squeeze.cli.custom_objects import scope as custom_object_scope
from keras_squeeze.core.progress import say
from keras_squeeze.data import sources
from keras_squeeze.errors import ConfigError, RecipeError
from keras_squeeze.export.formats import FORMATS

DIGITS = sources.DIGITS
EXAMPLE_IMAGE_SIZE = 16
EXAMPLE_EPOCHS = 8


def load_data(source: str, specs):
    """(train, validation) from "digits", a .npz or an image folder (see data.sources).

    "digits" and .npz give `(x, y)` arrays; an image folder gives tf.data datasets.
    """
    splits = sources.load_source(source, specs)
    return splits.train, splits.validation


def _recipes_with(stage: str) -> list[str]:
    from keras_squeeze.api.recipe import RECIPES

    return [name for name, r in RECIPES.items() if r.config_of(stage) is not None]


AUTO = "auto"


def check_auto_settings(settings: dict) -> str:
    """--recipe=auto chooses every stage setting per layer: none may be given.

    Raises:
        RecipeError: a stage setting given with it.
    """
    given = [f"{k}={v}" for k, v in settings.items() if v is not None]
    if given:
        raise RecipeError(
            "The 'auto' recipe chooses each layer's sparsity and clusters from the "
            "sensitivity table. Expected no stage setting with it, or a fixed recipe. "
            f"Received: {', '.join(given)}"
        )
    return AUTO


def resolve_recipe(recipe, **settings):
    """The preset (or Recipe) with the command line's stage settings applied.

    Args:
        recipe: a preset name or a `ks.Recipe`.
        **settings: stage settings by their command-line name, None where not
            given: `target_sparsity` (the pruning stage's target sparsity),
            `clusters` (the clustering stage's number of clusters); every
            registered stage lists its own in `Stage.settings`.

    Raises:
        RecipeError: an unknown recipe, an unknown setting, or a setting for a
            stage the recipe does not have (e.g. target_sparsity with "int8").
    """
    from keras_squeeze.api.recipe import Recipe
    from keras_squeeze.stages import stages

    if recipe == AUTO:
        return check_auto_settings(settings)
    recipe = Recipe.get(recipe)
    owners = {setting: stage for stage in stages() for setting in stage.settings}
    for setting, value in settings.items():
        if value is None:
            continue
        stage = owners.get(setting)
        if stage is None:
            raise RecipeError(
                f"Unknown stage setting. Expected one of {sorted(owners)}. Received: {setting}"
            )
        config = recipe.config_of(stage.name)
        if config is None:
            raise RecipeError(
                f"{setting} sets the {stage.title} stage, which this recipe does not have. "
                f"Expected a recipe that {stage.verb} ({', '.join(_recipes_with(stage.name))}). "
                f"Received: recipe={recipe.name!r}"
            )
        recipe = recipe.with_stage(
            stage.name, stage.with_setting(config, setting, value, recipe.name)
        )
    return recipe


def check_options(
    recipe,
    *,
    model: str | None = None,
    custom_objects=None,
    epochs: int | None = None,
    distill: bool | None = None,
    distill_temperature: float | None = None,
    distill_alpha: float | None = None,
    edgetpu: bool = False,
) -> None:
    """Refuses options the recipe cannot use.

    Raises:
        ConfigError: custom_objects without a model file (or not of the form
            'module:name'), epochs or distillation settings for a recipe
            without a training stage, distillation settings with
            distill=False, or edgetpu with a recipe that is not full-integer
            int8.
        RecipeError: distillation settings out of range.
    """
    from keras_squeeze.api.recipe import Recipe

    if custom_objects and model is None:
        raise ConfigError(
            "custom_objects are for loading a model file, and no model was given (the example "
            "CNN needs none). Expected a model path with them. Received: "
            f"custom_objects={custom_objects!r}"
        )
    check_custom_objects(custom_objects)
    if recipe == AUTO:
        if edgetpu:
            raise ConfigError(
                "edgetpu does not apply to every candidate of the 'auto' search (the Edge TPU "
                "runs full-integer int8 only). Expected --recipe=int8 or qat with it. "
                "Received: --recipe=auto --edgetpu"
            )
        return  # compress() refuses the rest its candidates cannot all apply (I/O types)
    recipe = Recipe.get(recipe)
    trains = bool(recipe.training_stages)
    training = ", ".join(_recipes_with_training())
    if epochs is not None and not trains and model is not None:
        raise ConfigError(
            f"epochs sets fine-tuning, and the '{recipe.name}' recipe does not train. Expected "
            f"a training recipe ({training}), or no model (epochs then trains the example "
            f"CNN). Received: epochs={epochs}"
        )
    settings = {"distill_temperature": distill_temperature, "distill_alpha": distill_alpha}
    given = [f"{k}={v}" for k, v in settings.items() if v is not None]
    if not trains and (distill is not None or given):
        what = given or [f"distill={distill}"]
        raise ConfigError(
            f"Distillation applies to fine-tuning, and the '{recipe.name}' recipe does not "
            f"train. Expected a training recipe ({training}). Received: {', '.join(what)}"
        )
    if distill is False and given:
        raise ConfigError(
            "Distillation settings were given with distillation off. Expected distill on (the "
            f"default) with them, or neither. Received: distill=False, {', '.join(given)}"
        )
    distill_setting(distill, distill_temperature, distill_alpha)
    if edgetpu and recipe.quantization != "int8":
        raise ConfigError(
            "The Edge TPU runs full-integer 8-bit models only. Expected an int8 recipe "
            f"({', '.join(_int8_recipes())}). Received: recipe={recipe.name!r} "
            f"({recipe.quantization})"
        )


def _recipes_with_training() -> list[str]:
    from keras_squeeze.api.recipe import RECIPES

    return [name for name, r in RECIPES.items() if r.training_stages]


def _int8_recipes() -> list[str]:
    from keras_squeeze.api.recipe import RECIPES

    return [name for name, r in RECIPES.items() if r.quantization == "int8"]


def distill_setting(distill: bool | None, temperature: float | None, alpha: float | None):
    """compress()'s distill= from the command line's settings (None: the recipe's default)."""
    from keras_squeeze.distillation.config import DEFAULT_ALPHA, DEFAULT_TEMPERATURE, Distill

    if temperature is not None or alpha is not None:
        return Distill(
            temperature=DEFAULT_TEMPERATURE if temperature is None else temperature,
            alpha=DEFAULT_ALPHA if alpha is None else alpha,
        )
    return distill


STRATEGIES = ("default", "mirrored", "multi_worker")


def _strategy(name: str):
    """The tf.distribute strategy of --strategy; made before anything else runs TensorFlow
    (MultiWorkerMirroredStrategy configures collective ops at start-up, from TF_CONFIG).

    Raises:
        ConfigError: an unknown name.
    """
    if name not in STRATEGIES:
        raise ConfigError(
            f"Unknown strategy. Expected one of {list(STRATEGIES)}. Received: strategy={name!r}"
        )
    if name == "default":
        return None
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.MultiWorkerMirroredStrategy()


def _tensorboard(log_dir: str | None, recipe, model):
    """[a TensorBoard callback] of the flavour the recipe's first stage trains in (tf_keras
    for the stages through tfmot), or None."""
    if log_dir is None:
        return None
    from keras_squeeze.stages import TF_KERAS, get_stage
    from keras_squeeze.training.callbacks import stage_tensorboard

    stage = get_stage(recipe.training_stages[0])
    engine = stage.engine_for(model, recipe.config_of(stage.name))
    flavour = _compat.TF_KERAS if engine == TF_KERAS else _compat.keras_flavour(model)
    return [stage_tensorboard(log_dir, flavour)]


def _output_units(model) -> int | None:
    try:
        return int(model.outputs[0].shape[-1])
    except (AttributeError, IndexError, TypeError):
        return None


def run_sensitivity(model, splits, output_dir: str, verbose: int):
    """--sensitivity_only: the per-layer table of `model` on the data's splits, saved."""
    from keras_squeeze.layer_sensitivity import sensitivity

    table = sensitivity(model, splits.validation, representative_data=splits.train, verbose=verbose)
    table.save(output_dir)
    print(table.table())
    print(f"sensitivity table in {output_dir}")
    return table


def run(
    model: str | None = None,
    recipe: str = "int8",
    custom_objects=None,
    output_dir: str = "squeezed",
    data: str = DIGITS,
    epochs: int | None = None,
    num_calibration_samples: int = 200,
    inference_input_type: str | None = None,
    inference_output_type: str | None = None,
    formats: tuple[str, ...] = FORMATS,
    target_sparsity: float | None = None,
    clusters: int | None = None,
    distill: bool | None = None,
    distill_temperature: float | None = None,
    distill_alpha: float | None = None,
    edgetpu: bool = False,
    dynamic_batch: bool = False,
    benchmark: bool = False,
    batch_size: int = 32,
    image_range: str | None = None,
    allow_unsafe_deserialization: bool = False,
    verbose: int = 1,
    strategy: str = "default",
    tensorboard_dir: str | None = None,
    checkpoint_dir: str | None = None,
    max_accuracy_drop: float | None = None,
    sensitivity_only: bool = False,
    time_budget_s: float | None = None,
    objective: str | None = None,
):
    """Compresses a model file (or the example CNN trained on the digits) and saves it.

    Everything is checked before any work: the recipe and its settings, the
    output directory, the data source; `result.save()` writes atomically, so
    a failure leaves no partial output.

    Args:
        model: path to a .keras / .h5 / SavedModel; None trains the example CNN
            on the built-in digits (16x16) for `epochs` (default 8) epochs.
        recipe: a preset recipe name (see `ks.RECIPES`), or "auto": the smallest
            (objective "latency": the fastest on this CPU) candidate within
            max_accuracy_drop (default 0.01) on the validation split, training
            candidates fine-tuned on the training split.
        custom_objects: the custom layers and functions the model file needs:
            'module:name' entries (see `keras_squeeze.cli.custom_objects`) or
            a {name: object} dict.
        output_dir: where the artifacts and reports go.
        data: "digits", a .npz with x/y arrays, or an image folder with one
            sub-folder per class (see `keras_squeeze.data.sources`).
        epochs: fine-tuning epochs of training recipes (compress()'s default
            when None); also the example CNN's training epochs.
        target_sparsity / clusters: the pruning / clustering stage's setting.
        distill, distill_temperature, distill_alpha: distillation during
            fine-tuning (None: the recipe's default, on).
        edgetpu: compress(edgetpu=True): the batch-1 int8 file for the Edge TPU.
        dynamic_batch: compress(dynamic_batch=True): keep the .tflite's batch free.
        benchmark: compress(measure_latency=True).
        batch_size: fine-tuning batch size (and of image-folder datasets).
        image_range: pixel range of image-folder data ("0-255", "0-1", "-1-1").
        allow_unsafe_deserialization: load a model file that carries Python code
            (Lambda layers) and run it (see `keras_squeeze.core.models.load_model`).
        strategy: "default" (one device), "mirrored" (tf.distribute.MirroredStrategy
            over the local devices) or "multi_worker" (MultiWorkerMirroredStrategy
            over the workers TF_CONFIG names: every worker runs this with its own
            TF_CONFIG, and only the chief writes `output_dir`) for fine-tuning.
        tensorboard_dir: TensorBoard logs of every training stage to
            tensorboard_dir/<stage> (`training.callbacks.stage_tensorboard`).
        checkpoint_dir: compress(checkpoint_dir=...): every stage saves each
            epoch there, and the same command resumes a run that was killed.
        max_accuracy_drop: compress(max_accuracy_drop=...), measured on the
            data's validation split.
        sensitivity_only: compress nothing: measure `ks.sensitivity` on the
            validation split (int8 calibrated on the training split), print its
            table and write sensitivity.json / sensitivity.png to output_dir;
            returns the Sensitivity.
        time_budget_s: with recipe "auto", compress(time_budget_s=...): the
            search starts no candidate after this many seconds.
        objective: with recipe "auto", compress(objective=...): "size" (None:
            the default) or "latency".

    Returns:
        The CompressionResult.

    Example:
        >>> compress_lib.run(model="model.keras", recipe="prune", target_sparsity=0.6,
        ...                  data="images/", image_range="0-1", output_dir="out")
        >>> compress_lib.run(model="old.h5", custom_objects=["my_layers:Swish"])
    """
    from keras_squeeze.api.compress import compress
    from keras_squeeze.core import atomic, models
    from keras_squeeze.report.summary import terminal_summary
    from keras_squeeze.training.distribute import is_chief

    strategy_obj = _strategy(strategy)  # first: multi_worker must precede other TF work
    recipe_obj = resolve_recipe(recipe, target_sparsity=target_sparsity, clusters=clusters)
    check_options(
        recipe_obj,
        model=model,
        custom_objects=custom_objects,
        epochs=epochs,
        distill=distill,
        distill_temperature=distill_temperature,
        distill_alpha=distill_alpha,
        edgetpu=edgetpu,
    )
    searched = recipe_obj == AUTO
    if searched and tensorboard_dir is not None:
        raise ConfigError(
            "TensorBoard logs are per training stage of one recipe, and 'auto' runs several "
            "candidates. Expected --tensorboard_dir with a fixed training recipe. Received: "
            f"--recipe=auto --tensorboard_dir={tensorboard_dir}"
        )
    if not searched and time_budget_s is not None:
        raise ConfigError(
            "time_budget_s bounds the 'auto' search. Expected --recipe=auto with it. "
            f"Received: --recipe={recipe_obj.name} --time_budget_s={time_budget_s:g}"
        )
    if not searched and objective is not None:
        raise ConfigError(
            "objective is what the 'auto' search minimises. Expected --recipe=auto with it. "
            f"Received: --recipe={recipe_obj.name} --objective={objective}"
        )
    sources.check_image_range(data, image_range)
    atomic.check_writable_dir(output_dir)
    if checkpoint_dir is not None:
        atomic.check_writable_dir(checkpoint_dir, "checkpoint_dir")
    if tensorboard_dir is not None:
        from keras_squeeze.training.callbacks import require_tensorboard

        require_tensorboard()
        atomic.check_writable_dir(tensorboard_dir)
    sources.check_source(data)
    objects = resolve_custom_objects(custom_objects)
    if model is None:
        from keras_squeeze.data import train_example_model

        example_epochs = epochs or EXAMPLE_EPOCHS
        say(verbose, f"training the example CNN on the built-in digits ({example_epochs} epochs)")
        keras_model = train_example_model(
            epochs=example_epochs,
            image_size=EXAMPLE_IMAGE_SIZE,
            flavour=_compat.KERAS3,
            verbose=(1 if sys.stdout.isatty() else 2) if verbose else 0,
        )
    else:
        say(verbose, f"loading {model}")
        keras_model = models.load_model(
            model,
            custom_objects=objects,
            allow_unsafe_deserialization=allow_unsafe_deserialization,
        )
    splits = sources.load_source(data, models.input_specs(keras_model), image_range, batch_size)
    sources.check_fits_outputs(splits, _output_units(keras_model))
    say(verbose, f"data: {splits.description}")
    if sensitivity_only:
        with custom_object_scope(objects):
            return run_sensitivity(keras_model, splits, output_dir, verbose)
    trains = searched or bool(recipe_obj.training_stages)
    callbacks = (
        _tensorboard(tensorboard_dir, recipe_obj, keras_model) if trains and not searched else None
    )
    search = {"time_budget_s": time_budget_s, "objective": objective} if searched else {}
    with custom_object_scope(objects):
        result = compress(
            keras_model,
            recipe_obj,
            train_data=splits.train,
            representative_data=splits.train,
            validation_data=splits.validation,
            distill=distill_setting(distill, distill_temperature, distill_alpha),
            epochs=epochs if trains else None,
            batch_size=batch_size,
            num_calibration_samples=num_calibration_samples,
            inference_input_type=inference_input_type,
            inference_output_type=inference_output_type,
            measure_latency=benchmark,
            edgetpu=edgetpu,
            dynamic_batch=dynamic_batch,
            verbose=verbose,
            callbacks=callbacks,
            strategy=strategy_obj,
            checkpoint_dir=checkpoint_dir,
            max_accuracy_drop=max_accuracy_drop,
            **search,
        )
        out = result.save(output_dir, formats=formats)
    if not is_chief(strategy_obj):
        return result  # save() wrote nothing and said so
    print(terminal_summary(result.report))
    print(f"artifacts in {out}")
    return result
