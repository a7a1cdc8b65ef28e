"""Atrous Spatial Pyramid Pooling and its variants.

* :func:`aspp` - DeepLab v3/v3+: image pooling, 1x1, one 3x3 atrous branch per rate (plain or
  separable), BN + ReLU, concat, 1x1 projection, dropout. ``atrous_rates=()`` gives the mobile
  head of Google's MobileNet models (image pooling + 1x1 only).
* :func:`aspp_l` - DeepLab v2 "ASPP-L": parallel 3x3 atrous classifiers whose logits are summed.

Scopes follow Google's DeepLab code: ``image_pooling``, ``aspp0``, ``aspp{i}`` (or
``aspp{i}_depthwise``/``aspp{i}_pointwise``), ``concat_projection``. The concat order is Google's:
image pooling first.
"""
from deeplab_keras import frontend
from deeplab_keras.layers.conv import atrous_conv, atrous_separable_conv
from deeplab_keras.layers.resize import resize_class


def image_pooling(x, filters=256, *, align_corners=False, name="image_pooling", bn_epsilon=1e-5,
                  bn_momentum=0.99):
    """Image-level features: global average pool, 1x1 conv + BN + ReLU, resize back to ``x``.

    Works for any input size (the pool is a mean, the resize takes the size from ``x``)."""
    L = frontend.layers()
    pooled = L.GlobalAveragePooling2D(keepdims=True, name=name + "_pool")(x)
    pooled = atrous_conv(pooled, filters, 1, name=name, bn_epsilon=bn_epsilon,
                         bn_momentum=bn_momentum)
    return resize_class()(align_corners=align_corners, name=name + "_resize")([pooled, x])


def aspp(x, filters=256, atrous_rates=(6, 12, 18), *, use_image_pooling=True, separable=False,
         dropout=0.1, align_corners=False, bn_epsilon=1e-5, bn_momentum=0.99):
    """DeepLab v3 ASPP. Returns the projected features (``filters`` channels)."""
    L = frontend.layers()
    rates = tuple(int(r) for r in atrous_rates)
    if any(r < 1 for r in rates):
        raise ValueError(f"atrous_rates must be positive integers, got {atrous_rates!r}")
    bn = dict(bn_epsilon=bn_epsilon, bn_momentum=bn_momentum)
    branches = []
    if use_image_pooling:
        branches.append(image_pooling(x, filters, align_corners=align_corners, **bn))
    branches.append(atrous_conv(x, filters, 1, name="aspp0", **bn))
    for i, rate in enumerate(rates, start=1):
        if separable:
            branches.append(atrous_separable_conv(x, filters, 3, rate=rate, name=f"aspp{i}", **bn))
        else:
            branches.append(atrous_conv(x, filters, 3, rate=rate, name=f"aspp{i}", **bn))
    y = L.Concatenate(name="aspp_concat")(branches) if len(branches) > 1 else branches[0]
    y = atrous_conv(y, filters, 1, name="concat_projection", **bn)
    if dropout:
        y = L.Dropout(dropout, name="concat_projection_dropout")(y)
    return y


def aspp_l(x, num_classes, atrous_rates=(6, 12, 18, 24), *, name="aspp_l"):
    """DeepLab v2 ASPP-L: one 3x3 atrous classifier per rate (with bias, no BN), logits summed."""
    L = frontend.layers()
    rates = tuple(int(r) for r in atrous_rates)
    if not rates or any(r < 1 for r in rates):
        raise ValueError(f"ASPP-L needs positive atrous_rates, got {atrous_rates!r}")
    branches = [
        L.Conv2D(num_classes, 3, dilation_rate=r, padding="same", use_bias=True,
                 kernel_initializer=frontend.get().initializers.RandomNormal(stddev=0.01),
                 name=f"{name}_c{i}")(x)
        for i, r in enumerate(rates)
    ]
    return L.Add(name=name + "_sum")(branches) if len(branches) > 1 else branches[0]
