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


def input_contract(model, input_size=None, align_corners=None):
    """``(size to run at or None, align_corners)``: ``input_size`` (a flag), else the model's
    own contract (its preset's ``preprocessing``); resize semantics from it too (align_corners
    when unknown) unless ``align_corners`` is given."""
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
    size, align = input_contract(model, input_size, align_corners)
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


#: class names drawn as "no colour" in overlays (the photo shows through)
BACKGROUND_NAMES = ("background", "unlabeled", "unlabelled", "void", "other", "none")


def background_classes(labels=None, palette=None):
    """Indices an overlay leaves unblended: classes named like background (VOC's ``background``,
    ``unlabeled``, ...) and classes coloured black (blending black only darkens the photo)."""
    found = set()
    for i, name in enumerate(labels or []):
        if str(name).strip().lower() in BACKGROUND_NAMES:
            found.add(i)
    for i, colour in enumerate(palette if palette is not None else []):
        if tuple(int(v) for v in colour) == (0, 0, 0):
            found.add(i)
    return sorted(found)


def overlay(image, classes, palette=None, alpha=0.5, labels=None, legend=False, background=None):
    """The colour-coded class map blended over the image (same size).

    ``palette``: colours per class (default: VOC's colour map); ``background``: class indices
    left unblended (default :func:`background_classes`: background-named or black classes, so
    VOC's background does not darken the photo); ``legend=True`` draws the names and colours of
    the classes present (``labels``, default ``class_i``), largest first, in a corner.

        vis = dk.overlay(image, dk.segment(model, image), model.palette, labels=model.labels,
                         legend=True)
    """
    image = as_rgb8(image)
    classes = np.asarray(classes)
    if classes.shape != image.shape[:2]:
        raise ValueError(f"class map {classes.shape} and image {image.shape[:2]} differ in size; "
                         "dk.segment returns maps at the image's size")
    if palette is None:
        palette = default_palette(max(int(classes.max(initial=0)) + 1, len(labels or [])))
    colours = colorize(classes, palette).astype(np.float32)
    if background is None:
        background = background_classes(labels, palette)
    weight = np.full(classes.shape + (1,), float(alpha), np.float32)
    if len(background):
        weight[np.isin(classes, list(background))] = 0.0
    out = (image.astype(np.float32) * (1 - weight) + colours * weight).round().astype(np.uint8)
    if legend:
        out = draw_legend(out, classes, palette, labels)
    return out


def draw_legend(image, classes, palette, labels=None, max_entries=10):
    """A legend box (colour swatch + name + share of pixels) of the classes present, largest
    first, drawn in the image's top-left corner; rows that do not fit are summarised as
    ``+N more``; nothing is drawn on an image too small for one row."""
    from PIL import Image, ImageDraw, ImageFont

    ids, counts = np.unique(classes, return_counts=True)
    order = [int(i) for _, i in sorted(zip(-counts, ids))]
    height, width = image.shape[:2]
    size = int(np.clip(min(height, width) / 24, 9, 22))
    try:
        font = ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed bitmap font
        font = ImageFont.load_default()
    line, pad = size + 4, max(2, size // 4)
    rows = min(len(order), max_entries, (height - 2 * pad) // line)
    if rows < 1 or width < 4 * size:
        return image
    if rows < len(order):
        rows = max(rows - 1, 0)
    shown, more = order[:rows], len(order) - rows
    palette = np.asarray(palette, np.uint8)
    name = (lambda i: str(labels[i]) if labels is not None and i < len(labels) else f"class_{i}")
    total = classes.size
    texts = [f"{name(i)} {counts[list(ids).index(i)] / total:.0%}" for i in shown]
    if more:
        texts.append(f"+{more} more")
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas, "RGBA")
    text_w = max(draw.textlength(t, font=font) for t in texts)
    box_w = min(width, int(pad * 3 + size + text_w))
    draw.rectangle([0, 0, box_w, pad * 2 + line * len(texts)], fill=(0, 0, 0, 150))
    for row, text in enumerate(texts):
        y = pad + row * line
        if row < len(shown):
            colour = tuple(int(v) for v in palette[shown[row]]) if shown[row] < len(palette) else (0, 0, 0)
            draw.rectangle([pad, y + 1, pad + size, y + size], fill=colour, outline=(255, 255, 255))
        draw.text((pad * 2 + size, y), text, fill=(255, 255, 255), font=font)
    return np.asarray(canvas)


def save_class_map(classes, path, palette=None):
    """Write a class map as a palette PNG, atomically: pixel values are the class indices
    (``np.asarray(Image.open(path))`` gives them back) and viewers show the class colours.
    Over 256 classes it is a 32-bit greyscale PNG (PNG palettes hold 256 colours)."""
    from PIL import Image

    classes = np.asarray(classes)
    if classes.dtype != np.uint8 or palette is None:
        return save_png(classes, path)
    colours = np.zeros((256, 3), np.uint8)
    palette = np.asarray(palette, np.uint8)[:256]
    colours[:len(palette)] = palette
    image = Image.fromarray(classes, mode="L").convert("P")  # indices kept as they are
    image.putpalette(colours.ravel().tolist())
    with atomic_path(path, suffix=".png") as tmp:
        image.save(tmp)
    return path


def save_png(array, path):
    """Write a PNG atomically (temp file + os.replace)."""
    from PIL import Image

    array = np.asarray(array)
    mode = "I" if array.dtype == np.int32 else None
    with atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(array, mode=mode).save(tmp)
    return path


def segment_file(model, image_path, output_dir, palette=None, input_size=None,
                 align_corners=True, labels=None, stem=None, side_by_side=False, legend=True):
    """Segment one image file; writes ``<stem>_classes.png`` (class indices as a palette PNG at
    the image's size), ``<stem>_overlay.png`` (with a legend of the classes present) and, with
    ``side_by_side``, ``<stem>_side.png`` (image | overlay). ``stem``: default the file name
    without extension; it may hold sub-folders. Returns a dict with the paths and per-class
    pixel fractions."""
    image = load_image(image_path)
    classes = predict_classes(model, image, input_size, align_corners)
    if palette is None:
        palette = default_palette(int(model.output_shape[-1]))
    stem = stem or os.path.splitext(os.path.basename(image_path))[0]
    os.makedirs(os.path.dirname(os.path.join(output_dir, stem)) or output_dir, exist_ok=True)
    class_path = save_class_map(classes, os.path.join(output_dir, f"{stem}_classes.png"), palette)
    vis = overlay(image, classes, palette, labels=labels, legend=legend)
    overlay_path = save_png(vis, os.path.join(output_dir, f"{stem}_overlay.png"))
    result = {"image": image_path, "classes": class_path, "overlay": overlay_path}
    if side_by_side:
        gap = np.full((image.shape[0], max(2, image.shape[1] // 100), 3), 255, np.uint8)
        result["side_by_side"] = save_png(np.concatenate([image, gap, vis], axis=1),
                                          os.path.join(output_dir, f"{stem}_side.png"))
    ids, counts = np.unique(classes, return_counts=True)
    name = (lambda i: labels[i] if labels and i < len(labels) else str(i))
    result.update(fractions={name(int(i)): float(c) / classes.size for i, c in zip(ids, counts)},
                  size=classes.shape)
    return result


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
                  labels=None, on_result=None, side_by_side=False, files=None):
    """Segment every image of ``inputs`` (files, folders, globs) into ``output_dir``, keeping
    their relative folders (see :func:`output_stems`). A file that fails does not stop the
    others. Returns ``(results, failures)``, failures a list of ``(path, message)``.
    ``on_result(result_or_None)`` is called after each file (None for a failed one)."""
    if files is None:
        files, failures = expand_inputs(inputs)
    else:
        failures = []
    results = []
    for path, stem in zip(files, output_stems(files)):
        try:
            result = segment_file(model, path, output_dir, palette, input_size, align_corners,
                                  labels, stem=stem, side_by_side=side_by_side)
        except Exception as err:  # one bad file must not lose the rest of the batch
            failures.append((path, str(err) or type(err).__name__))
            result = None
        else:
            results.append(result)
        if on_result is not None:
            on_result(result)
    return results, failures


VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")


def segment_video(model, path, output_path, palette=None, input_size=None, align_corners=True,
                  labels=None, progress=True, legend=True):
    """Overlay video of a video file (imageio + its ffmpeg plugin, the ``video`` extra): every
    frame segmented and blended as :func:`overlay` does, written (atomically) at the source's
    frame rate as H.264 MP4. Returns ``{"video", "overlay", "frames", "seconds", "fps"}``
    (``fps``: frames segmented per second)."""
    import time

    try:
        import imageio.v2 as imageio
    except ImportError:
        raise ValueError(f"{path}: video needs imageio with its ffmpeg plugin: "
                         "pip install 'deeplab-keras[video]'") from None
    if palette is None:
        palette = default_palette(int(model.output_shape[-1]))
    try:
        reader = imageio.get_reader(path, format="FFMPEG")
    except Exception as err:  # imageio raises several kinds for unreadable files
        raise ValueError(f"cannot read video {path}: {err}") from None
    start, frames = time.time(), 0
    try:
        meta = reader.get_meta_data()
        fps = float(meta.get("fps") or 25.0)
        total = meta.get("nframes")
        total = int(total) if isinstance(total, (int, float)) and total != float("inf") else None
        bar = None
        if progress:
            import keras
            bar = keras.utils.Progbar(total, unit_name="frame")
        os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
        with atomic_path(output_path, suffix=".mp4") as tmp:
            writer = imageio.get_writer(tmp, format="FFMPEG", fps=fps, codec="libx264",
                                        quality=7, macro_block_size=2)
            try:
                for frame in reader:
                    frame = as_rgb8(frame)
                    classes = predict_classes(model, frame, input_size, align_corners)
                    writer.append_data(overlay(frame, classes, palette, labels=labels,
                                               legend=legend))
                    frames += 1
                    if bar is not None:
                        bar.update(min(frames, total) if total else frames)
            finally:
                writer.close()
            if not frames:
                raise ValueError(f"{path}: no frames could be read")
    finally:
        reader.close()
    seconds = time.time() - start
    return {"video": path, "overlay": output_path, "frames": frames, "seconds": seconds,
            "fps": frames / seconds if seconds > 0 else float("nan"), "source_fps": fps}


LABELS_FILE = "labels.json"


def write_labels(output_dir, labels, palette, ignore_label=None):
    """``<output_dir>/labels.json``: index -> name and colour of the class maps beside it.
    A labels.json we did not write (no ``"written_by"``) is not overwritten (ValueError)."""
    import json

    from deeplab_keras.utils.io import write_json

    path = os.path.join(output_dir, LABELS_FILE)
    if os.path.exists(path):
        try:
            with open(path) as f:
                ours = json.load(f).get("written_by") == "deeplab-keras"
        except (ValueError, OSError, AttributeError):
            ours = False
        if not ours:
            raise ValueError(f"{path} exists and was not written by deeplab-keras; choose another "
                             "--output-dir (it is left as it is)")
    entries = [{"index": i, "name": str(name), "color": [int(v) for v in palette[i]]}
               for i, name in enumerate(labels)]
    write_json(path, {"written_by": "deeplab-keras", "classes": entries,
                      "ignore_label": ignore_label})
    return path


def predict_batch(model, inputs, output_dir, palette=None, input_size=None, align_corners=True,
                  labels=None, side_by_side=False, progress=True):
    """The ``predict`` command's loop: :func:`segment_files` with a progress bar (n/N, time
    per image), ``labels.json`` beside the class maps, a summary line and, at the end, every
    failure on stderr. Returns the exit status (1 if any input failed)."""
    import sys
    import time

    files, problems = expand_inputs(inputs)
    videos = [f for f in files if f.lower().endswith(VIDEO_EXTENSIONS)]
    files = [f for f in files if not f.lower().endswith(VIDEO_EXTENSIONS)]
    num_classes = int(model.output_shape[-1])
    if palette is None:
        palette = default_palette(num_classes)
    names = list(labels) if labels else [f"class_{i}" for i in range(num_classes)]
    os.makedirs(output_dir, exist_ok=True)
    labels_path = write_labels(output_dir, names, palette, getattr(model, "ignore_label", None))
    bar = None
    if progress and files:
        import keras
        bar = keras.utils.Progbar(len(files), unit_name="image")
    done = [0]

    def step(result):
        done[0] += 1
        if bar is not None:
            bar.update(done[0])

    start = time.time()
    results, failures = segment_files(model, None, output_dir, palette, input_size, align_corners,
                                      labels, on_result=step, side_by_side=side_by_side,
                                      files=files)
    failures = problems + failures
    seconds = time.time() - start
    for video, stem in zip(videos, output_stems(videos)):
        try:
            v = segment_video(model, video, os.path.join(output_dir, f"{stem}_overlay.mp4"),
                              palette, input_size, align_corners, labels, progress=progress)
        except Exception as err:  # one bad file must not lose the rest
            failures.append((video, str(err) or type(err).__name__))
            continue
        print(f"{video}: {v['frames']} frames in {v['seconds']:.1f}s ({v['fps']:.2f} frames/s; "
              f"source {v['source_fps']:g} fps) -> {v['overlay']}")
    rate = f", {len(results) / seconds:.2f} images/s" if results and seconds > 0 else ""
    if files or not videos:
        print(f"segmented {len(results)}/{len(files)} image(s) in {seconds:.1f}s{rate} -> "
              f"{output_dir} (class maps *_classes.png, overlays *_overlay.png"
              + (", *_side.png" if side_by_side else "") + f"; names and colours: {labels_path})")
    if len(results) == 1:
        top = sorted(results[0]["fractions"].items(), key=lambda kv: -kv[1])[:4]
        print(f"{results[0]['image']}: " + ", ".join(f"{k} {v:.0%}" for k, v in top))
    if failures:
        print(f"deeplab-keras predict: {len(failures)} input(s) failed, "
              f"{len(results)} image(s) segmented:", file=sys.stderr)
        for path, message in failures:
            print(f"  {path}: {message}", file=sys.stderr)
        return 1
    return 0
