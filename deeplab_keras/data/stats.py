"""Label statistics over a dataset (for median-frequency class weights)."""
import numpy as np


def class_pixel_counts(dataset, num_classes):
    """Per-class ``(pixel_count, image_count)`` over a dataset of (image, label) batches; labels
    outside ``0..num_classes-1`` (the ignore label) are not counted. ``image_count[c]`` is the
    number of images where class ``c`` appears (SegNet's median-frequency definition)."""
    import tensorflow as tf
    pixels = np.zeros(num_classes, np.int64)
    images = np.zeros(num_classes, np.int64)
    for _, labels in dataset:
        labels = tf.reshape(labels, [tf.shape(labels)[0], -1])
        valid = (labels >= 0) & (labels < num_classes)
        for row, ok in zip(labels.numpy(), valid.numpy()):
            counts = np.bincount(row[ok], minlength=num_classes)
            pixels += counts
            images += counts > 0
    return pixels, images
