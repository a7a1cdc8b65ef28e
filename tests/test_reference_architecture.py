"""Our DeepLab v3 MobileNetV2 (mobile head) must have exactly the convolutions of Google's own
TFLite models in ../shared/reference: same layers (by TF-slim scope), kernel shapes, strides,
dilations, padding and output shapes. Reads the flatbuffer with LiteRT's schema module."""
import collections
import pathlib

import keras
import pytest

import deeplab_keras as dk

REFERENCE = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "reference"
CONV, DEPTHWISE = "CONV_2D", "DEPTHWISE_CONV_2D"

CASES = [
    # file, builder kwargs (Google's published settings for that file)
    ("deeplabv3_mnv2_pascal_quant.tflite", dict(alpha=1.0, output_stride=16, input_shape=(513, 513, 3))),
    ("deeplabv3_257_mv_gpu.tflite", dict(alpha=0.5, output_stride=8, input_shape=(257, 257, 3))),
]


def _scope(weights_name):
    """'MobilenetV2/expanded_conv_3/depthwise/depthwise_Fold;...' -> 'expanded_conv_3_depthwise'."""
    first = weights_name.split(";")[0]
    if first.startswith("MobilenetV2/"):
        first = first[len("MobilenetV2/"):]
    return first.rsplit("/", 1)[0].replace("/", "_")


def tflite_convs(path):
    """{layer name: (op type, weights shape, stride, dilation, padding, output shape)}."""
    schema = pytest.importorskip("ai_edge_litert.schema_py_generated")
    buf = path.read_bytes()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(buf, 0))
    graph = model.subgraphs[0]
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    pad = {schema.Padding.SAME: "same", schema.Padding.VALID: "valid"}
    convs, counts = {}, collections.Counter()
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        kind = names[max(code.builtinCode, code.deprecatedBuiltinCode)]
        counts[kind] += 1
        if kind not in (CONV, DEPTHWISE):
            continue
        w, out, opt = graph.tensors[op.inputs[1]], graph.tensors[op.outputs[0]], op.builtinOptions
        name = _scope(w.name.decode())
        assert name not in convs, f"duplicate scope {name} in {path.name}"
        convs[name] = (kind, tuple(int(d) for d in w.shape), (opt.strideH, opt.strideW),
                       (opt.dilationHFactor, opt.dilationWFactor),
                       _padding(pad[opt.padding], w.shape[1:3], (opt.strideH, opt.strideW)),
                       tuple(int(d) for d in out.shape))
    return convs, counts


def _padding(padding, kernel_hw, strides):
    """1x1 stride-1 convs pad nothing either way: SAME == VALID."""
    return "any" if tuple(kernel_hw) == (1, 1) and tuple(strides) == (1, 1) else padding


def keras_convs(model):
    convs = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            kh, kw, c, mult = layer.kernel.shape
            assert mult == 1
            kind, shape = DEPTHWISE, (1, kh, kw, c)
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            kind, shape = CONV, (cout, kh, kw, cin)
        else:
            continue
        out = (1,) + tuple(layer.output.shape[1:])
        convs[layer.name] = (kind, tuple(int(d) for d in shape), tuple(layer.strides),
                             tuple(layer.dilation_rate),
                             _padding(layer.padding, layer.kernel_size, layer.strides), out)
    return convs


@pytest.mark.parametrize("filename,kwargs", CASES, ids=[c[0] for c in CASES])
def test_same_convolutions_as_google_tflite(filename, kwargs):
    path = REFERENCE / filename
    if not path.exists():
        pytest.skip(f"{path} absent (../shared/reference holds Google's TFLite files)")
    reference, counts = tflite_convs(path)
    model = dk.DeepLabV3(num_classes=21, backbone="mobilenet_v2", atrous_rates=(),
                         align_corners=True, weights=None, **kwargs)
    ours = keras_convs(model)
    assert counts[CONV] == 38 and counts[DEPTHWISE] == 17  # 17 bottlenecks, 4 head convs
    assert sorted(ours) == sorted(reference), (
        f"only ours: {sorted(set(ours) - set(reference))}; "
        f"only Google's: {sorted(set(reference) - set(ours))}")
    different = {n: (ours[n], reference[n]) for n in reference if ours[n] != reference[n]}
    assert not different, f"{len(different)} convolutions differ (ours, Google's): {different}"
    # Same topological order for the backbone (the head's branch order is free in a graph).
    backbone = [n for n in reference if n.startswith(("Conv", "expanded_conv"))]
    assert [n for n in ours if n in backbone] == backbone
    # same residual connections (10 inverted-residual additions)
    assert sum(isinstance(l, keras.layers.Add) for l in model.layers) == counts["ADD"] == 10
