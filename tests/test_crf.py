"""DenseCRF refinement (pydensecrf2) with DeepLab's settings."""
import os
import sys

import numpy as np
import pytest

from deeplab_keras.evaluation import crf as crf_module
from deeplab_keras.evaluation.crf import DEEPLAB_CRF, dense_crf


def _scene(seed=0, h=60, w=80):
    rng = np.random.default_rng(seed)
    mask = np.zeros((h, w), np.int64)
    mask[15:45, 20:55] = 1
    mask[:, 65:] = 2
    colours = np.array([[30, 60, 200], [220, 40, 40], [40, 200, 60]])
    image = np.clip(colours[mask] + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
    noisy = 0.3 * np.eye(3)[mask] + 0.7 * rng.dirichlet([1, 1, 1], (h, w))
    return image, mask, noisy.astype(np.float32)


def test_deeplab_settings_are_the_default():
    assert DEEPLAB_CRF == {"iterations": 10, "bi_w": 4.0, "bi_xy_std": 121.0, "bi_rgb_std": 5.0,
                           "pos_w": 3.0, "pos_xy_std": 3.0}


def test_crf_cleans_noisy_probabilities():
    image, mask, noisy = _scene()
    before = np.mean(noisy.argmax(-1) == mask)
    refined = dense_crf(noisy, image)
    after = np.mean(refined.argmax(-1) == mask)
    assert refined.shape == noisy.shape and refined.dtype == np.float32
    np.testing.assert_allclose(refined.sum(-1), 1.0, atol=1e-4)
    assert before < 0.85 and after > 0.97, (before, after)


def test_bad_inputs_are_named():
    image, _, noisy = _scene()
    with pytest.raises(ValueError, match="uint8"):
        dense_crf(noisy, image.astype(np.float32))
    with pytest.raises(ValueError, match="differs"):
        dense_crf(noisy[:10], image)
    with pytest.raises(ValueError, match="not logits"):
        dense_crf(np.log(noisy), image)


def test_missing_pydensecrf_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pydensecrf.densecrf", None)
    monkeypatch.setitem(sys.modules, "pydensecrf", None)
    with pytest.raises(ImportError, match="pip install pydensecrf2"):
        crf_module.check_available()


REFERENCE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference")


@pytest.mark.skipif(not os.path.isfile(os.path.join(REFERENCE, "deeplabv3_mnv2_pascal_quant.tflite")),
                    reason="../shared/reference (Google's DeepLab TFLite + bird test image) is not present")
def test_crf_sharpens_googles_voc_model_on_the_bird_image():
    """Real weights, real image, Google's golden mask: DeepLab's CRF settings raise bird IoU."""
    from PIL import Image

    from deeplab_keras.evaluation import evaluate
    from deeplab_keras.importers.tflite import from_tflite

    model = from_tflite(os.path.join(REFERENCE, "deeplabv3_mnv2_pascal_quant.tflite"))
    image = np.array(Image.open(os.path.join(REFERENCE, "bird_segmentation.bmp")).convert("RGB"))
    mask = np.array(Image.open(os.path.join(REFERENCE, "bird_segmentation_mask.bmp"))).astype(np.int64)
    plain = evaluate(model, [(image, mask)], dataset="voc", input_size="image")
    refined = evaluate(model, [(image, mask)], dataset="voc", crf=True, input_size="image")
    assert plain["per_class"]["bird"] > 0.85
    assert refined["per_class"]["bird"] > plain["per_class"]["bird"] + 0.01
    assert refined["pixel_accuracy"] > plain["pixel_accuracy"]
