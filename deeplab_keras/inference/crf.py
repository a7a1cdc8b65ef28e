"""Fully connected CRF (Kraehenbuehl & Koltun 2011) refinement of class probabilities, as in
DeepLab v1/v2, with pydensecrf2 (``pip install pydensecrf2`` or ``deeplab-keras[crf]``).

Energy: unary ``-log p`` plus two Potts pairwise terms, an appearance (bilateral) kernel
``bi_w * exp(-|p_i-p_j|^2 / (2 bi_xy_std^2) - |I_i-I_j|^2 / (2 bi_rgb_std^2))`` and a smoothness
kernel ``pos_w * exp(-|p_i-p_j|^2 / (2 pos_xy_std^2))``; mean-field inference for ``iterations``.

Default settings (:data:`DEEPLAB_CRF`): DeepLab v2 (Chen et al., TPAMI 2017, arXiv:1606.00915,
Sec. 4.1) fixes 10 mean-field iterations and the smoothness kernel at w2 = 3, sigma_gamma = 3, and
cross-validates the appearance kernel on VOC val; w1 = 4, sigma_alpha = 121, sigma_beta = 5 are the
values of DeepLab's released VOC 2012 DenseCRF scripts (DeepLab-LargeFOV), the ones most
re-implementations (e.g. kazuto1011/deeplab-pytorch) copy. Cross-validated alternatives from the
same code: ResNet-101 w1=4, sigma_alpha=67, sigma_beta=3, pos_xy_std=1; VGG-16 w1=4, 65, 3, w2=2,
pos_xy_std=2. Values were tuned for VOC at ~500 px; re-tune ``bi_xy_std`` for other image sizes.
"""
import numpy as np

#: DeepLab's published DenseCRF settings (see the module docstring).
DEEPLAB_CRF = {"iterations": 10, "bi_w": 4.0, "bi_xy_std": 121.0, "bi_rgb_std": 5.0,
               "pos_w": 3.0, "pos_xy_std": 3.0}


def check_available():
    """Import pydensecrf's ``densecrf`` module, or raise ImportError saying how to install it."""
    try:
        import pydensecrf.densecrf as dcrf
    except ImportError as err:
        raise ImportError("DenseCRF post-processing needs pydensecrf2: pip install pydensecrf2 "
                          "(or pip install 'deeplab-keras[crf]')") from err
    return dcrf


def dense_crf(probabilities, image, iterations=10, bi_w=4.0, bi_xy_std=121.0, bi_rgb_std=5.0,
              pos_w=3.0, pos_xy_std=3.0):
    """Refine ``probabilities`` ``(H, W, C)`` (softmax output, rows summing to 1) with a dense CRF
    on ``image`` ``(H, W, 3)`` uint8 RGB; returns refined probabilities ``(H, W, C)`` float32."""
    dcrf = check_available()
    probs = np.asarray(probabilities, dtype=np.float32)
    image = np.asarray(image)
    if probs.ndim != 3:
        raise ValueError(f"probabilities must be (H, W, C), got shape {probs.shape}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image must be (H, W, 3) uint8 RGB, got {image.dtype} {image.shape}")
    if image.shape[:2] != probs.shape[:2]:
        raise ValueError(f"image size {image.shape[:2]} differs from probabilities size {probs.shape[:2]}")
    if not np.all(np.isfinite(probs)) or probs.min() < 0:
        raise ValueError("probabilities must be finite and non-negative (pass softmax output, not logits)")
    if int(iterations) < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations!r}")
    h, w, c = probs.shape
    unary = -np.log(np.clip(probs, 1e-8, 1.0)).transpose(2, 0, 1).reshape(c, h * w)
    crf = dcrf.DenseCRF2D(w, h, c)
    crf.setUnaryEnergy(np.ascontiguousarray(unary, dtype=np.float32))
    crf.addPairwiseGaussian(sxy=float(pos_xy_std), compat=float(pos_w))
    crf.addPairwiseBilateral(sxy=float(bi_xy_std), srgb=float(bi_rgb_std),
                             rgbim=np.ascontiguousarray(image), compat=float(bi_w))
    q = np.asarray(crf.inference(int(iterations)), dtype=np.float32)
    return q.reshape(c, h, w).transpose(1, 2, 0)
