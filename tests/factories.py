"""Small things several test modules make: the one tiny DeepLab configuration (:func:`tiny_config`),
a tiny 3-class segmentation model saved as .keras, a "decisive" tiny model for export parity
tests, labelled image folders, and tarballs with chosen members. Test modules import from here,
never from each other."""
import copy
import io
import tarfile

import numpy as np

LABELS = ["background", "road", "car"]
PALETTE = [[0, 0, 0], [128, 64, 128], [0, 0, 142]]

#: the tiny DeepLab every test builds: MobileNetV2 at width 0.35, output stride 16 and no atrous
#: ASPP branches (image pooling + 1x1 only): about 0.5M parameters, the cheapest model that still
#: runs the real backbone, head, resize and export code
TINY = {"backbone": "mobilenet_v2", "alpha": 0.35, "output_stride": 16, "atrous_rates": []}


def tiny_config(without=(), **overrides):
    """A fresh copy of :data:`TINY` with ``overrides`` (num_classes, align_corners, a tuple for
    atrous_rates...) and the keys named in ``without`` left out (the builder's default then)."""
    config = dict(copy.deepcopy(TINY), **overrides)
    for key in without:
        config.pop(key)
    return config


#: the tiny preset that conftest's tiny_zoo mirror serves (config as the catalogue stores it)
ZOO_TINY = tiny_config(num_classes=3, align_corners=True)

#: export tests (test_export, test_mobile, test_artifact_eval): 65x65 input, 5 labelled classes
EXPORT_SIZE = 65
EXPORT_LABELS = ["sky", "road", "car", "tree", "person"]
EXPORT_TINY = tiny_config(num_classes=5, atrous_rates=())


def decisive(model, seed=0, size=EXPORT_SIZE):
    """A random-init DeepLab in inference mode has activations shrinking layer after layer
    (BatchNorm with unit moving variance) and near-tied logits. Set every BatchNorm's moving
    statistics from synthetic images (data-dependent init) and scale a random classifier so the
    logits spread over ±8: the argmax is then meaningful and a wrong export shows."""
    import keras
    from deeplab_keras.export.calibration import synthetic_images

    x = np.stack(synthetic_images((size, size), 2, seed=5))
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            h = np.asarray(keras.Model(model.inputs[0], layer.input)(x))  # one input: no structure warning
            gamma, beta, _, _ = layer.get_weights()
            layer.set_weights([gamma, beta, h.mean(axis=(0, 1, 2)), h.var(axis=(0, 1, 2)) + 1e-3])
    layer = model.get_layer("fc8" if "deeplabv1" in model.name else "logits_semantic")
    kernel, bias = layer.get_weights()
    kernel = np.random.default_rng(seed).normal(size=kernel.shape).astype("float32")
    layer.set_weights([kernel, bias])
    peak = float(np.abs(np.asarray(model(x))).max())
    layer.set_weights([kernel * (8.0 / max(peak, 1e-12)), bias])
    return model


def decisive_tiny():
    """The export tests' model: :data:`EXPORT_TINY` built with seed 0, made :func:`decisive`."""
    import keras
    import deeplab_keras as dk

    keras.utils.set_random_seed(0)
    return decisive(dk.build_model("deeplabv3", **EXPORT_TINY))


def tiny_conv_model(num_classes, seed=0):
    """Not a DeepLab: Rescaling + one 3x3 conv + a 1x1 classifier, any input size (the evaluate
    tests only need a model whose predictions the metrics code turns into numbers)."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Rescaling(1 / 127.5, -1.0)(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    return keras.Model(inputs, keras.layers.Conv2D(num_classes, 1)(x), name="tiny")


def labelled_folder(root, n=2, h=40, w=48):
    """``root/images/{i}.png`` random RGB and ``root/masks/{i}.png`` labels 0-2 with the top 5
    rows ignored (255); returns the (images, masks) arrays."""
    from PIL import Image

    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    images, masks = [], []
    for i in range(n):
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        mask = rng.integers(0, 3, (h, w), dtype=np.uint8)
        mask[:5] = 255
        Image.fromarray(image).save(root / "images" / f"{i}.png")
        Image.fromarray(mask).save(root / "masks" / f"{i}.png")
        images.append(image)
        masks.append(mask)
    return np.stack(images), np.stack(masks)


def tarball(path, members):
    """Write ``members`` ((name, bytes) pairs) into a tar file at ``path`` (gzip when the name
    ends in .gz); returns the path as a string."""
    with tarfile.open(path, "w:gz" if str(path).endswith(".gz") else "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


def training_folder(root, n=6, size=(40, 40), num_classes=3):
    """A folder dataset for training tests: ``n`` label maps (top 4 rows ignored) and grey images
    drawn from them (so a model can learn them); returns ``root`` as a string."""
    import os

    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        label = rng.integers(0, num_classes, size).astype(np.uint8)
        label[:4] = 255
        for sub, arr in (("images", np.stack([label * 60] * 3, -1).astype(np.uint8)), ("masks", label)):
            os.makedirs(os.path.join(root, sub), exist_ok=True)
            Image.fromarray(arr).save(os.path.join(root, sub, f"{i}.png"))
    return str(root)


def train_config(tmp_path, **kw):
    """A training config: the tiny model on :func:`training_folder`, 33x33 crops, batch 2, one
    epoch of 2 steps, output in ``tmp_path/run``; ``kw`` overrides."""
    config = {"name": "tiny", "architecture": "deeplabv3", "model": tiny_config(),
              "dataset": "folder", "data_root": training_folder(tmp_path / "data"), "num_classes": 3,
              "val_split": None, "crop_size": [33, 33], "batch_size": 2, "epochs": 1,
              "steps_per_epoch": 2, "learning_rate": 0.01, "warmup_steps": 1, "verbose": 0,
              "tensorboard": False, "output_dir": str(tmp_path / "run")}
    config.update(kw)
    return config


def tiny_keras_model(folder):
    """A 3-class DeepLab v3 (MobileNetV2 0.35, OS 16) with labels and palette, saved as
    ``folder/tiny.keras``; returns ``{"model", "path", "tmp"}``."""
    import keras

    import deeplab_keras as dk

    keras.utils.set_random_seed(0)  # the same weights every run: tests compare its outputs
    model = dk.build_model("deeplabv3", **tiny_config(num_classes=3, atrous_rates=()),
                           labels=LABELS, palette=PALETTE, ignore_label=255)
    path = str(folder / "tiny.keras")
    model.save(path)
    return {"model": model, "path": path, "tmp": folder}
