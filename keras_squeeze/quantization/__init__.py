"""Quantization: post-training modes applied at conversion, and quantization-aware training.

`PTQ_MODES` states each post-training mode's exact numeric scheme; `QAT` is
the quantization-aware training stage's config for `ks.Recipe(qat=...)`.
"""

from keras_squeeze.quantization.ptq import PTQ_MODES, PTQMode, get_mode
from keras_squeeze.quantization.qat_config import QAT

__all__ = ["PTQ_MODES", "QAT", "PTQMode", "get_mode"]
