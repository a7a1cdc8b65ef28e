"""Image decoding: files, PIL images and arrays to (H, W, 3) uint8 RGB (16-bit, palette,
alpha and CMYK modes converted; animations and decompression bombs refused)."""
import os

import numpy as np


def load_image(path):
    """RGB uint8 array (H, W, 3) of an image file; ValueError naming the file if unreadable.

    16-bit images (PIL modes ``I;16*``, and ``I`` holding 0..65535) are scaled to 8 bits,
    palette / grayscale / CMYK / alpha modes converted to RGB (alpha dropped); 32-bit float
    (``F``) and other modes without a known range, multi-frame files (animations, multi-page
    TIFFs) and images over PIL's decompression-bomb limit are refused with a message."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a folder, not an image (pass the folder itself to "
                                "predict, or the image files in it)")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"image not found: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                frames = getattr(im, "n_frames", 1)
                if frames > 1:
                    raise ValueError(f"{frames} frames (animation or multi-page file); save the "
                                     "frame to segment as a single image")
                im.load()
                return to_rgb8(im)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ValueError(f"cannot read image {path}: refused as a possible decompression bomb "
                         f"({err}). If the image is genuine, raise PIL.Image.MAX_IMAGE_PIXELS "
                         "or downscale it") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"cannot read image {path}: {err}") from err


#: PIL modes converted by ``Image.convert("RGB")`` without loss of range
_RGB_CONVERTIBLE = ("1", "L", "P", "RGB", "RGBA", "RGBa", "RGBX", "LA", "La", "PA", "CMYK", "YCbCr")


def to_rgb8(im):
    """(H, W, 3) uint8 RGB array of a loaded PIL image (see :func:`load_image`)."""
    mode = im.mode
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(im)
        if values.dtype.kind == "f" or (values.size and (values.min() < 0 or values.max() > 65535)):
            raise ValueError(f"PIL mode {mode} with values {values.min()}..{values.max()} outside "
                             "0..65535: cannot tell its range; convert it to 8-bit RGB first")
        if values.dtype.itemsize == 1:  # some Pillow versions already give 8-bit data
            gray = values.astype(np.uint8)
        else:
            gray = np.round(values.astype(np.float64) * (255.0 / 65535.0)).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if mode in _RGB_CONVERTIBLE:
        return np.asarray(im.convert("RGB"))
    raise ValueError(f"PIL mode {mode} is not supported (no known 8-bit scaling); convert the "
                     "image to 8-bit RGB first (supported: 16-bit and 8-bit grayscale, palette, "
                     "RGB, RGBA, LA, CMYK, YCbCr)")


def as_rgb8(image):
    """(H, W, 3) uint8 RGB array of one image: a file path, a PIL image, or an array (H, W, 3)
    / (H, W, 4) (alpha dropped) / (H, W) grayscale, uint8 or float in 0-255 (the range the
    models take). A float image in 0-1 is refused (scaling it silently would guess)."""
    if isinstance(image, (str, bytes, os.PathLike)):
        return load_image(image)
    if hasattr(image, "mode") and hasattr(image, "convert"):  # a PIL image
        return to_rgb8(image)
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] not in (3, 4):
        raise ValueError(f"expected one image (H, W, 3) RGB, (H, W, 4) RGBA or (H, W) gray, got "
                         f"shape {array.shape}; for a batch pass (N, H, W, 3) or a list of images")
    array = array[..., :3]
    if array.dtype == np.uint8:
        return array
    if array.dtype.kind not in "fiu":
        raise ValueError(f"image dtype {array.dtype} is not numeric")
    if array.size and (np.nanmin(array) < 0 or np.nanmax(array) > 255 or np.isnan(array).any()):
        raise ValueError(f"image values {np.nanmin(array)}..{np.nanmax(array)} are outside 0-255 "
                         "(or NaN): give RGB values in 0-255")
    if array.dtype.kind == "f" and array.size and 0 < array.max() <= 1.0:
        raise ValueError("float image with values in 0-1: the models take 0-255 RGB; pass "
                         "image * 255 (or the uint8 image)")
    return np.round(array).astype(np.uint8)
