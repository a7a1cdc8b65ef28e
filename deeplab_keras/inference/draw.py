"""Drawing: palettes, colour overlays with a legend, and class maps written as palette PNGs."""
import numpy as np

from deeplab_keras.inference.image import as_rgb8
from deeplab_keras.utils.io import atomic_path, png_info


def default_palette(n):
    """PASCAL VOC's colour map (bit-interleaved), for models without a palette."""
    palette = np.zeros((n, 3), np.uint8)
    for i in range(n):
        c = i
        for j in range(8):
            palette[i] |= np.array([(c >> k) & 1 for k in range(3)], np.uint8) << (7 - j)
            c >>= 3
    return palette


def full_palette(palette, classes):
    """``palette`` as uint8, extended with :func:`default_palette` colours up to the largest
    class in ``classes``."""
    palette = np.asarray(palette, np.uint8)
    n = int(np.max(classes, initial=0)) + 1
    if n > len(palette):
        palette = np.concatenate([palette, default_palette(n)[len(palette):]])
    return palette


#: pixels a block of :func:`overlay`'s lookup and :func:`class_counts` handles at once
BLOCK_PIXELS = 1 << 20


def class_counts(classes):
    """Pixels per class index of a class map, counted a block of rows at a time (np.bincount
    copies its input as 8-byte integers)."""
    classes = np.asarray(classes)
    if classes.ndim < 2:
        return np.bincount(classes.astype(np.intp).ravel())
    step = max(1, BLOCK_PIXELS // max(1, int(np.prod(classes.shape[1:]))))
    counts = np.zeros(0, np.int64)
    for top in range(0, classes.shape[0], step):
        part = np.bincount(classes[top:top + step].astype(np.intp).ravel())
        if len(part) > len(counts):
            part[:len(counts)] += counts
            counts = part
        else:
            counts[:len(part)] += part
    return counts


def colorize(classes, palette):
    return full_palette(palette, classes)[classes]


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
    palette = full_palette(palette, classes)
    n = len(palette)
    if background is None:
        background = background_classes(labels, palette)
    weight = np.full((n, 1, 1), float(alpha), np.float32)
    weight[[int(b) for b in background if 0 <= int(b) < n]] = 0.0
    # per class, channel and grey level: the blended value (the same float32 arithmetic as
    # blending the whole image, looked up instead of computed per pixel)
    levels = np.arange(256, dtype=np.float32)[None, None, :]
    table = (levels * (1 - weight) + palette.astype(np.float32)[:, :, None] * weight)
    table = table.round().astype(np.uint8).ravel()
    dtype = np.int32 if n > 85 else np.uint16  # 85 * 768 + 767 < 2 ** 16
    channels = np.arange(3, dtype=dtype) * 256
    out = np.empty_like(image)
    # a block of rows at a time: np.take's indices are intp (8 bytes a value), so a 24 MP photo
    # at once would hold 576 MB of them
    step = max(1, BLOCK_PIXELS // max(1, image.shape[1]))
    for top in range(0, image.shape[0], step):
        rows = slice(top, top + step)
        index = classes[rows].astype(dtype) * 768
        np.take(table, index[..., None] + channels + image[rows], out=out[rows])
    if legend:
        out = draw_legend(out, classes, palette, labels)
    return out


def draw_legend(image, classes, palette, labels=None, max_entries=10):
    """A legend box (colour swatch + name + share of pixels) of the classes present, largest
    first, drawn in the image's top-left corner; rows that do not fit are summarised as
    ``+N more``; nothing is drawn on an image too small for one row."""
    from PIL import Image, ImageDraw, ImageFont

    counts = class_counts(classes)
    ids = np.flatnonzero(counts)
    counts = counts[ids]
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
    text_w = max(font.getlength(t) for t in texts)
    box_w = min(width, int(pad * 3 + size + text_w))
    box_h = min(height, pad * 2 + line * len(texts))
    # draw on the corner only (a copy of the image around it): the rest is not converted
    canvas = Image.fromarray(np.ascontiguousarray(image[:box_h + 1, :box_w + 1]))
    draw = ImageDraw.Draw(canvas, "RGBA")
    draw.rectangle([0, 0, box_w, box_h], fill=(0, 0, 0, 150))
    for row, text in enumerate(texts):
        y = pad + row * line
        if row < len(shown):
            colour = tuple(int(v) for v in palette[shown[row]]) if shown[row] < len(palette) else (0, 0, 0)
            draw.rectangle([pad, y + 1, pad + size, y + size], fill=colour, outline=(255, 255, 255))
        draw.text((pad * 2 + size, y), text, fill=(255, 255, 255), font=font)
    out = np.array(image, copy=True)
    out[:box_h + 1, :box_w + 1] = np.asarray(canvas)
    return out


def save_class_map(classes, path, palette=None, software=None):
    """Write a class map as a palette PNG, atomically: pixel values are the class indices
    (``np.asarray(Image.open(path))`` gives them back) and viewers show the class colours.
    Over 256 classes it is a 32-bit greyscale PNG (PNG palettes hold 256 colours).
    ``software``: a ``Software`` text entry (how a later run knows the file is ours)."""
    from PIL import Image

    classes = np.asarray(classes)
    if classes.dtype != np.uint8 or palette is None:
        return save_png(classes, path, software)
    colours = np.zeros((256, 3), np.uint8)
    palette = np.asarray(palette, np.uint8)[:256]
    colours[:len(palette)] = palette
    image = Image.fromarray(classes, mode="L").convert("P")  # indices kept as they are
    image.putpalette(colours.ravel().tolist())
    with atomic_path(path, suffix=".png") as tmp:
        image.save(tmp, pnginfo=png_info(software) if software else None)
    return path


def save_png(array, path, software=None):
    """Write a PNG atomically (temp file + os.replace); ``software``: a ``Software`` entry."""
    from PIL import Image

    array = np.asarray(array)
    mode = "I" if array.dtype == np.int32 else None
    with atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(array, mode=mode).save(tmp, pnginfo=png_info(software) if software
                                               else None)
    return path


def replace_background(image, classes, keep, background="blur", blur_radius=15):
    """``image`` with every pixel whose class is not in ``keep`` replaced (the broadcast
    "background" effect): ``background`` is ``"blur"`` (the image Gaussian-blurred), an RGB
    colour ``(r, g, b)``, or an image array (resized to the frame). The edge is feathered over
    a pixel or two so the cut-out does not look jagged."""
    from PIL import Image, ImageFilter

    image = as_rgb8(image)
    classes = np.asarray(classes)
    if classes.shape != image.shape[:2]:
        raise ValueError(f"class map {classes.shape} and image {image.shape[:2]} differ in size")
    if isinstance(background, str):
        if background != "blur":
            raise ValueError(f"background must be 'blur', an RGB colour or an image, got "
                             f"{background!r}")
        back = np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(blur_radius)))
    else:
        back = np.asarray(background)
        if back.ndim == 1 and back.size == 3:
            back = np.broadcast_to(back.astype(np.uint8), image.shape)
        else:
            back = as_rgb8(back)
            if back.shape != image.shape:
                back = np.asarray(Image.fromarray(back).resize(image.shape[1::-1],
                                                               Image.BILINEAR))
    mask = Image.fromarray(np.isin(classes, list(keep)).astype(np.uint8) * 255)
    alpha = np.asarray(mask.filter(ImageFilter.BoxBlur(1)), np.float32)[..., None] / 255.0
    return (image * alpha + back * (1.0 - alpha)).round().astype(np.uint8)
