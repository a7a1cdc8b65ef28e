"""Aligned Xception-41/65/71 as modified in the DeepLab v3+ paper (Google's ``xception.py``):
all max pooling replaced by strided separable convs, extra BN + ReLU after each 3x3 depthwise in
the exit flow, more middle-flow units, output stride by dilation, multi-grid in the last block.
Layer names are the slim scopes (``entry_flow_block1_unit_1_xception_module_separable_conv1_depthwise``)."""
from deeplab_keras import frontend
from deeplab_keras.layers.conv import atrous_conv, atrous_separable_conv
from deeplab_keras.layers.rates import check_output_stride

BN_EPSILON = 1e-3

# (flow/block scope, depth_list, skip connection, stride, units, activation in separable conv)
_ENTRY = {
    41: [("entry_flow/block1", (128,) * 3, "conv", 2, 1), ("entry_flow/block2", (256,) * 3, "conv", 2, 1),
         ("entry_flow/block3", (728,) * 3, "conv", 2, 1)],
    71: [("entry_flow/block1", (128,) * 3, "conv", 2, 1), ("entry_flow/block2", (256,) * 3, "conv", 1, 1),
         ("entry_flow/block3", (256,) * 3, "conv", 2, 1), ("entry_flow/block4", (728,) * 3, "conv", 1, 1),
         ("entry_flow/block5", (728,) * 3, "conv", 2, 1)],
}
_ENTRY[65] = _ENTRY[41]
_MIDDLE_UNITS = {41: 8, 65: 16, 71: 16}
# Decoder end point (stride 4) per variant, as in Google's feature_extractor.
_DECODER_SCOPE = {41: "entry_flow/block2/unit_1/xception_module/separable_conv2",
                  65: "entry_flow/block2/unit_1/xception_module/separable_conv2",
                  71: "entry_flow/block3/unit_1/xception_module/separable_conv2"}


def _module(x, depths, skip, stride, rate, unit_rates, activation_in_separable, scope, bn,
            endpoints):
    L = frontend.layers()
    residual = x
    for i in range(3):
        name = f"{scope}_separable_conv{i + 1}"
        residual = atrous_separable_conv(
            residual, depths[i], 3, strides=stride if i == 2 else 1, rate=rate * unit_rates[i],
            name=name, pre_activation=not activation_in_separable, explicit_padding=True, **bn)
        endpoints[name] = residual
    if skip == "conv":
        shortcut = atrous_conv(x, depths[-1], 1, strides=stride, name=scope + "_shortcut",
                               activation=None, **bn)
        return L.Add(name=scope + "_add")([residual, shortcut])
    if skip == "sum":
        return L.Add(name=scope + "_add")([residual, x])
    return residual


def xception(x, *, depth=65, output_stride=16, multi_grid=None, bn_momentum=0.99):
    """Returns ``{stride: features, "out": last}``; ``features[4]`` is DeepLab's decoder end point."""
    check_output_stride(output_stride)
    if depth not in _MIDDLE_UNITS:
        raise ValueError(f"Xception depth must be one of {sorted(_MIDDLE_UNITS)}, got {depth!r}")
    grid = tuple(multi_grid) if multi_grid is not None else (1, 1, 1)
    if len(grid) != 3 or min(grid) < 1:
        raise ValueError(f"multi_grid for Xception needs 3 positive values, got {grid!r}")
    bn = dict(bn_epsilon=BN_EPSILON, bn_momentum=bn_momentum)
    x = atrous_conv(x, 32, 3, strides=2, name="entry_flow_conv1_1", explicit_padding=True, **bn)
    x = atrous_conv(x, 64, 3, name="entry_flow_conv1_2", **bn)
    features, endpoints = {2: x}, {}
    for name, depths, skip, stride, rates, exit2, current_stride in unit_plan(depth, output_stride, grid):
        x = _module(x, depths, skip, stride, 1, rates, exit2, name, bn, endpoints)
        if current_stride not in features:
            features[current_stride] = x
    features[4] = endpoints[_DECODER_SCOPE[depth].replace("/", "_")]
    features["out"] = x
    return features


def unit_plan(depth=65, output_stride=16, multi_grid=(1, 1, 1)):
    """The Xception modules in order, as ``(layer name prefix, depths, skip, stride, rates of the
    three separable convs, activation inside the separable convs (exit flow block 2), stride after
    the module)``: where the output stride turns strides into dilation, and multi-grid. The builder
    follows it; the TFLite importer (:mod:`deeplab_keras.importers.tflite_graph`) compares a
    file's strides and dilations to it."""
    grid = tuple(multi_grid)
    blocks = list(_ENTRY[depth])
    blocks.append(("middle_flow/block1", (728,) * 3, "sum", 1, _MIDDLE_UNITS[depth]))
    blocks.append(("exit_flow/block1", (728, 1024, 1024), "conv", 2, 1))
    blocks.append(("exit_flow/block2", (1536, 1536, 2048), "none", 1, 1))
    plan, current_stride, rate = [], 2, 1
    for scope, depths, skip, stride, units in blocks:
        exit2 = scope == "exit_flow/block2"
        unit_rates = grid if exit2 else (1, 1, 1)
        for u in range(units):
            name = f"{scope}/unit_{u + 1}/xception_module".replace("/", "_")
            if current_stride == output_stride:
                plan.append((name, depths, skip, 1, tuple(rate * r for r in unit_rates), exit2,
                             current_stride))
                rate *= stride
            else:
                current_stride *= stride
                plan.append((name, depths, skip, stride, tuple(unit_rates), exit2, current_stride))
    return plan
