"""Evaluate a model on a dataset: test-time inference (:class:`Predictor`), a streaming confusion
matrix and the summary metrics, returned as a JSON-ready dict; plus the printed table."""
import math
import os
import sys
import time

import numpy as np

from deeplab_keras.utils import io

from deeplab_keras.inference.multiscale import Predictor
from deeplab_keras.inference.runtime import RUNTIMES
from deeplab_keras.evaluation.metrics import confusion_matrix, metrics_from_confusion


def _dataset_info(dataset, num_classes, ignore_label, class_names):
    from deeplab_keras.data import resolve_info
    info = resolve_info(dataset, num_classes, ignore_label)
    names = list(class_names) if class_names is not None else list(info.labels)
    if len(names) != info.num_classes:
        raise ValueError(f"{len(names)} class names for {info.num_classes} classes")
    return info, names


def _named_errors(iterator):
    """tf.data's checks (bad mask values, size mismatch: messages name the file) as ValueError."""
    import tensorflow as tf
    while True:
        try:
            item = next(iterator)
        except StopIteration:
            return
        except tf.errors.OpError as err:
            message = err.message.strip().splitlines()[0]
            message = message.split("assertion failed:", 1)[-1].strip()
            raise ValueError(f"bad evaluation data: {message}") from None
        yield item


def _batches(data, info, limit):
    """Yield ``(images (N,H,W,3), labels (N,H,W))`` NumPy batches, at most ``limit`` images."""
    import tensorflow as tf
    if isinstance(data, (list, tuple)) and data and all(
            isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(q, (str, os.PathLike)) for q in p)
            for p in data):
        from deeplab_keras.data import make_dataset
        data = make_dataset(list(data)[:limit] if limit else list(data), dataset_info=info,
                            batch_size=1, training=False)
    elif isinstance(data, (list, tuple)) and not data:
        raise ValueError("no evaluation data given (empty list of pairs)")
    seen = 0
    iterator = _named_errors(data.as_numpy_iterator()) if isinstance(data, tf.data.Dataset) else iter(data)
    for item in iterator:
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise ValueError("evaluation data must yield (image, label) pairs")
        images, labels = (np.asarray(a) for a in item)
        if images.ndim == 3:
            images, labels = images[None], labels[None]
        if labels.ndim == 4 and labels.shape[-1] == 1:
            labels = labels[..., 0]
        if images.shape[:3] != labels.shape:
            raise ValueError(f"image batch {images.shape} and label batch {labels.shape} differ in size")
        if limit:
            images, labels = images[:limit - seen], labels[:limit - seen]
        seen += len(images)
        yield images, labels
        if limit and seen >= limit:
            return



def progress_bar(progress, data, limit):
    """A Keras ``Progbar`` over the images (n/N when ``data`` has a length), or None for
    ``progress`` False / ``"lines"``."""
    if not progress or progress == "lines":
        return None
    import keras
    total = len(data) if isinstance(data, (list, tuple)) else None
    if total is not None and limit:
        total = min(total, int(limit))
    return keras.utils.Progbar(total, unit_name="image")

def evaluate(model, data, *, dataset=None, num_classes=None, ignore_label=None, class_names=None,
             scales=(1.0,), flip=False, sliding_window=None, crf=None, limit=None, progress=False,
             on_batch=None, input_size="model", num_threads=None, **predictor_options):
    """Evaluate ``model`` on ``data`` and return a JSON-ready dict of metrics.

    Args:
        model: any source of :func:`deeplab_keras.inference.open_segmenter`: a Keras model
            (0-255 RGB in, logits or probabilities at the input size out), a preset name, a
            ``.keras`` file, or an exported ``.tflite`` / ``.onnx`` file or SavedModel folder
            (run by its runtime at its own input size, as ``predict`` and ``VideoSegmenter``
            run it; ``num_threads`` sets its runtime threads).
        data: ``[(image_path, mask_path), ...]`` (e.g. ``deeplab_keras.data.list_pairs``), a
            ``tf.data.Dataset`` of ``(image, label)`` (batched or not), or any iterable of
            ``(image, label)`` arrays. Labels must already be train ids (+ ignore label).
        dataset: dataset name (``"camvid"``, ``"voc"``, ...) or ``DatasetInfo``: classes, ignore
            label, names and the mask mapping for file pairs. Else ``num_classes`` (default:
            the model's classes) and ``ignore_label`` (default 255).
        input_size: the size scale 1 runs a Keras model at: ``"model"`` (default) its working
            size as ``predict`` runs it (:func:`deeplab_keras.inference.input_contract`: its
            preset's input size, else each image's own), ``"image"`` or None each image's own,
            or ``(height, width)``. A file runs at its own input size.
        scales, flip, sliding_window, crf, predictor_options: see :class:`Predictor` (Keras
            models; a fixed-size file refuses them).
        limit: evaluate at most this many images.
        progress: True: a progress bar (n/N when the number of images is known, time per
            image; Keras ``Progbar``); ``"lines"``: one line per batch on stderr.
        on_batch: ``on_batch(images, labels, predictions)`` after each batch (NumPy arrays),
            e.g. to keep a few examples to draw.

    Returns:
        :func:`metrics_from_confusion`'s dict plus ``per_class`` (name -> IoU), ``confusion_matrix``,
        ``num_images``, ``seconds``, ``images_per_second``, ``dataset``, ``ignore_label`` and the
        inference ``settings`` (and ``artifact``: path, format, runtime, input, output mode,
        for a file). IoU values are fractions in [0, 1].
    """
    from deeplab_keras.inference.source import open_segmenter

    if limit is not None and int(limit) < 1:
        raise ValueError(f"limit must be a positive number of images, got {limit!r}")
    if isinstance(input_size, str) and input_size not in ("model", "image"):
        raise ValueError(f"input_size must be 'model', 'image', None or (height, width), got "
                         f"{input_size!r}")
    if not hasattr(model, "predict_on_batch"):  # a path, a preset name or a segmenter
        seg = open_segmenter(model, scales=scales, flip=flip, num_threads=num_threads,
                             input_size=None if isinstance(input_size, str) else input_size)
        if seg.kind != "keras":  # an exported file (or a segmenter of the caller's own)
            name = getattr(seg, "path", None) or seg.description
            if input_size == "image":
                raise ValueError(f"{name} runs at its own fixed input size; input_size "
                                 "'image' needs a Keras model")
            if sliding_window is not None or crf or predictor_options:
                raise ValueError(f"{name} runs at its fixed input size: sliding windows, "
                                 "CRF and other test-time options need a Keras model")
            return _evaluate_file(seg, data, dataset=dataset, num_classes=num_classes,
                                  ignore_label=ignore_label, class_names=class_names,
                                  limit=limit, progress=progress, on_batch=on_batch)
        model = seg.model
    elif num_threads is not None:
        raise ValueError("num_threads sets the runtime threads of a .tflite / .onnx file; a "
                         "Keras model runs on TensorFlow's threads")
    info, names = _source_info("the model", int(model.output_shape[-1]), dataset, num_classes,
                               ignore_label, class_names)
    if isinstance(input_size, str):
        if input_size == "model":
            from deeplab_keras.inference import input_contract
            input_size = input_contract(model)[0]
        else:
            input_size = None
    predictor = Predictor(model, scales=scales, flip=flip, sliding_window=sliding_window, crf=crf,
                          input_size=input_size, **predictor_options)
    cm, count, seconds = _confusion(lambda images: predictor(images).argmax(-1), data, info,
                                    limit, progress, on_batch)
    result = _result(cm, names, info, count, seconds)
    result["settings"] = {
        "scales": list(predictor.scales), "flip": predictor.flip,
        "input_size": list(predictor.input_size) if predictor.input_size else None,
        "sliding_window": list(predictor.window) if predictor.window else None,
        "overlap": predictor.overlap if predictor.window else None,
        "weighting": predictor.weighting if predictor.window else None,
        "crf": predictor.crf}
    return result


def _confusion(predict, data, info, limit, progress, on_batch):
    """``(confusion matrix, images, seconds)`` of ``predict(images) -> class maps`` on ``data``."""
    cm = np.zeros((info.num_classes, info.num_classes), np.int64)
    count, start = 0, time.perf_counter()
    bar = progress_bar(progress, data, limit)
    for images, labels in _batches(data, info, limit):
        pred = predict(images)
        top = int(pred.max(initial=0))
        if top >= info.num_classes:
            raise ValueError(f"the model predicts class {top} but the dataset {info.name!r} has "
                             f"{info.num_classes} classes")
        cm += confusion_matrix(labels, pred, info.num_classes, info.ignore_label)
        count += len(images)
        if on_batch is not None:
            on_batch(images, labels, pred)
        if bar is not None:
            bar.update(count)
        elif progress:
            print(f"evaluate: {count} images, {time.perf_counter() - start:.1f}s", file=sys.stderr)
    if bar is not None and bar.target is None:
        bar.update(count, finalize=True)
    if not count:
        raise ValueError("the evaluation data is empty")
    return cm, count, time.perf_counter() - start


def _result(cm, names, info, count, seconds):
    result = metrics_from_confusion(cm, names)
    result.update(
        per_class={n: v for n, v in zip(names, result["per_class_iou"])},
        confusion_matrix=cm.tolist(), num_images=count, seconds=round(seconds, 3),
        images_per_second=round(count / seconds, 3) if seconds > 0 else None, dataset=info.name,
        ignore_label=info.ignore_label)
    return result


def _source_info(who, predicts, dataset, num_classes, ignore_label, class_names):
    """The dataset's info and class names for a source ``who`` that predicts ``predicts``
    classes (None: unknown, a class-map file recording none): the source's count unless a
    dataset or ``num_classes`` is given, which must then agree with it."""
    if dataset is None and num_classes is None:
        if predicts is None:
            raise ValueError(f"{who} outputs a class map and records no class count (no "
                             "labels in its metadata, no export report beside it): give "
                             "num_classes or a dataset")
        num_classes = predicts
    info, names = _dataset_info(dataset, num_classes, ignore_label, class_names)
    if predicts is not None and predicts != info.num_classes:
        raise ValueError(f"{who} predicts {predicts} classes but the dataset {info.name!r} "
                         f"has {info.num_classes}")
    return info, names


def _evaluate_file(seg, data, *, dataset, num_classes, ignore_label, class_names, limit,
                   progress, on_batch):
    """:func:`evaluate` of an exported file: each image through the segmenter's one call
    (resized to the file's input, scores back to the label's size before the argmax, a class
    map by nearest neighbour), so the labels are never resampled."""
    info, names = _source_info(getattr(seg, "path", None) or seg.description, seg.num_classes,
                               dataset, num_classes, ignore_label, class_names)

    def predict(images):
        return np.stack([seg.segment(np.asarray(image)) for image in images])

    cm, count, seconds = _confusion(predict, data, info, limit, progress, on_batch)
    result = _result(cm, names, info, count, seconds)
    result["settings"] = {"scales": [1.0], "flip": False,
                          "input_size": list(seg.input_size) if seg.input_size else None,
                          "sliding_window": None, "crf": None}
    if seg.kind != "file":
        result["source"] = seg.description
        return result
    art = seg.artifact
    result["artifact"] = {"path": str(seg.path), "format": seg.format,
                          "runtime": RUNTIMES[seg.format],
                          "input_shape": [-1 if d is None else d for d in art.input_shape],
                          "input_dtype": art.input_dtype.name, "output_mode": seg.mode}
    return result


def _pct(value):
    return "    -" if value is None or math.isnan(value) else f"{100 * value:5.1f}"


def format_table(result):
    """A per-class table (IoU and accuracy in %) followed by the summary metrics."""
    names = result.get("class_names") or [str(i) for i in range(result["num_classes"])]
    width = max(10, max(len(n) for n in names))
    lines = [f"{'class':<{width}}  IoU %  Acc %", "-" * (width + 15)]
    for name, iou, acc in zip(names, result["per_class_iou"], result["per_class_accuracy"]):
        lines.append(f"{name:<{width}}  {_pct(iou)}  {_pct(acc)}")
    lines.append("-" * (width + 15))
    for label, key in (("mIoU", "miou"), ("pixel acc", "pixel_accuracy"),
                       ("mean acc", "mean_class_accuracy"), ("fwIoU", "fw_iou")):
        lines.append(f"{label:<{width}}  {_pct(result[key])}")
    lines.append(f"{result['num_images']} images, {result['seconds']:.1f}s "
                 f"({result['images_per_second']:.2f} images/s)")
    return "\n".join(lines)


#: keys every evaluation result of ours has (how ``evaluate`` knows a JSON file is its own)
RESULT_KEYS = {"miou", "per_class_iou", "confusion_matrix", "num_classes"}


def is_result_json(path):
    """Did ``evaluate`` write ``path`` (a JSON object with our result keys)?"""
    import json
    with open(path) as f:
        result = json.load(f)
    return isinstance(result, dict) and RESULT_KEYS <= set(result)


def write_json(result, path):
    """Write ``result`` as JSON atomically (temp file in the same folder + ``os.replace``);
    ``nan`` (absent classes) is written as ``null``."""
    def clean(v):
        if isinstance(v, float) and math.isnan(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return io.write_json(path, clean(result), indent=2, allow_nan=False)
