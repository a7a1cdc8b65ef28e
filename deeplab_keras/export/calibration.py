"""Images for calibration (int8), QAT fine-tuning and parity checks: a folder of image files,
a ``tf.data`` pipeline, or (when nothing is given) deterministic synthetic images."""
import os

import numpy as np

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def list_images(folder):
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"calibration folder not found: {folder}")
    files = sorted(os.path.join(folder, f) for f in os.listdir(folder)
                   if f.lower().endswith(IMAGE_EXTENSIONS))
    if not files:
        raise ValueError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in {folder}")
    return files


def load_image(path, size):
    """RGB float32 0-255 of shape (H, W, 3), resized bilinearly to ``size`` = (h, w)."""
    from PIL import Image

    from deeplab_keras.inference import load_image as read_rgb8  # 16-bit, modes, bombs (issue 11)
    im = Image.fromarray(read_rgb8(path))
    if im.size != (size[1], size[0]):
        im = im.resize((size[1], size[0]), Image.BILINEAR)
    return np.asarray(im, dtype=np.float32)


def synthetic_images(size, count, seed=0):
    """Deterministic smooth colour images (blobs + gradients), float32 0-255."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = []
    for _ in range(count):
        img = np.zeros((h, w, 3), np.float32)
        for c in range(3):
            fy, fx, ph = rng.uniform(0.5, 3.0), rng.uniform(0.5, 3.0), rng.uniform(0, 6.3)
            img[..., c] = 127.5 + 127.5 * np.sin(fy * yy / h * 6.28 + fx * xx / w * 6.28 + ph)
        for _ in range(4):  # a few solid blobs: sharp class-like regions
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0.1, 0.35) * min(h, w)
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
            img[mask] = rng.uniform(0, 255, size=3)
        out.append(np.clip(np.round(img), 0, 255))
    return out


def from_dataset(dataset, size, count):
    """Up to ``count`` images from a tf.data pipeline of images or (image, label) [batches]."""
    import tensorflow as tf
    out = []
    for item in dataset:
        images = item[0] if isinstance(item, (tuple, list)) else item
        images = tf.convert_to_tensor(images)
        if images.shape.rank == 3:
            images = images[None]
        images = tf.image.resize(tf.cast(images, tf.float32), size, method="bilinear")
        for img in np.clip(np.round(images.numpy()), 0, 255):
            out.append(img.astype(np.float32))
            if len(out) >= count:
                return out
    if not out:
        raise ValueError("the calibration dataset yielded no images")
    return out


def get_images(source, size, count, seed=0):
    """``(images, description)``: ``source`` is a folder, a list of files, a tf.data.Dataset,
    an array (N, H, W, 3), or None for synthetic images."""
    if count < 1:
        raise ValueError(f"number of images must be >= 1, got {count}")
    if source is None:
        return synthetic_images(size, count, seed), f"{count} deterministic synthetic images (seed {seed})"
    if isinstance(source, (str, os.PathLike)):
        files = list_images(os.fspath(source))[:count]
        return [load_image(f, size) for f in files], f"{len(files)} images from {os.fspath(source)}"
    if isinstance(source, np.ndarray):
        if source.ndim != 4 or source.shape[-1] != 3:
            raise ValueError(f"image array must be (N, H, W, 3), got {source.shape}")
        return list(from_dataset([source], size, count)), f"{min(count, len(source))} images from an array"
    if isinstance(source, (list, tuple)) and source and isinstance(source[0], (str, os.PathLike)):
        files = list(source)[:count]
        return [load_image(f, size) for f in files], f"{len(files)} listed image files"
    return from_dataset(source, size, count), f"{count} images from a tf.data pipeline (at most)"


def held_out(source, size, num_calibration, num_parity, calib):
    """``(images, description)`` for the parity gate: images of ``source`` after the
    ``num_calibration`` used for calibration, so the gate's agreement is not measured on the
    images the quantizer saw. Falls back to the calibration images (and says so) when the source
    has no others (a tf.data pipeline, an array, too few files)."""
    files = None
    if isinstance(source, (str, os.PathLike)) and os.path.isdir(source):
        files = list_images(os.fspath(source))
    elif isinstance(source, (list, tuple)) and source and isinstance(source[0], (str, os.PathLike)):
        files = list(source)
    if files is not None and len(files) > num_calibration:
        rest = files[num_calibration:num_calibration + num_parity]
        return ([load_image(f, size) for f in rest],
                f"{len(rest)} held-out images (not used for calibration) from {os.fspath(source) if not isinstance(source, (list, tuple)) else 'the listed files'}")
    n = min(num_parity, len(calib))
    return calib[:n], (f"the first {n} calibration images (the calibration source has no other "
                       "images; give parity images for a held-out check)")


def representative_dataset(images):
    """Converter calibration generator. Each sample gets one pixel at 0 and one at 255 so the
    input range is exactly [0, 255]: uint8 I/O then means raw pixels (scale 1, zero point 0)."""
    def gen():
        for img in images:
            x = np.array(img, dtype=np.float32, copy=True)
            x[0, 0, :] = 0.0
            x[-1, -1, :] = 255.0
            yield [x[None]]
    return gen
