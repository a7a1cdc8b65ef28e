"""Multi-scale, flip and sliding-window inference against direct prediction on tiny models."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from deeplab_keras.inference.multiscale import Predictor, predict_probabilities, window_weights

C = 4


def _layers(kind, seed=0):
    init = lambda i: keras.initializers.GlorotUniform(seed=seed + i)  # noqa: E731
    if kind == "pointwise":  # no spatial context: every pixel is independent
        return [keras.layers.Rescaling(1 / 127.5, -1.0),
                keras.layers.Conv2D(8, 1, activation="relu", kernel_initializer=init(0)),
                keras.layers.Conv2D(C, 1, kernel_initializer=init(1))]
    return [keras.layers.Rescaling(1 / 127.5, -1.0),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu", kernel_initializer=init(0)),
            keras.layers.Conv2D(C, 5, padding="same", kernel_initializer=init(1),
                                bias_initializer=keras.initializers.RandomNormal(seed=seed + 2))]


def _model(kind="context", input_shape=(None, None, 3), layers=None, symmetric=False):
    layers = layers or _layers(kind)
    x = inputs = keras.Input(input_shape)
    for layer in layers:
        x = layer(x)
    model = keras.Model(inputs, x)
    if symmetric:  # kernels mirrored in width -> model(flip(x)) == flip(model(x))
        for layer in layers:
            if isinstance(layer, keras.layers.Conv2D):
                k, b = layer.get_weights()
                layer.set_weights([(k + k[:, ::-1]) / 2, b])
    return model


def _image(h, w, seed=0, n=None):
    shape = (h, w, 3) if n is None else (n, h, w, 3)
    return np.random.default_rng(seed).integers(0, 256, shape).astype(np.float32)


def _direct(model, x):
    return tf.nn.softmax(model(x[None] if x.ndim == 3 else x), -1).numpy().squeeze(0) \
        if x.ndim == 3 else tf.nn.softmax(model(x), -1).numpy()


@pytest.mark.parametrize("weighting", ["gaussian", "uniform"])
def test_one_window_covering_the_image_equals_direct(weighting):
    model, x = _model(), _image(33, 41)
    probs = predict_probabilities(model, x, sliding_window=(33, 41), weighting=weighting)
    np.testing.assert_allclose(probs, _direct(model, x), atol=1e-6)
    np.testing.assert_allclose(predict_probabilities(model, x), _direct(model, x), atol=1e-6)


@pytest.mark.parametrize("window,overlap,weighting", [((16, 20), 0.5, "gaussian"),
                                                      (17, 0.25, "uniform"), (16, 0.0, "gaussian")])
def test_tiles_stitch_exactly_on_a_pointwise_model(window, overlap, weighting):
    model, x = _model("pointwise"), _image(45, 61, n=2)
    probs = Predictor(model, sliding_window=window, overlap=overlap, weighting=weighting,
                      batch_size=3)(x)
    np.testing.assert_allclose(probs, _direct(model, x), atol=1e-5)


def test_image_smaller_than_window_is_padded_then_cropped():
    model, x = _model(), _image(20, 25)
    probs = predict_probabilities(model, x, sliding_window=32, pad_value=127.5)
    padded = np.pad(x, ((0, 12), (0, 7), (0, 0)), constant_values=127.5)
    assert probs.shape == (20, 25, C)
    np.testing.assert_allclose(probs, _direct(model, padded)[:20, :25], atol=1e-6)


def test_fixed_input_model_is_tiled_with_its_input_size():
    layers = _layers("pointwise")
    fixed, dynamic = _model(input_shape=(24, 24, 3), layers=layers), _model(layers=layers)
    x = _image(40, 50)
    np.testing.assert_allclose(predict_probabilities(fixed, x), _direct(dynamic, x), atol=1e-5)
    with pytest.raises(ValueError, match="fixed at"):
        Predictor(fixed, sliding_window=32)


def test_flip_on_a_mirror_symmetric_model_changes_nothing():
    x = _image(29, 37)
    sym = _model(symmetric=True)
    np.testing.assert_allclose(predict_probabilities(sym, x, flip=True), _direct(sym, x), atol=1e-5)
    model = _model()  # not symmetric: flip averages the direct and the mirrored prediction
    expected = (_direct(model, x) + _direct(model, x[:, ::-1])[:, ::-1]) / 2
    flipped = predict_probabilities(model, x, flip=True)
    np.testing.assert_allclose(flipped, expected, atol=1e-5)
    assert not np.allclose(flipped, _direct(model, x), atol=1e-3)


def test_multiscale_averages_probabilities_at_the_input_size():
    model, x = _model(), _image(33, 47)
    scales = (0.5, 1.0, 1.75)
    expected = 0
    for s in scales:
        xs = tf.image.resize(x[None], (round(33 * s), round(47 * s)), "bilinear")
        p = tf.nn.softmax(model(xs), -1)
        expected += tf.image.resize(p, (33, 47), "bilinear").numpy()[0] / len(scales)
    probs = predict_probabilities(model, x, scales=scales, flip=False)
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    both = predict_probabilities(model, x, scales=scales, flip=True, sliding_window=24)
    assert both.shape == (33, 47, C) and np.allclose(both.sum(-1), 1, atol=1e-5)


def test_scales_are_of_the_working_size_when_one_is_given(monkeypatch):
    """input_size: scale 1 is the model's working size (predict's input contract), not the
    image's; the probabilities still come back at the image's size."""
    from deeplab_keras.inference import multiscale as module

    model, x = _model(), _image(30, 40)
    seen = []
    monkeypatch.setattr(module, "_model_function", lambda m: lambda a: (
        seen.append(tuple(a.shape[1:3])), m(a))[1])
    spy = model
    probs = Predictor(spy, scales=(1.0, 0.5), input_size=(45, 60), semantics="half_pixel",
                      from_logits=True)(x)
    assert probs.shape == (30, 40, C) and set(seen) == {(45, 60), (22, 30)}
    xs = tf.image.resize(x[None], (45, 60), "bilinear")  # half_pixel == TF2 bilinear
    # one pass resizes the logits, as predict does (DeepLab's predict_labels): the same classes
    one = tf.nn.softmax(tf.image.resize(model(xs), (30, 40), "bilinear"), -1).numpy()[0]
    single = Predictor(model, input_size=(45, 60), semantics="half_pixel", from_logits=True)(x)
    np.testing.assert_allclose(single, one, atol=1e-5)
    from deeplab_keras.inference import predict_classes
    assert (single.argmax(-1) == predict_classes(model, x, (45, 60), "half_pixel")).all()
    # align_corners sizes follow DeepLab's scale_dimension of the working size
    seen.clear()
    Predictor(spy, scales=(1.5,), input_size=(45, 61), semantics="align_corners", from_logits=True)(x)
    assert seen == [(67, 91)]
    # without input_size nothing changes: scale 1 is the image itself
    seen.clear()
    Predictor(spy, scales=(1.0,), from_logits=True)(x)
    assert seen == [(30, 40)]
    for bad in ((0, 10), (10,), "big"):
        with pytest.raises(ValueError, match="input_size"):
            Predictor(model, input_size=bad)


def test_deeplab_scales_keep_the_working_size_on_the_output_stride_grid(monkeypatch):
    """A DeepLab model's scaled sizes keep scale 1's remainder modulo its output stride (CamVid:
    360x480 at 1.25 runs at 456x608, not 449x599, which costs mIoU); DeepLab's 513 at 0.75 is
    still 385 (scale_dimension)."""
    import deeplab_keras as dk
    from deeplab_keras.inference import multiscale as module
    from deeplab_keras.layers.resize import aligned_scaled_size

    assert [aligned_scaled_size(513, s, 16) for s in (0.5, 0.75, 1.25, 1.75)] == [257, 385, 641, 897]
    assert (aligned_scaled_size(360, 1.25, 16), aligned_scaled_size(480, 1.25, 16)) == (456, 608)
    assert aligned_scaled_size(360, 0.01, 16) == 24 and aligned_scaled_size(7, 2.0, 1) == 14
    with pytest.raises(ValueError, match="stride"):
        aligned_scaled_size(360, 1.5, 0)
    model = dk.DeepLabV3Plus(num_classes=3, backbone="mobilenet_v2", alpha=0.35, atrous_rates=[],
                             output_stride=16, align_corners=True)
    assert model.output_stride == 16
    seen = []
    monkeypatch.setattr(module, "_model_function", lambda m: lambda a: (
        seen.append(tuple(a.shape[1:3])), m(a))[1])
    Predictor(model, scales=(1.0, 1.25, 0.5), input_size=(360, 480))(_image(30, 40))
    assert seen == [(360, 480), (456, 608), (184, 240)]


def test_crf_option_and_bad_settings():
    model, x = _model(), _image(24, 30)
    probs = predict_probabilities(model, x, crf={"iterations": 2})
    assert probs.shape == (24, 30, C) and np.allclose(probs.sum(-1), 1, atol=1e-4)
    with pytest.raises(ValueError, match="unknown CRF settings"):
        Predictor(model, crf={"iters": 3})
    with pytest.raises(ValueError, match="overlap"):
        Predictor(model, overlap=1.0)
    with pytest.raises(ValueError, match="scales"):
        Predictor(model, scales=(0.0,))
    with pytest.raises(ValueError, match="weighting"):
        window_weights((8, 8), "triangle")
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        predict_probabilities(model, x[..., :2])
    small = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(C, 2, strides=2)])
    with pytest.raises(ValueError, match="not \\(N, H, W, C\\) at the input size"):
        predict_probabilities(small, x)
