"""Shared blocks: atrous (separable) convs, fixed padding, ASPP variants, image pooling, decoder,
Resize semantics and rate schedules. Tiny tensors only."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from deeplab_keras import layers as dl
from deeplab_keras.layers.rates import check_output_stride


def _model(build, shape):
    inp = keras.Input(shape=shape)
    return keras.Model(inp, build(inp))


def _rand(*shape, seed=0):
    return np.random.RandomState(seed).standard_normal(shape).astype("float32")


def _layer(model, name):
    return model.get_layer(name)


# ---------------------------------------------------------------- fixed padding / atrous conv

@pytest.mark.parametrize("kernel,rate,pads", [(3, 1, (1, 1)), (3, 2, (2, 2)), (7, 1, (3, 3)),
                                              (2, 1, (0, 1)), (3, 4, (4, 4)), (1, 1, None)])
def test_fixed_padding_shape_math(kernel, rate, pads):
    inp = keras.Input(shape=(8, 9, 2))
    out = dl.fixed_padding(inp, kernel, rate, name="pad")
    if pads is None:
        assert out is inp  # 1x1 needs no padding
        return
    total = sum(pads)
    assert tuple(out.shape[1:3]) == (8 + total, 9 + total)
    layer = out._keras_history[0]
    assert tuple(map(tuple, layer.padding)) == (pads, pads)


@pytest.mark.parametrize("size", [8, 9])
def test_explicit_padding_matches_slim_conv2d_same(size):
    """Strided conv with explicit padding == TF-slim conv2d_same (pad, then VALID), also on even
    sizes where Keras "same" would pad asymmetrically (0, 1)."""
    m = _model(lambda t: dl.atrous_conv(t, 4, 3, strides=2, name="c", use_bn=False,
                                        activation=None, explicit_padding=True), (size, size, 3))
    assert [l.name for l in m.layers[1:]] == ["c_pad", "c"]
    x = _rand(1, size, size, 3)
    kernel = _layer(m, "c").kernel.numpy()
    ref = tf.nn.conv2d(tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]), kernel, 2, "VALID")
    out = m(x).numpy()
    assert out.shape == (1, (size + 1) // 2, (size + 1) // 2, 4)
    np.testing.assert_allclose(out, ref.numpy(), atol=1e-5)
    if size % 2 == 0:
        keras_same = tf.nn.conv2d(x, kernel, 2, "SAME").numpy()
        assert not np.allclose(keras_same, out, atol=1e-3)


def test_atrous_conv_names_dilation_and_activation():
    m = _model(lambda t: dl.atrous_conv(t, 5, 3, rate=2, name="aspp1"), (11, 11, 3))
    assert [l.name for l in m.layers[1:]] == ["aspp1", "aspp1_BatchNorm", "aspp1_relu"]
    conv = _layer(m, "aspp1")
    assert conv.dilation_rate == (2, 2) and conv.padding == "same" and not conv.use_bias
    assert m.output.shape[1:] == (11, 11, 5)
    assert (m(_rand(1, 11, 11, 3)).numpy() >= 0).all()
    m6 = _model(lambda t: dl.atrous_conv(t, 2, 1, name="c", activation="relu6", use_bn=False), (3, 3, 1))
    assert [l.name for l in m6.layers[1:]] == ["c", "c_relu6"] and _layer(m6, "c").use_bias
    with pytest.raises(ValueError, match="strides=2 and rate=2"):
        dl.atrous_conv(keras.Input((9, 9, 3)), 4, 3, strides=2, rate=2, name="bad")
    with pytest.raises(ValueError, match="cannot both be > 1"):
        dl.depthwise_conv(keras.Input((9, 9, 3)), 3, strides=2, rate=2, name="bad")


def test_atrous_separable_conv():
    m = _model(lambda t: dl.atrous_separable_conv(t, 6, 3, rate=3, name="s"), (9, 9, 4))
    assert [l.name for l in m.layers[1:]] == [
        "s_depthwise", "s_depthwise_BatchNorm", "s_depthwise_relu",
        "s_pointwise", "s_pointwise_BatchNorm", "s_pointwise_relu"]
    assert _layer(m, "s_depthwise").dilation_rate == (3, 3)
    assert _layer(m, "s_pointwise").kernel.shape == (1, 1, 4, 6)
    assert m.output.shape[1:] == (9, 9, 6)
    no_depth_act = _model(lambda t: dl.atrous_separable_conv(t, 6, name="s", depth_activation=False),
                          (5, 5, 4))
    assert "s_depthwise_relu" not in [l.name for l in no_depth_act.layers]


def test_atrous_separable_conv_pre_activation_form():
    """Xception form: ReLU first, then depthwise + BN, pointwise + BN, no activation after."""
    m = _model(lambda t: dl.atrous_separable_conv(t, 3, 3, strides=2, name="x", pre_activation=True,
                                                  explicit_padding=True), (8, 8, 2))
    assert [l.name for l in m.layers[1:]] == [
        "x_preact", "x_depthwise_pad", "x_depthwise", "x_depthwise_BatchNorm", "x_pointwise",
        "x_pointwise_BatchNorm"]
    assert m.output.shape[1:] == (4, 4, 3)
    x = _rand(1, 8, 8, 2)
    assert (m(x).numpy() < 0).any()  # no ReLU at the end
    np.testing.assert_allclose(m(x), m(np.maximum(x, 0)), atol=1e-6)  # ReLU at the start


# ---------------------------------------------------------------- ASPP variants

def _conv_rates(model):
    return {l.name: l.dilation_rate[0] for l in model.layers
            if isinstance(l, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))}


def test_aspp_v3_rates_branches_and_projection():
    m = _model(lambda t: dl.aspp(t, 8, (6, 12, 18)), (None, None, 5))
    rates = _conv_rates(m)
    assert rates == {"image_pooling": 1, "aspp0": 1, "aspp1": 6, "aspp2": 12, "aspp3": 18,
                     "concat_projection": 1}
    assert _layer(m, "aspp1").kernel.shape == (3, 3, 5, 8)
    assert _layer(m, "concat_projection").kernel.shape == (1, 1, 5 * 8, 8)
    concat_inputs = [t._keras_history[0].name for t in _layer(m, "aspp_concat").input]
    assert concat_inputs == ["image_pooling_resize", "aspp0_relu", "aspp1_relu", "aspp2_relu",
                             "aspp3_relu"]  # Google's order: image pooling first
    assert _layer(m, "concat_projection_dropout").rate == 0.1
    assert m(_rand(1, 7, 9, 5)).shape == (1, 7, 9, 8)


def test_aspp_separable_branches():
    m = _model(lambda t: dl.aspp(t, 8, (12, 24, 36), separable=True, dropout=0), (6, 6, 4))
    rates = _conv_rates(m)
    for i, r in enumerate((12, 24, 36), start=1):
        assert rates[f"aspp{i}_depthwise"] == r and rates[f"aspp{i}_pointwise"] == 1
        assert f"aspp{i}" not in rates
    assert "concat_projection_dropout" not in [l.name for l in m.layers]


def test_aspp_mobile_head():
    """atrous_rates=() is Google's MobileNet head: image pooling + 1x1, concat (512), project."""
    m = _model(lambda t: dl.aspp(t, 256, ()), (5, 5, 16))
    assert set(_conv_rates(m)) == {"image_pooling", "aspp0", "concat_projection"}
    assert _layer(m, "concat_projection").kernel.shape == (1, 1, 512, 256)
    single = _model(lambda t: dl.aspp(t, 4, (), use_image_pooling=False), (5, 5, 3))
    assert set(_conv_rates(single)) == {"aspp0", "concat_projection"}
    assert "aspp_concat" not in [l.name for l in single.layers]
    with pytest.raises(ValueError, match="atrous_rates must be positive"):
        dl.aspp(keras.Input((5, 5, 3)), 4, (6, 0))


def test_aspp_l_sums_four_atrous_classifiers():
    m = _model(lambda t: dl.aspp_l(t, 3), (None, None, 4))
    convs = [l for l in m.layers if isinstance(l, keras.layers.Conv2D)]
    assert [(c.name, c.dilation_rate[0], c.use_bias) for c in convs] == [
        ("aspp_l_c0", 6, True), ("aspp_l_c1", 12, True), ("aspp_l_c2", 18, True), ("aspp_l_c3", 24, True)]
    x = _rand(1, 9, 11, 4)
    expected = sum(tf.nn.conv2d(x, c.kernel, 1, "SAME", dilations=c.dilation_rate[0]) + c.bias
                   for c in convs)
    np.testing.assert_allclose(m(x), expected, atol=1e-4)
    assert "aspp_l_sum" not in [l.name for l in _model(lambda t: dl.aspp_l(t, 3, (12,)), (5, 5, 2)).layers]
    with pytest.raises(ValueError, match="ASPP-L needs positive atrous_rates"):
        dl.aspp_l(keras.Input((5, 5, 3)), 3, ())


@pytest.mark.parametrize("align_corners", [False, True])
def test_image_pooling_any_size(align_corners):
    m = _model(lambda t: dl.image_pooling(t, 4, align_corners=align_corners), (None, None, 3))
    for h, w in [(7, 9), (13, 5), (1, 1)]:
        x = _rand(1, h, w, 3, seed=h)
        y = m(x).numpy()
        assert y.shape == (1, h, w, 4)
        np.testing.assert_allclose(y, np.broadcast_to(y[:, :1, :1], y.shape), atol=1e-6)
        # depends on the image only through its mean
        shuffled = x.reshape(-1, 3)[np.random.RandomState(1).permutation(h * w)].reshape(x.shape)
        np.testing.assert_allclose(m(shuffled), y, atol=1e-5)
    odd = _model(lambda t: dl.image_pooling(t, 4), (11, 7, 3))
    assert odd.output.shape[1:] == (11, 7, 4)


# ---------------------------------------------------------------- decoder

@pytest.mark.parametrize("separable", [True, False])
def test_decoder(separable):
    high, low = keras.Input((5, 5, 16)), keras.Input((None, None, 24))
    m = keras.Model([high, low], dl.decoder(high, low, filters=8, separable=separable))
    names = [l.name for l in m.layers]
    assert _layer(m, "decoder_feature_projection0").kernel.shape == (1, 1, 24, 48)
    if separable:
        assert {"decoder_decoder_conv0_depthwise", "decoder_decoder_conv1_pointwise"} <= set(names)
        assert _layer(m, "decoder_decoder_conv0_pointwise").kernel.shape == (1, 1, 16 + 48, 8)
    else:
        assert _layer(m, "decoder_decoder_conv0").kernel.shape == (3, 3, 16 + 48, 8)
    y = m([_rand(1, 5, 5, 16), _rand(1, 17, 19, 24)])
    assert y.shape == (1, 17, 19, 8)


# ---------------------------------------------------------------- Resize

@pytest.mark.parametrize("src,dst", [((5, 7), (17, 13)), ((33, 33), (513, 513)), ((9, 8), (4, 5))])
def test_resize_semantics_match_tf(src, dst):
    x = _rand(2, *src, 3)
    aligned = dl.Resize(size=dst, align_corners=True)(x)
    np.testing.assert_allclose(
        aligned, tf.compat.v1.image.resize(x, dst, method="bilinear", align_corners=True), atol=1e-4)
    half = dl.Resize(size=dst)(x)
    np.testing.assert_allclose(half, tf.image.resize(x, dst, method="bilinear"), atol=1e-4)
    assert not np.allclose(aligned, half, atol=1e-3)
    near = dl.Resize(size=dst, interpolation="nearest")(x)
    np.testing.assert_allclose(near, tf.image.resize(x, dst, method="nearest"), atol=1e-6)


def test_resize_to_reference_scale_and_identity():
    x, ref = keras.Input((None, None, 2)), keras.Input((None, None, 1))
    m = keras.Model([x, ref], dl.Resize(align_corners=True)([x, ref]))
    a, r = _rand(1, 4, 6, 2), _rand(1, 11, 9, 1)
    np.testing.assert_allclose(m([a, r]), tf.compat.v1.image.resize(a, (11, 9), align_corners=True),
                               atol=1e-5)
    s = dl.Resize(scale=0.5)
    assert s(_rand(1, 513, 65, 1)).shape == (1, 257, 33, 1)  # DeepLab's (n - 1) * s + 1
    assert s.compute_output_shape((1, 9, None, 3)) == (1, 5, None, 3)
    same = _rand(1, 6, 6, 2)
    np.testing.assert_array_equal(dl.Resize(size=(6, 6))(same), same)
    layer = dl.Resize(scale=0.75, align_corners=True, name="r")
    clone = dl.Resize.from_config(layer.get_config())
    assert (clone.scale, clone.align_corners, clone.size) == (0.75, True, None)


@pytest.mark.parametrize("kwargs,match", [
    (dict(interpolation="bicubic"), "interpolation"), (dict(size=(2, 2), scale=2.0), "at most one"),
    (dict(size=(0, 3)), "positive"), (dict(scale=0), "scale must be positive")])
def test_resize_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dl.Resize(**kwargs)


# ---------------------------------------------------------------- rate schedules

def test_rate_schedules():
    assert dl.aspp_rates(16) == (6, 12, 18) and dl.aspp_rates(8) == (12, 24, 36)
    with pytest.raises(ValueError, match="output_stride must be one of"):
        dl.aspp_rates(12)
    with pytest.raises(ValueError, match="output_stride must be one of"):
        check_output_stride(4)
    assert dl.multi_grid((1, 2, 4), 2) == (2, 4, 8) and dl.multi_grid((1, 2, 1), 4) == (4, 8, 4)
    with pytest.raises(ValueError, match="multi_grid"):
        dl.multi_grid((1, 0, 2), 2)
    assert dl.hdc(4, 2) == (1, 2, 5, 9) and dl.hdc(6, 2) == (1, 2, 5, 9, 1, 2)
    assert dl.hdc(3, 4) == (5, 9, 17) and dl.hdc(3, 1) == (1, 1, 1)
    assert dl.hdc(4, 8) == (4, 8, 12, 4) and dl.hdc(2, 2, pattern=(1, 3)) == (1, 3)
    with pytest.raises(ValueError, match="num_units"):
        dl.hdc(0, 2)


# ---------------------------------------------------------------- multiply-add counter

def test_flops_counts_a_hand_computable_model():
    from deeplab_keras.utils.flops import count
    L = keras.layers
    inp = keras.Input((9, 9, 4))
    x = L.Conv2D(8, 3, strides=2, padding="same", name="c1")(inp)  # 5x5x8, k 3x3x4
    x = L.BatchNormalization(name="bn")(x)  # not counted
    x = L.DepthwiseConv2D(3, dilation_rate=2, padding="same", name="dw")(x)  # 5x5x8, k 3x3
    x = L.Conv2D(6, 1, groups=2, name="g")(x)  # 5x5x6, k 1x1x(8/2)
    x = L.SeparableConv2D(2, 3, padding="same", name="sep")(x)  # dw 5x5x6x9 + pw 5x5x6x2
    x = dl.Resize(size=(9, 9))(x)  # not counted
    y = L.Dense(3, name="fc")(L.GlobalAveragePooling2D()(x))  # 2x3
    c = count(keras.Model(inp, y))
    expected = {"c1": 25 * 8 * 9 * 4, "dw": 25 * 8 * 9, "g": 25 * 6 * 4, "sep": 25 * 6 * (9 + 2),
                "fc": 2 * 3}
    assert c.per_layer == expected
    assert c.mult_adds == sum(expected.values())
    assert c.params == keras.Model(inp, y).count_params()
    assert c.counted_params == (8 * 36 + 8) + (8 * 9 + 8) + (6 * 4 + 6) + (6 * 9 + 6 * 2 + 2) + (2 * 3 + 3)


def test_flops_nested_model_per_call_and_dynamic_shapes():
    from deeplab_keras.utils.flops import count
    core_in = keras.Input((None, None, 2))
    core = keras.Model(core_in, keras.layers.Conv2D(3, 1, name="k")(core_in), name="core")
    inp = keras.Input((8, 8, 2))
    small = dl.Resize(scale=0.5, name="half")(inp)  # (8 - 1) * 0.5 + 1 = 4 (truncated)
    c = count(keras.Model(inp, [core(inp), core(small)]))
    assert c.mult_adds == (64 + 16) * 3 * 2 and c.per_layer == {"k": (64 + 16) * 6}
    with pytest.raises(ValueError, match="static input_shape"):
        count(core)
