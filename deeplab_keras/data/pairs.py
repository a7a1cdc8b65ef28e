"""Finding (image, mask) file pairs in each dataset's usual layout.

* ``camvid``: SegNet layout ``{train,val,test}/`` + ``{train,val,test}annot/`` (same names).
* ``voc``: ``VOC2012/JPEGImages`` + ``SegmentationClass`` with ``ImageSets/Segmentation/<split>.txt``;
  split ``train_aug`` reads ``SegmentationClassAug/`` (SBD-augmented index PNGs, see
  :func:`deeplab_keras.data.sbd.sbd_to_png`) and ``train_aug.txt``.
* ``cityscapes``: ``leftImg8bit/<split>/<city>/*_leftImg8bit.png`` + ``gtFine/.../*_gtFine_labelIds.png``.
* ``ade20k``: ``ADEChallengeData2016/images/{training,validation}`` + ``annotations/...``.
* ``folder``: ``<root>/images`` + ``<root>/masks`` (or ``<root>/<split>/{images,masks}``), matched
  by file stem.

Any split may be joined with another (``train+val``) or filtered to some of its sequences
(``train-minus:0006R0``, ``train-only:0006R0``): :func:`parse_split`.
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


#: a split filtered to some of its sequences: ``NAME-minus:SEQ[,SEQ...]`` / ``NAME-only:SEQ[,SEQ...]``
_FILTERS = ("-minus:", "-only:")


def sequence_of(path):
    """The sequence an image belongs to: its file name up to the first ``_`` (CamVid's
    ``0006R0_f02370.png`` -> ``0006R0``; Cityscapes' ``aachen_000000_...`` -> ``aachen``)."""
    return os.path.basename(path).split("_", 1)[0]


def parse_split(split):
    """``split`` -> ``[(name, filter, sequences), ...]``, one per ``+``-joined part; ``filter``
    is None, ``"minus"`` or ``"only"``. Raises ValueError naming the part that is malformed."""
    parts = str(split).split("+")
    if any(not part.strip() for part in parts) or len({p.strip() for p in parts}) != len(parts):
        raise ValueError(f"split {split!r}: join distinct split names with '+', e.g. 'train+val'")
    out = []
    for part in (p.strip() for p in parts):
        for marker in _FILTERS:
            if marker in part:
                name, _, seqs = part.partition(marker)
                seqs = [s.strip() for s in seqs.split(",")]
                if not name or not all(seqs) or len(set(seqs)) != len(seqs):
                    raise ValueError(f"split {part!r}: write NAME{marker}SEQUENCE[,SEQUENCE...], "
                                     f"e.g. 'train{marker}0006R0'")
                out.append((name, marker.strip("-:"), seqs))
                break
        else:
            out.append((part, None, []))
    return out


def split_names(split):
    """The dataset splits a split expression reads (``"train-minus:0006R0+val"`` -> ``["train", "val"]``)."""
    return [name for name, _, _ in parse_split(split)] if split else []


def _filtered(pairs, part, name, how, sequences):
    counts = {}
    for image, _ in pairs:
        counts[sequence_of(image)] = counts.get(sequence_of(image), 0) + 1
    unknown = [s for s in sequences if s not in counts]
    if unknown:
        known = ", ".join(f"{s} ({n})" for s, n in sorted(counts.items()))
        raise ValueError(f"split {part!r}: no image of split {name!r} is of sequence "
                         f"{', '.join(unknown)}; its sequences (images): {known}")
    keep = [(i, m) for i, m in pairs if (sequence_of(i) in sequences) == (how == "only")]
    if not keep:
        raise ValueError(f"split {part!r} leaves no image of split {name!r} "
                         f"({len(pairs)} images, all of sequences {', '.join(sequences)})")
    return keep


def list_pairs(dataset, root, split="train"):
    """``[(image_path, mask_path), ...]`` for ``split`` of ``dataset`` stored under ``root``.

    ``split`` may join splits with ``+`` (``"train+val"``: the published way to train a final
    model once the recipe is settled on val); each split must exist and no pair may repeat.
    A part may keep or drop whole sequences (a sequence: the file name up to its first ``_``):
    ``"train-minus:0006R0"`` is train without sequence 0006R0, ``"train-only:0006R0"`` that
    sequence alone (a hold-out of train to choose settings on, val kept as the check)."""
    key = str(dataset).lower()
    if key not in _LAYOUTS:
        raise ValueError(f"Unknown dataset layout {dataset!r}. Known: {', '.join(sorted(_LAYOUTS))}")
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"dataset root not found: {root}")
    if not split:
        return _LAYOUTS[key](root, split)
    parts = parse_split(split)
    pairs = []
    for name, how, sequences in parts:
        if len(parts) > 1 and key == "folder" and not os.path.isdir(os.path.join(root, name)):
            # a flat folder stands for any single split; a joined split needs each part's folder
            raise FileNotFoundError(f"split {name!r} of {split!r}: no folder "
                                    f"{os.path.join(root, name)} (joined splits need "
                                    "<root>/<split>/images and masks for each part)")
        found = _LAYOUTS[key](root, name)
        if not found and len(parts) > 1:
            raise FileNotFoundError(f"split {name!r} of {split!r} has no image/mask pairs under {root}")
        if how:
            found = _filtered(found, f"{name}-{how}:{','.join(sequences)}", name, how, sequences)
        pairs.extend(found)
    if len(parts) > 1:
        images = [os.path.realpath(image) for image, _ in pairs]
        if len(set(images)) != len(images):
            raise ValueError(f"split {split!r} lists the same image more than once; its parts overlap")
    return pairs
