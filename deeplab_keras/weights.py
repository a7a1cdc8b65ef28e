"""Loading weights into a built model: ``weights=`` of every builder.

``weights`` may be a preset name (see :mod:`deeplab_keras.zoo`: download, verify, convert, cache
as ``.weights.h5``), a Keras ``.weights.h5`` or ``.keras`` file, a Google ``.tflite`` file, a TF1
checkpoint (tarball, directory or prefix), a keras.applications legacy ``.h5``, or an http(s) URL
of one of these (downloaded into the cache; unpinned, so it needs ``allow_unpinned=True``).
"""
import os
import urllib.parse

from deeplab_keras import zoo
from deeplab_keras.importers.formats import FORMATS, detect_format, import_weights, transfer
from deeplab_keras.importers.mapping import WeightMismatchError
from deeplab_keras.models.deeplab import set_weights_loader

__all__ = ["load_weights", "import_weights", "transfer", "detect_format", "FORMATS",
           "WeightMismatchError"]


def load_weights(model, weights, *, allow_unpinned=False, new_head=False):
    """Load ``weights`` (preset name, file or URL) into ``model``; returns ``model``.

    ``new_head=True`` (fine-tuning, ``train --init-weights``): a preset or ``.keras`` source
    with another number of classes fills everything but the classifier, which keeps its fresh
    initialisation; with the same number of classes the classifier is copied too."""
    classes = int(model.outputs[0].shape[-1])
    if isinstance(weights, str) and zoo.is_preset(weights):
        path, preset = zoo.converted_weights(weights, allow_unpinned=allow_unpinned)
        source = zoo.build_preset_model(preset, num_classes=zoo.conversion_classes(preset))
        source.load_weights(path)
        try:
            transfer(source, model, backbone_only=preset.get("backbone_only", False),
                     new_head=bool(new_head) and zoo.conversion_classes(preset) != classes)
        except WeightMismatchError as err:
            raise WeightMismatchError(
                f"preset {weights!r} does not fit this model: {err}. For other classes use "
                f"deeplab_keras.from_preset({weights!r}, num_classes=...)") from None
        return model
    if isinstance(weights, str) and urllib.parse.urlparse(weights).scheme in ("http", "https"):
        from deeplab_keras import download
        name = os.path.basename(urllib.parse.urlparse(weights).path) or "weights"
        weights = download.fetch(weights, name, allow_unpinned=allow_unpinned)
    if isinstance(weights, (str, os.PathLike)):
        path = os.fspath(weights)
        if not (os.path.exists(path) or os.path.exists(path + ".index")):
            raise ValueError(f"weights={weights!r} is neither an existing file nor a known preset. "
                             f"Presets: {', '.join(zoo.list_presets())}")
        if new_head and path.endswith(".keras"):
            import keras
            source = keras.saving.load_model(path, compile=False)
            transfer(source, model, new_head=int(source.outputs[0].shape[-1]) != classes)
            return model
        import_weights(model, path)
        return model
    raise ValueError(f"weights must be a preset name, a file path or a URL, got {weights!r}")


# the builders' weights= argument (the models sit below this module and cannot import it)
set_weights_loader(load_weights)
