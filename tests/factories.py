"""Small things several test modules make: a tiny 3-class segmentation model saved as .keras, and
tarballs with chosen members."""
import io
import tarfile

LABELS = ["background", "road", "car"]
PALETTE = [[0, 0, 0], [128, 64, 128], [0, 0, 142]]


def tarball(path, members):
    """Write ``members`` ((name, bytes) pairs) into a tar file at ``path`` (gzip when the name
    ends in .gz); returns the path as a string."""
    with tarfile.open(path, "w:gz" if str(path).endswith(".gz") else "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


def tiny_keras_model(folder):
    """A 3-class DeepLab v3 (MobileNetV2 0.35, OS 16) with labels and palette, saved as
    ``folder/tiny.keras``; returns ``{"model", "path", "tmp"}``."""
    import keras

    import deeplab_keras as dk

    keras.utils.set_random_seed(0)  # the same weights every run: tests compare its outputs
    model = dk.build_model("deeplabv3", num_classes=3, backbone="mobilenet_v2", alpha=0.35,
                           atrous_rates=(), output_stride=16, labels=LABELS, palette=PALETTE,
                           ignore_label=255)
    path = str(folder / "tiny.keras")
    model.save(path)
    return {"model": model, "path": path, "tmp": folder}
