"""DeepLab's training augmentation with stateless random ops (reproducible from a seed):
random scale (0.5-2.0), pad with the ignore label (image with ``pad_value``), random crop, flip."""
import tensorflow as tf


def random_scale(image, label, seed, min_scale=0.5, max_scale=2.0):
    if min_scale == max_scale == 1.0:
        return image, label
    scale = tf.random.stateless_uniform([], seed, min_scale, max_scale)
    size = tf.cast(tf.round(tf.cast(tf.shape(image)[:2], tf.float32) * scale), tf.int32)
    image = tf.image.resize(image, size, method="bilinear")
    label = tf.image.resize(label[..., None], size, method="nearest")[..., 0]
    return image, label


def pad_to_size(image, label, height, width, pad_value, ignore_label):
    """Pad bottom/right to at least (height, width): image with ``pad_value``, label with ignore."""
    shape = tf.shape(image)
    pad_h = tf.maximum(height - shape[0], 0)
    pad_w = tf.maximum(width - shape[1], 0)
    paddings = [[0, pad_h], [0, pad_w]]
    image = tf.pad(image, paddings + [[0, 0]], constant_values=pad_value)
    label = tf.pad(label, paddings, constant_values=ignore_label)
    return image, label


def random_crop_flip(image, label, seed, height, width, flip=True):
    """Crop image and label at the same random place; flip both left-right with p = 0.5."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    both = tf.concat([image, tf.cast(label, tf.float32)[..., None]], axis=-1)
    both = tf.image.stateless_random_crop(both, [height, width, 4], seeds[0])
    if flip:
        both = tf.image.stateless_random_flip_left_right(both, seeds[1])
    return both[..., :3], tf.cast(both[..., 3], tf.int32)


def augment(image, label, seed, crop_size, *, min_scale=0.5, max_scale=2.0, flip=True,
            pad_value=127.5, ignore_label=255):
    """The full training augmentation for one (image float32 HxWx3, label int32 HxW) pair."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    image, label = random_scale(image, label, seeds[0], min_scale, max_scale)
    if crop_size is None:
        if flip:
            both = tf.concat([image, tf.cast(label, tf.float32)[..., None]], axis=-1)
            both = tf.image.stateless_random_flip_left_right(both, seeds[1])
            image, label = both[..., :3], tf.cast(both[..., 3], tf.int32)
        return image, label
    h, w = crop_size
    image, label = pad_to_size(image, label, h, w, pad_value, ignore_label)
    return random_crop_flip(image, label, seeds[1], h, w, flip)


def jitter_batch_crop(images, labels, seed, height, width, jitter):
    """One training batch (cropped at ``height + jitter - 1`` x ``width + jitter - 1``) cut to
    ``(height + dy, width + dx)``, ``dy`` and ``dx`` drawn in ``[0, jitter)`` for the batch: its
    size then takes every remainder modulo the output stride (``jitter`` 16 at stride 16), so the
    network learns every alignment of its stride grid to the input's edges, not one."""
    d = tf.random.stateless_uniform([2], seed, 0, jitter, dtype=tf.int32)
    return images[:, :height + d[0], :width + d[1]], labels[:, :height + d[0], :width + d[1]]
