"""Pieces every DeepLab builder shares: input checks, in-graph preprocessing, the classifier,
the final upsampling, and the model with its recorded parts (:mod:`deeplab_keras.models.deeplab`)."""
import numpy as np

from deeplab_keras import frontend
from deeplab_keras.backbones import get_backbone
from deeplab_keras.layers.resize import resize_class
from deeplab_keras.models import deeplab


def check_num_classes(num_classes):
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    return int(num_classes)


def make_input(input_shape, input_tensor=None):
    K = frontend.get()
    if input_tensor is not None:
        return input_tensor
    shape = tuple(input_shape) if input_shape is not None else (None, None, 3)
    if len(shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape!r}")
    if shape[2] != 3:
        raise ValueError(f"input_shape must have 3 (RGB) channels, got {shape[2]!r}")
    for d in shape[:2]:
        if d is not None and (int(d) < 1):
            raise ValueError(f"input_shape sizes must be positive or None, got {input_shape!r}")
    return K.Input(shape=shape, name="image")


def preprocess(x, backbone, include_preprocessing):
    """Normalise 0-255 RGB the way ``backbone``'s pretrained weights expect (in-graph)."""
    if not include_preprocessing:
        return x
    L = frontend.layers()
    spec = get_backbone(backbone)
    if spec.scale_offset is not None:
        scale, offset = spec.scale_offset
        return L.Rescaling(scale, offset, name="preprocessing")(x)
    return L.Rescaling(1.0, [-m for m in spec.mean], name="preprocessing")(x)


def classifier(x, num_classes, name="logits_semantic"):
    """DeepLab's 1x1 logits conv (``logits/semantic``), with bias."""
    return frontend.layers().Conv2D(num_classes, 1, use_bias=True, name=name)(x)


def upsample_to_input(logits, inputs, align_corners, activation=None, name="upsample_logits"):
    """Bilinear upsampling of the logits to the input size, in float32 under mixed precision."""
    y = resize_class()(align_corners=align_corners, dtype="float32", name=name)([logits, inputs])
    if activation is not None:
        y = frontend.layers().Activation(activation, dtype="float32", name="probabilities")(y)
    return y


def _producer(tensor):
    """The layer whose output ``tensor`` is (Keras 3 and tf_keras alike)."""
    return tensor._keras_history[0]


def record_parts(outputs, backbone_input, features, classifiers):
    """The ``parts`` of a model (see :mod:`deeplab_keras.models.deeplab`), read from the graph
    the builder just made: ``features`` are the backbone's outputs on ``backbone_input``;
    ``classifiers`` the tensors of the classifier convs."""
    K = frontend.get()
    main = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
    last = _producer(main)
    probabilities = None
    if isinstance(last, frontend.layers().Activation):
        probabilities, last = last.name, _producer(last.input)
    probe = K.Model(backbone_input, features["out"], name="backbone_probe")
    backbone = {layer.name for layer in probe.layers}
    pre = _producer(backbone_input)
    return {"upsample": last.name, "probabilities": probabilities,
            "preprocessing": pre.name if isinstance(pre, frontend.layers().Rescaling) else None,
            "classifier": [_producer(t).name for t in classifiers],
            "backbone": sorted(n for n in backbone if probe.get_layer(n).weights),
            "backbone_features": {str(k): _producer(t).name for k, t in features.items()}}


def head_layer_names(model, recorded=None):
    """Weighted layers of ``model`` that are not backbone (ASPP, decoder, classifier, ...)."""
    backbone = set((recorded or deeplab.parts(model))["backbone"])
    return [layer.name for layer in weighted_layers(model) if layer.name not in backbone]


def weighted_layers(model):
    """Layers with weights, nested models (DeepLabV2's multi-scale core) entered."""
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.weights and not layer.__class__.__name__.endswith(
                ("Conv2D", "Normalization", "Dense")):
            yield from weighted_layers(layer)
        elif layer.weights:
            yield layer


def finish(inputs, outputs, name, parts):
    return deeplab.finish(inputs, outputs, name, parts)
