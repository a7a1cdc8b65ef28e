"""Google's segmentation-model test metric (libcoral ``segmentation_models_test``): the image is
padded/cropped at the top-left to the model's input size, mask value 255 (VOC ignore) becomes 0,
and the score is ``common / (2 * N - common)`` with ``common`` the pixels where prediction
equals the mask and N the number of pixels."""
import numpy as np


def pad_crop(array, size, fill=0):
    """Top-left pad (with ``fill``) or crop ``array`` (H, W[, C]) to ``size`` = (h, w)."""
    h, w = size
    out = np.full((h, w) + array.shape[2:], fill, dtype=array.dtype)
    ch, cw = min(h, array.shape[0]), min(w, array.shape[1])
    out[:ch, :cw] = array[:ch, :cw]
    return out


def load_pair(image_path, mask_path, size=None):
    """(image float32 0-255 (H, W, 3), mask int (H, W) with 255 -> 0), padded/cropped to ``size``."""
    from PIL import Image
    image = np.asarray(Image.open(image_path).convert("RGB"), dtype=np.float32)
    mask = np.asarray(Image.open(mask_path)).astype(np.int64)
    if mask.ndim == 3:
        mask = mask[..., 0]
    mask = np.where(mask == 255, 0, mask)
    if size is not None:
        image, mask = pad_crop(image, size), pad_crop(mask, size)
    return image, mask


def agreement(pred, mask):
    pred = np.asarray(pred).reshape(mask.shape)
    common = int((pred == mask).sum())
    return common / (2 * mask.size - common)
