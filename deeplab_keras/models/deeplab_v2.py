"""DeepLab v2 (Chen et al. 2016/2018): dilated ResNet-101 (output stride 8) + ASPP-L, with optional
multi-scale inputs (scales 1, 0.75, 0.5 through one shared network, fused by element-wise max)."""
from deeplab_keras import frontend
from deeplab_keras.backbones import build_backbone, get_backbone
from deeplab_keras.layers.aspp import aspp_l
from deeplab_keras.layers.rates import check_output_stride
from deeplab_keras.layers.resize import resize_class
from deeplab_keras.models import common
from deeplab_keras.models.deeplab import register
from deeplab_keras.models.deeplab_v3 import backbone_options


@register("deeplabv2")
def DeepLabV2(num_classes=21, backbone="resnet101", output_stride=8,
              atrous_rates=(6, 12, 18, 24), multi_scale=False, scales=(1.0, 0.75, 0.5),
              return_all_scales=False, input_shape=(None, None, 3), input_tensor=None,
              include_preprocessing=True, align_corners=False, activation=None,
              bn_momentum=0.99, name=None, **backbone_kwargs):
    """DeepLab v2.

    Args:
        atrous_rates: ASPP-L rates (6, 12, 18, 24); one rate gives DeepLab-LargeFOV's head.
        multi_scale: run the shared network at each of ``scales`` and fuse by max (MSC).
        scales: input scales; the fused logits have the size of the first scale's logits.
        return_all_scales: with ``multi_scale``, outputs ``[fused, scale_0, scale_1, ...]``, each
            upsampled to the input size, so a loss can be put on every scale as in the paper.
    Other arguments as :func:`deeplab_keras.DeepLabV3`.
    """
    K, L = frontend.get(), frontend.layers()
    num_classes = common.check_num_classes(num_classes)
    output_stride = check_output_stride(output_stride)
    spec = get_backbone(backbone)
    if not spec.name.startswith("resnet"):
        raise ValueError(f"DeepLabV2 uses a ResNet backbone, got {backbone!r}")
    if return_all_scales and not multi_scale:
        raise ValueError("return_all_scales needs multi_scale=True")
    scales = tuple(float(s) for s in scales)
    if multi_scale and (not scales or min(scales) <= 0):
        raise ValueError(f"scales must be positive, got {scales!r}")
    opts = backbone_options(spec.name, None, None, bn_momentum, **backbone_kwargs)
    inputs = common.make_input(input_shape, input_tensor)
    x = common.preprocess(inputs, spec.name, include_preprocessing)
    model_name = name or f"deeplabv2_{spec.name}" + ("_msc" if multi_scale else "")

    if not multi_scale:
        features = build_backbone(spec.name, x, output_stride, **opts)
        logits = aspp_l(features["out"], num_classes, atrous_rates)
        outputs = common.upsample_to_input(logits, inputs, align_corners, activation)
        return common.finish(inputs, outputs, model_name,
                             common.record_parts(outputs, x, features, _classifiers(logits)))

    core_in = K.Input(shape=(None, None, 3), name="normalized_image")
    features = build_backbone(spec.name, core_in, output_stride, **opts)
    core_logits = aspp_l(features["out"], num_classes, atrous_rates)
    core = K.Model(core_in, core_logits, name="deeplabv2_core")
    Resize = resize_class()
    per_scale = []
    for i, s in enumerate(scales):
        xs = x if s == 1.0 else Resize(scale=s, align_corners=align_corners, name=f"input_scale{i}")(x)
        per_scale.append(core(xs))
    ref = per_scale[0]
    aligned = [ref] + [Resize(align_corners=align_corners, name=f"logits_scale{i}_to_scale0")([o, ref])
                       for i, o in enumerate(per_scale[1:], start=1)]
    fused = L.Maximum(name="msc_max")(aligned)
    outputs = common.upsample_to_input(fused, inputs, align_corners, activation)
    if return_all_scales:
        outputs = [outputs] + [
            common.upsample_to_input(o, inputs, align_corners, activation, name=f"upsample_scale{i}")
            for i, o in enumerate(per_scale)]
        if activation is not None:
            raise ValueError("return_all_scales gives logits for the loss: leave activation=None")
    return common.finish(inputs, outputs, model_name,
                         common.record_parts(outputs, core_in, features, _classifiers(core_logits)))


def _classifiers(logits):
    """The ASPP-L branch convs (DeepLab v2's classifier: each maps features to class logits)
    whose sum is ``logits``; one rate gives one conv."""
    producer = logits._keras_history[0]
    if isinstance(producer, frontend.layers().Add):
        return list(producer.input)
    return [logits]
