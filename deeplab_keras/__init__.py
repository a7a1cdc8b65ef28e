"""deeplab-keras: DeepLab v1, v2, v3 and v3+ for Keras 3 / TensorFlow.

    import deeplab_keras as dk
    model = dk.DeepLabV3Plus(num_classes=21, backbone="xception65", output_stride=16)
"""
from deeplab_keras import backbones, frontend, layers
from deeplab_keras.models import BUILDERS, DeepLabV1, DeepLabV2, DeepLabV3, DeepLabV3Plus, build_model
from deeplab_keras.version import __version__
from deeplab_keras.zoo import from_preset, get_preset, list_presets

__all__ = ["DeepLabV1", "DeepLabV2", "DeepLabV3", "DeepLabV3Plus", "build_model", "BUILDERS",
           "backbones", "layers", "frontend", "__version__"]
__all__ += ["from_preset", "get_preset", "list_presets"]
