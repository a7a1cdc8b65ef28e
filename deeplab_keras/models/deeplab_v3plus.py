"""DeepLab v3+ (Chen et al. 2018): DeepLab v3 encoder + a decoder on stride-4 features,
atrous separable convolutions in ASPP and decoder."""
from deeplab_keras.backbones import build_backbone, get_backbone
from deeplab_keras.layers.aspp import aspp
from deeplab_keras.layers.decoder import decoder
from deeplab_keras.layers.rates import aspp_rates, check_output_stride
from deeplab_keras.models import common
from deeplab_keras.models.deeplab import register
from deeplab_keras.models.deeplab_v3 import backbone_options


@register("deeplabv3plus")
def DeepLabV3Plus(num_classes=21, backbone="xception65", output_stride=16, atrous_rates=None,
                  multi_grid=None, alpha=None, input_shape=(None, None, 3), input_tensor=None,
                  include_preprocessing=True, align_corners=False,
                  separable=True, aspp_filters=256, decoder_filters=256,
                  low_level_filters=48, dropout=0.1, activation=None, bn_momentum=0.99,
                  name=None, **backbone_kwargs):
    """DeepLab v3+. Arguments as :func:`DeepLabV3`, plus:

    Args:
        separable: atrous separable convs in ASPP and decoder (the paper's setting).
        decoder_filters: channels of the two 3x3 decoder convs (256).
        low_level_filters: channels of the stride-4 projection (48).
    """
    num_classes = common.check_num_classes(num_classes)
    output_stride = check_output_stride(output_stride, allowed=(8, 16, 32))
    spec = get_backbone(backbone)
    if spec.name == "vgg16":
        raise ValueError("DeepLabV3Plus does not support the vgg16 backbone (use DeepLabV1)")
    rates = aspp_rates(output_stride) if atrous_rates is None else tuple(atrous_rates)
    inputs = common.make_input(input_shape, input_tensor)
    x = common.preprocess(inputs, spec.name, include_preprocessing)
    features = build_backbone(spec.name, x, output_stride,
                              **backbone_options(spec.name, alpha, multi_grid, bn_momentum,
                                                 **backbone_kwargs))
    y = aspp(features["out"], aspp_filters, rates, separable=separable, dropout=dropout,
             align_corners=align_corners, bn_momentum=bn_momentum)
    y = decoder(y, features[4], low_level_filters=low_level_filters, filters=decoder_filters,
                separable=separable, align_corners=align_corners, bn_momentum=bn_momentum)
    logits = common.classifier(y, num_classes)
    outputs = common.upsample_to_input(logits, inputs, align_corners, activation)
    return common.finish(inputs, outputs, name or f"deeplabv3plus_{spec.name}",
                         common.record_parts(outputs, x, features, [logits]))
