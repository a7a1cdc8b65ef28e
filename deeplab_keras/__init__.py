"""deeplab-keras: DeepLab v1, v2, v3 and v3+ for Keras 3 / TensorFlow.

    import deeplab_keras as dk
    model = dk.DeepLabV3Plus(num_classes=21, backbone="xception65", output_stride=16)
    classes = dk.segment(model, "photo.jpg")          # class map at the photo's size

``import deeplab_keras`` does not import TensorFlow: the attributes below load their module on
first use (PEP 562 module ``__getattr__``), so the command line's ``--help`` and ``zoo list``
start in a fraction of TensorFlow's import time. It registers the Keras classes for
``keras.saving.load_model`` when Keras is imported (:mod:`deeplab_keras.keras_classes`).

It does not change the process's environment: ``TF_CPP_MIN_LOG_LEVEL`` is the user's (the
command line sets it for its own process). When a ``dk.<name>`` attribute is what loads
TensorFlow, its start-up chatter (CUDA probing, oneDNN notices) is quieted for that load only
(:func:`deeplab_keras.utils.quiet.quiet_tensorflow_load`), unless the variable is set.
"""
import importlib as _importlib

from deeplab_keras.utils.quiet import quiet_tensorflow_load as _quiet_tensorflow_load
from deeplab_keras.version import __version__
from deeplab_keras import keras_classes as _keras_classes

_keras_classes.install()

#: public name -> module that defines it (a module name alone: the module itself)
_LAZY = {
    "DeepLab": "deeplab_keras.models", "DeepLabV1": "deeplab_keras.builders",
    "DeepLabV2": "deeplab_keras.builders", "DeepLabV3": "deeplab_keras.builders",
    "DeepLabV3Plus": "deeplab_keras.builders", "build_model": "deeplab_keras.builders",
    "BUILDERS": "deeplab_keras.builders",
    "from_preset": "deeplab_keras.hub.weights", "load_weights": "deeplab_keras.hub.weights",
    "get_preset": "deeplab_keras.hub.zoo", "list_presets": "deeplab_keras.hub.zoo",
    "resize_semantics": "deeplab_keras.models", "resize": "deeplab_keras.layers.resize",
    "from_tflite": "deeplab_keras.importers.tflite",
    "segment": "deeplab_keras.inference", "overlay": "deeplab_keras.inference",
    "colorize": "deeplab_keras.inference", "load_image": "deeplab_keras.inference",
    "VideoSegmenter": "deeplab_keras.video", "TemporalSmoother": "deeplab_keras.video",
    "backbones": None, "layers": None, "frontend": None, "hub": None, "builders": None,
    "data": None, "inference": None, "models": None, "training": None, "evaluation": None,
    "video": None,
    "export": None, "importers": None, "download": None, "utils": None,
}

__all__ = ["DeepLab", "DeepLabV1", "DeepLabV2", "DeepLabV3", "DeepLabV3Plus", "build_model", "BUILDERS",
           "from_preset", "load_weights", "get_preset", "list_presets", "from_tflite", "segment",
           "overlay", "colorize", "load_image", "VideoSegmenter", "TemporalSmoother", "resize",
           "resize_semantics", "backbones", "layers", "frontend", "__version__"]


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'deeplab_keras' has no attribute {name!r}")
    with _quiet_tensorflow_load():
        module = _importlib.import_module(_LAZY[name] or f"deeplab_keras.{name}")
    value = module if _LAZY[name] is None else getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
