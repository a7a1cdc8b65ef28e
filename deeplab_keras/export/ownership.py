"""Is an existing output path a previous export of ours? (issue 11: exports never replace what
we did not write.) A SavedModel folder of ours holds only SavedModel entries plus
``assets.extra/deeplab_keras.json``; a ``.tflite`` / ``.onnx`` file of ours carries the
``deeplab_keras`` metadata entry."""
import os

from deeplab_keras.utils import io

#: what ``tf.saved_model.save`` + our metadata write at a SavedModel folder's top level
SAVED_MODEL_ENTRIES = {"saved_model.pb", "saved_model.pbtxt", "fingerprint.pb", "variables",
                       "assets", "assets.extra"}


def is_previous_export(path):
    path = os.fspath(path)
    if os.path.islink(path):
        return False
    if os.path.isdir(path):
        entries = set(os.listdir(path))
        return (entries <= SAVED_MODEL_ENTRIES and "saved_model.pb" in entries
                and os.path.isfile(os.path.join(path, "assets.extra", "deeplab_keras.json")))
    if not os.path.isfile(path):
        return False
    from deeplab_keras.export import convert
    with open(path, "rb") as f:
        head = f.read(8)
    if head[4:8] == b"TFL3":
        return convert.read_tflite_metadata(path) is not None
    if path.endswith(".onnx"):
        return convert.read_onnx_metadata(path) is not None
    return False


def check_output(output, overwrite=False):
    """Raise :class:`deeplab_keras.utils.io.OutputExistsError` unless ``output`` may be
    replaced by an export (see :func:`deeplab_keras.utils.io.check_replaceable`)."""
    io.check_replaceable(output, overwrite=overwrite, ours=is_previous_export, what="export output")
