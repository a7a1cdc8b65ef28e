"""The four DeepLab builders, registered in :data:`BUILDERS` (build one by name with
``BUILDERS.build(architecture, **config)``; ``dk.build_model`` adds ``weights=``); each returns
a :class:`~deeplab_keras.models.deeplab.DeepLab` model."""
from deeplab_keras.models.deeplab import (BUILDERS, DeepLab, canonical, config_of, parts,
                                          register, resize_semantics)
from deeplab_keras.models.deeplab_v1 import DeepLabV1
from deeplab_keras.models.deeplab_v2 import DeepLabV2
from deeplab_keras.models.deeplab_v3 import DeepLabV3
from deeplab_keras.models.deeplab_v3plus import DeepLabV3Plus

__all__ = ["DeepLab", "DeepLabV1", "DeepLabV2", "DeepLabV3", "DeepLabV3Plus", "BUILDERS",
           "canonical", "config_of", "parts", "register", "resize_semantics"]
