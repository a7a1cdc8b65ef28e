"""MobileNetV3 Large/Small (Howard et al. 2019) as in TF-slim's ``mobilenet_v3.py``: inverted
residuals with optional squeeze-excite (hard-sigmoid gate) and hard-swish, width ``alpha``, output
stride 8/16/32 by dilation, features up to the last 1x1 conv (``Conv_1``: 960 / 576 x alpha
channels; the classification 1280/1024 conv is not built). Layer names are slim's scopes
(``expanded_conv_3_squeeze_excite_Conv``), hard-swish/-sigmoid are built from ReLU6 + Rescaling +
Multiply so the same code builds in Keras 3 and tf_keras and converts to plain TFLite ops."""
from deeplab_keras import frontend
from deeplab_keras.backbones.mobilenet_v2 import make_divisible
from deeplab_keras.layers.conv import atrous_conv, depthwise_conv
from deeplab_keras.layers.rates import check_output_stride, stride_to_rate

BN_EPSILON = 1e-3
HS = "hard_swish"
# (kernel, expansion factor, channels, squeeze-excite, activation, stride) - slim V3_LARGE / V3_SMALL
LARGE = ((3, 1, 16, False, "relu", 1), (3, 4, 24, False, "relu", 2), (3, 3, 24, False, "relu", 1),
         (5, 3, 40, True, "relu", 2), (5, 3, 40, True, "relu", 1), (5, 3, 40, True, "relu", 1),
         (3, 6, 80, False, HS, 2), (3, 2.5, 80, False, HS, 1), (3, 184 / 80, 80, False, HS, 1),
         (3, 184 / 80, 80, False, HS, 1), (3, 6, 112, True, HS, 1), (3, 6, 112, True, HS, 1),
         (5, 6, 160, True, HS, 2), (5, 6, 160, True, HS, 1), (5, 6, 160, True, HS, 1))
SMALL = ((3, 1, 16, True, "relu", 2), (3, 72 / 16, 24, False, "relu", 2),
         (3, 88 / 24, 24, False, "relu", 1), (5, 4, 40, True, HS, 2), (5, 6, 40, True, HS, 1),
         (5, 6, 40, True, HS, 1), (5, 3, 48, True, HS, 1), (5, 3, 48, True, HS, 1),
         (5, 6, 96, True, HS, 2), (5, 6, 96, True, HS, 1), (5, 6, 96, True, HS, 1))
VARIANTS = {"large": (LARGE, 960), "small": (SMALL, 576)}


def hard_sigmoid(x, name):
    """relu6(x + 3) / 6, slim's ``hard_sigmoid``."""
    L = frontend.layers()
    x = L.Rescaling(1.0, offset=3.0, name=name + "_add3")(x)
    x = L.ReLU(max_value=6.0, name=name + "_relu6")(x)
    return L.Rescaling(1.0 / 6.0, name=name + "_div6")(x)


def hard_swish(x, name):
    """x * relu6(x + 3) / 6."""
    return frontend.layers().Multiply(name=name + "_hswish")([x, hard_sigmoid(x, name + "_hsig")])


def _conv_bn_act(x, filters, kernel, *, name, activation, strides=1, rate=1, depthwise=False, bn):
    act = None if activation == HS else activation
    if depthwise:
        x = depthwise_conv(x, kernel, strides=strides, rate=rate, name=name, activation=act, **bn)
    else:
        x = atrous_conv(x, filters, kernel, strides=strides, name=name, activation=act, **bn)
    return hard_swish(x, name) if activation == HS else x


def squeeze_excite(x, name, squeeze_factor=4):
    """slim ``squeeze_excite``: mean, 1x1 + ReLU (``Conv``), 1x1 + hard sigmoid (``Conv_1``), scale."""
    L = frontend.layers()
    channels = x.shape[-1]
    s = L.GlobalAveragePooling2D(keepdims=True, name=name + "_pool")(x)
    s = L.Conv2D(make_divisible(channels / squeeze_factor, 8), 1, activation="relu",
                 name=name + "_Conv")(s)
    s = hard_sigmoid(L.Conv2D(channels, 1, name=name + "_Conv_1")(s), name + "_Conv_1")
    return L.Multiply(name=name + "_mul")([x, s])


def mobilenet_v3(x, *, variant="large", output_stride=16, alpha=1.0, bn_momentum=0.99):
    """Build on tensor ``x``; returns ``{stride: features, "out": Conv_1 output}``.

    ``features[4]`` is the depthwise output of the last unit at stride 4 (DeepLab's decoder end
    point: ``layer_4/depthwise_output`` for Large)."""
    check_output_stride(output_stride)
    if variant not in VARIANTS:
        raise ValueError(f"MobileNetV3 variant must be one of {sorted(VARIANTS)}, got {variant!r}")
    if not alpha > 0:
        raise ValueError(f"alpha must be positive, got {alpha!r}")
    L = frontend.layers()
    bn = dict(bn_epsilon=BN_EPSILON, bn_momentum=bn_momentum)
    spec, last = VARIANTS[variant]

    x = _conv_bn_act(x, make_divisible(16 * alpha, 8), 3, strides=2, name="Conv", activation=HS,
                     bn=bn)
    features = {2: x}
    current_stride, rate, in_channels = 2, 1, x.shape[-1]
    for index, (kernel, expansion, channels, se, act, stride) in enumerate(spec):
        scope = "expanded_conv" if index == 0 else f"expanded_conv_{index}"
        layer_stride, layer_rate, current_stride, rate = stride_to_rate(
            stride, current_stride, rate, output_stride)
        out_channels = make_divisible(channels * alpha, 8)
        inner = make_divisible(in_channels * expansion, 8)
        inputs = x
        if inner > in_channels:  # slim skips the expansion when it would not widen
            x = _conv_bn_act(x, inner, 1, name=scope + "_expand", activation=act, bn=bn)
        x = _conv_bn_act(x, None, kernel, strides=layer_stride, rate=layer_rate, depthwise=True,
                         name=scope + "_depthwise", activation=act, bn=bn)
        if current_stride == 4:
            features[4] = x  # depthwise output at stride 4 (the last one wins)
        if se:
            x = squeeze_excite(x, scope + "_squeeze_excite")
        x = atrous_conv(x, out_channels, 1, name=scope + "_project", activation=None, **bn)
        if layer_stride == 1 and in_channels == out_channels:
            x = L.Add(name=scope + "_add")([x, inputs])
        in_channels = out_channels
        if current_stride > 4:
            features[current_stride] = x
    x = _conv_bn_act(x, make_divisible(last * alpha, 8), 1, name="Conv_1", activation=HS, bn=bn)
    features[current_stride] = x
    features["out"] = x
    return features
