"""The four DeepLab builders, registered in :data:`BUILDERS`; each returns a
:class:`~deeplab_keras.models.deeplab.DeepLab` model."""
from deeplab_keras.models.deeplab import (BUILDERS, DeepLab, build_model, canonical, parts,
                                          resize_semantics)
from deeplab_keras.models.deeplab_v1 import DeepLabV1
from deeplab_keras.models.deeplab_v2 import DeepLabV2
from deeplab_keras.models.deeplab_v3 import DeepLabV3
from deeplab_keras.models.deeplab_v3plus import DeepLabV3Plus

__all__ = ["DeepLab", "DeepLabV1", "DeepLabV2", "DeepLabV3", "DeepLabV3Plus", "BUILDERS",
           "build_model", "canonical", "parts", "resize_semantics"]
