"""The four DeepLab builders."""
from deeplab_keras.models.deeplab_v1 import DeepLabV1
from deeplab_keras.models.deeplab_v2 import DeepLabV2
from deeplab_keras.models.deeplab_v3 import DeepLabV3
from deeplab_keras.models.deeplab_v3plus import DeepLabV3Plus

BUILDERS = {"deeplabv1": DeepLabV1, "deeplabv2": DeepLabV2, "deeplabv3": DeepLabV3,
            "deeplabv3plus": DeepLabV3Plus}


def build_model(architecture, **config):
    """Build from a config dict, e.g. ``build_model("deeplabv3", backbone="mobilenet_v2", ...)``."""
    key = str(architecture).lower().replace("_", "").replace("-", "").replace("+", "plus")
    if key not in BUILDERS:
        raise ValueError(f"Unknown architecture {architecture!r}. Available: {', '.join(BUILDERS)}")
    return BUILDERS[key](**config)


__all__ = ["DeepLabV1", "DeepLabV2", "DeepLabV3", "DeepLabV3Plus", "BUILDERS", "build_model"]
