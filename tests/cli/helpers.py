"""Running a script's main() in this process, with its flags parsed and restored after."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys

from absl.testing import flagsaver

from keras_squeeze.cli import common


@contextlib.contextmanager
def flags_of(script, *args):
    """Parses `args` into the script's own FlagValues; restores every flag on exit."""
    saved = flagsaver.save_flag_values(script.FLAGS)
    try:
        common.parse_flags(script.PROGRAM, script.FLAGS, [script.PROGRAM, *args])
        yield script.FLAGS
    finally:
        flagsaver.restore_flag_values(saved, script.FLAGS)


def run_main(script, *args) -> int:
    """The script's main() as the console script runs it: parse, then main. Returns the exit code."""
    try:
        with flags_of(script, *args):
            return script.main([script.PROGRAM])
    except SystemExit as e:
        return e.code


def error_lines(stderr: str, program: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith(f"{program}: error:")]


def script_env(env=None) -> dict:
    """A script's environment: this one without TF_CPP_MIN_LOG_LEVEL, plus `env`.

    The scripts set TensorFlow's log level themselves; the tests see what a
    user's terminal shows.
    """
    environment = {k: v for k, v in os.environ.items() if k != common.TF_LOG_LEVEL_ENV}
    environment.update(env or {})
    return environment


def script(module: str, *args, cwd, timeout=600, env=None):
    """Runs `python -m keras_squeeze.cli.<module> args` in a fresh process."""
    return subprocess.run(
        [sys.executable, "-m", f"keras_squeeze.cli.{module}", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=script_env(env),
        timeout=timeout,
        check=False,
    )


# Lines native code prints that a user should not see at the default verbosity:
# absl / TensorFlow C++ log lines ("I0000 00:00:1796165918.664864    8456 port.cc:153] ..."),
# the converter's calibration summary and LiteRT's delegate notice.
_NATIVE_LOG_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ [^ ]+:\d+\]")
NATIVE_MARKERS = (
    "All log messages before absl::InitializeLog()",
    "oneDNN custom operations",
    "Could not find cuda drivers",
    "cuInit",
    "rebuild TensorFlow with the appropriate compiler flags",
    "fully_quantize",
    "XNNPACK delegate",
)


def native_noise(stderr: str) -> list[str]:
    """The lines of `stderr` that native libraries printed."""
    return [
        ln
        for ln in stderr.splitlines()
        if _NATIVE_LOG_LINE.match(ln) or any(m in ln for m in NATIVE_MARKERS)
    ]
