"""deeplab-keras: DeepLab v1, v2, v3 and v3+ for Keras 3 / TensorFlow.

    import deeplab_keras as dk
    model = dk.DeepLabV3Plus(num_classes=21, backbone="xception65", output_stride=16)
"""
import os as _os

# TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notices) hides our own output; users
# who want it can set TF_CPP_MIN_LOG_LEVEL themselves before importing.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from deeplab_keras import backbones  # noqa: E402, frontend, layers
from deeplab_keras.models import (BUILDERS, DeepLab, DeepLabV1, DeepLabV2, DeepLabV3, DeepLabV3Plus,
                                  build_model)
from deeplab_keras.importers.tflite import from_tflite
from deeplab_keras.version import __version__
from deeplab_keras import weights  # noqa: E402  (installs the builders' weights= loader)
from deeplab_keras.zoo import from_preset, get_preset, list_presets

__all__ = ["DeepLab", "DeepLabV1", "DeepLabV2", "DeepLabV3", "DeepLabV3Plus", "build_model", "BUILDERS",
           "from_preset", "get_preset", "list_presets", "from_tflite", "backbones", "layers", "frontend",
           "__version__"]
