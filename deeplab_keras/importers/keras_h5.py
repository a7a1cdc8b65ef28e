"""Import ``keras.applications`` ImageNet weight files (legacy ``.h5``) into our backbones.

keras.applications layer names are mapped onto our TF-slim style names:

* MobileNetV2: ``Conv1``/``bn_Conv1`` -> ``Conv``/``Conv_BatchNorm``, ``block_{i}_{expand,
  depthwise,project}[_BN]`` -> ``expanded_conv_{i}_...[_BatchNorm]``. Keras' final 1280-channel
  ``Conv_1`` is not part of DeepLab's MobileNetV2 and is ignored (reported). Channel counts agree
  at alpha 1.0 (both round to multiples of 8); other widths differ (Google rounds by 1).
* ResNet-50/101 (v1): ``conv1_conv`` -> ``conv1``, ``conv{s}_block{b}_{0,1,2,3}_{conv,bn}`` ->
  ``block{s-1}_unit_{b}_bottleneck_v1_{shortcut,conv1,conv2,conv3}[_BatchNorm]``. Keras' convs
  have biases ahead of BatchNorm: folded into the BN moving mean (exact). Mismatches documented:
  Keras strides the first unit of a stage (in its 1x1 conv), slim the last unit of the previous
  block (in its 3x3 conv), so features are computed at shifted positions (a good initialisation,
  not the same network); Keras' BN epsilon is 1.001e-5 (ours 1e-5); Keras was trained on BGR
  caffe-mean input: the first conv's input channels are flipped so our RGB input works, and our
  mean (Google's 123.15, 115.90, 103.06) differs from Keras' by < 1 grey level.
* VGG-16: ``block{s}_conv{c}`` -> ``conv{s}_{c}`` (fc6/fc7 are not in the ``notop`` file; they stay
  initialised). Keras' VGG-16 expects BGR input: ``conv1_1``'s input channels are flipped so our
  RGB + mean-subtraction preprocessing is right.
* Xception: keras.applications' Xception is the original network (max pooling, 2 separable convs
  per entry block), not DeepLab's aligned Xception-65: refused with a clear error; use the
  ``xception65_imagenet`` preset (Google's checkpoint) instead.
"""
import os
import re

import numpy as np

from deeplab_keras.importers.mapping import assign
from deeplab_keras.layers.conv import BN_SUFFIX


def read_h5(path):
    """``{layer: {weight: array}}`` of a legacy Keras ``.h5`` weights (or full model) file."""
    import h5py

    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights file not found: {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path}: not a readable HDF5 file ({err})") from err
    with f:
        group = f["model_weights"] if "model_weights" in f else f
        if "layer_names" not in group.attrs:
            raise ValueError(f"{path}: not a legacy Keras .h5 weights file (no 'layer_names'); "
                             "Keras 3 '.weights.h5' files load with model.load_weights")
        out = {}
        for layer in group.attrs["layer_names"]:
            layer = layer.decode() if isinstance(layer, bytes) else layer
            g = group[layer]
            names = [n.decode() if isinstance(n, bytes) else n for n in g.attrs.get("weight_names", [])]
            if names:
                out[layer] = {_key(n): np.array(g[n]) for n in names}
    return out


def _key(weight_name):
    key = weight_name.split("/")[-1].split(":")[0]
    return "kernel" if key == "depthwise_kernel" else key  # Keras 3 calls it "kernel"


def detect_backbone(layers):
    names = set(layers)
    if "block_1_expand" in names or "bn_Conv1" in names:
        return "mobilenet_v2"
    if "conv1_conv" in names:
        return "resnet101" if "conv4_block23_1_conv" in names else "resnet50"
    if "block1_conv1" in names and "block5_conv3" in names:
        return "vgg16"
    if "block1_conv1_bn" in names or "block14_sepconv2" in names:
        return "xception"
    raise ValueError(f"unrecognised keras.applications weights (layers: {sorted(names)[:8]} ...)")


def _mobilenet_v2(layers):
    out, ignored = {}, []
    for name, tensors in layers.items():
        if name in ("Conv_1", "Conv_1_bn", "predictions", "Logits"):
            ignored.append(name)
            continue
        new = {"Conv1": "Conv", "bn_Conv1": "Conv" + BN_SUFFIX}.get(name)
        if new is None:
            new = re.sub(r"^block_(\d+)_", r"expanded_conv_\1_", name)
            new = re.sub(r"_BN$", BN_SUFFIX, new)
        out[new] = tensors
    return out, ignored


def _resnet(layers):
    out, ignored = {}, []
    roles = {"0": "shortcut", "1": "conv1", "2": "conv2", "3": "conv3"}
    for name, tensors in layers.items():
        if name in ("predictions", "probs", "fc1000"):
            ignored.append(name)
            continue
        m = re.fullmatch(r"conv(\d)_block(\d+)_(\d)_(conv|bn)", name)
        if m:
            base = f"block{int(m[1]) - 1}_unit_{m[2]}_bottleneck_v1_{roles[m[3]]}"
            kind = m[4]
        elif name in ("conv1_conv", "conv1_bn"):
            base, kind = "conv1", name.split("_")[1]
        else:
            out[name] = tensors  # reported as unused
            continue
        if kind == "conv":
            out[base] = {"kernel": tensors["kernel"]}
            if "bias" in tensors:
                out.setdefault(base + BN_SUFFIX, {})["_conv_bias"] = tensors["bias"]
        else:
            out.setdefault(base + BN_SUFFIX, {}).update(tensors)
    for name, tensors in out.items():  # fold conv bias into BN: BN(x + b) == BN'(x), mean' = mean - b
        if "_conv_bias" in tensors:
            bias = tensors.pop("_conv_bias")
            if "moving_mean" in tensors:
                tensors["moving_mean"] = tensors["moving_mean"] - bias
    out["conv1"]["kernel"] = out["conv1"]["kernel"][:, :, ::-1, :]  # BGR -> RGB
    return out, ignored


def _vgg16(layers):
    out, ignored = {}, []
    for name, tensors in layers.items():
        m = re.fullmatch(r"block(\d)_conv(\d)", name)
        if m:
            out[f"conv{m[1]}_{m[2]}"] = dict(tensors)
        elif name in ("fc1", "fc2", "predictions"):
            ignored.append(name)
        else:
            out[name] = tensors
    out["conv1_1"]["kernel"] = out["conv1_1"]["kernel"][:, :, ::-1, :]  # BGR -> RGB
    return out, ignored


def convert(layers):
    """keras.applications layer dict -> (our layer dict, ignored layer names, backbone)."""
    backbone = detect_backbone(layers)
    if backbone == "xception":
        raise ValueError("keras.applications' Xception is the original Xception (max pooling, "
                         "36 convs), not DeepLab's aligned Xception-65: its weights cannot be "
                         "mapped. Use the 'xception65_imagenet' preset (Google's checkpoint).")
    fn = {"mobilenet_v2": _mobilenet_v2, "vgg16": _vgg16}.get(backbone, _resnet)
    out, ignored = fn(layers)
    return out, ignored, backbone


def import_keras_h5(model, path, skip_classifier=False, backbone_only=True):
    """Load a keras.applications ``.h5`` into ``model``'s backbone (head layers keep their
    initialisation); every backbone layer must be in the file and every file tensor used."""
    source, ignored, backbone = convert(read_h5(path))
    report = assign(model, source, skip_classifier=skip_classifier, backbone_only=backbone_only,
                    origin=f"keras.applications {backbone} file {os.fspath(path)}")
    report["ignored"] = ignored
    return report
