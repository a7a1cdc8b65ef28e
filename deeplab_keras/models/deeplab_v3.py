"""DeepLab v3 (Chen et al. 2017): dilated backbone + ASPP with image pooling."""
from deeplab_keras.backbones import build_backbone, get_backbone
from deeplab_keras.layers.aspp import aspp
from deeplab_keras.layers.rates import aspp_rates, check_output_stride
from deeplab_keras.models import common
from deeplab_keras.models.deeplab import register


def backbone_options(backbone, alpha=None, multi_grid=None, bn_momentum=None, **extra):
    """Keyword arguments for the backbone, None meaning 'its default'."""
    return dict(alpha=alpha, multi_grid=multi_grid, bn_momentum=bn_momentum, **extra)


@register("deeplabv3")
def DeepLabV3(num_classes=21, backbone="resnet101", output_stride=16, atrous_rates=None,
              multi_grid=None, alpha=None, input_shape=(None, None, 3), input_tensor=None,
              include_preprocessing=True, align_corners=False, aspp_filters=256,
              dropout=0.1, activation=None, bn_momentum=0.99, name=None, **backbone_kwargs):
    """DeepLab v3.

    Args:
        num_classes: number of classes of the logits.
        backbone: "resnet50", "resnet101" (+ "_beta" stems), "xception41/65/71", "mobilenet_v2".
        output_stride: 8, 16 (default) or 32; strides beyond it become dilation.
        atrous_rates: ASPP 3x3 rates; default (6, 12, 18) at OS 16, (12, 24, 36) at OS 8.
            ``()`` gives the mobile head (image pooling + 1x1) of Google's MobileNet models.
        multi_grid: unit rates of the last block (ResNet/Xception), e.g. (1, 2, 4).
        alpha: MobileNetV2 width multiplier.
        input_shape: (H, W, 3); None sizes accept any image size.
        include_preprocessing: the model takes 0-255 RGB and normalises it in-graph.
        align_corners: resize semantics; True matches Google's checkpoints and TFLite files.
        activation: None for logits (default) or "softmax".
    Returns:
        a Keras functional model mapping images to per-pixel logits at the input size.
    """
    num_classes = common.check_num_classes(num_classes)
    output_stride = check_output_stride(output_stride)
    spec = get_backbone(backbone)
    if spec.name == "vgg16":
        raise ValueError("DeepLabV3 does not support the vgg16 backbone (use DeepLabV1)")
    if spec.name.startswith("resnet") and multi_grid is None:
        multi_grid = (1, 2, 4)  # the v3 paper's best setting
    rates = aspp_rates(output_stride) if atrous_rates is None else tuple(atrous_rates)
    inputs = common.make_input(input_shape, input_tensor)
    x = common.preprocess(inputs, spec.name, include_preprocessing)
    features = build_backbone(spec.name, x, output_stride,
                              **backbone_options(spec.name, alpha, multi_grid, bn_momentum,
                                                 **backbone_kwargs))
    y = aspp(features["out"], aspp_filters, rates, dropout=dropout, align_corners=align_corners,
             bn_momentum=bn_momentum)
    logits = common.classifier(y, num_classes)
    outputs = common.upsample_to_input(logits, inputs, align_corners, activation)
    return common.finish(inputs, outputs, name or f"deeplabv3_{spec.name}",
                         common.record_parts(outputs, x, features, [logits]))
