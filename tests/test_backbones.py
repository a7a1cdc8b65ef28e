"""Backbones: features by output stride at small inputs (static shape inference for the OS sweep,
one real forward pass each on an odd size), dilation schedules, slim layer names."""
import keras
import numpy as np
import pytest

from deeplab_keras.backbones import BACKBONES, build_backbone, get_backbone


def _features(name, output_stride, size=65, **options):
    inp = keras.Input((size, size, 3) if size else (None, None, 3))
    feats = build_backbone(name, inp, output_stride, **options)
    return inp, feats


def _hw(t):
    return tuple(t.shape[1:3])


def _rates(model_or_layers, kind=(keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
    layers = model_or_layers.layers if hasattr(model_or_layers, "layers") else model_or_layers
    return {l.name: l.dilation_rate[0] for l in layers if isinstance(l, kind)}


def _forward_odd(inp, feats, keys):
    """Run the backbone for real on its (odd) input size: outputs match the static shapes."""
    model = keras.Model(inp, [feats[k] for k in keys])
    x = np.random.RandomState(0).uniform(-1, 1, (1,) + tuple(inp.shape[1:])).astype("float32")
    outs = model(x)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    assert len(outs) == len(keys)
    for out, sym in zip(outs, model.outputs):
        assert tuple(out.shape[1:]) == tuple(sym.shape[1:])
    return model


# 65x65 input: stride 4 -> 17, 8 -> 9, 16 -> 5, 32 -> 3 (SAME / fixed padding: ceil division)
SIZES = {4: 17, 8: 9, 16: 5, 32: 3}


@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_mobilenet_v2_output_strides(output_stride):
    inp, f = _features("mobilenet_v2", output_stride)
    assert _hw(f["out"]) == (SIZES[output_stride],) * 2 and f["out"].shape[-1] == 320
    assert _hw(f[4]) == (17, 17) and f[4].shape[-1] == 144  # expanded_conv_2 depthwise output
    for s in (2, 4, 8):
        assert _hw(f[s]) == (-(-65 // s),) * 2
    model = keras.Model(inp, f["out"])
    rates = _rates(model, keras.layers.DepthwiseConv2D)
    expected = {8: {7: 2, 13: 2, 14: 4, 16: 4}, 16: {7: 1, 13: 1, 14: 2, 16: 2},
                32: {7: 1, 13: 1, 14: 1, 16: 1}}[output_stride]
    for unit, rate in expected.items():
        assert rates[f"expanded_conv_{unit}_depthwise"] == rate
    assert len(rates) == 17 and "expanded_conv_depthwise" in rates


def test_mobilenet_v2_alpha_and_any_size():
    inp, f = _features("mobilenet_v2", 8, size=None, alpha=0.5)
    model = keras.Model(inp, [f[4], f["out"]])
    assert model.get_layer("Conv").kernel.shape == (3, 3, 3, 16)
    assert model.get_layer("expanded_conv_project").kernel.shape == (1, 1, 16, 8)
    assert f["out"].shape[-1] == 160
    low, out = model(np.zeros((1, 65, 47, 3), "float32"))
    assert low.shape == (1, 17, 12, 72) and out.shape == (1, 9, 6, 160)
    inp, f = _features("mobilenet_v2", 16, alpha=1.4)
    assert f["out"].shape[-1] == 448
    with pytest.raises(ValueError, match="alpha must be positive"):
        _features("mobilenet_v2", 16, alpha=0)


@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_resnet50_output_strides_and_multi_grid(output_stride):
    inp, f = _features("resnet50", output_stride, multi_grid=(1, 2, 4))
    assert _hw(f["out"]) == (SIZES[output_stride],) * 2 and f["out"].shape[-1] == 2048
    assert _hw(f[4]) == (17, 17) and f[4].shape[-1] == 256  # block1/unit_2 conv3
    model = keras.Model(inp, f["out"])
    rates = _rates(model)
    base = 32 // output_stride  # dilation reached in block4
    assert [rates[f"block4_unit_{u}_bottleneck_v1_conv2"] for u in (1, 2, 3)] == [
        base * g for g in (1, 2, 4)]
    assert rates["block3_unit_6_bottleneck_v1_conv2"] == (2 if output_stride == 8 else 1)
    assert sum(1 for n in rates if n.endswith("_conv2")) == 16  # 3 + 4 + 6 + 3 units
    if output_stride == 16:
        _forward_odd(inp, f, [4, "out"])


def test_resnet_beta_stem_and_hdc():
    inp, f = _features("resnet50_beta", 8, dilation_schedule="hdc")
    model = keras.Model(inp, f["out"])
    assert [model.get_layer(n).kernel.shape[:2] for n in ("conv1_1", "conv1_2", "conv1_3")] == [(3, 3)] * 3
    assert _hw(f["out"]) == (9, 9)
    rates = _rates(model)
    block3 = tuple(rates[f"block3_unit_{u}_bottleneck_v1_conv2"] for u in range(1, 7))
    block4 = tuple(rates[f"block4_unit_{u}_bottleneck_v1_conv2"] for u in range(1, 4))
    assert block3 == (1, 2, 5, 9, 1, 2) and block4 == (5, 9, 17)
    with pytest.raises(ValueError, match="dilation_schedule"):
        _features("resnet50", 8, dilation_schedule="zigzag")


@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_xception41_output_strides(output_stride):
    inp, f = _features("xception41", output_stride, multi_grid=(1, 2, 4))
    assert _hw(f["out"]) == (SIZES[output_stride],) * 2 and f["out"].shape[-1] == 2048
    assert _hw(f[4]) == (17, 17) and f[4].shape[-1] == 256
    model = keras.Model(inp, f["out"])
    names = [l.name for l in model.layers]
    assert sum(n.startswith("middle_flow_block1_unit_") and n.endswith("conv1_depthwise")
               for n in names) == 8
    rates = _rates(model, keras.layers.DepthwiseConv2D)
    base = 32 // output_stride
    assert [rates[f"exit_flow_block2_unit_1_xception_module_separable_conv{i}_depthwise"]
            for i in (1, 2, 3)] == [base, 2 * base, 4 * base]
    # strided separable convs use TF-slim fixed padding
    assert "entry_flow_block1_unit_1_xception_module_separable_conv3_depthwise_pad" in names
    if output_stride == 16:
        _forward_odd(inp, f, [4, "out"])


def test_xception71_entry_flow():
    inp, f = _features("xception71", 16)
    model = keras.Model(inp, f["out"])
    names = {l.name for l in model.layers}
    assert "entry_flow_block5_unit_1_xception_module_shortcut" in names
    assert _hw(f[4]) == (17, 17) and _hw(f["out"]) == (5, 5)
    assert sum(n.startswith("middle_flow_block1_unit_") and n.endswith("conv1_depthwise")
               for n in names) == 16


@pytest.mark.parametrize("output_stride,fc_rate", [(8, 2), (16, 1), (32, 1)])
def test_vgg16_largefov(output_stride, fc_rate):
    inp, f = _features("vgg16", output_stride)
    assert _hw(f["out"]) == (SIZES[output_stride],) * 2 and f["out"].shape[-1] == 512
    model = keras.Model(inp, f["out"])
    assert model.get_layer("conv5_3").dilation_rate == (fc_rate, fc_rate)
    assert model.get_layer("pool5a").pool_size == (3, 3)
    if output_stride == 8:
        assert model.get_layer("pool4").strides == (1, 1)
        _forward_odd(inp, f, ["out"])


def test_registry_and_errors():
    assert {"mobilenet_v2", "vgg16", "resnet50", "resnet101", "resnet50_beta", "resnet101_beta",
            "xception41", "xception65", "xception71", "mobilenet_v3_large",
            "mobilenet_v3_small"} <= set(BACKBONES)
    assert get_backbone("Xception").name == "xception65"
    assert get_backbone("resnet_v1_101").name == "resnet101"
    with pytest.raises(ValueError, match="Unknown backbone 'efficientnet'. Available:"):
        get_backbone("efficientnet")
    with pytest.raises(ValueError, match="does not take alpha"):
        _features("resnet50", 16, alpha=0.5)
    with pytest.raises(ValueError, match="multi_grid needs 3 values"):
        _features("resnet50", 16, multi_grid=(1, 2))
    with pytest.raises(ValueError, match="Xception needs 3 positive"):
        _features("xception41", 16, multi_grid=(1, 2, 4, 8))
    with pytest.raises(ValueError, match="output_stride must be one of"):
        _features("mobilenet_v2", 12)


@pytest.mark.parametrize("variant", ["large", "small"])
def test_mobilenet_v3_matches_keras_applications_and_dilates(variant):
    from deeplab_keras.utils.flops import count
    app = {"large": keras.applications.MobileNetV3Large,
           "small": keras.applications.MobileNetV3Small}[variant](
        weights=None, include_top=False, input_shape=(65, 65, 3), include_preprocessing=False)
    inp, f = _features(f"mobilenet_v3_{variant}", 32)
    ours = keras.Model(inp, f["out"])
    # same architecture as Keras' own MobileNetV3 (up to the last 1x1 conv): params and mult-adds
    assert ours.count_params() == app.count_params()
    assert count(ours).mult_adds == count(app).mult_adds
    assert f["out"].shape[1:] == app.output.shape[1:] == (3, 3, 960 if variant == "large" else 576)
    inp, f = _features(f"mobilenet_v3_{variant}", 8)
    assert _hw(f["out"]) == (9, 9) and _hw(f[4]) == (17, 17)
    model = keras.Model(inp, f["out"])
    rates = _rates(model, keras.layers.DepthwiseConv2D)
    last = 14 if variant == "large" else 10
    assert rates[f"expanded_conv_{last}_depthwise"] == 4
    assert "expanded_conv_3_squeeze_excite_Conv_1" in {l.name for l in model.layers}
    _forward_odd(inp, f, [4, "out"])
