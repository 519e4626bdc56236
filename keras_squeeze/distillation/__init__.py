"""Knowledge distillation: ks.distill() and the Distill settings used by every stage."""

from keras_squeeze.distillation.api import DistillResult, distill
from keras_squeeze.distillation.config import Distill

__all__ = ["Distill", "DistillResult", "distill"]
