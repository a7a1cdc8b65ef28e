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


def _focused_corner(label, seed, height, width, classes, probability):
    """The top-left corner ``(y, x)`` of a ``height`` x ``width`` crop of ``label`` (at least
    that size): with ``probability``, when the label has a pixel of ``classes``, a random such
    pixel lies at a random place inside the crop; otherwise the corner is uniform."""
    seeds = tf.random.experimental.stateless_split(seed, 5)
    shape = tf.shape(label)
    room_h, room_w = shape[0] - height + 1, shape[1] - width + 1
    hits = tf.cast(tf.where(tf.reduce_any(label[..., None] == tf.constant(list(classes), tf.int32), -1)), tf.int32)
    count = tf.shape(hits)[0]
    # hits may be empty: gather row 0 of a padded copy, unused when focus is False
    hits = tf.concat([hits, tf.zeros([1, 2], tf.int32)], 0)
    pixel = tf.gather(hits, tf.random.stateless_uniform([], seeds[0], 0, tf.maximum(count, 1), tf.int32))
    focus = tf.logical_and(count > 0, tf.random.stateless_uniform([], seeds[1]) < probability)
    y = tf.random.stateless_uniform([], seeds[2], 0, room_h, tf.int32)
    x = tf.random.stateless_uniform([], seeds[3], 0, room_w, tf.int32)
    inside = tf.random.stateless_uniform([2], seeds[4], 0, 2**30, tf.int32) % tf.stack([height, width])
    y = tf.where(focus, tf.clip_by_value(pixel[0] - inside[0], 0, room_h - 1), y)
    x = tf.where(focus, tf.clip_by_value(pixel[1] - inside[1], 0, room_w - 1), x)
    return y, x


def random_crop_flip(image, label, seed, height, width, flip=True, focus_classes=None,
                     focus_probability=0.0):
    """Crop image and label at the same random place; flip both left-right with p = 0.5.
    ``focus_classes``: with ``focus_probability``, the crop is placed around a random pixel of
    one of these class ids (when the label has one) instead of anywhere (class-balanced crops)."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    both = tf.concat([image, tf.cast(label, tf.float32)[..., None]], axis=-1)
    if focus_classes:
        y, x = _focused_corner(label, seeds[0], height, width, focus_classes, focus_probability)
        both = both[y:y + height, x:x + width]
        both.set_shape([height, width, 4])
    else:
        both = tf.image.stateless_random_crop(both, [height, width, 4], seeds[0])
    if flip:
        both = tf.image.stateless_random_flip_left_right(both, seeds[1])
    return both[..., :3], tf.cast(both[..., 3], tf.int32)


def augment(image, label, seed, crop_size, *, min_scale=0.5, max_scale=2.0, flip=True,
            pad_value=127.5, ignore_label=255, focus_classes=None, focus_probability=0.0):
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
    return random_crop_flip(image, label, seeds[1], h, w, flip, focus_classes, focus_probability)


def jitter_batch_crop(images, labels, seed, height, width, jitter):
    """One training batch (cropped at ``height + jitter - 1`` x ``width + jitter - 1``) cut to
    ``(height + dy, width + dx)``, ``dy`` and ``dx`` drawn in ``[0, jitter)`` for the batch: its
    size then takes every remainder modulo the output stride (``jitter`` 16 at stride 16), so the
    network learns every alignment of its stride grid to the input's edges, not one."""
    d = tf.random.stateless_uniform([2], seed, 0, jitter, dtype=tf.int32)
    return images[:, :height + d[0], :width + d[1]], labels[:, :height + d[0], :width + d[1]]
