"""Import Google's TF1 (TF-slim) DeepLab checkpoints by variable name.

Variables like ``MobilenetV2/expanded_conv_3/depthwise/depthwise_weights``,
``xception_65/entry_flow/conv1_1/BatchNorm/gamma``, ``aspp1_depthwise/depthwise_weights`` or
``logits/semantic/biases`` map onto our layers by dropping the backbone scope and replacing
``/`` with ``_`` (``expanded_conv_3_depthwise``; BatchNorm -> ``<layer>_BatchNorm``).
Optimizer slots, ``global_step``, moving-average shadows and the backbones' ImageNet classifiers
are ignored (and counted in the report); everything else must fit the model exactly.

Google's tarballs hold ``<dir>/model.ckpt*.{index,data-*}`` (plus a frozen graph we do not use):
pass the tarball, the extracted directory, or the checkpoint prefix.
"""
import glob
import os
import re

import numpy as np

from deeplab_keras.importers.mapping import assign
from deeplab_keras.layers.conv import BN_SUFFIX

_BACKBONE_SCOPE = re.compile(r"^(MobilenetV2|xception_\d+|resnet_v1_\d+(?:_beta)?|vgg_16)/")
_IGNORED = re.compile(r"(^global_step$|/(Momentum|Adam(_1)?|RMSProp(_1)?|ExponentialMovingAverage)$"
                      r"|^(MobilenetV2/(Conv_1|Logits)|xception_\d+/logits|resnet_v1_\d+(_beta)?/logits"
                      r"|vgg_16/fc8)/)")
_PARAMS = {"weights": "kernel", "depthwise_weights": "kernel", "pointwise_weights": "pointwise",
           "biases": "bias", "gamma": "gamma",
           "beta": "beta", "moving_mean": "moving_mean", "moving_variance": "moving_variance"}


def find_checkpoint(path):
    """The checkpoint prefix for a tarball, an extracted directory, a prefix or an .index file."""
    return _locate(path)[0]


def _locate(path):
    """``(prefix, folder extracted from a tarball or None)``. A tarball without a checkpoint
    leaves nothing extracted in the cache."""
    path = os.fspath(path)
    if os.path.isfile(path) and (path.endswith((".tar.gz", ".tgz", ".tar"))):
        from deeplab_keras.archives import extract_checkpoint  # cache/extracted/<sha256>, bounded
        folder = extract_checkpoint(path)
        try:
            return _prefix(folder), folder
        except FileNotFoundError:
            _discard(folder)
            raise FileNotFoundError(f"{path}: no TF checkpoint (*.ckpt*.index) in the archive; "
                                    "nothing was kept in the cache") from None
    return _prefix(path), None


def _discard(folder):
    import shutil
    shutil.rmtree(folder, ignore_errors=True)


def _prefix(path):
    if path.endswith(".index") and os.path.isfile(path):
        return path[:-len(".index")]
    if os.path.isfile(path + ".index"):
        return path
    if os.path.isdir(path):
        found = sorted(glob.glob(os.path.join(path, "**", "*.ckpt*.index"), recursive=True),
                       key=lambda p: [int(n) for n in re.findall(r"\d+", os.path.basename(p))] or [0])
        if found:
            return found[-1][:-len(".index")]
        raise FileNotFoundError(f"no TF checkpoint (*.ckpt*.index) under {path}")
    raise FileNotFoundError(f"TF1 checkpoint not found: {path} (pass a tarball, a directory or "
                            "a checkpoint prefix)")


def read_checkpoint(path):
    """``({layer: {weight: array}}, ignored variable names)`` of a TF-slim checkpoint."""
    import tensorflow as tf

    prefix, extracted = _locate(path)
    try:
        reader = tf.train.load_checkpoint(prefix)
    except Exception as err:  # tf raises various errors for corrupt files
        if extracted:  # what we extracted from a tarball that does not load: not kept
            _discard(extracted)
        where = f"{path} (extracted; nothing was kept)" if extracted else prefix
        raise ValueError(f"{where}: not a readable TF checkpoint "
                         f"({str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__})") from None
    source, ignored = {}, []
    for name in sorted(reader.get_variable_to_shape_map()):
        if _IGNORED.search(name):
            ignored.append(name)
            continue
        layer, param = _layer_and_param(name)
        if param is None:
            source.setdefault(name, {})["?"] = reader.get_tensor(name)  # reported as unused
            continue
        source.setdefault(layer, {})[param] = reader.get_tensor(name)
    _split_fused_separable(source)
    return source, ignored


def _split_fused_separable(source):
    """Older Xception checkpoints hold one slim ``separable_conv2d`` per scope
    (``X_depthwise/{depthwise,pointwise}_weights`` with BatchNorm only after the pointwise conv,
    under ``X_pointwise/BatchNorm``): split it into our depthwise + pointwise layers, with an
    identity BatchNorm (exact: var = 1 - eps) after the depthwise conv."""
    from deeplab_keras.backbones.xception import BN_EPSILON

    for layer in [k for k, v in source.items() if "pointwise" in v and k.endswith("_depthwise")]:
        pointwise = source[layer].pop("pointwise")
        source.setdefault(layer[:-len("depthwise")] + "pointwise", {})["kernel"] = pointwise
        bn = layer + BN_SUFFIX
        if bn not in source:
            channels = source[layer]["kernel"].shape[2] * source[layer]["kernel"].shape[3]
            source[bn] = {"gamma": np.ones(channels, np.float32), "beta": np.zeros(channels, np.float32),
                          "moving_mean": np.zeros(channels, np.float32),
                          "moving_variance": np.full(channels, 1.0 - BN_EPSILON, np.float32)}


def _layer_and_param(variable):
    scope, _, leaf = _BACKBONE_SCOPE.sub("", variable).rpartition("/")
    if leaf not in _PARAMS:
        return variable, None
    if scope.endswith("/BatchNorm"):
        return scope[:-len("/BatchNorm")].replace("/", "_") + BN_SUFFIX, _PARAMS[leaf]
    return scope.replace("/", "_"), _PARAMS[leaf]


def import_tf1_checkpoint(model, path, skip_classifier=False, backbone_only=False):
    """Load a TF1 DeepLab checkpoint into ``model``; returns a report dict (see
    :func:`deeplab_keras.importers.mapping.assign`) with ``ignored`` variable names added."""
    source, ignored = read_checkpoint(path)
    report = assign(model, source, skip_classifier=skip_classifier, backbone_only=backbone_only,
                    origin=f"checkpoint {os.fspath(path)}")
    report["ignored"] = ignored
    return report
