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


def check_output(output, overwrite=False, inputs=()):
    """Raise :class:`deeplab_keras.utils.io.OutputExistsError` unless ``output`` may be
    replaced by an export (see :func:`deeplab_keras.utils.io.check_replaceable`); ValueError
    when it is one of ``inputs`` (the model file, its config), even with ``overwrite``."""
    io.check_not_input(output, [p for p in inputs if p], "--output")
    io.check_replaceable(output, overwrite=overwrite, ours=is_previous_export, what="export output")


# --- the report beside the artifact (issue 19: never replace a user's model.json / model.md) ---

#: keys every export report JSON of ours has
REPORT_KEYS = {"name", "output", "format", "quantize", "parity", "threshold", "passed"}


def report_files(report_dir, name):
    """The files an export writes in ``report_dir``: ``<name>.json``, ``<name>.md`` and
    ``<name>.labels.txt``."""
    return [os.path.join(report_dir, name + ext) for ext in (".json", ".md", ".labels.txt")]


def _is_report_json(path):
    import json
    with open(path) as f:
        report = json.load(f)
    return isinstance(report, dict) and REPORT_KEYS <= set(report)


def _is_report_md(path):
    with open(path, errors="replace") as f:
        text = f.read(1 << 20)
    return text.startswith("# Export report: ") and "Figures compare the artifact with the Keras model" in text


def is_previous_report(path, labels=None):
    """Did an export of ours write ``path`` (one of :func:`report_files`)? A labels file is ours
    when the report beside it names it, or when it already holds exactly ``labels``."""
    path = os.fspath(path)
    if path.endswith(".json"):
        return _is_report_json(path)
    if path.endswith(".md"):
        return _is_report_md(path)
    if labels is not None:
        with open(path, "rb") as f:
            if f.read(1 << 20) == ("\n".join(labels) + "\n").encode():
                return True
    report = path[:-len(".labels.txt")] + ".json"
    if not os.path.isfile(report) or not _is_report_json(report):
        return False
    import json
    with open(report) as f:
        deploy = json.load(f).get("deploy") or {}
    label_file = deploy.get("label_file")
    if not label_file or os.path.basename(label_file) != os.path.basename(path):
        return False
    recorded = deploy.get("label_file_sha256")  # absent in reports before issue 19
    return recorded is None or recorded == file_sha256(path)


def file_sha256(path):
    import hashlib
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def check_report_files(report_dir, name, labels=None, overwrite=False, inputs=()):
    """Refuse (:class:`deeplab_keras.utils.io.OutputExistsError`) before any work when the
    report or label file an export would write beside the artifact exists and is not ours;
    ValueError when one of them is one of ``inputs``, even with ``overwrite``."""
    if report_dir:
        for path in report_files(report_dir, name):
            io.check_not_input(path, [p for p in inputs if p], "export report file")
        io.check_owned(report_files(report_dir, name), lambda p: is_previous_report(p, labels),
                       overwrite=overwrite, what="export report file")
