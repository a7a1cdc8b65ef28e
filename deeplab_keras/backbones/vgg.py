"""VGG-16 as modified for DeepLab-LargeFOV (v1): 3x3 max pools with padding, pool4 and pool5 at
stride 1, conv5 dilated by 2, a 3x3 stride-1 average pool (``pool5a``) - output stride 8.
Names follow the DeepLab prototxt (``conv1_1`` ... ``conv5_3``, ``pool5a``); ``fc6``/``fc7`` are
built by :func:`deeplab_keras.models.DeepLabV1`. Other output strides keep more pools strided."""
from deeplab_keras import frontend
from deeplab_keras.layers.rates import check_output_stride

_STAGES = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


def vgg16(x, *, output_stride=8):
    check_output_stride(output_stride)
    L = frontend.layers()
    features = {}
    current_stride, rate = 1, 1
    for s, (filters, convs) in enumerate(_STAGES, start=1):
        for c in range(1, convs + 1):
            x = L.Conv2D(filters, 3, padding="same", dilation_rate=rate, activation="relu",
                         name=f"conv{s}_{c}")(x)
        if current_stride < output_stride:
            x = L.MaxPooling2D(3, strides=2, padding="same", name=f"pool{s}")(x)
            current_stride *= 2
        else:
            x = L.MaxPooling2D(3, strides=1, padding="same", name=f"pool{s}")(x)
            rate *= 2
        features[current_stride] = x
    x = L.AveragePooling2D(3, strides=1, padding="same", name="pool5a")(x)
    features["out"] = x
    return features
