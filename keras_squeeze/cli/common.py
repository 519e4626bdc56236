"""What every keras_squeeze script shares: flag sets, exit codes, error lines, parsing.

Each script defines its flags on its own `flags.FlagValues` (made by
`new_flag_values`), not on absl's global FLAGS: the scripts share flag names
(--model, --verbose, ...) with different meanings, and a process that imports
two of them (a test run, a notebook) would otherwise fail with
DuplicateFlagError.

Exit codes: 0 done, 1 the job failed (one line on stderr; --verbose=2 adds the
traceback), 2 a usage error (bad or contradictory flags; one line on stderr).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import traceback
from collections.abc import Callable

from absl import flags

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
MAX_MESSAGE_CHARS = 2000
# Marks where a library message starts inside absl's "flags a=1, b=2: <message>" text.
_MESSAGE_MARK = "\x1e"


class _HelpFlag(flags.BooleanFlag):
    """--help / --helpshort / --helpfull: prints the script's doc and flags, exits 0."""

    def __init__(self, name: str, flag_values: flags.FlagValues, doc: str, short_name=None):
        super().__init__(name, False, "Show this help and exit.", short_name=short_name)
        self._flag_values = flag_values
        self._doc = doc

    def parse(self, argument) -> None:
        super().parse(argument)
        if self.value:
            print(self._doc.strip(), end="\n\n")
            print(self._flag_values.get_help(include_special_flags=True))
            sys.exit(EXIT_OK)


def new_flag_values(doc: str) -> flags.FlagValues:
    """A script's own flag set, with --help (-?), --helpshort and --helpfull.

    --flagfile (read flags from a file, one per line) works on every FlagValues.
    """
    flag_values = flags.FlagValues()
    for name, short in (("help", "?"), ("helpshort", None), ("helpfull", None)):
        flags.DEFINE_flag(_HelpFlag(name, flag_values, doc, short), flag_values)
    return flag_values


def usage_error(program: str, message: str):
    """One stderr line and exit code 2."""
    text = " ".join(str(message).split())
    print(f"{program}: error: {text} (pass --helpshort for the flags)", file=sys.stderr)
    sys.exit(EXIT_USAGE)


def _flag_error_text(error: flags.Error) -> str:
    """absl's error text; a library message from `validate` replaces absl's flag listing."""
    lines = str(error).split("\n")
    return "; ".join(ln.split(_MESSAGE_MARK, 1)[-1] for ln in lines if ln.strip())


MAX_FLAG_NAME_CHARS = 200


def _flag_name_length(arg: str) -> int:
    return len(arg.split("=", 1)[0]) if arg.startswith("-") else 0


def _flagfiles(argv) -> str:
    names = [a.split("=", 1)[1] for a in argv if a.lstrip("-").startswith("flagfile=")]
    return ", ".join(f"'{n}'" for n in names) or "a --flagfile"


def parse_flags(program: str, flag_values: flags.FlagValues, argv) -> list[str]:
    """Parses argv into `flag_values`; a bad flag or a positional argument exits 2.

    A --flagfile that is not UTF-8 text, or that includes itself, is a usage
    error too (absl would raise UnicodeDecodeError, or warn and go on).
    """
    given = list(argv)
    warnings = io.StringIO()
    try:
        with contextlib.redirect_stderr(warnings):
            argv = given[:1] + flag_values.read_flags_from_files(given[1:], force_gnu=False)
            long_names = [a for a in argv[1:] if _flag_name_length(a) > MAX_FLAG_NAME_CHARS]
            if not long_names:
                rest = flag_values(argv)
    except flags.Error as e:
        usage_error(program, _flag_error_text(e))
    except UnicodeDecodeError as e:
        usage_error(
            program,
            f"The flag file {_flagfiles(given)} is not text. Expected one --flag=value per line, "
            f"UTF-8 encoded. Received: {e.reason} at byte {e.start}",
        )
    except (ValueError, OSError) as e:  # a --flagfile name with a NUL byte, or too long
        usage_error(
            program,
            f"A flag file cannot be opened. Expected --flagfile=<path>. Received: {e} "
            f"(from {_flagfiles(given)})",
        )
    finally:
        text = warnings.getvalue()
        if "circular flagfile" not in text:
            sys.stderr.write(text)
    if long_names:
        # absl's "did you mean" would compare it with every flag name, recursively
        # (RecursionError past about 1,000 characters, minutes before that).
        usage_error(
            program,
            f"Unknown flag. Expected a flag of {program} (--helpshort lists them). Received: a "
            f"flag name of {_flag_name_length(long_names[0]):,} characters, "
            f"{long_names[0][:40]!r}...",
        )
    if "circular flagfile" in text:
        usage_error(
            program,
            f"The flag file {_flagfiles(given)} includes itself. Expected --flagfile lines that "
            "name other files. Received: a circular --flagfile",
        )
    if len(rest) > 1:
        usage_error(program, f"unexpected arguments: {' '.join(rest[1:])}")
    return rest


def flags_parser(program: str, flag_values: flags.FlagValues):
    """An absl.app flags_parser for a script's own flag set.

    absl's global FLAGS (logging settings) stay at their defaults; they are
    only marked parsed, as absl.app requires.
    """

    def parse(argv):
        rest = parse_flags(program, flag_values, argv)
        flags.FLAGS(list(argv[:1]))
        return rest

    return parse


def check_no_positional(argv, program: str = "error") -> None:
    if len(argv) > 1:
        usage_error(program, f"unexpected arguments: {' '.join(argv[1:])}")


def validate(check: Callable[[], object]) -> bool:
    """Runs a library check inside a flag validator: its error becomes the usage message.

    The library's own checks are the single source of truth; the flag layer
    only reports them as usage errors (exit 2) before any work starts.
    """
    from keras_squeeze.errors import KerasSqueezeError

    try:
        check()
    except KerasSqueezeError as e:
        raise flags.ValidationError(_MESSAGE_MARK + str(e)) from e
    return True


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:MAX_MESSAGE_CHARS]


def run_guarded(job, verbose: int, program: str) -> int:
    """Runs job(); any error becomes one stderr line and exit code 1.

    A `KerasSqueezeError` is printed as it is; anything else (a TensorFlow
    or converter error) as "unexpected <type>: <message>". --verbose=2 adds
    the traceback.
    """
    from keras_squeeze.errors import KerasSqueezeError

    try:
        job()
    except KeyboardInterrupt:
        print(f"{program}: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except KerasSqueezeError as e:
        if verbose >= 2:
            traceback.print_exc()
        print(f"{program}: error: {_one_line(e)}", file=sys.stderr)
        sys.exit(EXIT_FAILURE)
    except Exception as e:
        if verbose >= 2:
            traceback.print_exc()
        hint = "" if verbose >= 2 else " (--verbose=2 shows the traceback)"
        print(
            f"{program}: error: unexpected {type(e).__name__}: {_one_line(e)}{hint}",
            file=sys.stderr,
        )
        sys.exit(EXIT_FAILURE)
    return EXIT_OK


def script_main(argv, program: str, verbose: int, job, tensorflow: bool = True) -> int:
    """The body of every script's main(): no positional arguments, quiet logs, guarded job.

    Args:
        tensorflow: the job loads TensorFlow; below --verbose=2 it is loaded
            first with its start-up lines hidden (see `import_tensorflow_quietly`).
    """
    check_no_positional(argv, program)
    quiet_logs(verbose)

    def quiet_job():
        if tensorflow:
            import_tensorflow_quietly(verbose)
        return job()

    with native_log_level(verbose):
        return run_guarded(quiet_job, verbose, program)


def run_script(main, program: str, flag_values: flags.FlagValues) -> None:
    """A console script's entry point: absl.app.run with the script's own flag parser."""
    from absl import app

    app.run(main, flags_parser=flags_parser(program, flag_values))


def quiet_logs(verbose: int) -> None:
    """Below --verbose=2, absl logs warnings only."""
    from absl import logging as absl_logging

    if verbose < 2:
        absl_logging.set_verbosity(absl_logging.WARNING)


# TensorFlow's C++ log threshold: 3 keeps fatal lines only, which hides the
# "failed call to cuInit: ... UNKNOWN ERROR (303)" of a machine without a GPU.
TF_LOG_LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"
QUIET_TF_LOG_LEVEL = "3"


@contextlib.contextmanager
def native_log_level(verbose: int):
    """Below --verbose=2, TensorFlow's C++ logging keeps fatal lines only, for the block.

    A TF_CPP_MIN_LOG_LEVEL the user set is kept; the environment is restored
    afterwards (a script's main() may run inside another program). It has to
    be set before TensorFlow loads, which the scripts' jobs do.
    """
    if verbose >= 2 or TF_LOG_LEVEL_ENV in os.environ:
        yield
        return
    os.environ[TF_LOG_LEVEL_ENV] = QUIET_TF_LOG_LEVEL
    try:
        yield
    finally:
        os.environ.pop(TF_LOG_LEVEL_ENV, None)


def import_tensorflow_quietly(verbose: int) -> None:
    """Loads TensorFlow; below --verbose=2 without the lines its native libraries print.

    TensorFlow 2.21 prints "oneDNN custom operations are on ..." and "Could not
    find cuda drivers on your machine ..." through absl while its libraries
    load, before TF_CPP_MIN_LOG_LEVEL is read, so only redirecting descriptor
    2 during the import hides them. If the import fails, what it printed is
    shown.
    """
    if verbose >= 2 or "tensorflow" in sys.modules:
        return
    from keras_squeeze.core.native_output import NativeOutput

    log = NativeOutput()
    try:
        with log:
            import tensorflow  # noqa: F401
    except BaseException:
        log.replay()
        raise


# Flags more than one script defines, each on the script's own FlagValues.

IO_TYPES = ("int8", "uint8", "float32", "int16")


def define_data_flags(flag_values: flags.FlagValues, default: str | None, purpose: str):
    """--data and --image_range, with validators: the path exists; the range fits a folder.

    Returns:
        (data, image_range) flag holders.
    """
    from keras_squeeze.data import sources

    data = flags.DEFINE_string(
        "data",
        default,
        "'digits' (built-in, resized to the model's square input), a .npz with x/y (or "
        "x_train/y_train/x_test/y_test) arrays, or an image folder with one sub-folder per "
        f"class: {purpose}",
        flag_values=flag_values,
    )
    image_range = flags.DEFINE_enum(
        "image_range",
        None,
        list(sources.IMAGE_RANGES),
        "Pixel range the model expects, for an image folder (default 0-255, as "
        "keras.utils.image_dataset_from_directory reads them).",
        flag_values=flag_values,
    )

    @flags.multi_flags_validator(["data", "image_range"], flag_values=flag_values)
    def _check_data(values) -> bool:
        if values["data"] is None:
            return validate(lambda: sources.check_image_range("", values["image_range"]))
        return validate(
            lambda: (
                sources.check_exists(values["data"]),
                sources.check_image_range(values["data"], values["image_range"]),
            )
        )

    return data, image_range


def define_model_flag(flag_values: flags.FlagValues, help_text: str):
    """--model (a Keras model path), with a validator: the path exists."""
    holder = flags.DEFINE_string("model", None, help_text, flag_values=flag_values)

    @flags.validator("model", flag_values=flag_values)
    def _check_model(value) -> bool:

        from keras_squeeze.errors import ModelError

        def check():
            from keras_squeeze.safety.paths import fs_path

            if (
                value is not None
                and not fs_path(value, "--model", ModelError).expanduser().exists()
            ):
                raise ModelError(
                    "The model path does not exist. Expected a .keras or .h5 file or a "
                    f"SavedModel directory. Received: --model='{value}'"
                )

        return validate(check)

    return holder


def define_unsafe_flag(flag_values: flags.FlagValues):
    """--allow_unsafe_deserialization: load a --model file that carries Python code."""
    return flags.DEFINE_boolean(
        "allow_unsafe_deserialization",
        False,
        "Load a --model file that carries Python code (Lambda layers) and run that code. "
        "Model files are untrusted by default: such files are refused. Only for files you trust.",
        flag_values=flag_values,
    )


def define_custom_objects_flag(flag_values: flags.FlagValues):
    """--custom_objects=module:name (repeatable), with a validator of the form.

    The modules are imported when the job starts (keras_squeeze.cli.custom_objects),
    so an import error is a job failure, reported in one line.
    """
    holder = flags.DEFINE_multi_string(
        "custom_objects",
        None,
        "A custom layer class or function the model file needs, as module:name: imports the "
        "module (from the current directory or PYTHONPATH) and gives Keras its attribute "
        "under that name. Repeat the flag for several.",
        flag_values=flag_values,
    )

    @flags.validator("custom_objects", flag_values=flag_values)
    def _check_custom_objects(value) -> bool:
        from keras_squeeze.cli import custom_objects

        return validate(lambda: custom_objects.check_specs(value))

    return holder


def define_conversion_flags(flag_values: flags.FlagValues):
    """--num_calibration_samples, --inference_input_type, --inference_output_type.

    Returns:
        The three flag holders.
    """
    samples = flags.DEFINE_integer(
        "num_calibration_samples",
        200,
        "Representative samples that calibrate int8 / int16x8.",
        lower_bound=1,
        flag_values=flag_values,
    )
    input_type = flags.DEFINE_enum(
        "inference_input_type",
        None,
        IO_TYPES,
        "Model input type of the .tflite (default: the quantization's first: int8 for int8, "
        "float32 otherwise).",
        flag_values=flag_values,
    )
    output_type = flags.DEFINE_enum(
        "inference_output_type",
        None,
        IO_TYPES,
        "Model output type of the .tflite (default as for the input).",
        flag_values=flag_values,
    )
    return samples, input_type, output_type


def define_verbose_flag(flag_values: flags.FlagValues):
    return flags.DEFINE_integer(
        "verbose",
        1,
        "0 quiet, 1 a line per step, 2 also tracebacks, TensorFlow's own log lines and the "
        "converter's output.",
        lower_bound=0,
        upper_bound=2,
        flag_values=flag_values,
    )
