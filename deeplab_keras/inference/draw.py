"""Drawing: palettes, colour overlays with a legend, background effects, and class maps written
as palette PNGs. Per-frame drawing (overlays, effects) is uint8 fixed-point arithmetic, within one
grey level of the float blend, through OpenCV when it is installed (the optional ``mediapipe``
extra brings it) and NumPy / Pillow otherwise (``bench/video.py`` measures both)."""
import functools

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


@functools.lru_cache(maxsize=1)
def opencv():
    """OpenCV, or None when it is not installed (then NumPy / Pillow draw the same result).
    Looked up once: drawing asks on every frame, and a failed import is not cached by Python."""
    try:
        import cv2
    except ImportError:
        return None
    return cv2


#: the drawing backend: None or "cv2" (OpenCV when installed), "numpy" (tests set it to compare)
BACKEND = None


def _backend():
    return None if BACKEND == "numpy" else opencv()


def _div255(x):
    """round(x / 255) of a uint16 array of values in [0, 255 * 255], exactly, in place."""
    x += 128
    x += x >> 8
    x >>= 8
    return x


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
    weight = np.full(n, float(alpha), np.float32)
    weight[[int(b) for b in background if 0 <= int(b) < n]] = 0.0
    out = _blend_classes(image, classes, palette, weight)
    if legend:
        out = draw_legend(out, classes, palette, labels)
    return out


def _blend_classes(image, classes, palette, weight):
    """``image * (1 - w) + colour * w`` per pixel, ``w`` and ``colour`` its class's ``weight``
    and ``palette`` entry, rounded: uint8 arithmetic in 255ths (within one level of float)."""
    n = len(palette)
    w = np.clip(np.round(weight * 255), 0, 255).astype(np.uint16)  # per class, in 255ths
    cv2 = _backend()
    if cv2 is not None and n <= 256 and classes.dtype == np.uint8 and len(set(w[w > 0])) <= 1:
        # one weight for every blended class (overlay's case): the palette colours gathered
        # by cv2.LUT, one cv2.addWeighted, the unblended classes copied back from the photo
        alpha = int(w.max(initial=0))
        colour = np.zeros((256, 1, 3), np.uint8)
        colour[:n, 0] = palette
        tint = cv2.LUT(cv2.merge([classes, classes, classes]), colour)
        out = cv2.addWeighted(image, (255 - alpha) / 255.0, tint, alpha / 255.0, 0.0)
        plain = np.zeros(256, np.uint8)
        plain[:n][w == 0] = 1
        plain[n:] = 1
        cv2.copyTo(image, cv2.LUT(classes, plain), out)
        return out
    tint = (palette.astype(np.uint16) * w[:, None]).astype(np.uint16)  # colour * w, in 255ths
    out = np.empty_like(image)
    step = max(1, BLOCK_PIXELS // max(1, image.shape[1]))
    for top in range(0, image.shape[0], step):  # a block of rows: bounded temporaries
        rows = slice(top, top + step)
        c = classes[rows]
        x = image[rows] * (255 - w)[c][..., None]
        x += tint[c]
        out[rows] = _div255(x)
    return out


def _mix(image, back, a):
    """``round((image * a + back * (255 - a)) / 255)``: the photo over ``back`` with a uint8
    weight map ``a`` (255: the photo), exactly in integers."""
    cv2 = _backend()
    if cv2 is not None:
        # cv2.blendLinear: (image * w1 + back * w2) / (w1 + w2) in float32, rounded
        w1 = a.astype(np.float32)
        return cv2.blendLinear(image, np.ascontiguousarray(back), w1, 255.0 - w1)
    out = np.empty_like(image)
    step = max(1, BLOCK_PIXELS // max(1, image.shape[1]))
    for top in range(0, image.shape[0], step):
        rows = slice(top, top + step)
        wa = a[rows].astype(np.uint16)[..., None]
        x = image[rows] * wa
        x += back[rows] * (255 - wa)
        out[rows] = _div255(x)
    return out


def draw_legend(image, classes, palette, labels=None, max_entries=10):
    """A legend box (colour swatch + name + share of pixels) of the classes present, largest
    first, drawn in the image's top-left corner; rows that do not fit are summarised as
    ``+N more``; nothing is drawn on an image too small for one row."""
    from PIL import Image, ImageDraw

    counts = class_counts(classes)
    ids = np.flatnonzero(counts)
    counts = counts[ids]
    order = [int(i) for _, i in sorted(zip(-counts, ids))]
    height, width = image.shape[:2]
    size = int(np.clip(min(height, width) / 24, 9, 22))
    font = _font(size)
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


@functools.lru_cache(maxsize=8)
def _font(size):
    """Pillow's default font at ``size`` (loaded once per size: a video draws a legend a frame)."""
    from PIL import ImageFont
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed bitmap font
        return ImageFont.load_default()


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


class Background:
    """The broadcast "background" effect, prepared once for a stream of frames:
    ``Background(keep, background)(image, classes)`` is ``image`` with every pixel whose class
    is not in ``keep`` replaced by ``background``: ``"blur"`` (the image Gaussian-blurred with
    standard deviation ``blur_radius``), an RGB colour ``(r, g, b)``, or an image array (resized
    to the frame once per frame size). The edge is feathered over a pixel or two (a 3x3 box on
    the mask) so the cut-out does not look jagged; the blend is uint8 arithmetic, within one
    level of the float blend. The blur runs on the frame shrunk by a quarter of the radius
    (at most 4x) and bilinearly enlarged: a blur that wide keeps nothing finer, at a tenth of
    the cost."""

    def __init__(self, keep, background="blur", blur_radius=15):
        if isinstance(background, str):
            if background != "blur":
                raise ValueError(f"background must be 'blur', an RGB colour or an image, got "
                                 f"{background!r}")
            self.kind = "blur"
        else:
            back = np.asarray(background)
            if back.ndim == 1 and back.size == 3:
                self.kind, self.colour = "colour", back.astype(np.uint8)
            else:
                self.kind, self.image = "image", as_rgb8(back)
        self.keep = sorted({int(k) for k in keep})
        self.blur_radius = float(blur_radius)
        self._lut = np.zeros(256, np.uint8)
        self._lut[[k for k in self.keep if 0 <= k < 256]] = 255
        self._back = None  # the colour or image background at the last frame size

    def mask(self, classes):
        """uint8 weight of the photo per pixel: 255 for a kept class, 0 for the background,
        feathered over the 3x3 neighbourhood at the edge."""
        cv2 = _backend()
        if classes.dtype == np.uint8:
            hard = cv2.LUT(classes, self._lut) if cv2 is not None else self._lut[classes]
        else:
            hard = np.isin(classes, self.keep).astype(np.uint8) * 255
        if cv2 is not None:
            return cv2.blur(hard, (3, 3), borderType=cv2.BORDER_REPLICATE)
        from PIL import Image, ImageFilter
        return np.asarray(Image.fromarray(hard).filter(ImageFilter.BoxBlur(1)))

    def backdrop(self, image):
        """The background for ``image``: blurred from it, or the colour / picture at its size."""
        if self.kind == "blur":
            return blur(image, self.blur_radius)
        size = image.shape
        if self._back is None or self._back.shape != size:
            if self.kind == "colour":
                self._back = np.ascontiguousarray(np.broadcast_to(self.colour, size))
            elif self.image.shape != size:
                from PIL import Image
                self._back = np.asarray(Image.fromarray(self.image).resize(
                    size[1::-1], Image.BILINEAR))
            else:
                self._back = self.image
        return self._back

    def __call__(self, image, classes):
        image = as_rgb8(image)
        classes = np.asarray(classes)
        if classes.shape != image.shape[:2]:
            raise ValueError(f"class map {classes.shape} and image {image.shape[:2]} differ in "
                             "size")
        return _mix(np.ascontiguousarray(image), self.backdrop(image), self.mask(classes))


def blur(image, radius):
    """``image`` Gaussian-blurred with standard deviation ``radius`` pixels (uint8 RGB): run on
    the image shrunk by ``radius / 4`` (at most 4x; box averaging) and enlarged back bilinearly,
    which keeps a blur that wide within a level or two of the full-size one at a tenth of the
    cost."""
    from PIL import Image, ImageFilter

    image = np.ascontiguousarray(image)
    h, w = image.shape[:2]
    factor = int(max(1, min(4, radius // 4, h // 8, w // 8)))
    cv2 = _backend()
    if cv2 is not None:
        small = image if factor == 1 else cv2.resize(image, (-(-w // factor), -(-h // factor)),
                                                     interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (0, 0), radius / factor,
                                 borderType=cv2.BORDER_REPLICATE)  # Pillow's edges
        return small if factor == 1 else cv2.resize(small, (w, h),
                                                     interpolation=cv2.INTER_LINEAR)
    small = Image.fromarray(image)
    small = small if factor == 1 else small.reduce(factor)
    small = small.filter(ImageFilter.GaussianBlur(radius / factor))
    return np.asarray(small if factor == 1 else small.resize((w, h), Image.BILINEAR))


def replace_background(image, classes, keep, background="blur", blur_radius=15):
    """``image`` with every pixel whose class is not in ``keep`` replaced (the broadcast
    "background" effect): ``background`` is ``"blur"``, an RGB colour ``(r, g, b)``, or an image
    array (resized to the frame); see :class:`Background`, which prepares the effect once for a
    stream of frames."""
    return Background(keep, background, blur_radius)(image, classes)
