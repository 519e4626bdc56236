"""Built-in data and the example model, plus the data-argument adapters."""

from keras_squeeze.data.digits import NUM_CLASSES, load_digits
from keras_squeeze.data.example import example_model, train_example_model

__all__ = ["NUM_CLASSES", "example_model", "load_digits", "train_example_model"]
