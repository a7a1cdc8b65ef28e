"""MobileNetV2 (Sandler et al.) as DeepLab uses it: width multiplier ``alpha``, output stride
8/16/32 by dilation, features up to ``expanded_conv_16`` (320 x alpha channels; the final 1280
conv is not used). Layer names are the TF-slim scopes of Google's checkpoints
(``Conv``, ``expanded_conv_3_depthwise``, ...), so Google's weights import by name.

Channel rounding follows Google's DeepLab: divisible by 8 at alpha 1.0 and by 1 otherwise
(``divisible_by=8`` gives the keras.applications rounding)."""
from deeplab_keras import frontend
from deeplab_keras.layers.conv import atrous_conv, depthwise_conv
from deeplab_keras.layers.rates import check_output_stride, stride_to_rate

# (expansion, channels, units, stride) - slim's V2_DEF without the final 1x1 conv.
V2_DEF = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
          (6, 160, 3, 2), (6, 320, 1, 1))
BN_EPSILON = 1e-3


def make_divisible(value, divisor, min_value=8):
    """slim's ``_make_divisible``."""
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


def mobilenet_v2(x, *, output_stride=16, alpha=1.0, divisible_by=None, bn_momentum=0.99):
    """Build on tensor ``x``; returns ``{stride: features, "out": last}``.

    ``features[4]`` is ``expanded_conv_2`` depthwise output (DeepLab's decoder end point
    ``layer_4/depthwise_output``)."""
    check_output_stride(output_stride)
    if not alpha > 0:
        raise ValueError(f"alpha must be positive, got {alpha!r}")
    if divisible_by is None:
        divisible_by = 8 if alpha == 1.0 else 1
    L = frontend.layers()
    bn = dict(bn_epsilon=BN_EPSILON, bn_momentum=bn_momentum)

    def depth(d):
        return make_divisible(d * alpha, divisible_by)

    features = {}
    x = atrous_conv(x, depth(32), 3, strides=2, name="Conv", activation="relu6", **bn)
    current_stride, rate = 2, 1
    features[2] = x
    index = 0
    in_channels = depth(32)
    for expansion, channels, units, stride in V2_DEF:
        out_channels = depth(channels)
        for unit in range(units):
            s = stride if unit == 0 else 1
            layer_stride, layer_rate, current_stride, rate = stride_to_rate(
                s, current_stride, rate, output_stride)
            scope = "expanded_conv" if index == 0 else f"expanded_conv_{index}"
            inputs = x
            if expansion != 1:
                x = atrous_conv(x, make_divisible(in_channels * expansion, 8), 1,
                                name=scope + "_expand", activation="relu6", **bn)
            x = depthwise_conv(x, 3, strides=layer_stride, rate=layer_rate,
                               name=scope + "_depthwise", activation="relu6", **bn)
            if index == 2:
                features[4] = x  # layer_4/depthwise_output
            x = atrous_conv(x, out_channels, 1, name=scope + "_project", activation=None, **bn)
            if layer_stride == 1 and in_channels == out_channels:
                x = L.Add(name=scope + "_add")([x, inputs])
            in_channels = out_channels
            index += 1
            if current_stride not in features or current_stride > 4:
                features[current_stride] = x
    features["out"] = x
    return features
