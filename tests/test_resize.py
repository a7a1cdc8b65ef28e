"""One resize (issue 18.2): the keras.ops implementation equals TensorFlow's kernels for every
semantics and method; dk.segment / predict / evaluate resample with the model's own semantics."""
import numpy as np
import pytest
import tensorflow as tf

import deeplab_keras as dk
from deeplab_keras.evaluation import Predictor
from deeplab_keras.inference import predict_classes, predict_logits
from deeplab_keras.layers import resize as R

SIZES = [(1, 1), (2, 3), (7, 9), (13, 17), (33, 33), (4, 65)]


@pytest.mark.parametrize("semantics", R.SEMANTICS)
@pytest.mark.parametrize("method", R.METHODS)
def test_keras_ops_path_equals_tensorflow_kernels(semantics, method):
    rng = np.random.default_rng(0)
    for src in SIZES:
        x = rng.normal(size=(2,) + src + (3,)).astype("float32")
        for dst in SIZES:
            want = R.resize_tf(x, dst, semantics, method).numpy()
            got = np.asarray(R.resize_ops(tf.constant(x), dst, semantics, method))
            assert got.shape == want.shape == (2,) + dst + (3,)
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-6, err_msg=f"{src}->{dst}")


def test_semantics_match_their_references_and_differ():
    x = np.random.default_rng(1).normal(size=(1, 7, 9, 2)).astype("float32")
    refs = {"align_corners": tf.compat.v1.image.resize_bilinear(x, (13, 17), align_corners=True),
            "half_pixel": tf.image.resize(x, (13, 17), method="bilinear"),
            "asymmetric": tf.compat.v1.image.resize_bilinear(x, (13, 17), align_corners=False)}
    outs = {s: np.asarray(R.resize_ops(tf.constant(x), (13, 17), s)) for s in R.SEMANTICS}
    for s, ref in refs.items():
        np.testing.assert_allclose(outs[s], ref.numpy(), atol=1e-6)
    assert np.abs(outs["half_pixel"] - outs["align_corners"]).max() > 0.05
    assert np.abs(outs["half_pixel"] - outs["asymmetric"]).max() > 0.05
    nearest = tf.image.resize(x, (13, 17), method="nearest").numpy()
    np.testing.assert_array_equal(R.resize(x, (13, 17), "half_pixel", "nearest"), nearest)


def test_helper_takes_images_and_batches_and_refuses_bad_input():
    img = np.random.default_rng(2).uniform(0, 255, (7, 9, 3)).astype("float32")
    out = dk.resize(img, (13, 17), "align_corners")
    assert isinstance(out, np.ndarray) and out.shape == (13, 17, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, dk.resize(img[None], (13, 17), "align_corners")[0])
    assert dk.resize(img, (7, 9)) is img  # same size: untouched
    labels = np.arange(63, dtype=np.uint8).reshape(7, 9, 1)
    assert dk.resize(labels, (14, 18), method="nearest").dtype == np.uint8
    for kwargs, match in [({"semantics": "legacy"}, "semantics must be one of"),
                          ({"method": "cubic"}, "method must be one of"),
                          ({"size": (0, 3)}, "positive")]:
        with pytest.raises(ValueError, match=match):
            dk.resize(img, **{"size": (5, 5), **kwargs})
    with pytest.raises(ValueError, match="takes"):
        dk.resize(img[0], (5, 5))


def _blocks(n, seed, size=(41, 49)):
    """Images of 4 x 4 flat colour blocks: spatial structure the tiny models' features follow."""
    grid = np.random.default_rng(seed).uniform(0, 255, (n, 4, 4, 3))
    rows = np.arange(size[0]) * 4 // size[0]
    cols = np.arange(size[1]) * 4 // size[1]
    return grid[:, rows][:, :, cols].astype(np.uint8)


def _tiny(align_corners, activation=None):
    """A small v1 (VGG-16, 8 fc filters): no BatchNorm, so its random-weight logits follow the
    image and a resampling difference shows in the class maps (a random MobileNet's do not)."""
    import keras
    keras.utils.set_random_seed(4)
    return dk.DeepLabV1(num_classes=3, fc_filters=8, align_corners=align_corners,
                        activation=activation)


@pytest.mark.parametrize("align_corners", [False, True])
def test_segment_at_another_size_uses_the_models_own_resize(align_corners):
    model = _tiny(align_corners)
    semantics = dk.resize_semantics(model)
    assert semantics == ("align_corners" if align_corners else "half_pixel")
    assert model.resize_semantics == semantics and model.align_corners is align_corners
    image = _blocks(1, seed=5, size=(37, 45))[0].astype("float32")
    run = (49, 57)
    # expected through the model's own Resize layer (its config), not the helper
    layer = lambda size: R.Resize(size=size, align_corners=align_corners)  # noqa: E731
    x = layer(run)(image[None])
    want_logits = np.asarray(layer((37, 45))(model(x, training=False)))[0]
    scale = float(np.abs(want_logits).max())
    assert scale > 0
    np.testing.assert_allclose(predict_logits(model, image, run), want_logits, atol=1e-4 * scale)
    np.testing.assert_array_equal(dk.segment(model, image.astype(np.uint8), input_size=run),
                                  predict_classes(model, image.astype(np.uint8), run))
    other = "half_pixel" if align_corners else "align_corners"
    assert np.abs(predict_logits(model, image, run, other) - want_logits).max() > 2e-3 * scale


def test_resize_semantics_has_one_source_the_upsampling_layer(tmp_path):
    import keras
    model = dk.DeepLabV3(num_classes=3, backbone="mobilenet_v2", alpha=0.35, output_stride=16,
                         atrous_rates=[], align_corners="asymmetric",
                         preprocessing={"input_size": [33, 33]})
    assert dk.resize_semantics(model) == "asymmetric" and not model.align_corners
    path = tmp_path / "m.keras"
    model.save(path)
    assert dk.resize_semantics(keras.saving.load_model(path)) == "asymmetric"
    plain = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(2, 1)])
    assert dk.resize_semantics(plain) == "half_pixel"  # Keras' own convention, documented


@pytest.mark.parametrize("align_corners", [False, True])
def test_predict_and_evaluate_give_the_same_class_maps(align_corners):
    """evaluate at scale s and predict at the size scale s gives resample the same way."""
    model = _tiny(align_corners, activation="softmax")
    images = _blocks(3, seed=6)
    scale = 0.75
    predictor = Predictor(model, scales=(scale,))
    for image in images:
        h, w = image.shape[:2]
        # a DeepLab model's scaled size keeps the image's remainder modulo its output stride
        size = tuple(R.aligned_scaled_size(n, scale, model.output_stride) for n in (h, w))
        assert predictor.scaled((h, w), scale) == size
        evaluated = predictor(image.astype(np.float32)).argmax(-1)
        np.testing.assert_array_equal(predict_classes(model, image, size), evaluated)


def test_tiny_models_class_maps_vary_so_resampling_shows():
    model = _tiny(False)
    image = _blocks(1, seed=6)[0]
    classes = predict_classes(model, image, (31, 37))
    assert (np.bincount(classes.ravel(), minlength=3) > 0).sum() >= 2
    assert (classes != predict_classes(model, image, (31, 37), "asymmetric")).any()
