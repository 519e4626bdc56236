"""python -m keras_squeeze.cli: the same as keras-squeeze-compress."""

from keras_squeeze.cli.compress import run_main

run_main()
