"""Prediction: run a model at its input contract (preset input size, resize semantics) and get
logits or the class map at the image's own size."""
import numpy as np

from deeplab_keras.inference.image import as_rgb8


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
