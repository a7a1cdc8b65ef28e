"""Weight files of every supported format into a built model, and model-to-model transfers
(by layer name). Presets and URLs are one level up, in :mod:`deeplab_keras.weights`."""
import os

from deeplab_keras.importers.mapping import assign, model_weights
from deeplab_keras.models.common import head_layer_names
from deeplab_keras.models.deeplab import parts

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
    # which layers are head / classifier: both models say (the source may also be any Keras
    # model with the same layer names, e.g. a .keras file saved before models recorded parts)
    recorded = [m for m in (target, source) if getattr(m, "parts", None)]
    tensors = model_weights(source)
    if backbone_only:
        head = {n for m in recorded for n in head_layer_names(m)}
        tensors = {k: v for k, v in tensors.items() if k not in head}
    elif new_head:
        classifiers = {n for m in recorded for n in parts(m)["classifier"]}
        tensors = {k: v for k, v in tensors.items() if k not in classifiers}
    return assign(target, tensors, skip_classifier=new_head, backbone_only=backbone_only,
                  origin=f"model {source.name!r}")
