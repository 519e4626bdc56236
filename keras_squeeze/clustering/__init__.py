"""Weight clustering: kernels share a few centroid values (tfmot engine, layer by layer)."""

from keras_squeeze.clustering.config import Cluster

__all__ = ["Cluster"]
