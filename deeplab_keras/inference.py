"""Basic inference: read an image, run a model at its preset's input size, get the class map at
the image's size, and draw a colour overlay with the preset's palette."""
import os

import numpy as np

from deeplab_keras.utils.io import atomic_path


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


def _resize(x, size, align_corners=True, method="bilinear"):
    import tensorflow as tf

    if method == "bilinear":
        return tf.compat.v1.image.resize(x, size, method=tf.image.ResizeMethod.BILINEAR,
                                         align_corners=align_corners)
    return tf.image.resize(x, size, method=method)


def predict_logits(model, image, input_size=None, align_corners=True):
    """Logits (H, W, C) at the image's size. The image is resized to ``input_size`` (or to the
    model's fixed input size), run through the model (which takes 0-255 RGB), and the logits are
    resized back bilinearly."""
    import tensorflow as tf

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {image.shape}")
    height, width = image.shape[:2]
    fixed = tuple(model.input_shape[1:3])
    size = fixed if None not in fixed else (tuple(input_size) if input_size else (height, width))
    x = tf.convert_to_tensor(image[None].astype("float32"))
    if size != (height, width):
        x = _resize(x, size, align_corners)
    logits = model(x, training=False)
    if isinstance(logits, (list, tuple)):
        logits = logits[0]
    logits = tf.cast(logits, tf.float32)
    if tuple(logits.shape[1:3]) != (height, width):
        logits = _resize(logits, (height, width), align_corners)
    return np.asarray(logits[0])


def predict_classes(model, image, input_size=None, align_corners=True):
    """Class index map (H, W) uint8 (int32 beyond 256 classes) at the image's size."""
    logits = predict_logits(model, image, input_size, align_corners)
    classes = np.argmax(logits, axis=-1)
    return classes.astype(np.uint8 if logits.shape[-1] <= 256 else np.int32)


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


def _contract(model, input_size, align_corners):
    prep = getattr(model, "preprocessing", None) or {}
    size = input_size or prep.get("input_size")
    if align_corners is None:
        align_corners = prep.get("resize", "align_corners") == "align_corners"
    return (tuple(size) if size else None), align_corners


def segment(model, image, input_size=None, align_corners=None):
    """Class map(s) at the image's own size.

    ``image``: one image (a path, a PIL image, an (H, W, 3) uint8 / 0-255 float array) -> an
    (H, W) uint8 class map; a batch (a list of images, or an (N, H, W, 3) array) -> a list of
    maps (images may differ in size). The model runs at ``input_size``, else its preset's
    ``preprocessing.input_size`` (a ``.keras`` file or preset model records it), else the image's
    size; resize semantics from the same contract.

        import deeplab_keras as dk
        model = dk.from_preset("deeplabv3plus_mobilenetv2_camvid")
        classes = dk.segment(model, "street.png")
        print(dict(zip(model.labels, np.bincount(classes.ravel(), minlength=11))))
    """
    size, align = _contract(model, input_size, align_corners)
    if isinstance(image, (list, tuple)) or (hasattr(image, "ndim") and image.ndim == 4):
        return [predict_classes(model, as_rgb8(im), size, align) for im in image]
    return predict_classes(model, as_rgb8(image), size, align)


def default_palette(n):
    """PASCAL VOC's colour map (bit-interleaved), for models without a palette."""
    palette = np.zeros((n, 3), np.uint8)
    for i in range(n):
        c = i
        for j in range(8):
            palette[i] |= np.array([(c >> k) & 1 for k in range(3)], np.uint8) << (7 - j)
            c >>= 3
    return palette


def colorize(classes, palette):
    palette = np.asarray(palette, np.uint8)
    if classes.max(initial=0) >= len(palette):
        palette = np.concatenate([palette, default_palette(int(classes.max()) + 1)[len(palette):]])
    return palette[classes]


def overlay(image, classes, palette, alpha=0.5):
    """Blend the colour-coded class map over the image."""
    colours = colorize(classes, palette).astype(np.float32)
    return (image.astype(np.float32) * (1 - alpha) + colours * alpha).round().astype(np.uint8)


def save_png(array, path):
    """Write a PNG atomically (temp file + os.replace)."""
    from PIL import Image

    array = np.asarray(array)
    mode = "I" if array.dtype == np.int32 else None
    with atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(array, mode=mode).save(tmp)
    return path


def segment_file(model, image_path, output_dir, palette=None, input_size=None,
                 align_corners=True, labels=None, stem=None):
    """Segment one image file; writes ``<stem>_classes.png`` (class indices, image size) and
    ``<stem>_overlay.png`` (``stem``: default the file name without extension; it may hold
    sub-folders). Returns a dict with the paths and per-class pixel fractions."""
    image = load_image(image_path)
    classes = predict_classes(model, image, input_size, align_corners)
    if palette is None:
        palette = default_palette(int(model.output_shape[-1]))
    stem = stem or os.path.splitext(os.path.basename(image_path))[0]
    os.makedirs(os.path.dirname(os.path.join(output_dir, stem)) or output_dir, exist_ok=True)
    class_path = save_png(classes, os.path.join(output_dir, f"{stem}_classes.png"))
    overlay_path = save_png(overlay(image, classes, palette),
                            os.path.join(output_dir, f"{stem}_overlay.png"))
    ids, counts = np.unique(classes, return_counts=True)
    name = (lambda i: labels[i] if labels and i < len(labels) else str(i))
    fractions = {name(int(i)): float(c) / classes.size for i, c in zip(ids, counts)}
    return {"image": image_path, "classes": class_path, "overlay": overlay_path,
            "fractions": fractions, "size": classes.shape}


# --- Batches: folders, globs, bad files (issue 11) ---------------------------------------------

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                    ".pgm")


def expand_inputs(inputs):
    """``(files, problems)``: image files from files, folders (searched recursively for
    ``IMAGE_EXTENSIONS``) and glob patterns (``**`` allowed), each file once; ``problems`` is a
    list of ``(argument, message)`` for arguments that name nothing usable."""
    import glob

    files, problems, seen = [], [], set()

    def add(path):
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            files.append(path)

    for arg in inputs:
        arg = os.fspath(arg)
        if os.path.isdir(arg):
            found = sorted(os.path.join(d, f) for d, _, names in os.walk(arg) for f in names
                           if f.lower().endswith(IMAGE_EXTENSIONS))
            if not found:
                problems.append((arg, f"folder {arg} holds no image files "
                                      f"({', '.join(IMAGE_EXTENSIONS)})"))
            for f in found:
                add(f)
        elif os.path.exists(arg):
            add(arg)
        elif glob.has_magic(arg):
            found = sorted(f for f in glob.glob(arg, recursive=True) if os.path.isfile(f))
            if not found:
                problems.append((arg, f"no file matches {arg}"))
            for f in found:
                add(f)
        else:
            problems.append((arg, f"image not found: {arg}"))
    return files, problems


def output_stems(files):
    """One output stem per file: its path below the files' common folder, without the
    extension, so same-named files from different folders never collide (``a/x.png`` ->
    ``a/x``, ``b/x.png`` -> ``b/x``); ``x.png`` beside ``x.jpg`` become ``x_png`` / ``x_jpg``."""
    if not files:
        return []
    absolute = [os.path.abspath(f) for f in files]
    root = os.path.commonpath([os.path.dirname(a) for a in absolute])
    stems = [os.path.splitext(os.path.relpath(a, root))[0] for a in absolute]
    clash = {s for s in stems if stems.count(s) > 1}
    out, used = [], set()
    for a, s in zip(absolute, stems):
        if s in clash:
            s = f"{s}_{os.path.splitext(a)[1].lstrip('.').lower() or 'noext'}"
        base, n = s, 1
        while s.lower() in used:  # x.PNG and x.png; case-insensitive file systems
            n += 1
            s = f"{base}_{n}"
        used.add(s.lower())
        out.append(s)
    return out


def segment_files(model, inputs, output_dir, palette=None, input_size=None, align_corners=True,
                  labels=None, on_result=None):
    """Segment every image of ``inputs`` (files, folders, globs) into ``output_dir``, keeping
    their relative folders (see :func:`output_stems`). A file that fails does not stop the
    others. Returns ``(results, failures)``, failures a list of ``(path, message)``."""
    files, failures = expand_inputs(inputs)
    results = []
    for path, stem in zip(files, output_stems(files)):
        try:
            result = segment_file(model, path, output_dir, palette, input_size, align_corners,
                                  labels, stem=stem)
        except Exception as err:  # one bad file must not lose the rest of the batch
            failures.append((path, str(err) or type(err).__name__))
            continue
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results, failures


def predict_batch(model, inputs, output_dir, palette=None, input_size=None, align_corners=True,
                  labels=None):
    """The ``predict`` command's loop: :func:`segment_files` printing one line per image and,
    at the end, every failure on stderr. Returns the exit status (1 if any input failed)."""
    import sys

    def show(result):
        top = sorted(result["fractions"].items(), key=lambda kv: -kv[1])[:4]
        print(f"{result['image']}: {result['classes']} {result['overlay']} "
              + ", ".join(f"{k} {v:.0%}" for k, v in top))

    results, failures = segment_files(model, inputs, output_dir, palette, input_size,
                                      align_corners, labels, on_result=show)
    if failures:
        print(f"deeplab-keras predict: {len(failures)} input(s) failed, "
              f"{len(results)} image(s) segmented:", file=sys.stderr)
        for path, message in failures:
            print(f"  {path}: {message}", file=sys.stderr)
        return 1
    return 0
