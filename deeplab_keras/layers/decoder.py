"""The DeepLab v3+ decoder: 48-channel 1x1 projection of stride-4 features, upsample the ASPP
output to that size, concat, two 3x3 convs (separable by default) of 256 channels.

Scopes follow Google's code: ``decoder/feature_projection0``, ``decoder/decoder_conv{0,1}``."""
from deeplab_keras import frontend
from deeplab_keras.layers.conv import atrous_conv, atrous_separable_conv
from deeplab_keras.layers.resize import resize_class


def decoder(x, low_level, *, low_level_filters=48, filters=256, separable=True,
            align_corners=False, bn_epsilon=1e-5, bn_momentum=0.99):
    L = frontend.layers()
    bn = dict(bn_epsilon=bn_epsilon, bn_momentum=bn_momentum)
    low = atrous_conv(low_level, low_level_filters, 1, name="decoder_feature_projection0", **bn)
    x = resize_class()(align_corners=align_corners, name="decoder_upsample")([x, low])
    x = L.Concatenate(name="decoder_concat")([x, low])
    for i in range(2):
        if separable:
            x = atrous_separable_conv(x, filters, 3, name=f"decoder_decoder_conv{i}", **bn)
        else:
            x = atrous_conv(x, filters, 3, name=f"decoder_decoder_conv{i}", **bn)
    return x
