"""Prediction: run a model at its input contract (preset input size, resize semantics) and get
logits or the class map at the image's own size."""
import numpy as np



#: bytes of full-size float scores :func:`predict_classes` holds at once (classes in chunks)
UPSAMPLE_BUDGET = 64 << 20


def _model_logits(model, image, input_size=None, semantics=None):
    """The model's float32 logits (1, h, w, C) as NumPy at the size it ran at, the image's size
    and the resize semantics used."""
    import keras

    from deeplab_keras.layers.resize import resize
    from deeplab_keras.models import resize_semantics

    semantics = semantics or resize_semantics(model)
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {image.shape}")
    height, width = image.shape[:2]
    fixed = tuple(model.input_shape[1:3])
    size = fixed if None not in fixed else (tuple(input_size) if input_size else (height, width))
    # uint8 pixels are resized as they are (float32 out): a large photo is never copied as floats
    x = np.asarray(resize(image[None], size, semantics), np.float32)
    logits = model(x, training=False)
    if isinstance(logits, (list, tuple)):
        logits = logits[0]
    logits = keras.ops.convert_to_numpy(logits).astype("float32", copy=False)
    return logits, (height, width), semantics


def predict_logits(model, image, input_size=None, semantics=None):
    """Logits (H, W, C) at the image's size, float32 NumPy. The image is resized to
    ``input_size`` (or to the model's fixed input size), run through the model (which takes 0-255
    RGB), and the logits are resized back bilinearly, both with ``semantics`` (None: the model's
    own, :func:`deeplab_keras.models.resize_semantics`)."""
    from deeplab_keras.layers.resize import resize

    logits, size, semantics = _model_logits(model, image, input_size, semantics)
    return resize(logits, size, semantics)[0]


def predict_classes(model, image, input_size=None, semantics=None):
    """Class index map (H, W) uint8 (int32 beyond 256 classes) at the image's size: the argmax
    of :func:`predict_logits`, computed a few classes at a time so a large photo never holds
    pixels x classes floats (at most :data:`UPSAMPLE_BUDGET` bytes of them; bilinear resizing
    is per channel, so the answer is the same, ties to the lower class included)."""
    from deeplab_keras.layers.resize import resize

    logits, (height, width), semantics = _model_logits(model, image, input_size, semantics)
    num = int(logits.shape[-1])
    dtype = np.uint8 if num <= 256 else np.int32
    if tuple(logits.shape[1:3]) == (height, width):
        return np.argmax(logits[0], axis=-1).astype(dtype)
    chunk = max(1, min(num, UPSAMPLE_BUDGET // (4 * height * width)))
    best = classes = None
    for start in range(0, num, chunk):
        part = resize(logits[..., start:start + chunk], (height, width), semantics)[0]
        if part.shape[-1] == 1:  # one class: its scores, no argmax (8 bytes a pixel)
            top, arg = part[..., 0], None
        else:
            top, arg = part.max(axis=-1), part.argmax(axis=-1).astype(dtype) + dtype(start)
        if best is None:
            best = np.array(top, np.float32)  # a copy: ``part`` is freed below
            classes = arg if arg is not None else np.full((height, width), start, dtype)
        else:
            better = top > best  # strict: an earlier class keeps a tie, as np.argmax does
            np.copyto(best, top, where=better)
            np.copyto(classes, arg if arg is not None else dtype(start), where=better)
            del better
        del part, top, arg
    return classes


def input_contract(model, input_size=None, semantics=None):
    """``(size to run at or None, resize semantics)``: ``input_size`` (a flag), else the model's
    own (its preset's ``preprocessing.input_size``); the semantics given, else the model's own
    (:func:`deeplab_keras.models.resize_semantics`, its upsampling layer: one place)."""
    from deeplab_keras.layers.resize import SEMANTICS
    from deeplab_keras.models import resize_semantics

    if semantics is not None and semantics not in SEMANTICS:
        raise ValueError(f"resize semantics must be one of {SEMANTICS}, got {semantics!r}")
    prep = getattr(model, "preprocessing", None) or {}
    size = input_size or prep.get("input_size")
    return (tuple(size) if size else None), semantics or resize_semantics(model)
