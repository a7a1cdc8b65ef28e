"""What each supported dataset is: classes, ignore label, palette, and how raw mask values map to
train ids. ``DATASETS[name]`` is the catalogue used by :func:`deeplab_keras.data.make_dataset`."""
import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    name: str
    num_classes: int
    ignore_label: int
    labels: tuple
    palette: tuple
    #: raw mask value -> train id (values not listed are errors); None = identity
    label_map: tuple = None
    #: RGB colour -> raw value, for masks stored as colour/palette PNGs (VOC); None = indices
    mask_palette: tuple = None

    def lookup_table(self):
        """``label_map`` as a 256-entry uint8->int32 array; unmapped values get -1 (an error)."""
        if self.label_map is None:
            return None
        table = np.full(256, -1, np.int32)
        for raw, train_id in self.label_map:
            table[raw] = train_id
        return table


def bit_palette(n=256):
    """The PASCAL VOC colour map (bit interleaving), also used for ADE20K here."""
    out = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out.append((r, g, b))
    return tuple(out)


_VOC_LABELS = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
               "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
               "sheep", "sofa", "train", "tvmonitor")

_CAMVID = (("Sky", (128, 128, 128)), ("Building", (128, 0, 0)), ("Pole", (192, 192, 128)),
           ("Road", (128, 64, 128)), ("Pavement", (60, 40, 222)), ("Tree", (128, 128, 0)),
           ("SignSymbol", (192, 128, 128)), ("Fence", (64, 64, 128)), ("Car", (64, 0, 128)),
           ("Pedestrian", (64, 64, 0)), ("Bicyclist", (0, 128, 192)))

# Cityscapes: (labelId, trainId, name, colour) for the 19 evaluated classes; every other labelId
# (0-6, 9, 10, 14-16, 18, 29, 30) is ignored.
_CITYSCAPES = ((7, "road", (128, 64, 128)), (8, "sidewalk", (244, 35, 232)),
               (11, "building", (70, 70, 70)), (12, "wall", (102, 102, 156)),
               (13, "fence", (190, 153, 153)), (17, "pole", (153, 153, 153)),
               (19, "traffic light", (250, 170, 30)), (20, "traffic sign", (220, 220, 0)),
               (21, "vegetation", (107, 142, 35)), (22, "terrain", (152, 251, 152)),
               (23, "sky", (70, 130, 180)), (24, "person", (220, 20, 60)),
               (25, "rider", (255, 0, 0)), (26, "car", (0, 0, 142)), (27, "truck", (0, 0, 70)),
               (28, "bus", (0, 60, 100)), (31, "train", (0, 80, 100)),
               (32, "motorcycle", (0, 0, 230)), (33, "bicycle", (119, 11, 32)))

_ADE20K_LABELS = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass",
    "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain",
    "chair", "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field",
    "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp", "bathtub", "railing",
    "cushion", "base", "box", "column", "signboard", "chest of drawers", "counter", "sand", "sink",
    "skyscraper", "fireplace", "refrigerator", "grandstand", "path", "stairs", "runway", "case",
    "pool table", "pillow", "screen door", "stairway", "river", "bridge", "bookcase", "blind",
    "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove", "palm",
    "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus",
    "towel", "light", "truck", "tower", "chandelier", "awning", "streetlight", "booth",
    "television receiver", "airplane", "dirt track", "apparel", "pole", "land", "bannister",
    "escalator", "ottoman", "bottle", "buffet", "poster", "stage", "van", "ship", "fountain",
    "conveyer belt", "canopy", "washer", "plaything", "swimming pool", "stool", "barrel", "basket",
    "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball", "food", "step", "tank",
    "trade name", "microwave", "pot", "animal", "bicycle", "lake", "dishwasher", "screen",
    "blanket", "sculpture", "hood", "sconce", "vase", "traffic light", "tray", "ashcan", "fan",
    "pier", "crt screen", "plate", "monitor", "bulletin board", "shower", "radiator", "glass",
    "clock", "flag")
assert len(_ADE20K_LABELS) == 150

_BITS = bit_palette()

DATASETS = {
    "voc": DatasetInfo(
        "voc", 21, 255, _VOC_LABELS, _BITS[:21],
        # SegmentationClass PNGs are palette images: colour -> index (255 = border/ignore)
        mask_palette=tuple((c, i) for i, c in enumerate(_BITS[:21])) + ((_BITS[255], 255),)),
    "cityscapes": DatasetInfo(
        "cityscapes", 19, 255, tuple(n for _, n, _ in _CITYSCAPES),
        tuple(c for _, _, c in _CITYSCAPES),
        label_map=tuple((raw, 255) for raw in range(34) if raw not in {r for r, _, _ in _CITYSCAPES})
        + tuple((raw, i) for i, (raw, _, _) in enumerate(_CITYSCAPES)) + ((255, 255),)),
    "ade20k": DatasetInfo(
        "ade20k", 150, 255, _ADE20K_LABELS, _BITS[1:151],
        label_map=((0, 255),) + tuple((i + 1, i) for i in range(150))),
    "camvid": DatasetInfo("camvid", 11, 11, tuple(n for n, _ in _CAMVID),
                          tuple(c for _, c in _CAMVID)),
}
DATASETS["pascal_voc_2012"] = DATASETS["voc"]


def get_dataset_info(name):
    key = str(name).lower()
    if key not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}. Known: {', '.join(sorted(DATASETS))} "
                         "(or pass num_classes and ignore_label for your own data)")
    return DATASETS[key]


#: the most classes a dataset may declare (bounds confusion matrices and class counts)
MAX_CLASSES = 4096


def custom_info(num_classes, ignore_label=255, labels=None, palette=None, name="folder"):
    """A :class:`DatasetInfo` for your own data (mask values are train ids already)."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if num_classes > MAX_CLASSES:  # a confusion matrix of 60000 classes is 26.8 GiB
        raise ValueError(f"num_classes={num_classes} is more than {MAX_CLASSES}, the bound on "
                         "class counts and confusion matrices; give the number of classes your "
                         "masks use (--num-classes)")
    if ignore_label is not None and 0 <= ignore_label < num_classes:
        raise ValueError(f"ignore_label={ignore_label} is one of the {num_classes} classes "
                         f"(0..{num_classes - 1}); use a value outside them, e.g. 255")
    labels = tuple(labels) if labels else tuple(f"class_{i}" for i in range(num_classes))
    if len(labels) != num_classes:
        raise ValueError(f"{len(labels)} labels given for num_classes={num_classes}")
    return DatasetInfo(name, int(num_classes), ignore_label, labels,
                       tuple(map(tuple, palette)) if palette else _BITS[:num_classes])
