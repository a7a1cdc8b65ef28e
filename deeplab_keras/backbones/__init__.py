"""Backbone registry. Every backbone builds on an input tensor and returns features by output
stride: ``{4: decoder features, 8: ..., "out": final features at output_stride}``."""
import dataclasses
import functools

from deeplab_keras.utils.registry import Registry

from deeplab_keras.backbones.mobilenet_v2 import mobilenet_v2
from deeplab_keras.backbones.mobilenet_v3 import mobilenet_v3
from deeplab_keras.backbones.resnet import resnet
from deeplab_keras.backbones.vgg import vgg16
from deeplab_keras.backbones.xception import xception

# Input normalisation each backbone's pretrained weights expect, as (scale, offset) on 0-255 RGB.
ZERO_MEAN_UNIT_RANGE = (1.0 / 127.5, -1.0)  # Google's MobileNet / Xception checkpoints
IMAGENET_MEAN_RGB = (123.15, 115.90, 103.06)  # Google's resnet_v1 checkpoints (mean subtraction)
VGG_MEAN_RGB = (123.68, 116.779, 103.939)


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    name: str
    build: callable
    mean: tuple = None  # subtract this RGB mean ...
    scale_offset: tuple = None  # ... or apply x * scale + offset
    options: tuple = ()  # keyword arguments this backbone accepts beyond output_stride
    output_strides: tuple = (8, 16, 32)


_SPECS = [
    BackboneSpec("mobilenet_v2", mobilenet_v2, scale_offset=ZERO_MEAN_UNIT_RANGE,
                 options=("alpha", "divisible_by", "bn_momentum")),
    BackboneSpec("vgg16", vgg16, mean=VGG_MEAN_RGB),
]
for _v in ("large", "small"):
    _SPECS.append(BackboneSpec(f"mobilenet_v3_{_v}", functools.partial(mobilenet_v3, variant=_v),
                               scale_offset=ZERO_MEAN_UNIT_RANGE, options=("alpha", "bn_momentum")))
for _d in (50, 101):
    for _stem in ("resnet", "beta"):
        _name = f"resnet{_d}" + ("_beta" if _stem == "beta" else "")
        _SPECS.append(BackboneSpec(_name, functools.partial(resnet, depth=_d, stem=_stem),
                                   mean=IMAGENET_MEAN_RGB,
                                   options=("multi_grid", "dilation_schedule", "bn_momentum")))
for _d in (41, 65, 71):
    _SPECS.append(BackboneSpec(f"xception{_d}", functools.partial(xception, depth=_d),
                               scale_offset=ZERO_MEAN_UNIT_RANGE,
                               options=("multi_grid", "bn_momentum")))

#: backbone name -> :class:`BackboneSpec` (the package's one registry kind; lookups accept
#: the aliases below and any case)
BACKBONES = Registry("backbone", normalize=str.lower, aliases={
    "mobilenetv2": "mobilenet_v2", "xception": "xception65", "resnet": "resnet101",
    "vgg": "vgg16", "xception_65": "xception65", "resnet_v1_101": "resnet101",
    "resnet_v1_50": "resnet50",
    "mobilenetv3_large": "mobilenet_v3_large", "mobilenetv3_small": "mobilenet_v3_small"})
for _spec in _SPECS:
    BACKBONES.register(_spec.name, _spec)


def get_backbone(name):
    """The :class:`BackboneSpec` for ``name``; a ValueError lists the known backbones."""
    return BACKBONES.lookup(name)


def build_backbone(name, x, output_stride, **options):
    """Build backbone ``name`` on tensor ``x``; ``options`` must be ones it accepts."""
    spec = get_backbone(name)
    unknown = sorted(k for k, v in options.items() if v is not None and k not in spec.options)
    if unknown:
        raise ValueError(f"Backbone {spec.name!r} does not take {', '.join(unknown)} "
                         f"(it accepts: {', '.join(spec.options) or 'nothing beyond output_stride'})")
    options = {k: v for k, v in options.items() if v is not None}
    return spec.build(x, output_stride=output_stride, **options)


__all__ = ["BACKBONES", "BackboneSpec", "get_backbone", "build_backbone", "mobilenet_v2", "mobilenet_v3",
           "resnet", "xception", "vgg16"]
