"""Segmentation datasets as ``tf.data`` pipelines: PASCAL VOC 2012 (+SBD), Cityscapes, ADE20K,
CamVid and any folder of image/mask pairs.

    from deeplab_keras import data
    pairs = data.list_pairs("camvid", "../shared/data/camvid", "train")
    ds = data.make_dataset(pairs, dataset_info="camvid", batch_size=8, crop_size=(360, 360),
                           training=True, seed=0)
"""
import importlib as _importlib

# Lazy (PEP 562): the dataset table (datasets.py) is numpy-only and the command line reads it
# without loading TensorFlow; the tf.data parts load on first use.
_LAZY = {"DATASETS": "datasets", "DatasetInfo": "datasets", "custom_info": "datasets",
         "get_dataset_info": "datasets", "list_pairs": "pairs", "split_names": "pairs", "check_pairs": "pipeline",
         "make_dataset": "pipeline", "resolve_info": "pipeline", "sbd_to_png": "sbd",
         "class_pixel_counts": "stats", "write_tfrecords": "tfrecord"}

__all__ = ["DATASETS", "DatasetInfo", "custom_info", "get_dataset_info", "list_pairs", "split_names",
           "make_dataset", "check_pairs", "resolve_info", "class_pixel_counts", "write_tfrecords", "sbd_to_png"]


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'deeplab_keras.data' has no attribute {name!r}")
    value = getattr(_importlib.import_module(f"deeplab_keras.data.{_LAZY[name]}"), name)
    globals()[name] = value
    return value
