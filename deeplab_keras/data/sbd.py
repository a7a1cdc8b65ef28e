"""PASCAL VOC 2012 + SBD "train_aug" (10,582 images), the usual DeepLab training set.

:func:`sbd_to_png` converts SBD's ``cls/*.mat`` and VOC's palette ``SegmentationClass`` PNGs to
index PNGs in ``VOC2012/SegmentationClassAug`` and writes ``ImageSets/Segmentation/train_aug.txt``
(SBD train+val and VOC train, minus VOC val), so ``list_pairs("voc", root, "train_aug")`` works.
"""
import os

import numpy as np


def _save_png(array, path):
    from PIL import Image
    tmp = path + ".tmp.png"
    Image.fromarray(array.astype(np.uint8), "L").save(tmp)
    os.replace(tmp, path)


def read_sbd_mat(path):
    """The class-index mask of one SBD ``cls/<id>.mat`` file (``GTcls.Segmentation``)."""
    from scipy.io import loadmat
    try:
        mat = loadmat(path, mat_dtype=True, squeeze_me=True, struct_as_record=False)
        return np.asarray(mat["GTcls"].Segmentation, np.uint8)
    except Exception as err:
        raise ValueError(f"unreadable SBD annotation {path}: {err}") from None


def sbd_to_png(voc_root, sbd_root):
    """Build ``SegmentationClassAug`` + ``train_aug.txt`` under ``voc_root`` (the folder holding
    ``JPEGImages``) from SBD's ``dataset/`` folder (``cls/``, ``train.txt``, ``val.txt``).
    VOC's own masks win where both exist. Returns the number of train_aug ids."""
    from PIL import Image
    sets = os.path.join(voc_root, "ImageSets", "Segmentation")

    def ids(path):
        with open(path) as f:
            return [line.split()[0] for line in f if line.strip()]

    voc_train, voc_val = ids(os.path.join(sets, "train.txt")), set(ids(os.path.join(sets, "val.txt")))
    sbd_ids = [i for name in ("train.txt", "val.txt") if os.path.isfile(os.path.join(sbd_root, name))
               for i in ids(os.path.join(sbd_root, name))]
    out = os.path.join(voc_root, "SegmentationClassAug")
    os.makedirs(out, exist_ok=True)
    voc_masks = os.path.join(voc_root, "SegmentationClass")
    for name in sorted(os.listdir(voc_masks)) if os.path.isdir(voc_masks) else []:
        if name.endswith(".png"):
            with Image.open(os.path.join(voc_masks, name)) as im:
                if im.mode != "P":
                    raise ValueError(f"{os.path.join(voc_masks, name)}: expected VOC's palette PNG")
                _save_png(np.asarray(im), os.path.join(out, name))
    for i in sbd_ids:
        target = os.path.join(out, i + ".png")
        if not os.path.isfile(target):
            _save_png(read_sbd_mat(os.path.join(sbd_root, "cls", i + ".mat")), target)
    train_aug = sorted((set(sbd_ids) | set(voc_train)) - voc_val)
    tmp = os.path.join(sets, "train_aug.txt.tmp")
    with open(tmp, "w") as f:
        f.write("\n".join(train_aug) + "\n")
    os.replace(tmp, os.path.join(sets, "train_aug.txt"))
    return len(train_aug)
