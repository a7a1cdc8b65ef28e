"""Evaluate an exported file itself (``.tflite`` with LiteRT, ``.onnx`` with onnxruntime, a
SavedModel directory with TensorFlow) on a labelled dataset, with the same metrics and result
dict as :func:`deeplab_keras.evaluation.evaluate` for a Keras model (here, above evaluation,
because it runs the export package's runtimes: evaluation never imports export).

    from deeplab_keras.export.artifact_eval import evaluate_artifact
    result = evaluate_artifact("camvid_int8.tflite", data.list_pairs("camvid", root, "val"),
                               dataset="camvid")

The file has a fixed input size: an image of another size is resized (bilinear) to it, and the
output is brought back to the label's size (bilinear on scores, nearest on a class map) before
the argmax, so the labels are never resampled.
"""
import sys
import time

import numpy as np

from deeplab_keras.evaluation.evaluator import _batches, _dataset_info, progress_bar
from deeplab_keras.evaluation.metrics import confusion_matrix, metrics_from_confusion
from deeplab_keras.layers.resize import resize


def _first_line(err):
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[0] if lines else ''}"[:300]


def output_mode(path, fmt):
    from deeplab_keras.export import convert
    try:
        meta = (convert.read_tflite_metadata(path) if fmt == "tflite" else
                convert.read_onnx_metadata(path) if fmt == "onnx" else None)
    except Exception:  # a foreign file without our metadata: decided from the output's rank
        meta = None
    return (meta or {}).get("output")


def predict_classes(art, image, mode):
    """(H, W) int class map of ``image`` (H, W, 3) from the artifact."""
    h, w = image.shape[:2]
    size = art.input_shape[1:3]
    x = resize(image, size, "half_pixel")  # an artifact records no semantics: half-pixel, as tf.image.resize
    try:
        y = np.asarray(art(x))
    except (RuntimeError, TypeError) as err:  # LiteRT / onnxruntime errors while running
        raise ValueError(f"{art.path}: the runtime failed running it ({_first_line(err)}); "
                         "is it a complete export of a segmentation model?") from None
    if y.ndim not in (3, 4) or min(y.shape[1:3]) < 2:
        raise ValueError(f"{art.path}: output shape {list(y.shape)} is not a segmentation map "
                         "([1, H, W] classes or [1, H, W, C] scores): not a segmentation model "
                         "(a classifier?)")
    if mode == "classes" or (mode is None and y.ndim == 3):
        y = resize(y.reshape(size[0], size[1], 1), (h, w), "half_pixel", "nearest")
        return y[..., 0].astype(np.int64)
    y = y.reshape(y.shape[-3:]).astype(np.float32)
    return resize(y, (h, w), "half_pixel").argmax(-1).astype(np.int64)


def evaluate_artifact(path, data, *, dataset=None, num_classes=None, ignore_label=None,
                      class_names=None, limit=None, num_threads=None, progress=False):
    """Run the exported file at ``path`` on ``data`` (as for :func:`evaluate`); returns the same
    JSON-ready dict plus ``artifact`` (path, format, input, output mode, runtime)."""
    from deeplab_keras.export.runtime import Artifact
    try:
        art = Artifact(path, num_threads=num_threads)
    except FileNotFoundError:
        raise
    except Exception as err:  # LiteRT RuntimeError, onnxruntime's Fail/InvalidProtobuf, ...
        raise ValueError(f"{path}: the runtime cannot load it ({_first_line(err)}); is it a "
                         "complete .tflite / .onnx / SavedModel export?") from None
    mode = output_mode(path, art.format)
    info, names = _dataset_info(dataset, num_classes, ignore_label, class_names)
    if limit is not None and int(limit) < 1:
        raise ValueError(f"limit must be a positive number of images, got {limit!r}")
    cm = np.zeros((info.num_classes, info.num_classes), np.int64)
    count, start = 0, time.perf_counter()
    bar = progress_bar(progress, data, limit)
    for images, labels in _batches(data, info, limit):
        for image, label in zip(images, labels):
            pred = predict_classes(art, np.asarray(image, np.float32), mode)
            if pred.max(initial=0) >= info.num_classes:
                raise ValueError(f"{path} predicts class {int(pred.max())} but the dataset "
                                 f"{info.name!r} has {info.num_classes} classes")
            cm += confusion_matrix(label, pred, info.num_classes, info.ignore_label)
            count += 1
            if bar is not None:
                bar.update(count)
            elif progress:
                print(f"evaluate: {count} images, {time.perf_counter() - start:.1f}s", file=sys.stderr)
    if not count:
        raise ValueError("the evaluation data is empty")
    seconds = time.perf_counter() - start
    result = metrics_from_confusion(cm, names)
    runtime = {"tflite": "LiteRT (ai_edge_litert)", "onnx": "onnxruntime CPU",
               "saved_model": "TensorFlow"}[art.format]
    result.update(
        per_class={n: v for n, v in zip(names, result["per_class_iou"])},
        confusion_matrix=cm.tolist(), num_images=count, seconds=round(seconds, 3),
        images_per_second=round(count / seconds, 3), dataset=info.name,
        ignore_label=info.ignore_label,
        settings={"scales": [1.0], "flip": False, "sliding_window": None, "crf": None},
        artifact={"path": str(path), "format": art.format, "runtime": runtime,
                  "input_shape": list(art.input_shape), "input_dtype": art.input_dtype.name,
                  "output_mode": mode})
    return result
