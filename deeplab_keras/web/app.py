"""The exported web folder (``deeplab-keras export --target web``): ``index.html``, ``app.js`` (one
ES module, no build step), ``model.tflite`` (MediaPipe-compatible, with its metadata and labels),
``labels.json`` (labels and colours), the MediaPipe Tasks for Web runtime under ``mediapipe/``
(:mod:`deeplab_keras.web.runtime`) and the report :data:`REPORT` recording the sha256 of every
file. The report is also how a later export knows the folder is ours: a folder is replaced only
when its report is ours and every entry in it is one the report lists (else ``--overwrite``)."""
import contextlib
import json
import os
import secrets
import shutil

from deeplab_keras.utils import io
from deeplab_keras.version import __version__

#: the folder's report (its marker): written last, lists every file with its sha256
REPORT = "deeplab_keras_web.json"
MODEL_FILE = "model.tflite"
#: the page's own files, shipped in ``deeplab_keras/web/static/``
STATIC = ("index.html", "app.js")
STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
KIND = "deeplab-keras web app"


def _sha256(path):
    from deeplab_keras.web.runtime import _sha256 as sha
    return sha(path)


def read_report(folder):
    """The folder's report (dict) if it is one of ours, else None."""
    path = os.path.join(os.fspath(folder), REPORT)
    if os.path.islink(path) or not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            report = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(report, dict) or report.get("kind") != KIND or not isinstance(report.get("files"), dict):
        return None
    return report


def is_web_folder(path):
    """Did an export of ours write the folder ``path``, with nothing added since? (Every entry is
    the report or a file it lists, or a folder above one; no links.)"""
    path = os.fspath(path)
    if os.path.islink(path) or not os.path.isdir(path):
        return False
    report = read_report(path)
    if report is None:
        return False
    listed = set(report["files"]) | {REPORT}
    folders = {os.path.dirname(f) for f in listed if "/" in f}
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            full = os.path.join(root, name)
            rel = os.path.relpath(full, path).replace(os.sep, "/")
            if os.path.islink(full):
                return False
            if rel not in (folders if name in dirs else listed):
                return False
    return True


def check_output(output, overwrite=False):
    """Refuse (:class:`deeplab_keras.utils.io.OutputExistsError`) an existing ``output`` that is
    not a web folder of ours (or is a file), unless ``overwrite``; before any work."""
    if os.path.isfile(output) or os.path.islink(output):
        if not overwrite:
            raise io.OutputExistsError(f"--output {output!r} is an existing file; the web target "
                                       "writes a folder. Name a new folder for --output.")
    io.check_replaceable(output, overwrite=overwrite, ours=is_web_folder, what="web folder")


@contextlib.contextmanager
def staging(output):
    """Yield a new hidden folder beside ``output``; on success it replaces ``output`` (an old
    folder is moved aside and deleted only after the move), on failure it is deleted."""
    output = os.path.abspath(os.fspath(output))
    parent, base = os.path.split(output)
    os.makedirs(parent, exist_ok=True)
    io.clean_stale_temps(output)
    tmp = os.path.join(parent, f".{base}.{io.TEMP_TAG}{os.getpid()}-{secrets.token_hex(4)}.tmp")
    os.mkdir(tmp)
    try:
        yield tmp
        if os.path.isfile(output) or os.path.islink(output):
            os.remove(output)  # only reached with --overwrite (check_output)
        io.replace_path(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_tflite(path):
    """``labels`` of a ``.tflite`` MediaPipe's ImageSegmenter loads (raises ValueError with one
    line when it does not: the page could not run it either)."""
    from deeplab_keras.export import mediapipe_gate
    from deeplab_keras.export.metadata import MetadataError
    try:
        with mediapipe_gate.Segmenter(path) as seg:
            return seg.labels
    except MetadataError as err:
        raise ValueError(f"{err}; the web target needs a MediaPipe-compatible .tflite (export one "
                         "with --target mediapipe, or pass a preset / .keras model)") from None


def write_folder(folder, *, labels, palette=None, export_report=None, source=None, quiet=False):
    """Fill ``folder`` (a staging folder holding :data:`MODEL_FILE` already) with the page, the
    labels and colours, the vendored runtime and the report; returns the report dict."""
    from deeplab_keras.inference.draw import full_palette
    from deeplab_keras.web import runtime

    model = os.path.join(folder, MODEL_FILE)
    if not os.path.isfile(model):
        raise FileNotFoundError(f"{model}: the web folder needs its model file first")
    labels = [str(x) for x in labels or []]
    import numpy as np
    base = np.asarray(palette if palette is not None else np.zeros((0, 3)), np.uint8).reshape(-1, 3)
    colours = full_palette(base, [max(len(labels) - 1, 0)])
    for name in STATIC:
        shutil.copyfile(os.path.join(STATIC_DIR, name), os.path.join(folder, name))
    io.write_json(os.path.join(folder, "labels.json"),
                  {"labels": labels, "colors": [[int(v) for v in c] for c in colours[:len(labels)]]})
    vendored = runtime.vendor(os.path.join(folder, "mediapipe"), quiet=quiet)
    files = {}
    for root, _, names in os.walk(folder):
        for name in sorted(names):
            full = os.path.join(root, name)
            files[os.path.relpath(full, folder).replace(os.sep, "/")] = _sha256(full)
    report = {
        "kind": KIND, "deeplab_keras": __version__, "model": MODEL_FILE,
        "model_sha256": files[MODEL_FILE], "source": source, "labels": labels,
        "runtime": {**vendored, "files": {"mediapipe/" + k: v for k, v in vendored["files"].items()}},
        "files": files,
        "export": {k: export_report.get(k) for k in ("format", "quantize", "output_mode", "input_size",
                                                     "parity", "threshold", "passed", "notes")
                   if k in export_report} if export_report else None,
    }
    io.write_json(os.path.join(folder, REPORT), report, default=str)
    return report
