"""A copy of a Keras model with a fixed batch size (see `keras_squeeze.core.batch`)."""

from keras_squeeze.core.batch import with_batch_size

__all__ = ["with_batch_size"]
