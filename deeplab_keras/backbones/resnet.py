"""ResNet-50/101 v1 as in Google's DeepLab (TF-slim ``resnet_v1``): bottleneck units with the
stride in the 3x3 conv and in the last unit of each block, output stride by dilation,
multi-grid unit rates in block4, optional hybrid dilated convolution (HDC) rates, and the
"beta" stem of three 3x3 convs. Layer names are the slim scopes (``block3_unit_5_bottleneck_v1_conv2``)."""
from deeplab_keras import frontend
from deeplab_keras.layers.conv import atrous_conv
from deeplab_keras.layers.rates import check_output_stride, hdc, multi_grid as make_grid

UNITS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}
#: (output depth, bottleneck depth, stride of the last unit) of blocks 1-4
BLOCKS = ((256, 64, 2), (512, 128, 2), (1024, 256, 2), (2048, 512, 1))
BN_EPSILON = 1e-5


def _bottleneck(x, depth, depth_bottleneck, stride, rate, name, bn):
    L = frontend.layers()
    depth_in = x.shape[-1]
    if depth == depth_in:
        shortcut = x if stride == 1 else L.MaxPooling2D(1, strides=stride, name=name + "_shortcut")(x)
    else:
        shortcut = atrous_conv(x, depth, 1, strides=stride, name=name + "_shortcut",
                               activation=None, **bn)
    r = atrous_conv(x, depth_bottleneck, 1, name=name + "_conv1", **bn)
    r = atrous_conv(r, depth_bottleneck, 3, strides=stride, rate=rate, name=name + "_conv2",
                    explicit_padding=True, **bn)
    r = atrous_conv(r, depth, 1, name=name + "_conv3", activation=None, **bn)
    y = L.Add(name=name + "_add")([shortcut, r])
    return L.ReLU(name=name + "_relu")(y), r


def resnet(x, *, depth=101, output_stride=16, multi_grid=None, stem="resnet",
           dilation_schedule="standard", bn_momentum=0.99):
    """Returns ``{stride: features, "out": last}``; ``features[4]`` is
    ``block1/unit_2/bottleneck_v1/conv3`` (DeepLab's decoder end point)."""
    check_output_stride(output_stride)
    if depth not in UNITS:
        raise ValueError(f"ResNet depth must be one of {sorted(UNITS)}, got {depth!r}")
    if stem not in ("resnet", "beta"):
        raise ValueError(f"stem must be 'resnet' or 'beta', got {stem!r}")
    if dilation_schedule not in ("standard", "hdc"):
        raise ValueError(f"dilation_schedule must be 'standard' or 'hdc', got {dilation_schedule!r}")
    grid = tuple(multi_grid) if multi_grid is not None else (1, 1, 1)
    make_grid(grid, 1)  # validates
    if len(grid) != UNITS[depth][3]:
        raise ValueError(f"multi_grid needs {UNITS[depth][3]} values for block4, got {grid!r}")
    L = frontend.layers()
    bn = dict(bn_epsilon=BN_EPSILON, bn_momentum=bn_momentum)
    if stem == "beta":
        x = atrous_conv(x, 64, 3, strides=2, name="conv1_1", explicit_padding=True, **bn)
        x = atrous_conv(x, 64, 3, name="conv1_2", **bn)
        x = atrous_conv(x, 128, 3, name="conv1_3", **bn)
    else:
        x = atrous_conv(x, 64, 7, strides=2, name="conv1", explicit_padding=True, **bn)
    features = {2: x}
    x = L.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    plan = unit_plan(depth, output_stride, grid, dilation_schedule)
    for i, (b, u, depth_out, depth_bneck, stride, layer_rate, current_stride) in enumerate(plan):
        name = f"block{b + 1}_unit_{u + 1}_bottleneck_v1"
        x, r = _bottleneck(x, depth_out, depth_bneck, stride, layer_rate, name, bn)
        if b == 0 and u == 1:
            features[4] = r  # block1/unit_2/bottleneck_v1/conv3
        last_of_block = i == len(plan) - 1 or plan[i + 1][0] != b
        if last_of_block and current_stride not in features:
            features[current_stride] = x
    features["out"] = x
    return features


def unit_plan(depth=101, output_stride=16, multi_grid=(1, 1, 1), dilation_schedule="standard"):
    """The bottleneck units in order, as ``(block, unit, depth, bottleneck depth, stride, rate,
    stride after the unit)`` (0-based block/unit): where the output stride turns strides into
    dilation, multi-grid and HDC rates. The builder follows it; the TFLite importer
    (:mod:`deeplab_keras.importers.tflite_graph`) compares a file's strides and dilations to it."""
    grid = tuple(multi_grid)
    plan, current_stride, rate = [], 4, 1
    for b, ((depth_out, depth_bneck, block_stride), units) in enumerate(zip(BLOCKS, UNITS[depth])):
        for u in range(units):
            stride = block_stride if u == units - 1 else 1
            unit_rate = grid[u] if b == 3 else 1
            if current_stride == output_stride:
                layer_rate = rate * unit_rate
                if dilation_schedule == "hdc" and rate > 1 and b < 3:
                    layer_rate = hdc(units, rate)[u]
                elif dilation_schedule == "hdc" and rate > 1:
                    layer_rate = hdc(units, rate)[u] * unit_rate
                plan.append((b, u, depth_out, depth_bneck, 1, layer_rate, current_stride))
                rate *= stride
            else:
                current_stride *= stride
                plan.append((b, u, depth_out, depth_bneck, stride, unit_rate, current_stride))
    return plan
