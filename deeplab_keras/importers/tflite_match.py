"""Match a TFLite file's convolutions to a Keras model's layers by structure, then load them.

Both sides become the same kind of graph (:mod:`deeplab_keras.importers.tflite_graph`): one node
per convolution with its kind, kernel shape, stride, dilation and feeds (which convolutions its
input is computed from, through residual additions, concatenations, poolings and any
shape-preserving op). The file's convolutions are taken in data-flow order; each must find exactly
one not-yet-matched layer of the same kind, kernel shape, stride and dilation whose feeds are the
images of its own feeds. Ties (e.g. parallel branches of the same shape) are broken by the
tensor names, used as hints only. A concatenation in a different order permutes the input
channels of the kernel that reads it.

BatchNorm folded into a conv bias is mapped back onto our conv + BatchNorm pair as gamma=1,
beta=bias, mean=0, var=1-epsilon, which reproduces the folded conv exactly.
"""
import os
import re

import numpy as np

from deeplab_keras.importers.tflite_graph import CONV, DEPTHWISE, FC, INPUT, ConvNode, Feed, read_graph
from deeplab_keras.layers.conv import BN_SUFFIX


class StructureMismatchError(ValueError):
    """The TFLite graph does not have the structure of the Keras model."""


def _kind(layer):
    import keras

    name = type(layer).__name__
    if isinstance(layer, keras.layers.DepthwiseConv2D) or name == "DepthwiseConv2D":
        return DEPTHWISE
    if isinstance(layer, keras.layers.Conv2D) or name == "Conv2D":
        return CONV
    if isinstance(layer, keras.layers.Dense) or name == "Dense":
        return FC
    return None


def _inbound(layer):
    nodes = getattr(layer, "_inbound_nodes", None) or []
    if not nodes:
        return []
    tensors = nodes[0].input_tensors
    return [t._keras_history.operation for t in tensors if hasattr(t, "_keras_history")]


def keras_graph(model):
    """``{layer name: ConvNode}`` for the model's convolutions (``index`` = layer position),
    in the model's layer order, and the classifier layer name (the conv nothing reads)."""
    import keras

    feeds, convs = {}, {}
    for position, layer in enumerate(model.layers):
        kind = _kind(layer)
        parents = _inbound(layer)
        parent_feeds = [feeds[p.name] for p in parents if p.name in feeds]
        if isinstance(layer, keras.layers.InputLayer) or not parents:
            feeds[layer.name] = (Feed(frozenset([INPUT]), False, 3),)
            continue
        if kind is not None:
            kernel = np.asarray(layer.weights[0])
            channels = kernel.shape[-1] * (kernel.shape[-2] if kind == DEPTHWISE else 1)
            strides = tuple(getattr(layer, "strides", (1, 1)))
            dilation = tuple(getattr(layer, "dilation_rate", (1, 1)))
            if kind == FC or kernel.shape[:2] == (1, 1):
                dilation = (1, 1)
            convs[layer.name] = ConvNode(position, kind, layer.name, kernel, None, strides,
                                         dilation, parent_feeds[0] if parent_feeds else (),
                                         None, None)
            feeds[layer.name] = (Feed(frozenset([layer.name]), False, int(channels)),)
            continue
        if not parent_feeds:
            continue
        if isinstance(layer, keras.layers.Concatenate):
            feeds[layer.name] = tuple(f for pf in parent_feeds for f in pf)
        elif isinstance(layer, keras.layers.Add) and len(parent_feeds) > 1:
            flat = [f for pf in parent_feeds for f in pf]
            feeds[layer.name] = (Feed(frozenset().union(*(f.sources for f in flat)),
                                      any(f.pooled for f in flat), max(f.channels for f in flat)),)
        elif isinstance(layer, (keras.layers.GlobalAveragePooling2D, keras.layers.AveragePooling2D)):
            feeds[layer.name] = tuple(Feed(f.sources, True, f.channels) for f in parent_feeds[0])
        else:  # BN, activations, resize (first input), padding, dropout, rescaling...
            feeds[layer.name] = parent_feeds[0]
    fed = {s for c in convs.values() for f in c.feeds for s in f.sources}
    finals = [n for n in convs if n not in fed]
    return convs, finals


def _signature(feeds, mapping):
    """Feeds as a sorted tuple with sources mapped to Keras names (None if any is unmatched)."""
    items = []
    for f in feeds:
        sources = []
        for s in f.sources:
            if s == INPUT:
                sources.append(INPUT)
            elif s in mapping:
                sources.append(mapping[s])
            else:
                return None
        items.append((tuple(sorted(sources)), f.pooled))
    return items


def _hint(tflite_name):
    """'MobilenetV2/expanded_conv_3/depthwise/depthwise_weights;...' -> 'expanded_conv_3_depthwise',
    'resnet_v1_101/block1/unit_1/bottleneck_v1/conv1/weights' -> 'block1_unit_1_bottleneck_v1_conv1'."""
    parts = tflite_name.split(";")[0].split("/")
    if parts and re.fullmatch(r"MobilenetV2|xception_\d+|resnet_v1_\d+(_beta)?", parts[0]):
        parts = parts[1:]  # TF-slim's backbone scope; our layer names start below it
    keep = []
    for p in parts:
        if p in ("weights", "depthwise_weights", "BatchNorm", "FusedBatchNormV3", "FusedBatchNorm",
                 "Conv2D", "Conv2D_Fold", "depthwise_Fold", "BiasAdd", "weights_quant",
                 "FakeQuantWithMinMaxVars", "Relu6", "Relu", "MatMul"):
            break
        keep.append(p)
    return "_".join(keep)


def _fmt(node):
    shape = tuple(int(d) for d in node.kernel.shape)
    return f"{node.name!r} ({node.kind}, kernel {shape}, stride {node.strides[0]}, dilation {node.dilation[0]})"


def _feeds_text(signature):
    parts = []
    for sources, pooled in signature:
        text = "+".join(sources)
        parts.append(f"pool({text})" if pooled else text)
    return "[" + ", ".join(parts) + "]"


def match(model, convs, *, skip_classifier=False, origin="file"):
    """Pair each TFLite conv with a Keras layer. Returns ``(pairs, skipped, missing)`` with pairs
    a list of ``(ConvNode tflite, layer name, channel permutation or None)``."""
    ours, finals = keras_graph(model)
    fed = {s for c in convs for f in c.feeds for s in f.sources}
    theirs_final = [c.index for c in convs if c.index not in fed]
    skipped = []
    todo = list(convs)
    if skip_classifier:
        if len(finals) != 1 or len(theirs_final) != 1:
            raise StructureMismatchError(f"{origin}: cannot tell the classifier to skip "
                                         f"(model ends in {finals}, file in {len(theirs_final)} convs)")
        skipped = [finals[0]]
        todo = [c for c in convs if c.index != theirs_final[0]]
    mapping, used, pairs = {}, set(skipped), []
    for node in todo:
        want = _signature(node.feeds, mapping)
        if want is None:
            unknown = [s for f in node.feeds for s in f.sources if s != INPUT and s not in mapping]
            raise StructureMismatchError(f"{origin}: {node.describe()} reads op(s) #{unknown} that "
                                         f"match no layer of {model.name!r}")
        candidates, near = [], []
        for name, k in ours.items():
            if name in used:
                continue
            have = _signature(k.feeds, {n: n for n in ours if n in used} | {INPUT: INPUT})
            if have is None or sorted(have) != sorted(want):
                continue
            near.append(name)
            if (k.kind == node.kind and k.kernel.shape == node.kernel.shape
                    and tuple(k.strides) == tuple(node.strides) and tuple(k.dilation) == tuple(node.dilation)):
                candidates.append(name)
        if not candidates:
            ready = []
            for name, k in ours.items():
                if name not in used and _signature(k.feeds, {n: n for n in used} | {INPUT: INPUT}) is not None:
                    ready.append(name)
            expected = near or ready
            detail = "; ".join(f"{_fmt(ours[n])} fed by {_feeds_text(_signature(ours[n].feeds, {m: m for m in ours}))}"
                               for n in expected[:4]) or "nothing (every layer is already matched)"
            reason = ""
            if near:
                k = ours[near[0]]
                if k.kernel.shape != node.kernel.shape:
                    reason = (f": kernel has shape {tuple(node.kernel.shape)}, layer {near[0]!r} "
                              f"expects {tuple(k.kernel.shape)}")
                elif k.kind != node.kind:
                    reason = f": op is {node.kind}, layer {near[0]!r} is {k.kind}"
                else:
                    reason = (f": stride {node.strides[0]} / dilation {node.dilation[0]}, layer "
                              f"{near[0]!r} has stride {k.strides[0]} / dilation {k.dilation[0]}")
            raise StructureMismatchError(
                f"{origin}: {node.describe()} fed by {_feeds_text(want)} does not fit model "
                f"{model.name!r}{reason}. Expected at this point: {detail} (architecture mismatch)")
        if len(candidates) > 1:
            hint = _hint(node.name)
            named = [n for n in candidates if n == hint]
            candidates = named or candidates
        name = candidates[0]
        used.add(name)
        mapping[node.index] = name
        pairs.append((node, name, _permutation(node.feeds, ours[name].feeds, mapping)))
    missing = [n for n in ours if n not in used]
    return pairs, skipped, missing


def _permutation(theirs, ours, mapping):
    """Input-channel permutation taking the file's concat order to ours (None if the same)."""
    if len(theirs) < 2:
        return None
    keyed = {}
    start = 0
    for f in theirs:
        key = (tuple(sorted(mapping.get(s, s) for s in f.sources)), f.pooled)
        keyed.setdefault(key, []).append(np.arange(start, start + f.channels))
        start += f.channels
    order = []
    for f in ours:
        key = (tuple(sorted(f.sources)), f.pooled)
        order.append(keyed[key].pop(0))
    perm = np.concatenate(order)
    return None if np.array_equal(perm, np.arange(perm.size)) else perm


def _bn_slot(variable):
    base = variable.path.split("/")[-1] if hasattr(variable, "path") else variable.name
    base = base.split(":")[0]
    for slot in ("gamma", "beta", "moving_mean", "moving_variance"):
        if base.endswith(slot):
            return slot
    raise ValueError(f"unexpected BatchNorm variable {variable.name!r}")


def _bn_after(model, name):
    """The BatchNormalization right after conv ``name`` (ours is named ``name + _BatchNorm``)."""
    import keras

    try:
        bn = model.get_layer(name + BN_SUFFIX)
    except ValueError:
        bn = None
    if bn is not None:
        return bn
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization) and [p.name for p in _inbound(layer)] == [name]:
            return layer
    return None


def load_pairs(model, pairs, origin):
    """Set conv kernels and biases (folded BN -> gamma=1, beta=bias, mean=0, var=1-eps)."""
    loaded = []
    for node, name, perm in pairs:
        layer = model.get_layer(name)
        kernel = node.kernel
        if perm is not None:
            kernel = kernel[:, :, perm, :] if kernel.ndim == 4 else kernel[perm, :]
        target = tuple(layer.weights[0].shape)
        if kernel.shape != target:
            kernel = kernel.reshape(target)
        bias = node.bias
        if len(layer.weights) == 2:
            layer.set_weights([kernel, bias.reshape(layer.weights[1].shape)])
        else:
            bn = _bn_after(model, name)
            if bn is None:
                raise StructureMismatchError(f"{origin}: layer {name!r} has no bias and no "
                                             f"BatchNorm to take the folded bias of {node.describe()}")
            layer.set_weights([kernel])
            eps = float(bn.epsilon)
            ones = np.ones_like(bias)
            values = {"gamma": ones, "beta": bias, "moving_mean": np.zeros_like(bias),
                      "moving_variance": ones * (1.0 - eps)}
            bn.set_weights([values[_bn_slot(v)] for v in bn.weights])
            loaded.append(bn.name)
        loaded.append(name)
    return loaded


def import_structural(model, path_or_parsed, *, skip_classifier=False, allow_missing=False):
    """Load a TFLite file's weights into ``model`` by structure; returns a report dict.

    Every convolution of the file must find its layer (else :class:`StructureMismatchError`
    naming the first op that does not fit and what the model has there); every weighted layer
    of the model must be filled unless ``allow_missing``."""
    graph, convs = read_graph(path_or_parsed) if not isinstance(path_or_parsed, tuple) else path_or_parsed
    origin = graph.path
    pairs, skipped, unmatched = match(model, convs, skip_classifier=skip_classifier, origin=origin)
    loaded = load_pairs(model, pairs, origin)
    missing = sorted(layer.name for layer in model.layers
                     if layer.weights and layer.name not in loaded and layer.name not in skipped
                     and layer.name not in {s + BN_SUFFIX for s in skipped})
    if missing and not allow_missing:
        raise StructureMismatchError(
            f"{origin}: {len(missing)} layers of {model.name!r} get no weights from the file "
            f"(the model has more than the file): {', '.join(missing[:8])}"
            f"{' ...' if len(missing) > 8 else ''}")
    return {"source": os.fspath(origin), "tensors": len(convs), "layers_loaded": len(loaded),
            "skipped": skipped, "missing": missing,
            "matched": {f"#{node.index}": name for node, name, _ in pairs}}
