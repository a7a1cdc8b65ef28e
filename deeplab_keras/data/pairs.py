"""Finding (image, mask) file pairs in each dataset's usual layout.

* ``camvid``: SegNet layout ``{train,val,test}/`` + ``{train,val,test}annot/`` (same names).
* ``voc``: ``VOC2012/JPEGImages`` + ``SegmentationClass`` with ``ImageSets/Segmentation/<split>.txt``;
  split ``train_aug`` reads ``SegmentationClassAug/`` (SBD-augmented index PNGs, see
  :func:`deeplab_keras.data.sbd.sbd_to_png`) and ``train_aug.txt``.
* ``cityscapes``: ``leftImg8bit/<split>/<city>/*_leftImg8bit.png`` + ``gtFine/.../*_gtFine_labelIds.png``.
* ``ade20k``: ``ADEChallengeData2016/images/{training,validation}`` + ``annotations/...``.
* ``folder``: ``<root>/images`` + ``<root>/masks`` (or ``<root>/<split>/{images,masks}``), matched
  by file stem.
"""
import glob
import os

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")


def _stems(folder, exts=IMAGE_EXTS):
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"folder not found: {folder}")
    out = {}
    for name in sorted(os.listdir(folder)):
        stem, ext = os.path.splitext(name)
        if ext.lower() in exts:
            if stem in out:
                raise ValueError(f"two files named {stem!r} in {folder}: "
                                 f"{os.path.basename(out[stem])} and {name}")
            out[stem] = os.path.join(folder, name)
    return out


def _match(image_dir, mask_dir, mask_exts=(".png", ".bmp")):
    images, masks = _stems(image_dir), _stems(mask_dir, mask_exts)
    missing = sorted(set(images) - set(masks))
    if missing:
        raise ValueError(f"{len(missing)} image(s) in {image_dir} have no mask in {mask_dir}, "
                         f"e.g. {missing[:3]}")
    if not images:
        raise ValueError(f"no images ({', '.join(IMAGE_EXTS)}) in {image_dir}")
    return [(images[s], masks[s]) for s in sorted(images)]


def _camvid(root, split):
    return _match(os.path.join(root, split), os.path.join(root, split + "annot"))


def _voc(root, split):
    base = os.path.join(root, "VOC2012") if os.path.isdir(os.path.join(root, "VOC2012")) else root
    mask_dir = "SegmentationClassAug" if split == "train_aug" else "SegmentationClass"
    list_file = os.path.join(base, "ImageSets", "Segmentation", split + ".txt")
    if not os.path.isfile(list_file):
        raise FileNotFoundError(f"split list not found: {list_file}")
    with open(list_file) as f:
        ids = [line.split()[0] for line in f if line.strip()]
    pairs = [(os.path.join(base, "JPEGImages", i + ".jpg"), os.path.join(base, mask_dir, i + ".png"))
             for i in ids]
    for pair in pairs:
        for p in pair:
            if not os.path.isfile(p):
                raise FileNotFoundError(f"{p} (listed in {list_file}) does not exist")
    return pairs


def _cityscapes(root, split):
    images = sorted(glob.glob(os.path.join(root, "leftImg8bit", split, "*", "*_leftImg8bit.png")))
    if not images:
        raise FileNotFoundError(f"no leftImg8bit/{split}/<city>/*_leftImg8bit.png under {root}")
    pairs = []
    for img in images:
        city = os.path.basename(os.path.dirname(img))
        stem = os.path.basename(img)[:-len("_leftImg8bit.png")]
        mask = os.path.join(root, "gtFine", split, city, stem + "_gtFine_labelIds.png")
        if not os.path.isfile(mask):
            raise FileNotFoundError(f"{img} has no mask {mask}")
        pairs.append((img, mask))
    return pairs


def _ade20k(root, split):
    base = os.path.join(root, "ADEChallengeData2016")
    base = base if os.path.isdir(base) else root
    sub = {"train": "training", "val": "validation"}.get(split, split)
    return _match(os.path.join(base, "images", sub), os.path.join(base, "annotations", sub))


def _folder(root, split):
    base = os.path.join(root, split) if split and os.path.isdir(os.path.join(root, split)) else root
    for image_dir, mask_dir in (("images", "masks"), ("images", "labels"), ("image", "mask")):
        if os.path.isdir(os.path.join(base, image_dir)) and os.path.isdir(os.path.join(base, mask_dir)):
            return _match(os.path.join(base, image_dir), os.path.join(base, mask_dir))
    raise FileNotFoundError(f"expected {base}/images and {base}/masks (same file names)")


_LAYOUTS = {"camvid": _camvid, "voc": _voc, "pascal_voc_2012": _voc, "cityscapes": _cityscapes,
            "ade20k": _ade20k, "folder": _folder}


def list_pairs(dataset, root, split="train"):
    """``[(image_path, mask_path), ...]`` for ``split`` of ``dataset`` stored under ``root``.

    ``split`` may join splits with ``+`` (``"train+val"``: the published way to train a final
    model once the recipe is settled on val); each split must exist and no pair may repeat."""
    key = str(dataset).lower()
    if key not in _LAYOUTS:
        raise ValueError(f"Unknown dataset layout {dataset!r}. Known: {', '.join(sorted(_LAYOUTS))}")
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"dataset root not found: {root}")
    parts = str(split).split("+") if split else [split]
    if len(parts) == 1:
        return _LAYOUTS[key](root, split)
    if any(not part.strip() for part in parts) or len(set(parts)) != len(parts):
        raise ValueError(f"split {split!r}: join distinct split names with '+', e.g. 'train+val'")
    pairs = []
    for part in parts:
        if key == "folder" and not os.path.isdir(os.path.join(root, part.strip())):
            # a flat folder stands for any single split; a joined split needs each part's folder
            raise FileNotFoundError(f"split {part.strip()!r} of {split!r}: no folder "
                                    f"{os.path.join(root, part.strip())} (joined splits need "
                                    "<root>/<split>/images and masks for each part)")
        found = _LAYOUTS[key](root, part.strip())
        if not found:
            raise FileNotFoundError(f"split {part.strip()!r} of {split!r} has no image/mask pairs under {root}")
        pairs.extend(found)
    images = [os.path.realpath(image) for image, _ in pairs]
    if len(set(images)) != len(images):
        raise ValueError(f"split {split!r} lists the same image more than once; its parts overlap")
    return pairs
