"""Data pipelines: layouts, label mapping, seeded augmentation, TFRecords, bad data named."""
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from deeplab_keras import data

CAMVID = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "camvid")


def _write(path, array, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array, mode).save(path)


def make_folder(root, n=4, size=(24, 32), num_classes=3, ignore=255, seed=0):
    rng = np.random.default_rng(seed)
    for i in range(n):
        label = rng.integers(0, num_classes, size).astype(np.uint8)
        label[0, :3] = ignore
        image = np.stack([label * 40] * 3, -1).astype(np.uint8)  # colour encodes the class
        _write(os.path.join(root, "images", f"im{i}.png"), image)
        _write(os.path.join(root, "masks", f"im{i}.png"), label)
    return data.list_pairs("folder", root)


def test_folder_pipeline_shapes_and_eval_padding(tmp_path):
    pairs = make_folder(tmp_path)
    _write(str(tmp_path / "images" / "im4.png"), np.zeros((20, 30, 3), np.uint8))
    _write(str(tmp_path / "masks" / "im4.png"), np.full((20, 30), 255, np.uint8))
    pairs = data.list_pairs("folder", tmp_path)
    assert len(pairs) == 5
    train = data.make_dataset(pairs, num_classes=3, batch_size=2, crop_size=(16, 16),
                              training=True, seed=1)
    x, y = next(iter(train))
    assert x.shape == (2, 16, 16, 3) and x.dtype == tf.float32
    assert y.shape == (2, 16, 16) and y.dtype == tf.int32
    batches = list(data.make_dataset(pairs, num_classes=3, batch_size=5))  # mixed sizes: padded
    x, y = batches[0]
    assert x.shape == (5, 24, 32, 3)
    assert np.all(y.numpy()[4, 20:, :] == 255) and np.all(x.numpy()[4, 20:, :] == 127.5)


def test_augmentation_is_seeded_and_keeps_image_and_label_aligned(tmp_path):
    pairs = make_folder(tmp_path, n=4)

    def batches(seed, **kw):
        ds = data.make_dataset(pairs, num_classes=3, batch_size=2, crop_size=(20, 20),
                               training=True, seed=seed, **kw)
        return [(x.numpy(), y.numpy()) for x, y in ds]

    a, b, c = batches(3), batches(3), batches(4)
    assert all(np.array_equal(p[0], q[0]) and np.array_equal(p[1], q[1]) for p, q in zip(a, b))
    assert not all(np.array_equal(p[1], q[1]) for p, q in zip(a, c))
    for x, y in batches(5, min_scale=1.0, max_scale=1.0):  # no resampling: exact alignment
        keep = y != 255
        assert np.array_equal(x[..., 0][keep], y[keep] * 40.0)
    for x, y in batches(6, min_scale=0.5, max_scale=0.6):  # smaller than the crop: padded
        assert np.all(x[y == 255].min() >= 0) and (y == 255).sum() > 0.3 * y.size


def test_dataset_label_maps(tmp_path):
    city = tmp_path / "cs"
    ids = np.array([[7, 8, 26, 0], [33, 1, 24, 255]], np.uint8)
    _write(str(city / "leftImg8bit/val/aachen/a_000000_000019_leftImg8bit.png"), np.zeros((2, 4, 3), np.uint8))
    _write(str(city / "gtFine/val/aachen/a_000000_000019_gtFine_labelIds.png"), ids)
    pairs = data.list_pairs("cityscapes", city, "val")
    _, y = next(iter(data.make_dataset(pairs, dataset_info="cityscapes", batch_size=1)))
    assert y.numpy()[0].tolist() == [[0, 1, 13, 255], [18, 255, 11, 255]]

    ade = tmp_path / "ADEChallengeData2016"
    _write(str(ade / "images/validation/x.jpg"), np.zeros((2, 3, 3), np.uint8))
    _write(str(ade / "annotations/validation/x.png"), np.array([[0, 1, 150], [2, 0, 0]], np.uint8))
    _, y = next(iter(data.make_dataset(data.list_pairs("ade20k", tmp_path, "val"),
                                       dataset_info="ade20k", batch_size=1)))
    assert y.numpy()[0].tolist() == [[255, 0, 149], [1, 255, 255]]

    voc = tmp_path / "VOC2012"
    palette = data.DATASETS["voc"].palette
    mask = Image.fromarray(np.array([[0, 15, 255]], np.uint8), "P")
    mask.putpalette([v for c in (palette + ((0, 0, 0),) * 234 + ((224, 224, 192),)) for v in c])
    os.makedirs(voc / "SegmentationClass")
    mask.save(voc / "SegmentationClass" / "2007_1.png")
    _write(str(voc / "JPEGImages" / "2007_1.jpg"), np.zeros((1, 3, 3), np.uint8))
    os.makedirs(voc / "ImageSets" / "Segmentation")
    (voc / "ImageSets" / "Segmentation" / "val.txt").write_text("2007_1\n")
    _, y = next(iter(data.make_dataset(data.list_pairs("voc", tmp_path, "val"),
                                       dataset_info="voc", batch_size=1)))
    assert y.numpy()[0].tolist() == [[0, 15, 255]]


def test_tfrecords_round_trip(tmp_path):
    pairs = make_folder(tmp_path / "d", n=3)
    files = data.write_tfrecords(pairs, str(tmp_path / "rec" / "train"), num_shards=2)
    assert [os.path.basename(f) for f in files] == ["train-00000-of-00002.tfrecord",
                                                    "train-00001-of-00002.tfrecord"]
    from_files = sorted(y.numpy().tobytes() for _, y in data.make_dataset(pairs, num_classes=3, batch_size=1))
    from_records = sorted(y.numpy().tobytes() for _, y in data.make_dataset(files, num_classes=3, batch_size=1))
    assert from_files == from_records


def test_bad_data_is_named(tmp_path):
    pairs = make_folder(tmp_path, n=2)
    bad_mask = pairs[1][1]
    _write(bad_mask, np.zeros((10, 10), np.uint8))  # size differs from its image
    with pytest.raises(ValueError, match=r"differs from its image.*im1\.png"):
        data.make_dataset(pairs, num_classes=3)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"mask size differs[\s\S]*im1\.png"):
        list(data.make_dataset(pairs, num_classes=3, check=None))

    _write(bad_mask, np.full((24, 32), 7, np.uint8))  # label 7 with 3 classes
    with pytest.raises(ValueError, match=r"im1\.png has label values \[7\]"):
        data.make_dataset(pairs, num_classes=3, check="full")
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"outside classes 0..2[\s\S]*im1\.png"):
        list(data.make_dataset(pairs, num_classes=3))

    with open(pairs[0][0], "wb") as f:  # corrupt image
        f.write(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ValueError, match=r"unreadable image file .*im0\.png"):
        data.make_dataset(pairs, num_classes=3)
    Image.fromarray(np.zeros((24, 32), np.uint8), "P").save(bad_mask)
    with pytest.raises(ValueError, match=r"im1\.png is a palette PNG"):
        data.make_dataset(pairs[1:], num_classes=3)
    os.remove(pairs[0][1])
    with pytest.raises(ValueError, match=r"have no mask"):
        data.list_pairs("folder", tmp_path)
    with pytest.raises(ValueError, match="ignore_label=2 is one of the 3 classes"):
        data.make_dataset(pairs, num_classes=3, ignore_label=2)


def test_class_pixel_counts(tmp_path):
    pairs = make_folder(tmp_path, n=2, size=(4, 5))
    pixels, images = data.class_pixel_counts(data.make_dataset(pairs, num_classes=3, batch_size=2), 3)
    labels = [np.asarray(Image.open(m)) for _, m in pairs]
    expected = sum(np.bincount(l[l < 3], minlength=3) for l in labels)
    assert pixels.tolist() == expected.tolist()
    assert images.tolist() == [sum((l == c).any() for l in labels) for c in range(3)]


@pytest.mark.skipif(not os.path.isdir(CAMVID), reason="../shared/data/camvid (real CamVid) not present")
def test_real_camvid():
    info = data.DATASETS["camvid"]
    assert info.num_classes == 11 and info.ignore_label == 11 and info.labels[0] == "Sky"
    assert len(data.list_pairs("camvid", CAMVID, "train")) == 367
    pairs = data.list_pairs("camvid", CAMVID, "val")[:3]
    assert len(data.list_pairs("camvid", CAMVID, "val")) == 101
    x, y = next(iter(data.make_dataset(pairs, dataset_info="camvid", batch_size=3, check="full")))
    assert x.shape == (3, 360, 480, 3) and y.shape == (3, 360, 480)
    assert set(np.unique(y.numpy())) <= set(range(12)) and len(np.unique(y.numpy())) > 5
    x, y = next(iter(data.make_dataset(pairs, dataset_info="camvid", batch_size=2, training=True,
                                       crop_size=(97, 97), seed=0)))
    assert x.shape == (2, 97, 97, 3) and y.numpy().max() <= 11


def test_sbd_train_aug(tmp_path):
    from scipy.io import savemat
    voc = tmp_path / "VOC2012"
    palette = data.DATASETS["voc"].palette
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        os.makedirs(voc / sub)
    for i in ("a", "b", "c"):
        _write(str(voc / "JPEGImages" / f"{i}.jpg"), np.zeros((2, 3, 3), np.uint8))
    mask = Image.fromarray(np.array([[1, 2, 255], [0, 0, 0]], np.uint8), "P")
    mask.putpalette([v for c in (palette + ((0, 0, 0),) * 234 + ((224, 224, 192),)) for v in c])
    mask.save(voc / "SegmentationClass" / "a.png")
    (voc / "ImageSets/Segmentation/train.txt").write_text("a\n")
    (voc / "ImageSets/Segmentation/val.txt").write_text("c\n")
    sbd = tmp_path / "sbd"
    os.makedirs(sbd / "cls")
    for i in ("b", "c"):
        savemat(sbd / "cls" / f"{i}.mat",
                {"GTcls": {"Segmentation": np.array([[3, 3, 0], [20, 0, 255]], np.uint8)}})
    (sbd / "train.txt").write_text("b\nc\n")
    assert data.sbd_to_png(str(voc), str(sbd)) == 2  # a (VOC train) + b; c is VOC val
    pairs = data.list_pairs("voc", tmp_path, "train_aug")
    labels = [y.numpy()[0].tolist() for _, y in data.make_dataset(pairs, dataset_info="voc",
                                                                  batch_size=1, check="full")]
    assert labels == [[[1, 2, 255], [0, 0, 0]], [[3, 3, 0], [20, 0, 255]]]
    savemat(sbd / "cls" / "b.mat", {"other": 1})
    os.remove(voc / "SegmentationClassAug" / "b.png")
    with pytest.raises(ValueError, match=r"unreadable SBD annotation .*b\.mat"):
        data.sbd_to_png(str(voc), str(sbd))


def test_joined_splits_train_plus_val(tmp_path):
    """``train+val`` (how a final model is trained once the recipe is settled on val) is the
    concatenation of both splits; a missing part or overlapping parts are named, not merged."""
    for split, n in (("train", 3), ("val", 2)):
        for i in range(n):
            label = np.full((8, 8), i, np.uint8)
            _write(str(tmp_path / split / f"{split}{i}.png"), np.stack([label] * 3, -1))
            _write(str(tmp_path / f"{split}annot" / f"{split}{i}.png"), label)
    joined = data.list_pairs("camvid", tmp_path, "train+val")
    assert joined == data.list_pairs("camvid", tmp_path, "train") + data.list_pairs("camvid", tmp_path, "val")
    assert len(joined) == 5
    with pytest.raises(FileNotFoundError, match="folder not found"):
        data.list_pairs("camvid", tmp_path, "train+test")
    with pytest.raises(ValueError, match="distinct split names"):
        data.list_pairs("camvid", tmp_path, "train+train")
    with pytest.raises(ValueError, match="distinct split names"):
        data.list_pairs("camvid", tmp_path, "train+")
    make_folder(tmp_path / "flat", n=2)  # a flat folder has no splits: joining two is refused
    with pytest.raises(FileNotFoundError, match="joined splits need"):
        data.list_pairs("folder", tmp_path / "flat", "train+val")
    make_folder(tmp_path / "flat" / "train", n=2)  # never mixes the flat images into a join
    with pytest.raises(FileNotFoundError, match="'val' of 'train\+val'"):
        data.list_pairs("folder", tmp_path / "flat", "train+val")
    os.symlink(tmp_path / "flat" / "train", tmp_path / "flat" / "val")  # the same files twice
    with pytest.raises(ValueError, match="overlap"):
        data.list_pairs("folder", tmp_path / "flat", "train+val")


def test_split_filtered_by_sequence(tmp_path):
    """``train-minus:SEQ`` / ``train-only:SEQ`` drop or keep whole sequences (file name up to the
    first '_'), so a hold-out of train can choose settings while val stays the check; an unknown
    sequence, or a hold-out that leaves no training image, is refused in one line."""
    for name in ("0001TP_0", "0001TP_1", "0006R0_0", "0006R0_1", "0006R0_2", "0016E5_0"):
        label = np.zeros((4, 4), np.uint8)
        _write(str(tmp_path / "train" / f"{name}.png"), np.stack([label] * 3, -1))
        _write(str(tmp_path / "trainannot" / f"{name}.png"), label)
    _write(str(tmp_path / "val" / "0016E5_9.png"), np.zeros((4, 4, 3), np.uint8))
    _write(str(tmp_path / "valannot" / "0016E5_9.png"), np.zeros((4, 4), np.uint8))
    stems = lambda split: [os.path.basename(i)[:-4] for i, _ in data.list_pairs("camvid", tmp_path, split)]
    assert stems("train-minus:0006R0") == ["0001TP_0", "0001TP_1", "0016E5_0"]
    assert stems("train-only:0006R0") == ["0006R0_0", "0006R0_1", "0006R0_2"]
    assert stems("train-only:0001TP,0016E5") == ["0001TP_0", "0001TP_1", "0016E5_0"]
    assert stems("train-minus:0006R0+val") == ["0001TP_0", "0001TP_1", "0016E5_0", "0016E5_9"]
    assert sorted(stems("train-minus:0006R0") + stems("train-only:0006R0")) == stems("train")
    assert data.split_names("train-minus:0006R0+val") == ["train", "val"]
    with pytest.raises(ValueError, match=r"^split 'train-minus:0007XX': no image of split 'train' is of "
                                         r"sequence 0007XX; its sequences \(images\): 0001TP \(2\), "
                                         r"0006R0 \(3\), 0016E5 \(1\)$"):
        data.list_pairs("camvid", tmp_path, "train-minus:0007XX")
    with pytest.raises(ValueError, match=r"^split 'train-minus:0001TP,0006R0,0016E5' leaves no image"):
        data.list_pairs("camvid", tmp_path, "train-minus:0001TP,0006R0,0016E5")
    with pytest.raises(ValueError, match=r"write NAME-only:SEQUENCE"):
        data.list_pairs("camvid", tmp_path, "train-only:")
    with pytest.raises(ValueError, match="overlap"):
        data.list_pairs("camvid", tmp_path, "train-minus:0006R0+train-only:0001TP")


@pytest.mark.skipif(not os.path.isdir(CAMVID), reason="../shared/data/camvid (real CamVid) not present")
def test_real_camvid_train_sequences():
    """CamVid train holds three sequences; 0006R0 (101 images) is the hold-out the ablation
    recipes use: a different drive from val's 0016E5."""
    counts = {}
    for image, _ in data.list_pairs("camvid", CAMVID, "train"):
        seq = os.path.basename(image).split("_", 1)[0]
        counts[seq] = counts.get(seq, 0) + 1
    assert counts == {"0001TP": 62, "0006R0": 101, "0016E5": 204}
    assert len(data.list_pairs("camvid", CAMVID, "train-minus:0006R0")) == 266
    assert {os.path.basename(i).split("_", 1)[0] for i, _ in data.list_pairs("camvid", CAMVID, "val")} == {"0016E5"}


def test_crop_jitter_gives_each_batch_its_own_alignment(tmp_path):
    """crop_jitter=16: each training batch is cropped at crop_size + (dy, dx), dy and dx in
    0..15 drawn per batch, so batch sizes take many remainders modulo the output stride 16;
    image and label stay aligned, and crop_jitter=0 is the pipeline as before."""
    pairs = make_folder(tmp_path, n=4, size=(48, 56))

    def batches(**kw):
        ds = data.make_dataset(pairs, num_classes=3, batch_size=2, crop_size=(20, 24), training=True,
                               seed=1, min_scale=1.0, max_scale=1.0, repeat=True, **kw)
        return [(x.numpy(), y.numpy()) for x, y in ds.take(40)]

    plain, jittered = batches(), batches(crop_jitter=16)
    assert {x.shape[1:3] for x, _ in plain} == {(20, 24)}
    sizes = {x.shape[1:3] for x, _ in jittered}
    assert all(20 <= h < 36 and 24 <= w < 40 for h, w in sizes)
    assert len({h % 16 for h, _ in sizes}) >= 8 and len({w % 16 for _, w in sizes}) >= 8
    for x, y in jittered:
        assert x.shape[:3] == y.shape
        keep = y != 255
        assert np.array_equal(x[..., 0][keep], y[keep] * 40.0)
    again = batches(crop_jitter=0)
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(plain, again))


def test_focused_crops_find_the_rare_class(tmp_path):
    """focus_classes: with probability 1 every crop holds a pixel of the rare class (one 2x2
    patch in a 48x56 image, which a uniform 12x12 crop seldom meets); image and label stay
    aligned; without focus_classes the pipeline is the one before."""
    rng = np.random.default_rng(0)
    pairs = []
    for i in range(4):
        label = np.zeros((48, 56), np.uint8)
        y, x = rng.integers(0, 46), rng.integers(0, 54)
        label[y:y + 2, x:x + 2] = 2
        label[0, :3] = 255
        image = np.stack([label * 40] * 3, -1).astype(np.uint8)
        _write(str(tmp_path / "images" / f"im{i}.png"), image)
        _write(str(tmp_path / "masks" / f"im{i}.png"), label)
    pairs = data.list_pairs("folder", tmp_path)

    def crops(**kw):
        ds = data.make_dataset(pairs, num_classes=3, batch_size=4, crop_size=(12, 12), training=True,
                               seed=2, min_scale=1.0, max_scale=1.0, repeat=True, **kw)
        return [(x.numpy(), y.numpy()) for x, y in ds.take(10)]

    focused = crops(focus_classes=[2], focus_probability=1.0)
    assert all((y == 2).any() for _, ys in focused for y in ys)
    for x, y in focused:
        keep = y != 255
        assert np.array_equal(x[..., 0][keep], y[keep] * 40.0)
    plain = crops()
    assert sum((y == 2).any() for _, ys in plain for y in ys) < 20  # of 40 crops
    assert sum((y == 2).any() for _, ys in crops(focus_classes=[2], focus_probability=0.0) for y in ys) < 20
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(plain, crops(focus_classes=None)))
