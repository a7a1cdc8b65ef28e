"""The four builders: the issue's calls as written, every version builds, runs on a small odd-size
image with output at the input size, and survives model.save(.keras) + keras.saving.load_model with
identical outputs; bad arguments raise clear ValueErrors. Big backbones are built once each."""
import keras
import numpy as np
import pytest

import deeplab_keras as dk
from deeplab_keras.utils.flops import count

ODD = (1, 37, 45, 3)  # small odd image


def _image(shape=ODD, seed=0):
    return np.random.RandomState(seed).uniform(0, 255, shape).astype("float32")


def _round_trip(model, tmp_path, image):
    """Save as .keras, reload, compare outputs on ``image``; returns the outputs."""
    before = model(image, training=False)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    after = loaded(image, training=False)
    before = before if isinstance(before, (list, tuple)) else [before]
    after = after if isinstance(after, (list, tuple)) else [after]
    assert len(before) == len(after)
    for b, a in zip(before, after):
        assert b.shape == (image.shape[0],) + image.shape[1:3] + (model.outputs[0].shape[-1],)
        assert b.dtype == "float32"
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5)
    assert [l.name for l in loaded.layers] == [l.name for l in model.layers]
    return before


# ---------------------------------------------------------------- the issue's calls, as written

def test_issue_call_v3plus_xception65_513():
    """Built as written; it runs and round-trips at a small size in test_builds_runs_and_round_trips
    (a 513x513 forward pass of this 54B multiply-add model is too slow for the CPU budget)."""
    model = dk.DeepLabV3Plus(num_classes=21, backbone="xception65", output_stride=16,
                             input_shape=(513, 513, 3), weights=None)
    assert model.output.shape == (None, 513, 513, 21)
    names = {l.name for l in model.layers}
    assert sum(n.startswith("middle_flow_block1_unit_") and n.endswith("conv1_depthwise")
               for n in names) == 16
    assert model.get_layer("concat_projection").output.shape == (None, 33, 33, 256)
    assert model.get_layer("decoder_feature_projection0").output.shape == (None, 129, 129, 48)
    assert model.get_layer("aspp3_depthwise").dilation_rate == (18, 18)
    assert 40e6 < model.count_params() < 45e6
    # published: 54.17B multiply-adds (v3+ paper / Google's model zoo, tfprof); ours counts convs only
    assert count(model).mult_adds / 1e9 == pytest.approx(54.17, rel=0.005)


def test_mobile_head_mult_adds_match_google():
    """Google's model zoo: MobileNetV2 DeepLab v3 (no ASPP, no decoder) at 513, OS 16: 2.75B."""
    model = dk.DeepLabV3(num_classes=21, backbone="mobilenet_v2", output_stride=16, atrous_rates=(),
                         input_shape=(513, 513, 3))
    assert count(model).mult_adds / 1e9 == pytest.approx(2.75, rel=0.005)


def test_issue_call_v3_mobilenet_v2_mobile_head_257(tmp_path):
    model = dk.DeepLabV3(num_classes=21, backbone="mobilenet_v2", alpha=0.5, output_stride=8,
                         atrous_rates=(), input_shape=(257, 257, 3), weights=None)
    assert model.output.shape == (None, 257, 257, 21)
    assert model.get_layer("concat_projection").input.shape == (None, 33, 33, 512)
    _round_trip(model, tmp_path, _image((1, 257, 257, 3)))


def test_issue_call_v2_resnet101(tmp_path):
    model = dk.DeepLabV2(num_classes=21, weights=None)
    names = {l.name for l in model.layers}
    assert "block3_unit_23_bottleneck_v1_conv2" in names  # ResNet-101
    assert model.get_layer("block4_unit_3_bottleneck_v1_conv2").dilation_rate == (4, 4)  # OS 8
    assert [model.get_layer(f"aspp_l_c{i}").dilation_rate[0] for i in range(4)] == [6, 12, 18, 24]
    _round_trip(model, tmp_path, _image())


def test_issue_call_v1_largefov(tmp_path):
    model = dk.DeepLabV1(num_classes=21, weights=None)
    fc6 = model.get_layer("fc6")
    assert fc6.dilation_rate == (12, 12) and fc6.kernel.shape == (3, 3, 512, 1024)
    assert model.get_layer("fc7").kernel.shape == (1, 1, 1024, 1024)
    assert model.get_layer("fc8").kernel.shape == (1, 1, 1024, 21)
    _round_trip(model, tmp_path, _image())


# ---------------------------------------------------------------- every other version

@pytest.mark.parametrize("arch,config", [
    ("deeplabv2", dict(backbone="resnet50", multi_scale=True, return_all_scales=True)),
    ("deeplabv3", dict(backbone="resnet50", output_stride=16)),
    ("deeplabv3", dict(backbone="xception41", output_stride=16, multi_grid=(1, 2, 4))),
    ("deeplabv3", dict(backbone="mobilenet_v2", output_stride=16)),
    ("deeplabv3plus", dict(backbone="xception65", output_stride=16)),
    ("deeplabv3plus", dict(backbone="mobilenet_v2", output_stride=8, align_corners=True)),
    ("deeplabv3plus", dict(backbone="resnet50_beta", output_stride=16, multi_grid=(1, 2, 4))),
    ("deeplabv3plus", dict(backbone="mobilenet_v3_large", output_stride=16, alpha=0.75)),
], ids=["v2-msc-resnet50", "v3-resnet50", "v3-xception41", "v3-mobilenet_v2", "v3plus-xception65",
        "v3plus-mobilenet_v2-os8", "v3plus-resnet50_beta", "v3plus-mobilenet_v3_large"])
def test_builds_runs_and_round_trips(arch, config, tmp_path):
    model = dk.build_model(arch, num_classes=3, weights=None, input_shape=(None, None, 3), **config)
    outputs = _round_trip(model, tmp_path, _image())
    if config.get("multi_scale"):
        assert len(outputs) == 4  # fused + one per scale (1, 0.75, 0.5)
        fused, per_scale = outputs[0], outputs[1:]
        assert model.get_layer("input_scale2").scale == 0.5
        assert np.all(np.asarray(fused) >= np.asarray(per_scale[0]) - 1e-5)


def test_v2_single_scale_output_and_options():
    model = dk.DeepLabV2(num_classes=2, backbone="resnet50", atrous_rates=(12,), activation="softmax",
                         include_preprocessing=False)
    assert "aspp_l_sum" not in {l.name for l in model.layers} and "preprocessing" not in {
        l.name for l in model.layers}
    y = model(_image((1, 33, 35, 3)) / 255.0).numpy()
    assert y.shape == (1, 33, 35, 2)
    np.testing.assert_allclose(y.sum(-1), 1.0, atol=1e-5)


def test_v3_defaults_follow_output_stride():
    os8 = dk.DeepLabV3(num_classes=2, backbone="mobilenet_v2", output_stride=8)
    assert [os8.get_layer(f"aspp{i}").dilation_rate[0] for i in (1, 2, 3)] == [12, 24, 36]
    assert os8.get_layer("preprocessing").scale == pytest.approx(1 / 127.5)
    custom = dk.DeepLabV3(num_classes=2, backbone="mobilenet_v2", atrous_rates=(3, 5))
    assert {"aspp1", "aspp2"} <= {l.name for l in custom.layers}
    assert "aspp3" not in {l.name for l in custom.layers}


# ---------------------------------------------------------------- bad arguments

@pytest.mark.parametrize("build,match", [
    (lambda: dk.DeepLabV3(backbone="efficientnet"), "Unknown backbone 'efficientnet'"),
    (lambda: dk.DeepLabV3(backbone="mobilenet_v2", output_stride=12), "output_stride must be one of"),
    (lambda: dk.DeepLabV3Plus(backbone="mobilenet_v2", output_stride=12), "output_stride must be one of"),
    (lambda: dk.DeepLabV1(output_stride=12), "output_stride must be one of"),
    (lambda: dk.DeepLabV3(num_classes=0, backbone="mobilenet_v2"), "num_classes must be a positive"),
    (lambda: dk.DeepLabV1(num_classes=2.5), "num_classes must be a positive"),
    (lambda: dk.DeepLabV3(backbone="resnet50", alpha=0.5), "'resnet50' does not take alpha"),
    (lambda: dk.DeepLabV3(backbone="resnet50", multi_grid=(1, 2)), "multi_grid needs 3 values"),
    (lambda: dk.DeepLabV3Plus(backbone="mobilenet_v2", input_shape=(65, 65, 4)), "3 \\(RGB\\) channels"),
    (lambda: dk.DeepLabV3(backbone="mobilenet_v2", input_shape=(65, 65)), "input_shape must be"),
    (lambda: dk.DeepLabV2(backbone="mobilenet_v2"), "DeepLabV2 uses a ResNet backbone"),
    (lambda: dk.DeepLabV2(backbone="resnet50", return_all_scales=True), "needs multi_scale=True"),
    (lambda: dk.DeepLabV3(backbone="vgg16"), "does not support the vgg16 backbone"),
    (lambda: dk.DeepLabV3(backbone="mobilenet_v2", atrous_rates=(6, -1)), "atrous_rates must be positive"),
    (lambda: dk.build_model("deeplabv4"), "Unknown architecture 'deeplabv4'"),
], ids=["backbone", "os12-v3", "os12-v3plus", "os12-v1", "classes0", "classes-float", "alpha-resnet",
        "multigrid-len", "4-channels", "2d-shape", "v2-mobilenet", "all-scales", "v3-vgg",
        "negative-rate", "arch"])
def test_bad_arguments_raise_clear_errors(build, match):
    with pytest.raises(ValueError, match=match):
        build()
