"""Segmentation losses: softmax cross-entropy over pixels with an ignore label, optional class
weights (given, or median frequency from the data) and bootstrapped hard-pixel mining (top-k)."""
import keras
import numpy as np
from keras import ops


def median_frequency_weights(pixel_counts, image_counts=None, power=1.0):
    """SegNet's median-frequency balancing ``w_c = median(f) / f_c``.

    With ``image_counts`` (images where class c appears), ``f_c = pixels_c / images_c`` (SegNet's
    "pixels of c / pixels of the images containing c" for images of one size); without,
    ``f_c = pixels_c / sum(pixels)``. ``power`` < 1 softens the weights (0.5 = square root).
    Classes never seen get weight 0."""
    pixels = np.asarray(pixel_counts, np.float64)
    if image_counts is None:
        freq = pixels / max(pixels.sum(), 1.0)
    else:
        images = np.asarray(image_counts, np.float64)
        freq = np.where(images > 0, pixels / np.maximum(images, 1), 0.0)
    seen = freq > 0
    if not seen.any():
        raise ValueError("no labelled pixel in the data: cannot compute class weights")
    weights = np.zeros_like(freq)
    weights[seen] = np.median(freq[seen]) / freq[seen]
    return (weights ** power).astype(np.float32)


@keras.saving.register_keras_serializable(package="deeplab_keras")
class SegmentationLoss(keras.losses.Loss):
    """Mean softmax cross-entropy over the pixels whose label is not ``ignore_label``.

    Args:
        num_classes: number of classes (labels ``>= num_classes`` other than ignore are errors
            caught by the data pipeline; here they count as ignored).
        ignore_label: label value with no loss (255, or 11 for CamVid).
        class_weights: optional per-class weights (the mean is weighted: sum(w*ce)/sum(w)).
        top_k_percent: bootstrapped hard-pixel mining (OHEM): of each image's labelled pixels
            (the ignore label never counts), keep the ``top_k_percent`` % with the highest
            cross-entropy, at least one; 100 = all. Pixels are ranked by their own
            cross-entropy, so class weights do not change which are kept, only how much each
            kept pixel weighs in the mean.
        from_logits: the model outputs logits (DeepLab's models do).
    """

    def __init__(self, num_classes, ignore_label=255, class_weights=None, top_k_percent=100.0,
                 from_logits=True, name="segmentation_loss", reduction="sum_over_batch_size",
                 **kwargs):
        super().__init__(name=name, reduction=reduction, **kwargs)
        self.num_classes = int(num_classes)
        self.ignore_label = int(ignore_label)
        self.class_weights = None if class_weights is None else [float(w) for w in class_weights]
        if self.class_weights is not None and len(self.class_weights) != self.num_classes:
            raise ValueError(f"{len(self.class_weights)} class weights for {self.num_classes} classes")
        if not 0 < float(top_k_percent) <= 100:
            raise ValueError(f"top_k_percent must be in (0, 100], got {top_k_percent}")
        self.top_k_percent = float(top_k_percent)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        y_true = ops.cast(y_true, "int32")
        if len(y_true.shape) == len(y_pred.shape):
            y_true = ops.squeeze(y_true, -1)
        valid = ops.logical_and(ops.greater_equal(y_true, 0), ops.less(y_true, self.num_classes))
        safe = ops.where(valid, y_true, ops.zeros_like(y_true))
        ce = keras.losses.sparse_categorical_crossentropy(safe, y_pred, from_logits=self.from_logits)
        valid = ops.cast(valid, "float32")
        weights = valid
        if self.class_weights is not None:
            weights = weights * ops.take(ops.convert_to_tensor(self.class_weights, "float32"), safe)
        batch = ops.shape(ce)[0]
        ce = ops.reshape(ce * valid, (batch, -1))
        weights = ops.reshape(weights, (batch, -1))
        if self.top_k_percent < 100:
            # each image keeps its k hardest labelled pixels, k a share of its labelled pixels
            # (a crop padded with the ignore label keeps fewer); ignored pixels sort last
            valid = ops.reshape(valid, (batch, -1))
            k = ops.maximum(ops.floor(ops.sum(valid, axis=1) * (self.top_k_percent / 100.0)), 1.0)
            _, idx = ops.top_k(ce - (1.0 - valid), ops.shape(ce)[1])  # hardest first
            ce = ops.take_along_axis(ce, idx, axis=1)
            weights = ops.take_along_axis(weights, idx, axis=1)
            rank = ops.cast(ops.arange(ops.shape(ce)[1]), "float32")
            weights = weights * ops.cast(ops.less(rank[None, :], k[:, None]), "float32")
        # one scalar per image, normalised by its weight; the reduction averages over images
        return ops.sum(ce * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1e-6)

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, ignore_label=self.ignore_label,
                      class_weights=self.class_weights, top_k_percent=self.top_k_percent,
                      from_logits=self.from_logits)
        return config
