"""Weight files of every supported format into a built model, and model-to-model transfers
(by layer name). Presets, URLs and the rules of fine-tuning are one level up, in
:mod:`deeplab_keras.hub.weights` (``dk.load_weights``).

Formats live in one registry, :data:`REGISTRY`, filled by :func:`register_importer` (like the
export targets' ``register_format``): a format is its name, the file names it recognises and
``load(model, path, *, skip_classifier, backbone_only)``. Detection tries the formats in
registration order (``.weights.h5`` before ``.h5``).
"""
import dataclasses
import os

from deeplab_keras.importers.mapping import assign, model_weights
from deeplab_keras.models.common import head_layer_names
from deeplab_keras.models.deeplab import parts
from deeplab_keras.utils.registry import Registry


@dataclasses.dataclass(frozen=True)
class Importer:
    name: str
    load: object      # load(model, path, *, skip_classifier, backbone_only) -> report dict
    detect: object    # detect(path) -> bool
    description: str


#: format name -> :class:`Importer`, in detection order (a
#: :class:`~deeplab_keras.utils.registry.Registry`, the package's one registry kind)
REGISTRY = Registry("weights format")


def register_importer(name, *, suffixes=(), detect=None, description=""):
    """Decorator registering ``load(model, path, *, skip_classifier, backbone_only)`` as weights
    format ``name``, recognised by a file name ending in one of ``suffixes`` or by
    ``detect(path)``."""
    def decorate(load):
        def recognise(path):
            return path.endswith(tuple(suffixes)) or bool(detect and detect(path))
        REGISTRY.register(name, Importer(name, load, recognise, description))
        return load
    return decorate


def detect_format(path):
    path = os.fspath(path)
    for importer in REGISTRY.values():
        if importer.detect(path):
            return importer.name
    raise ValueError(f"cannot tell the weights format of {path!r} (expected "
                     + ", ".join(i.description for i in REGISTRY.values()) + ")")


def import_weights(model, path, fmt=None, *, skip_classifier=False, backbone_only=False):
    """Import the weights file ``path`` of format ``fmt`` (detected if None) into ``model``."""
    fmt = fmt or detect_format(path)
    if fmt not in REGISTRY:
        raise ValueError(f"unknown weights format {fmt!r}; known: {', '.join(REGISTRY)}")
    return REGISTRY[fmt].load(model, os.fspath(path), skip_classifier=skip_classifier,
                              backbone_only=backbone_only)


@register_importer("tflite", suffixes=(".tflite",), description=".tflite")
def _tflite(model, path, *, skip_classifier, backbone_only):
    from deeplab_keras.importers.tflite import import_tflite
    return import_tflite(model, path, skip_classifier=skip_classifier, allow_missing=backbone_only)


def _tf1(model, path, *, skip_classifier, backbone_only):
    from deeplab_keras.importers.tf1_checkpoint import import_tf1_checkpoint
    return import_tf1_checkpoint(model, path, skip_classifier, backbone_only)


register_importer("tf1_checkpoint_tar", suffixes=(".tar.gz", ".tgz", ".tar"),
                  description="a TF1 checkpoint tarball")(_tf1)


@register_importer("keras_weights_h5", suffixes=(".weights.h5",), description=".weights.h5")
def _keras_weights_h5(model, path, *, skip_classifier, backbone_only):
    if skip_classifier or backbone_only:
        raise ValueError("a .weights.h5 file loads whole models; use dk.load_weights(..., "
                         "new_head=True) for another number of classes")
    model.load_weights(path)
    return {"source": path}


@register_importer("keras_model", suffixes=(".keras",), description=".keras")
def _keras_model(model, path, *, skip_classifier, backbone_only):
    import keras
    source = keras.saving.load_model(path, compile=False)  # safe mode: reads this file only
    return transfer(source, model, new_head=skip_classifier, backbone_only=backbone_only)


@register_importer("keras_applications_h5", suffixes=(".h5",),
                   description="a keras.applications .h5")
def _keras_applications_h5(model, path, *, skip_classifier, backbone_only):
    from deeplab_keras.importers.keras_h5 import import_keras_h5
    return import_keras_h5(model, path, skip_classifier, backbone_only=True)


register_importer("tf1_checkpoint", detect=lambda path: (
    os.path.isdir(path) or path.endswith(".index") or os.path.isfile(path + ".index")),
    description="a TF1 checkpoint directory/prefix")(_tf1)

#: the format names, in detection order
FORMATS = tuple(REGISTRY)


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
