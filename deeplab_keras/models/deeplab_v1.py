"""DeepLab v1 (Chen et al. 2015), the DeepLab-LargeFOV variant: VGG-16 at output stride 8,
fc6 as a 3x3 conv with dilation 12 and 1024 channels, fc7 1x1 1024, fc8 the classifier."""
from deeplab_keras import frontend
from deeplab_keras.backbones import build_backbone
from deeplab_keras.layers.rates import check_output_stride
from deeplab_keras.models import common
from deeplab_keras.models.deeplab import register


@register("deeplabv1")
def DeepLabV1(num_classes=21, output_stride=8, fc6_rate=None, fc_filters=1024, dropout=0.5,
              input_shape=(None, None, 3), input_tensor=None,
              include_preprocessing=True, align_corners=False, activation=None, name=None):
    """DeepLab-LargeFOV.

    Args:
        output_stride: 8 (the paper); 16/32 keep more pools strided.
        fc6_rate: fc6 dilation, default 12 at output stride 8 (scaled for other strides).
        fc_filters: fc6/fc7 channels (1024 in LargeFOV).
    Other arguments as :func:`deeplab_keras.DeepLabV3`.
    """
    L = frontend.layers()
    num_classes = common.check_num_classes(num_classes)
    output_stride = check_output_stride(output_stride)
    rate = fc6_rate if fc6_rate is not None else max(1, 12 * 8 // output_stride)
    inputs = common.make_input(input_shape, input_tensor)
    normalized = common.preprocess(inputs, "vgg16", include_preprocessing)
    features = build_backbone("vgg16", normalized, output_stride)
    x = features["out"]
    x = L.Conv2D(fc_filters, 3, dilation_rate=rate, padding="same", activation="relu", name="fc6")(x)
    x = L.Dropout(dropout, name="drop6")(x)
    x = L.Conv2D(fc_filters, 1, activation="relu", name="fc7")(x)
    x = L.Dropout(dropout, name="drop7")(x)
    logits = common.classifier(x, num_classes, name="fc8")
    outputs = common.upsample_to_input(logits, inputs, align_corners, activation)
    return common.finish(inputs, outputs, name or "deeplabv1_vgg16_largefov",
                         common.record_parts(outputs, normalized, features, [logits]))
