"""A custom activation for the --custom_objects tests: a model file that uses it needs it to load.

The scripts import it as `tests.cli.custom_activations` (the repository root on
PYTHONPATH).
"""

from __future__ import annotations

import tensorflow as tf


def scaled_tanh(x):
    """LeCun's scaled tanh, 1.7159 tanh(2x/3)."""
    return 1.7159 * tf.math.tanh(x * (2.0 / 3.0))


NOT_CALLABLE = 3
