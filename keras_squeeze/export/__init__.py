"""Exports, each loaded back and run in its own runtime and compared with Keras.

ks.export.to_tflite(model, "model.tflite", quantization="int8", representative_data=x)
ks.export.to_onnx(model, "model.onnx")
ks.export.to_saved_model(model, "serving/digits")   # serving/digits/1/
"""

from keras_squeeze.export.artifact import Artifact
from keras_squeeze.export.onnx import to_onnx
from keras_squeeze.export.saved_model import to_saved_model
from keras_squeeze.export.tflite import to_tflite

__all__ = ["Artifact", "to_onnx", "to_saved_model", "to_tflite"]
