"""What every keras_squeeze script shares: exit codes, error lines, flag parsing."""

from __future__ import annotations

import sys
import traceback

from absl import flags

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def flags_parser(program: str):
    """An absl flags_parser that reports bad flags in one line and exits with 2."""

    def parse(argv):
        try:
            return flags.FLAGS(argv)
        except flags.Error as e:
            print(f"{program}: error: {e}", file=sys.stderr)
            print(f"Pass --helpshort for the flags of {program}.", file=sys.stderr)
            sys.exit(EXIT_USAGE)

    return parse


def check_no_positional(argv) -> None:
    if len(argv) > 1:
        print(f"error: unexpected arguments: {' '.join(argv[1:])}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def run_guarded(job, verbose: int, program: str) -> int:
    """Runs job(); a KerasSqueezeError becomes one stderr line and exit code 1."""
    from keras_squeeze.errors import KerasSqueezeError

    try:
        job()
    except KerasSqueezeError as e:
        if verbose >= 2:
            traceback.print_exc()
        print(f"{program}: error: {e}", file=sys.stderr)
        sys.exit(EXIT_FAILURE)
    return EXIT_OK
