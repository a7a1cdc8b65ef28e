"""Loading weights into a built model: ``weights=`` of every builder.

``weights`` may be a preset name (see :mod:`deeplab_keras.zoo`: download, verify, convert, cache
as ``.weights.h5``), a Keras ``.weights.h5`` or ``.keras`` file, a Google ``.tflite`` file, a TF1
checkpoint (tarball, directory or prefix), a keras.applications legacy ``.h5``, or an http(s) URL
of one of these (downloaded into the cache; unpinned, so it needs ``allow_unpinned=True``).
"""
import os
import urllib.parse

from deeplab_keras.importers.mapping import (CLASSIFIERS, WeightMismatchError, assign, is_head,
                                             model_weights)

FORMATS = ("tflite", "tf1_checkpoint_tar", "tf1_checkpoint", "keras_weights_h5", "keras_model",
           "keras_applications_h5")


def detect_format(path):
    path = os.fspath(path)
    if path.endswith(".weights.h5"):
        return "keras_weights_h5"
    if path.endswith(".keras"):
        return "keras_model"
    if path.endswith(".tflite"):
        return "tflite"
    if path.endswith((".tar.gz", ".tgz", ".tar")):
        return "tf1_checkpoint_tar"
    if path.endswith(".h5"):
        return "keras_applications_h5"
    if os.path.isdir(path) or path.endswith(".index") or os.path.isfile(path + ".index"):
        return "tf1_checkpoint"
    raise ValueError(f"cannot tell the weights format of {path!r} (expected .weights.h5, .keras, "
                     ".tflite, .h5, a TF1 checkpoint tarball/directory/prefix)")


def import_weights(model, path, fmt=None, *, skip_classifier=False, backbone_only=False):
    """Import the weights file ``path`` of format ``fmt`` (detected if None) into ``model``."""
    fmt = fmt or detect_format(path)
    if fmt == "tflite":
        from deeplab_keras.importers.tflite import import_tflite
        return import_tflite(model, path, skip_classifier=skip_classifier, allow_missing=backbone_only)
    if fmt in ("tf1_checkpoint_tar", "tf1_checkpoint"):
        from deeplab_keras.importers.tf1_checkpoint import import_tf1_checkpoint
        return import_tf1_checkpoint(model, path, skip_classifier, backbone_only)
    if fmt == "keras_applications_h5":
        from deeplab_keras.importers.keras_h5 import import_keras_h5
        return import_keras_h5(model, path, skip_classifier, backbone_only=True)
    if fmt == "keras_weights_h5":
        if skip_classifier or backbone_only:
            raise ValueError("a .weights.h5 file loads whole models; use weights.transfer for parts")
        model.load_weights(path)
        return {"source": path}
    if fmt == "keras_model":
        import keras
        source = keras.saving.load_model(path, compile=False)
        return transfer(source, model, new_head=skip_classifier, backbone_only=backbone_only)
    raise ValueError(f"unknown weights format {fmt!r}; known: {', '.join(FORMATS)}")


def transfer(source, target, *, new_head=False, backbone_only=False):
    """Copy weights from model ``source`` to ``target`` by layer name (strict: every weighted
    layer of ``target`` must exist in ``source`` with the same shapes, except the classifier when
    ``new_head`` and head layers when ``backbone_only``)."""
    tensors = model_weights(source)
    if backbone_only:
        tensors = {k: v for k, v in tensors.items() if not is_head(k)}
    elif new_head:
        tensors = {k: v for k, v in tensors.items() if k not in CLASSIFIERS}
    return assign(target, tensors, skip_classifier=new_head, backbone_only=backbone_only,
                  origin=f"model {source.name!r}")


def load_weights(model, weights, *, allow_unpinned=False):
    """Load ``weights`` (preset name, file or URL) into ``model``; returns ``model``."""
    from deeplab_keras import zoo

    if isinstance(weights, str) and zoo.is_preset(weights):
        path, preset = zoo.converted_weights(weights, allow_unpinned=allow_unpinned)
        source = zoo.build_preset_model(preset, num_classes=zoo.conversion_classes(preset))
        source.load_weights(path)
        try:
            transfer(source, model, backbone_only=preset.get("backbone_only", False))
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
            from deeplab_keras import zoo as _zoo
            raise ValueError(f"weights={weights!r} is neither an existing file nor a known preset. "
                             f"Presets: {', '.join(_zoo.list_presets())}")
        import_weights(model, path)
        return model
    raise ValueError(f"weights must be a preset name, a file path or a URL, got {weights!r}")
