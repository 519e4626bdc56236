"""Magnitude pruning: kernels set to zero by magnitude (tfmot engine, layer by layer).

`Prune` is the stage's config for `ks.Recipe(prune=...)`; `verify` holds the
checks of sparsity and M:N patterns on exported weights.
"""

from keras_squeeze.pruning.config import Prune
from keras_squeeze.pruning.verify import m_by_n_fraction, sparsity

__all__ = ["Prune", "m_by_n_fraction", "sparsity"]
