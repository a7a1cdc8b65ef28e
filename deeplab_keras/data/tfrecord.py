"""Optional TFRecord conversion: the encoded image and mask bytes plus their file names, in
shards written atomically. Read them back by passing the files to ``make_dataset``."""
import os

import tensorflow as tf

_FEATURES = {
    "image/encoded": tf.io.FixedLenFeature([], tf.string),
    "image/filename": tf.io.FixedLenFeature([], tf.string),
    "mask/encoded": tf.io.FixedLenFeature([], tf.string),
    "mask/filename": tf.io.FixedLenFeature([], tf.string),
}


def _bytes(value):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def write_tfrecords(pairs, output_prefix, num_shards=1):
    """Write ``pairs`` to ``{output_prefix}-{i:05d}-of-{n:05d}.tfrecord``; returns the file list.

    Files are copied byte for byte (no re-encoding); check them first with
    :func:`deeplab_keras.data.pipeline.check_pairs`."""
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    pairs = list(pairs)
    if not pairs:
        raise ValueError("no (image, mask) pairs to write")
    os.makedirs(os.path.dirname(os.path.abspath(output_prefix)), exist_ok=True)
    files = []
    for shard in range(num_shards):
        path = f"{output_prefix}-{shard:05d}-of-{num_shards:05d}.tfrecord"
        tmp = path + ".tmp"
        with tf.io.TFRecordWriter(tmp) as writer:
            for image_path, mask_path in pairs[shard::num_shards]:
                with open(image_path, "rb") as f:
                    image = f.read()
                with open(mask_path, "rb") as f:
                    mask = f.read()
                example = tf.train.Example(features=tf.train.Features(feature={
                    "image/encoded": _bytes(image), "image/filename": _bytes(os.fspath(image_path).encode()),
                    "mask/encoded": _bytes(mask), "mask/filename": _bytes(os.fspath(mask_path).encode())}))
                writer.write(example.SerializeToString())
        os.replace(tmp, path)
        files.append(path)
    return files


def parse_example(record):
    """A serialized example -> ``(image_bytes, mask_bytes, image_name, mask_name)``."""
    f = tf.io.parse_single_example(record, _FEATURES)
    return f["image/encoded"], f["mask/encoded"], f["image/filename"], f["mask/filename"]
