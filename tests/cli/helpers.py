"""Running a script's main() in this process, with its flags parsed and restored after."""

from __future__ import annotations

import contextlib
import os
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


def script(module: str, *args, cwd, timeout=600, env=None):
    """Runs `python -m keras_squeeze.cli.<module> args` in a fresh process."""
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", f"keras_squeeze.cli.{module}", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment,
        timeout=timeout,
        check=False,
    )
