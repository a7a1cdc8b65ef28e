"""``make_dataset``: a ``tf.data`` pipeline of (image float32 0-255 HxWx3, label int32 HxW) batches
from image/mask pairs or TFRecord files, with labels mapped to train ids and checked.

Bad data is named: files are checked before the pipeline is built (``check="header"``: exists,
readable, same size; ``check="full"``: also decodes every mask and checks its values), and inside
the pipeline every pair is checked again (size and label values) with the file path in the error.
"""
import os

import numpy as np
import tensorflow as tf

from deeplab_keras.data import augment as aug
from deeplab_keras.data.datasets import DatasetInfo, custom_info, get_dataset_info


def resolve_info(dataset_info=None, num_classes=None, ignore_label=None):
    """A :class:`DatasetInfo` from a name, an info, or ``num_classes`` (+ ``ignore_label``)."""
    if dataset_info is not None:
        info = dataset_info if isinstance(dataset_info, DatasetInfo) else get_dataset_info(dataset_info)
        if num_classes is not None and num_classes != info.num_classes:
            raise ValueError(f"num_classes={num_classes} but dataset {info.name!r} has "
                             f"{info.num_classes} classes")
        return info
    if num_classes is None:
        raise ValueError("give dataset_info (e.g. 'camvid') or num_classes (+ ignore_label)")
    return custom_info(num_classes, 255 if ignore_label is None else ignore_label)


def _image_size(path, what):
    from PIL import Image
    try:
        with Image.open(path) as im:
            return im.size, im.mode
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} file not found: {path}") from None
    except Exception as err:  # PIL raises many types for corrupt files
        raise ValueError(f"unreadable {what} file {path}: {err}") from None


def check_pairs(pairs, info, level="header"):
    """Check every pair before training. ``header``: both files readable, same size, the mask
    single-channel (or a colour mask the dataset knows how to map). ``full``: also decode each
    mask and check its values. Raises ValueError/FileNotFoundError naming the file."""
    if level in (None, False, "none"):
        return
    if level not in ("header", "full"):
        raise ValueError(f"check must be 'header', 'full' or None, got {level!r}")
    from PIL import Image
    lut = info.lookup_table()
    for image_path, mask_path in pairs:
        isize, _ = _image_size(image_path, "image")
        msize, mode = _image_size(mask_path, "mask")
        if isize != msize:
            raise ValueError(f"mask size {msize[0]}x{msize[1]} differs from its image "
                             f"{isize[0]}x{isize[1]}: {mask_path} vs {image_path}")
        if info.mask_palette is None and mode == "P":
            raise ValueError(f"mask {mask_path} is a palette PNG: TensorFlow decodes those to "
                             "colours, not indices. Save masks as 8-bit grayscale PNGs of class "
                             "indices (PIL: Image.fromarray(np.asarray(Image.open(p))).save(p))")
        if info.mask_palette is None and mode not in ("L", "I", "I;16", "1"):
            raise ValueError(f"mask {mask_path} has mode {mode}; expected a single-channel PNG "
                             "of class indices")
        if level == "full" and mode != "RGB":  # colour masks are checked in the pipeline
            try:
                with Image.open(mask_path) as im:
                    values = np.unique(np.asarray(im))  # P mode: palette indices
            except Exception as err:
                raise ValueError(f"unreadable mask file {mask_path}: {err}") from None
            mapped = values if lut is None else lut[np.clip(values, 0, 255)]
            bad = values[(mapped < 0) | ((mapped >= info.num_classes) & (mapped != info.ignore_label))]
            if bad.size:
                raise ValueError(f"mask {mask_path} has label values {bad.tolist()} outside classes "
                                 f"0..{info.num_classes - 1} and the ignore label {info.ignore_label}")


def _is_tfrecords(source):
    if isinstance(source, (str, os.PathLike)):
        return True
    return bool(source) and all(isinstance(s, (str, os.PathLike)) for s in source)


def _decode(image_bytes, mask_bytes, image_name, mask_name, info, lut, color_table):
    image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    raw = tf.io.decode_image(mask_bytes, channels=0, expand_animations=False)
    if color_table is not None:  # palette/colour masks (VOC); grayscale ones hold indices
        def from_colours():
            rgb = tf.cast(raw[..., :3], tf.int32)
            return color_table.lookup(rgb[..., 0] * 65536 + rgb[..., 1] * 256 + rgb[..., 2])
        label = tf.cond(tf.equal(tf.shape(raw)[-1], 1),
                        lambda: tf.cast(raw[..., 0], tf.int32), from_colours)
    else:
        one_channel = tf.debugging.Assert(tf.equal(tf.shape(raw)[-1], 1), [
            "mask is not single-channel (expected a PNG of class indices):", mask_name])
        with tf.control_dependencies([one_channel]):
            label = tf.cast(raw[..., 0], tf.int32)
        if lut is not None:
            label = tf.gather(lut, tf.clip_by_value(label, 0, 255))
    valid = ((label >= 0) & (label < info.num_classes)) | tf.equal(label, info.ignore_label)
    checks = [
        tf.debugging.Assert(tf.reduce_all(tf.equal(tf.shape(image)[:2], tf.shape(label)[:2])), [
            "mask size differs from its image:", mask_name, tf.shape(label), image_name,
            tf.shape(image)]),
        tf.debugging.Assert(tf.reduce_all(valid), [
            f"mask has label values outside classes 0..{info.num_classes - 1} and the ignore "
            f"label {info.ignore_label} (or unknown colours/raw ids; -1 shown for those):", mask_name,
            "e.g. value", tf.reduce_max(tf.where(valid, -1, label))]),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(image), tf.identity(label)


def _records(files):
    files = [os.fspath(files)] if isinstance(files, (str, os.PathLike)) else [os.fspath(f) for f in files]
    for f in files:
        if not os.path.isfile(f):
            raise FileNotFoundError(f"TFRecord file not found: {f}")
    from deeplab_keras.data.tfrecord import parse_example
    return tf.data.Dataset.from_tensor_slices(files).interleave(
        tf.data.TFRecordDataset, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    ).map(parse_example), len(files)


def make_dataset(pairs, *, dataset_info=None, num_classes=None, ignore_label=None, batch_size=8,
                 crop_size=None, training=False, seed=None, min_scale=0.5, max_scale=2.0,
                 flip=True, pad_value=127.5, shuffle=None, cache=False, repeat=False,
                 drop_remainder=None, check="header", crop_jitter=0, focus_classes=None,
                 focus_probability=0.5):
    """A batched ``tf.data.Dataset`` of ``(image float32 0-255 [B,H,W,3], label int32 [B,H,W])``.

    Args:
        pairs: list of ``(image_path, mask_path)`` (from :func:`list_pairs`) or TFRecord file(s)
            written by :func:`write_tfrecords`.
        dataset_info: a name in ``DATASETS`` or a :class:`DatasetInfo`; else give ``num_classes``
            and ``ignore_label`` (default 255) for masks that already hold train ids.
        crop_size: ``(height, width)``. Training: random crop of this size (after padding with the
            ignore label). Evaluation: pad to at least this size. None: keep full images (batches
            of different sizes are padded with ``pad_value`` / the ignore label).
        training: shuffle + random scale in ``[min_scale, max_scale]``, crop, flip, drop
            the last incomplete batch.
        seed: makes shuffling and augmentation reproducible (stateless random ops).
        crop_jitter: training with ``crop_size``: each batch is cropped at ``crop_size`` plus
            ``(dy, dx)``, both drawn per batch in ``[0, crop_jitter)`` (16: every alignment of a
            stride-16 grid to the input); 0 or 1: every batch at ``crop_size``.
        focus_classes: training with ``crop_size``: class ids whose pixels a crop is placed
            around with ``focus_probability`` (when the image has one), instead of anywhere:
            class-balanced crops for rare classes. None: every crop anywhere.
        cache: keep decoded images in memory (small datasets such as CamVid).
    """
    info = resolve_info(dataset_info, num_classes, ignore_label)
    lut = info.lookup_table()
    color_table = None
    if info.mask_palette is not None:
        keys = [r * 65536 + g * 256 + b for (r, g, b), _ in info.mask_palette]
        color_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(keys, tf.int32),
                                                tf.constant([v for _, v in info.mask_palette], tf.int32)),
            default_value=-1)
    if crop_size is not None:
        crop_size = (int(crop_size[0]), int(crop_size[1]))
    if seed is None:
        seed = int(np.random.randint(0, 2**31 - 1))
    shuffle = training if shuffle is None else shuffle
    drop_remainder = training if drop_remainder is None else drop_remainder

    if _is_tfrecords(pairs):
        ds, count = _records(pairs)
    else:
        pairs = [(os.fspath(i), os.fspath(m)) for i, m in pairs]
        if not pairs:
            raise ValueError("no (image, mask) pairs given")
        check_pairs(pairs, info, check)
        count = len(pairs)
        ds = tf.data.Dataset.from_tensor_slices(([p[0] for p in pairs], [p[1] for p in pairs]))
        ds = ds.map(lambda i, m: (tf.io.read_file(i), tf.io.read_file(m), i, m),
                    num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.map(lambda ib, mb, i, m: _decode(ib, mb, i, m, info, lut, color_table),
                num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        ds = ds.map(lambda im, lb: (tf.cast(im, tf.uint8), tf.cast(lb, tf.uint8 if info.ignore_label < 256 else tf.int32))).cache()
    if shuffle:
        ds = ds.shuffle(max(count, 64) if cache or not _is_tfrecords(pairs) else 1024, seed=seed,
                        reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.map(lambda im, lb: (tf.cast(im, tf.float32), tf.cast(lb, tf.int32)))
    jitter = int(crop_jitter or 0) if training and crop_size is not None else 0
    if jitter > 1:  # crop larger, then each batch is cut to its own size (below)
        final_crop, crop_size = crop_size, (crop_size[0] + jitter - 1, crop_size[1] + jitter - 1)
    if training:
        ds = tf.data.Dataset.zip((ds, tf.data.Dataset.random(seed=seed).batch(2)))
        ds = ds.map(lambda pair, s: aug.augment(
            pair[0], pair[1], s, crop_size, min_scale=min_scale, max_scale=max_scale, flip=flip,
            pad_value=pad_value, ignore_label=info.ignore_label, focus_classes=focus_classes,
            focus_probability=focus_probability), num_parallel_calls=tf.data.AUTOTUNE)
    elif crop_size is not None:
        ds = ds.map(lambda im, lb: aug.pad_to_size(im, lb, crop_size[0], crop_size[1], pad_value,
                                                   info.ignore_label))
    if training and crop_size is not None:
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
        if jitter > 1:
            ds = tf.data.Dataset.zip((ds, tf.data.Dataset.random(seed=seed + 1).batch(2)))
            ds = ds.map(lambda batch, s: aug.jitter_batch_crop(batch[0], batch[1], s, final_crop[0],
                                                               final_crop[1], jitter))
    else:
        ds = ds.padded_batch(batch_size, padded_shapes=([None, None, 3], [None, None]),
                             padding_values=(tf.constant(pad_value, tf.float32),
                                             tf.constant(info.ignore_label, tf.int32)),
                             drop_remainder=drop_remainder)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)
