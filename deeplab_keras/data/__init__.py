"""Segmentation datasets as ``tf.data`` pipelines: PASCAL VOC 2012 (+SBD), Cityscapes, ADE20K,
CamVid and any folder of image/mask pairs.

    from deeplab_keras import data
    pairs = data.list_pairs("camvid", "../shared/data/camvid", "train")
    ds = data.make_dataset(pairs, dataset_info="camvid", batch_size=8, crop_size=(360, 360),
                           training=True, seed=0)
"""
from deeplab_keras.data.datasets import DATASETS, DatasetInfo, custom_info, get_dataset_info
from deeplab_keras.data.pairs import list_pairs
from deeplab_keras.data.pipeline import check_pairs, make_dataset, resolve_info
from deeplab_keras.data.sbd import sbd_to_png
from deeplab_keras.data.stats import class_pixel_counts
from deeplab_keras.data.tfrecord import write_tfrecords

__all__ = ["DATASETS", "DatasetInfo", "custom_info", "get_dataset_info", "list_pairs",
           "make_dataset", "check_pairs", "resolve_info", "class_pixel_counts", "write_tfrecords", "sbd_to_png"]
