"""The shared convolution blocks: atrous conv and atrous separable conv (conv + BN + activation).

Layer names follow TF-slim scopes with ``/`` replaced by ``_`` (Keras forbids ``/``): the scope
``expanded_conv_3/depthwise`` becomes layer ``expanded_conv_3_depthwise`` and its batch norm
``expanded_conv_3_depthwise_BatchNorm``, so importing Google's checkpoints is a name mapping.
"""
from deeplab_keras import frontend

BN_SUFFIX = "_BatchNorm"


def scope_to_name(scope):
    """TF-slim scope -> Keras layer name (``a/b`` -> ``a_b``)."""
    return scope.replace("/", "_")


def _activation(x, activation, name):
    L = frontend.layers()
    if activation is None:
        return x
    if activation == "relu":
        return L.ReLU(name=name + "_relu")(x)
    if activation == "relu6":
        return L.ReLU(max_value=6.0, name=name + "_relu6")(x)
    return L.Activation(activation, name=name + "_" + str(activation))(x)


def fixed_padding(x, kernel_size, rate=1, name=None):
    """TF-slim ``fixed_padding``: pad (k_eff - 1) split as evenly as possible, then VALID conv.

    Used by strided convs of ResNet/Xception so outputs line up with Google's checkpoints for
    any input size (Keras "same" pads asymmetrically on even sizes)."""
    k_eff = kernel_size + (kernel_size - 1) * (rate - 1)
    total = k_eff - 1
    beg = total // 2
    end = total - beg
    if total == 0:
        return x
    return frontend.layers().ZeroPadding2D(((beg, end), (beg, end)), name=name)(x)


def _pad(x, kernel_size, strides, rate, explicit_padding, name):
    """Checks stride/rate and returns ``(x, padding)``: TF "same", or slim's fixed padding then
    "valid" for strided convs with ``explicit_padding``."""
    if strides > 1 and rate > 1:
        raise ValueError(f"{name}: strides={strides} and rate={rate} cannot both be > 1")
    if explicit_padding and strides > 1:
        return fixed_padding(x, kernel_size, rate, name=name + "_pad"), "valid"
    return x, "same"


def batch_norm(x, name, epsilon=1e-5, momentum=0.99):
    return frontend.layers().BatchNormalization(epsilon=epsilon, momentum=momentum, name=name)(x)


def atrous_conv(x, filters, kernel_size=3, strides=1, rate=1, *, name, activation="relu",
                use_bn=True, use_bias=None, explicit_padding=False, bn_epsilon=1e-5,
                bn_momentum=0.99):
    """Conv (optionally dilated) + BatchNorm + activation, named like a TF-slim ``conv2d``.

    ``strides`` and ``rate`` cannot both exceed 1 (DeepLab trades one for the other)."""
    x, padding = _pad(x, kernel_size, strides, rate, explicit_padding, name)
    L = frontend.layers()
    x = L.Conv2D(filters, kernel_size, strides=strides, dilation_rate=rate, padding=padding,
                 use_bias=(not use_bn) if use_bias is None else use_bias,
                 kernel_initializer="he_normal", name=name)(x)
    if use_bn:
        x = batch_norm(x, name + BN_SUFFIX, bn_epsilon, bn_momentum)
    return _activation(x, activation, name)


def depthwise_conv(x, kernel_size=3, strides=1, rate=1, *, name, activation="relu", use_bn=True,
                   explicit_padding=False, bn_epsilon=1e-5, bn_momentum=0.99):
    """Depthwise conv (optionally dilated) + BatchNorm + activation."""
    x, padding = _pad(x, kernel_size, strides, rate, explicit_padding, name)
    L = frontend.layers()
    x = L.DepthwiseConv2D(kernel_size, strides=strides, dilation_rate=rate, padding=padding,
                          use_bias=not use_bn, depthwise_initializer="he_normal", name=name)(x)
    if use_bn:
        x = batch_norm(x, name + BN_SUFFIX, bn_epsilon, bn_momentum)
    return _activation(x, activation, name)


def atrous_separable_conv(x, filters, kernel_size=3, strides=1, rate=1, *, name,
                          activation="relu", depth_activation=True, pre_activation=False,
                          explicit_padding=False, bn_epsilon=1e-5, bn_momentum=0.99):
    """Atrous separable conv as in the v3+ paper: depthwise (dilated) + BN (+ act), then
    pointwise 1x1 + BN (+ act). Layers ``{name}_depthwise`` and ``{name}_pointwise``.

    ``pre_activation=True`` is Xception's entry/middle-flow form: ReLU before the depthwise conv
    and no activation after either BN (``depth_activation`` is then ignored)."""
    L = frontend.layers()
    if pre_activation:
        x = L.ReLU(name=name + "_preact")(x)
        inner = None
    else:
        inner = activation if depth_activation else None
    x = depthwise_conv(x, kernel_size, strides, rate, name=name + "_depthwise", activation=inner,
                       explicit_padding=explicit_padding, bn_epsilon=bn_epsilon,
                       bn_momentum=bn_momentum)
    return atrous_conv(x, filters, 1, name=name + "_pointwise",
                       activation=None if pre_activation else activation,
                       bn_epsilon=bn_epsilon, bn_momentum=bn_momentum)
