"""Pieces every DeepLab builder shares: input checks, in-graph preprocessing, the classifier,
the final upsampling, and weight loading."""
import numpy as np

from deeplab_keras import frontend
from deeplab_keras.backbones import get_backbone
from deeplab_keras.layers.resize import resize_class


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


def finish(inputs, outputs, name, weights):
    K = frontend.get()
    model = K.Model(inputs, outputs, name=name)
    if weights is not None:
        from deeplab_keras.weights import load_weights
        load_weights(model, weights)
    return model
