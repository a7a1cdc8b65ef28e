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
    report = io.read_json_dict(os.path.join(os.fspath(folder), REPORT))
    if report is None or report.get("kind") != KIND or not isinstance(report.get("files"), dict):
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


#: run in a child process: MediaPipe's segmenter hangs when closed again (garbage collection)
#: after a failed run, so a file that cannot run must not be tried in this process
_CHECK = """
import json, sys
import numpy as np
import mediapipe as mp
from mediapipe.tasks.python import vision
from mediapipe.tasks.python.core.base_options import BaseOptions
opts = vision.ImageSegmenterOptions(base_options=BaseOptions(model_asset_path=sys.argv[1]),
                                    output_category_mask=True, output_confidence_masks=False)
seg = vision.ImageSegmenter.create_from_options(opts)
print(json.dumps(list(seg.labels)), flush=True)
seg.segment(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.full((64, 64, 3), 128, np.uint8)))
seg.close()
print("ran", flush=True)
"""


#: TFLite tensor types MediaPipe's segmenter reads as scores: FLOAT32, UINT8, INT8
_SCORE_TYPES = {0: "float32", 3: "uint8", 9: "int8"}
_TYPE_NAMES = {1: "float16", 2: "int32", 4: "int64", 5: "string", 6: "bool", 7: "int16"}


def _check_outputs(path, fix):
    """Refuse, before starting MediaPipe, a file whose output is not one 4-D score tensor (a
    class map in int64 or int32, say: MediaPipe's segmenter cannot run it)."""
    from tensorflow.lite.tools import flatbuffer_utils
    try:
        model = flatbuffer_utils.read_model(path)
        graph = model.subgraphs[0]
        outputs = [graph.tensors[i] for i in graph.outputs]
    except Exception:  # not a flatbuffer: MediaPipe says so below
        return
    for t in outputs:
        shape = [int(v) for v in t.shape] if t.shape is not None else []
        if t.type not in _SCORE_TYPES or len(shape) != 4:
            kind = _SCORE_TYPES.get(t.type) or _TYPE_NAMES.get(t.type, f"type {t.type}")
            raise ValueError(f"{path} outputs {kind} {shape} (MediaPipe's segmenter reads one 4-D "
                             f"float32/uint8/int8 score tensor, not a class map); {fix}")


def check_tflite(path):
    """``labels`` of a ``.tflite`` that MediaPipe's ImageSegmenter loads and runs (one small
    image, in a child process) and whose metadata names its classes; else ValueError with one
    line (the page could not run it either)."""
    import re
    import subprocess
    import sys

    from deeplab_keras.export import mediapipe_gate
    fix = ("the web target needs a MediaPipe-compatible .tflite (export one with --target "
           "mediapipe, or pass a preset / .keras model)")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} does not exist; give a .tflite file")
    _check_outputs(path, fix)
    if not mediapipe_gate.available():
        raise ValueError("checking a .tflite for the web target needs mediapipe: pip install "
                         "'deeplab-keras[mobile]'")
    try:
        out = subprocess.run([sys.executable, "-c", _CHECK, os.path.abspath(path)],
                             capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise ValueError(f"MediaPipe ImageSegmenter did not finish one 64x64 image with {path} in "
                         f"300 s; {fix}") from None
    lines = out.stdout.splitlines()
    if out.returncode != 0 or lines[-1:] != ["ran"]:
        text = out.stderr.split("Exception ignored in")[0].splitlines()  # not the __del__ noise
        failed = [line.rpartition("failed:")[2].strip() for line in text if "failed:" in line]
        errors = [line.rpartition(": ")[2] for line in text if re.match(r"^[\w.]+(Error|Exception): ", line)]
        why = ([w for w in failed if w] or errors or [f"exit status {out.returncode}"])[-1]
        what = "loads" if lines else "cannot load"
        raise ValueError(f"MediaPipe ImageSegmenter {what} {path}"
                         f"{' but cannot run it' if lines else ''} ({why.strip()[:300]}); {fix}")
    labels = json.loads(lines[0])
    if not labels:
        raise ValueError(f"{path} has no label metadata MediaPipe reads; {fix}")
    return labels


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
