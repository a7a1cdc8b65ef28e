"""Infer the DeepLab configuration a TFLite file holds from its op graph
(:func:`deeplab_keras.importers.tflite_graph.read_graph`), without trusting names.

:func:`describe` reads the v3 head or v3+ decoder; the backbone from its layers' kinds and kernel
shapes (MobileNetV2 of any standard width, ResNet-50/101 with either stem, Xception-41/65/71);
output stride from the strides, multi-grid and dilation schedule from the backbone's dilations,
ASPP rates from the head's dilations, classes, input size, resize semantics, input
normalisation. :func:`deeplab_keras.importers.tflite.from_tflite` builds it with the public
builders and imports the weights by structure (:mod:`deeplab_keras.importers.tflite_match`).
"""
import numpy as np

from deeplab_keras.importers.tflite_graph import _NORMALISE, CONV, DEPTHWISE, INPUT, read_graph

def _resize_mode(graph, path):
    modes = set()
    for kind, ins, outs, opt in graph.ops:
        if kind == "RESIZE_BILINEAR":
            in_hw = graph.shape(ins[0])[1:3]
            if in_hw == (1, 1):
                continue  # a 1x1 source gives the same result in every mode
            if opt.alignCorners:
                modes.add(True)
            elif opt.halfPixelCenters:
                modes.add(False)
            else:
                modes.add("asymmetric")
    if len(modes) > 1:
        raise ValueError(f"{path}: the file mixes resize semantics {sorted(map(str, modes))}; "
                         f"our builders use one for every resize")
    return modes.pop() if modes else True


def _normalisation(graph):
    """(scale, offset, how) such that the file's first conv sees ``x * scale + offset`` for raw
    0-255 RGB ``x``: the input quantization, then any MUL/ADD/SUB/DIV by scalar or per-channel
    constants before the first conv (float inputs, and our own int8 exports, which take raw
    pixels with scale 1 and normalise in-graph). ``scale``/``offset`` are floats or 3-lists."""
    t = graph.inputs[0]
    kind = graph.dtype(t)
    q = graph.quantization(t)
    steps = []
    if kind in ("UINT8", "INT8"):
        if q is None:
            raise ValueError(f"{graph.path}: {kind} input without quantization parameters")
        s, zero = q
        shift = 128 if kind == "INT8" else 0  # int8 input = RGB - 128
        scale, offset = np.float64(s), np.float64(-s * (zero + shift))
        steps.append(f"input quantization ({kind}, scale {s:.6g}, zero point {zero})")
    elif kind == "FLOAT32":  # what an app feeds: the metadata's (x - mean) / std, else x
        from deeplab_keras.importers.tflite_metadata import input_normalization
        scale, offset = np.float64(1.0), np.float64(0.0)
        found = input_normalization(graph)
        if found is not None:
            (scale, offset), how = found
            steps.append(how)
    else:
        raise ValueError(f"{graph.path}: input of type {kind}; supported: FLOAT32, UINT8, INT8")
    while True:  # fold elementwise ops by constants that follow the input
        users = graph.consumers.get(t, [])
        if len(users) != 1:
            break
        op_kind, ins, outs, _ = graph.ops[users[0]]
        if op_kind in ("QUANTIZE", "DEQUANTIZE"):
            t = outs[0]
            continue
        consts = [i for i in ins if graph.is_constant(i)]
        if op_kind not in _NORMALISE or len(consts) != 1 or len(ins) != 2:
            break
        c = graph.constant(consts[0]).astype(np.float64).reshape(-1)
        if c.size not in (1, 3):
            break
        c = c[0] if c.size == 1 else c
        const_first = ins.index(consts[0]) == 0
        if op_kind == "MUL":
            scale, offset = scale * c, offset * c
        elif op_kind == "DIV" and not const_first:
            scale, offset = scale / c, offset / c
        elif op_kind == "ADD":
            offset = offset + c
        elif op_kind == "SUB" and not const_first:
            offset = offset - c
        elif op_kind == "SUB":
            scale, offset = -scale, c - offset
        else:
            break
        steps.append(f"in-graph {op_kind}")
        t = outs[0]

    def plain(v):
        v = np.asarray(v, np.float64)
        return float(v) if v.ndim == 0 else [float(e) for e in v]

    if steps:
        if not (np.all(np.isfinite(scale)) and np.all(np.isfinite(offset)) and np.all(scale != 0)):
            raise ValueError(f"{graph.path}: the input normalisation ({'; '.join(steps)}) gives "
                             f"scale {plain(scale)} / offset {plain(offset)}: not finite or zero "
                             "(corrupt file); pass preprocessing={'normalization': ...} by hand")
        return plain(scale), plain(offset), "; ".join(steps)
    return 1 / 127.5, -1.0, ("assumed [-1, 1] (x / 127.5 - 1): float input with no "
                             "normalisation ops, DeepLab's MobileNet convention")


def _ancestors(by_index, k):
    seen, stack = set(), [k]
    while stack:
        node = by_index[stack.pop()]
        for feed in node.feeds:
            for s in feed.sources:
                if s != INPUT and s not in seen:
                    seen.add(s)
                    stack.append(s)
    return seen


def _mobilenet_v2_alpha(convs, first):
    from deeplab_keras.backbones.mobilenet_v2 import V2_DEF, make_divisible

    c0 = first.kernel.shape[-1]
    outs = {c.kernel.shape[-1] for c in convs if c.kind == CONV}
    for alpha in sorted({0.35, 0.5, 0.75, 1.0, 1.3, 1.4, round(c0 / 32.0, 6)}):
        div = 8 if alpha == 1.0 else 1
        if make_divisible(32 * alpha, div) != c0:
            continue
        if all(make_divisible(ch * alpha, div) in outs for _, ch, _, _ in V2_DEF):
            return alpha
    return None


def _conv_key(c):
    """(kind, kh, kw, in channels, out channels) of a conv node: what a backbone's layer list
    fixes, independent of the output stride."""
    kh, kw = (int(d) for d in c.kernel.shape[:2])
    if c.kind == DEPTHWISE:
        channels = int(c.kernel.shape[2])
        return (DEPTHWISE, kh, kw, channels, channels * int(c.kernel.shape[3]))
    return (c.kind, kh, kw, int(c.kernel.shape[-2]), int(c.kernel.shape[-1]))


def _xception_keys(depth):
    from deeplab_keras.backbones.xception import unit_plan

    keys, c = [(CONV, 3, 3, 3, 32), (CONV, 3, 3, 32, 64)], 64
    for _, depths, skip, *_ in unit_plan(depth, 32):
        c_in = c
        for d in depths:  # separable conv: depthwise 3x3 (+ BN) then pointwise 1x1
            keys += [(DEPTHWISE, 3, 3, c, c), (CONV, 1, 1, c, d)]
            c = d
        if skip == "conv":
            keys.append((CONV, 1, 1, c_in, depths[-1]))
    return keys


def _resnet_keys(depth, stem):
    from deeplab_keras.backbones.resnet import unit_plan

    if stem == "beta":
        keys, c = [(CONV, 3, 3, 3, 64), (CONV, 3, 3, 64, 64), (CONV, 3, 3, 64, 128)], 128
    else:
        keys, c = [(CONV, 7, 7, 3, 64)], 64
    for _, _, d, bottleneck, *_ in unit_plan(depth, 32, (1, 1, 1)):
        keys += [(CONV, 1, 1, c, bottleneck), (CONV, 3, 3, bottleneck, bottleneck),
                 (CONV, 1, 1, bottleneck, d)]
        if d != c:  # projection shortcut
            keys.append((CONV, 1, 1, c, d))
        c = d
    return keys


def _candidates():
    """{backbone name: Counter of conv keys} for the backbones a DeepLab v3/v3+ file can carry
    besides MobileNetV2 (matched separately, for any width): every ResNet and Xception of the
    backbone registry."""
    import collections

    from deeplab_keras.backbones import BACKBONES

    found = {}
    for name in BACKBONES:
        if name.startswith("resnet"):
            depth = int(name[len("resnet"):].split("_")[0])
            found[name] = collections.Counter(_resnet_keys(depth, "beta" if name.endswith("_beta") else "resnet"))
        elif name.startswith("xception"):
            found[name] = collections.Counter(_xception_keys(int(name[len("xception"):])))
    return found


#: what :func:`describe` recognises, for its error message
SUPPORTED_BACKBONES = ("mobilenet_v2 (any standard width)", "resnet50", "resnet101",
                       "resnet50_beta", "resnet101_beta", "xception41", "xception65", "xception71")


def _rates_error(path, name, output_stride, observed, what):
    return ValueError(f"{path}: the {name} backbone's {what} dilations {observed} are not what "
                      f"our builder makes at output stride {output_stride} for any multi-grid"
                      f"{' or dilation schedule' if name.startswith('resnet') else ''}")


def _strides_error(path, name, output_stride, observed, expected, what):
    return ValueError(f"{path}: the backbone has the layers of {name} but the strides of its "
                      f"{what} are {observed}; our {name} at output stride {output_stride} has "
                      f"{expected}")


def _grid(dilations, base):
    if any(d % base for d in dilations):
        return None
    return tuple(d // base for d in dilations)


def _xception_options(name, ordered, output_stride, path):
    """multi_grid of an Xception backbone from its exit-flow dilations, checked against every
    depthwise conv's dilation (:func:`deeplab_keras.backbones.xception.unit_plan`)."""
    from deeplab_keras.backbones.xception import unit_plan

    depth = int(name[len("xception"):])
    plan = unit_plan(depth, output_stride)
    strides = [c.strides[0] for c in ordered if c.kind == DEPTHWISE]
    expected = [s for entry in plan for s in (1, 1, entry[3])]
    if strides != expected:
        raise _strides_error(path, name, output_stride, strides, expected,
                             "depthwise convs (the third of each module strides)")
    observed = [c.dilation[0] for c in ordered if c.kind == DEPTHWISE]
    base = 32 // output_stride
    grid = _grid(observed[-3:], base)
    if grid is not None and min(grid) >= 1:
        expected = [r for entry in unit_plan(depth, output_stride, grid) for r in entry[4]]
        if expected == observed:
            return {"multi_grid": grid}
    raise _rates_error(path, name, output_stride, observed, "depthwise")


def _resnet_options(name, ordered, output_stride, path):
    """multi_grid and dilation schedule of a ResNet backbone from the dilations of its units' 3x3
    convs (:func:`deeplab_keras.backbones.resnet.unit_plan`)."""
    from deeplab_keras.backbones.resnet import unit_plan
    from deeplab_keras.layers.rates import hdc

    depth = int(name[len("resnet"):].split("_")[0])
    stem = 3 if name.endswith("_beta") else 0
    units = [c for c in ordered if c.kind == CONV and c.kernel.shape[:2] == (3, 3)][stem:]
    observed = [c.dilation[0] for c in units]
    strides = [c.strides[0] for c in units]
    expected = [entry[4] for entry in unit_plan(depth, output_stride, (1, 1, 1))]
    if strides != expected:
        raise _strides_error(path, name, output_stride, strides, expected,
                             "units' 3x3 convs (TF-slim resnet_v1: the 3x3 conv of each block's "
                             "last unit strides; keras.applications' ResNet strides the first "
                             "unit's 1x1 conv instead)")
    base = 32 // output_stride
    for schedule in ("standard", "hdc"):
        last = hdc(3, base) if schedule == "hdc" and base > 1 else (base,) * 3
        grid = [None if d % r else d // r for d, r in zip(observed[-3:], last)]
        if None in grid or min(grid) < 1:
            continue
        expected = [entry[5] for entry in unit_plan(depth, output_stride, tuple(grid), schedule)]
        if expected == observed:
            options = {"multi_grid": tuple(grid)}
            if schedule != "standard":
                options["dilation_schedule"] = schedule
            return options
    raise _rates_error(path, name, output_stride, observed, "3x3 conv")


def _backbone(ordered, first, output_stride, path):
    """``(backbone name, builder options)`` of the backbone convs ``ordered`` (data-flow order),
    recognised by their kinds and kernel shapes (a multiset: the same layers as one of our
    backbones), never by names. ValueError naming what was found and what is supported."""
    import collections

    depthwise = [c for c in ordered if c.kind == DEPTHWISE]
    alpha = _mobilenet_v2_alpha(ordered, first)
    if alpha is not None and len(depthwise) == 17:
        return "mobilenet_v2", {"alpha": alpha}
    if output_stride not in (8, 16, 32):
        raise ValueError(f"{path}: the backbone has output stride {output_stride}; our builders "
                         f"make 8, 16 or 32")
    found = collections.Counter(_conv_key(c) for c in ordered)
    candidates = _candidates()
    for name, keys in candidates.items():
        if keys == found:
            if name.startswith("resnet"):
                return name, _resnet_options(name, ordered, output_stride, path)
            return name, _xception_options(name, ordered, output_stride, path)
    distance = {name: sum(((keys - found) + (found - keys)).values()) for name, keys in candidates.items()}
    closest = min(distance, key=distance.get)
    raise ValueError(f"{path}: the backbone ({len(ordered)} convolutions, {len(depthwise)} "
                     f"depthwise, {sum(1 for c in ordered if c.kind == CONV and c.kernel.shape[:2] == (3, 3))} "
                     f"3x3, first {first.describe()}, output stride {output_stride}) is none of the "
                     f"backbones we can import: {', '.join(SUPPORTED_BACKBONES)} (closest: {closest}, "
                     f"{distance[closest]} convolutions differ). Build the model yourself and load "
                     f"the weights with deeplab_keras.importers.tflite.import_tflite if it is one of "
                     f"ours with changes")


def describe(path_or_graph):
    """The DeepLab configuration a TFLite file holds, inferred from its graph.

    Returns a dict: ``architecture`` and the builder keyword arguments (``backbone``; ``alpha`` for
    MobileNetV2, ``multi_grid`` for ResNet / Xception, ``dilation_schedule`` for a ResNet with HDC
    rates; ``output_stride``, ``atrous_rates``, ``num_classes``, ``input_shape``, ``align_corners``,
    ``aspp_filters``, and for v3+ ``separable``, ``low_level_filters``, ``decoder_filters``),
    plus ``input_normalization`` (scale, offset on 0-255 RGB) and ``notes``.
    Raises ValueError naming what does not look like a supported DeepLab network."""
    graph, convs = read_graph(path_or_graph) if not isinstance(path_or_graph, tuple) else path_or_graph
    path = graph.path
    by_index = {c.index: c for c in convs}
    first = convs[0]
    if not (first.feeds[0].sources == {INPUT} and first.kind == CONV):
        raise ValueError(f"{path}: the first convolution {first.describe()} does not read the image")
    # image pooling: a conv fed through a global pooling; aspp0 shares its source, unpooled
    pooled = [c for c in convs if len(c.feeds) == 1 and c.feeds[0].pooled]
    if len(pooled) != 1:
        raise ValueError(f"{path}: expected one image-pooling branch (a 1x1 conv after a global "
                         f"average pool) in the DeepLab head, found {len(pooled)}; only DeepLab "
                         f"v3/v3+ heads with image pooling are supported")
    pooling = pooled[0]
    # the backbone end: the convs the image pooling reads (several through residual ADDs)
    end = pooling.feeds[0].sources
    if not end or INPUT in end:
        raise ValueError(f"{path}: the image pooling {pooling.describe()} is not fed by the backbone")
    backbone = set(end).union(*(_ancestors(by_index, k) for k in end))
    branches = [c for c in convs if c is not pooling and len(c.feeds) == 1
                and c.feeds[0].sources == end and not c.feeds[0].pooled]
    aspp0 = [c for c in branches if c.kind == CONV and c.kernel.shape[:2] == (1, 1)]
    if len(aspp0) != 1:
        raise ValueError(f"{path}: expected one 1x1 ASPP branch next to the image pooling, "
                         f"found {len(aspp0)}")
    aspp0 = aspp0[0]
    atrous = sorted((c for c in branches if c is not aspp0), key=lambda c: c.index)
    separable = any(c.kind == DEPTHWISE for c in atrous)
    rates = tuple(c.dilation[0] for c in atrous)
    strides = {by_index[k].total_stride for k in end}
    if len(strides) != 1 or None in strides:
        raise ValueError(f"{path}: cannot tell the backbone's output stride (its last convs have "
                         f"strides {sorted(map(str, strides))} relative to the image)")
    output_stride = int(strides.pop())
    ordered = sorted((by_index[k] for k in backbone), key=lambda c: c.index)
    name, options = _backbone(ordered, first, output_stride, path)
    # classifier: the conv nothing else reads
    fed = {s for c in convs for f in c.feeds for s in f.sources}
    finals = [c for c in convs if c.index not in fed]
    if len(finals) != 1:
        raise ValueError(f"{path}: expected one classifier conv at the end, found "
                         f"{[c.describe() for c in finals]}")
    classifier = finals[0]
    # decoder: a conv reading an earlier backbone feature (not the backbone end) outside the backbone
    low = [c for c in convs if c.index not in backbone and c is not pooling and len(c.feeds) == 1
           and c.feeds[0].sources and c.feeds[0].sources <= backbone - end]
    height, width = (graph.shape(graph.inputs[0]) + (None, None, None))[1:3]
    config = {"backbone": name, **options, "output_stride": output_stride,
              "atrous_rates": rates, "num_classes": int(classifier.kernel.shape[-1]),
              "input_shape": (height, width, 3), "align_corners": _resize_mode(graph, path),
              "aspp_filters": int(aspp0.kernel.shape[-1])}
    if low:
        head_depthwise = any(c.kind == DEPTHWISE for c in convs if c.index not in backbone)
        config.update(architecture="deeplabv3plus", separable=head_depthwise,
                      low_level_filters=int(low[0].kernel.shape[-1]),
                      decoder_filters=int(classifier.kernel.shape[-2]))
    else:
        if separable:
            raise ValueError(f"{path}: a DeepLab v3 head (no decoder) with separable atrous "
                             f"branches; our DeepLabV3 builds plain 3x3 atrous branches only")
        config["architecture"] = "deeplabv3"
    scale, offset, how = _normalisation(graph)
    config["input_normalization"] = {"scale": scale, "offset": offset, "source": how}
    return config


def builder_config(config):
    """The keyword arguments of ``models.BUILDERS.build`` from :func:`describe`."""
    kwargs = {k: v for k, v in config.items() if k not in ("architecture", "input_normalization")}
    kwargs["atrous_rates"] = tuple(kwargs["atrous_rates"])
    return config["architecture"], kwargs
