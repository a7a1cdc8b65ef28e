"""A TFLite file's op graph as convolution nodes and what feeds them, without trusting names.

:func:`read_graph` parses the flatbuffer with LiteRT's schema module (the one
``tests/test_reference_architecture.py`` uses) into :class:`ConvNode` objects, one per
``CONV_2D`` / ``DEPTHWISE_CONV_2D`` / ``FULLY_CONNECTED``: dequantized weights in Keras layout
(int8 per-channel, uint8 per-tensor with zero points, float16 or int8 behind ``DEQUANTIZE``),
stride, dilation (also from ``SPACE_TO_BATCH_ND`` wrappers) and its *feed*: which convolutions
(or the image input) its input comes from, through any number of non-convolution ops (activations,
quantize/dequantize, pads, resizes, residual ``ADD``\\ s), split into the ordered inputs of a
``CONCATENATION`` and flagged when a global pooling lies on the way.

The file is read and checked by :mod:`deeplab_keras.importers.tflite_reader`; the architecture is
inferred from these nodes by :mod:`deeplab_keras.importers.tflite_describe`.
"""
import dataclasses

import numpy as np

from deeplab_keras.importers.tflite_reader import Graph

CONV, DEPTHWISE, FC = "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"
CONV_KINDS = (CONV, DEPTHWISE, FC)
INPUT = "INPUT"
#: ops that average over the whole feature map (DeepLab's image pooling)
POOLS = ("AVERAGE_POOL_2D", "MEAN")
#: elementwise ops whose constant operand may normalise the input before the first conv
_NORMALISE = ("MUL", "ADD", "SUB", "DIV")


@dataclasses.dataclass
class Feed:
    """One input of a conv: the convolutions (op indices, or INPUT) it is computed from."""
    sources: frozenset
    pooled: bool = False
    channels: int = 0


@dataclasses.dataclass
class ConvNode:
    index: int            # operator index in the subgraph
    kind: str             # CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED
    name: str             # weight tensor name (a hint only; may be stripped)
    kernel: np.ndarray    # Keras layout: conv [kh, kw, in, out], depthwise [kh, kw, c, mult], fc [in, out]
    bias: np.ndarray      # float32 [out] (zeros when the op has none)
    strides: tuple
    dilation: tuple
    feeds: tuple          # tuple of Feed, in channel order (several after a CONCATENATION)
    input_shape: tuple
    output_shape: tuple
    #: stride of its output relative to the image (product of the conv and max-pool strides on
    #: the way; None after a resize, whose factor only the tensor sizes tell)
    total_stride: int = None

    def describe(self):
        shape = tuple(int(d) for d in self.kernel.shape)
        return (f"op #{self.index} {self.kind} {self.name!r} (kernel {shape}, stride "
                f"{self.strides[0]}, dilation {self.dilation[0]})")


def _activations(graph, ins):
    return [t for t in ins if not graph.is_constant(t)]


def _conv_weights(graph, k, kind, ins):
    if len(ins) < 2:
        raise ValueError(f"{graph.path}: {kind} op #{k} has no weight tensor")
    w = graph.constant(ins[1])
    bias = graph.constant(ins[2]) if len(ins) > 2 else None
    if kind == CONV:  # [out, kh, kw, in] -> [kh, kw, in, out]
        kernel = w.transpose(1, 2, 3, 0)
    elif kind == DEPTHWISE:  # [1, kh, kw, in * mult] -> [kh, kw, in, mult]
        in_channels = graph.shape(ins[0])[-1]
        mult = w.shape[3] // in_channels if in_channels else 1
        kernel = w.reshape(w.shape[1], w.shape[2], -1, mult)
    else:  # FULLY_CONNECTED [out, in] -> [in, out]
        kernel = w.reshape(w.shape[0], -1).T
    out = kernel.shape[-1] * (kernel.shape[-2] if kind == DEPTHWISE else 1)
    if bias is None:
        bias = np.zeros(out, np.float32)
    return np.ascontiguousarray(kernel), bias.reshape(-1).astype(np.float32)


#: shape-only ops a BatchNorm left unfolded may sit behind (dilated convs: SPACE_TO_BATCH form)
_PASS_TO_AFFINE = ("BATCH_TO_SPACE_ND", "RESHAPE")


def _fold_affine_after(graph, t, kind, kernel, bias):
    """Fold a BatchNorm the converter left as ``MUL`` / ``ADD`` / ``SUB`` by per-channel (or
    scalar) constants right after a conv (e.g. behind ``BATCH_TO_SPACE_ND``) into the conv's
    kernel and bias, so that the conv node alone carries the layer's effect."""
    channels = bias.size
    folded = set()
    while True:
        users = graph.consumers.get(t, [])
        if len(users) != 1:
            return kernel, bias, folded
        op_kind, ins, outs, opt = graph.ops[users[0]]
        if op_kind in _PASS_TO_AFFINE:
            t = outs[0]
            continue
        consts = [i for i in ins if graph.is_constant(i)]
        if op_kind not in ("MUL", "ADD", "SUB") or len(consts) != 1 or len(ins) != 2:
            return kernel, bias, folded
        c = graph.constant(consts[0]).reshape(-1).astype(np.float32)
        if c.size not in (1, channels):
            return kernel, bias, folded
        if op_kind == "MUL":
            if kind == DEPTHWISE:
                kernel = kernel * c.reshape(kernel.shape[-2], kernel.shape[-1]) if c.size > 1 else kernel * c
            else:
                kernel = kernel * c
            bias = bias * c
        elif op_kind == "ADD":
            bias = bias + c
        elif ins.index(consts[0]) == 1:  # x - c
            bias = bias - c
        else:  # c - x: not a BatchNorm
            return kernel, bias, folded
        folded.add(users[0])
        if getattr(opt, "fusedActivationFunction", 0):
            return kernel, bias, folded  # an activation ends the affine part
        t = outs[0]


#: ops that may sit on the data path between convolutions without changing what we build
_ALLOWED = {"QUANTIZE", "DEQUANTIZE", "RELU", "RELU6", "PAD", "PADV2", "RESHAPE", "SQUEEZE",
            "EXPAND_DIMS", "RESIZE_BILINEAR", "CONCATENATION", "AVERAGE_POOL_2D", "MEAN",
            "SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND", "ARG_MAX", "SOFTMAX", "CAST", "ADD", "ADD_N",
            "MUL", "SUB", "DIV", "MAX_POOL_2D"}
#: ops whose output is subsampled by their ``strideH`` (ResNet's pool1 and strided shortcuts)
_STRIDED_POOLS = ("MAX_POOL_2D", "AVERAGE_POOL_2D")


def _check_op(graph, k, kind, ins, acts, feeds, folded):
    """Refuse an op on the data path that our DeepLab models do not have (rather than import a
    network that silently computes something else)."""
    if kind not in _ALLOWED:
        raise ValueError(f"{graph.path}: op #{k} {kind} on the data path is not part of the "
                         f"DeepLab networks we build (supported ops: {', '.join(sorted(_ALLOWED))})")
    if kind in ("ADD", "ADD_N") and len(acts) > 1:
        return  # residual connection
    if kind in _NORMALISE and k not in folded:
        sources = {s for t in acts for f in feeds[t] for s in f.sources}
        if sources != {INPUT}:  # before the first conv it is input normalisation (see describe)
            raise ValueError(f"{graph.path}: op #{k} {kind} by a constant after a convolution "
                             f"that is not a BatchNorm we can fold into it; not part of the "
                             f"DeepLab networks we build")


def read_graph(path):
    """Parse ``path``; returns ``(graph, convs)`` with convs a list of :class:`ConvNode` in
    data-flow order (the file's operator order, which TFLite keeps topological)."""
    graph = Graph(path)  # checks every field it reads, the input size included
    feeds = {}  # tensor -> tuple of Feed
    stride_of = {}  # tensor -> its stride relative to the image (None: unknown, after a resize)
    for t in graph.inputs:
        feeds[t] = (Feed(frozenset([INPUT]), False, (graph.shape(t) or (0,))[-1] or 0),)
        stride_of[t] = 1
    convs, dilation_of, folded = [], {}, set()
    for k, (kind, ins, outs, opt) in enumerate(graph.ops):
        acts = [t for t in _activations(graph, ins) if t in feeds]
        if kind in CONV_KINDS:
            if not acts:
                raise ValueError(f"{graph.path}: {kind} op #{k} has no input from the image")
            kernel, bias = _conv_weights(graph, k, kind, ins)
            if kind == FC:
                strides, dilation = (1, 1), (1, 1)
            else:
                strides = (int(opt.strideH), int(opt.strideW))
                dilation = (int(opt.dilationHFactor), int(opt.dilationWFactor))
                dilation = dilation_of.get(acts[0], dilation)
                if kernel.shape[:2] == (1, 1):
                    dilation = (1, 1)
            if not getattr(opt, "fusedActivationFunction", 0):
                kernel, bias, done = _fold_affine_after(graph, outs[0], kind, kernel, bias)
                folded |= done
            before = stride_of.get(acts[0])
            total = None if before is None else before * strides[0]
            convs.append(ConvNode(k, kind, graph.name(ins[1]), kernel, bias, strides, dilation,
                                  feeds[acts[0]], graph.shape(ins[0]), graph.shape(outs[0]), total))
            for t in outs:
                stride_of[t] = total

                feeds[t] = (Feed(frozenset([k]), False, int(kernel.shape[-1] * (
                    kernel.shape[-2] if kind == DEPTHWISE else 1))),)
            continue
        if not acts or kind == "SHAPE":
            continue
        _check_op(graph, k, kind, ins, acts, feeds, folded)
        if kind == "CONCATENATION":
            merged = tuple(f for t in acts for f in feeds[t])
        elif kind in ("ADD", "ADD_N") and len(acts) > 1:  # residual connection
            merged = (Feed(frozenset().union(*(f.sources for t in acts for f in feeds[t])),
                           any(f.pooled for t in acts for f in feeds[t]),
                           max(f.channels for t in acts for f in feeds[t])),)
        elif kind in POOLS:
            merged = tuple(Feed(f.sources, True, f.channels) for f in feeds[acts[0]])
        else:
            merged = feeds[acts[0]]
        known = [stride_of.get(t) for t in acts if stride_of.get(t) is not None]
        if kind == "RESIZE_BILINEAR" or not known:
            total = None
        elif kind in _STRIDED_POOLS and not getattr(opt, "strideH", 0) in (0, 1):
            total = known[0] * int(opt.strideH)
        else:  # residual ADDs join equal strides; a concatenation the decoder's resized input
            total = max(known)
        for t in outs:
            feeds[t] = merged
            stride_of[t] = total
        if kind == "SPACE_TO_BATCH_ND" and len(ins) > 1 and graph.is_constant(ins[1]):
            block = tuple(int(v) for v in graph.constant(ins[1]).reshape(-1))
            for t in outs:
                dilation_of[t] = block
        elif kind not in ("SPACE_TO_BATCH_ND",) and acts[0] in dilation_of:
            for t in outs:  # e.g. a PAD between SPACE_TO_BATCH_ND and the conv
                dilation_of[t] = dilation_of[acts[0]]
    if not convs:
        raise ValueError(f"{graph.path}: no convolution found; is this a DeepLab TFLite file?")
    return graph, convs
