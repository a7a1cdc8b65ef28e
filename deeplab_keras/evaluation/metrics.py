"""Streaming confusion-matrix metrics for semantic segmentation.

Conventions (the ones DeepLab's, Cityscapes' and mmseg's evaluators use):

* the confusion matrix ``cm[t, p]`` counts pixels of true class ``t`` predicted as ``p``; pixels
  whose true label is ``ignore_label`` are left out, any other label outside ``[0, num_classes)``
  (in the truth or in the prediction) is an error, never silently dropped (NumPy: ValueError;
  TF: InvalidArgumentError; Keras metric: counted, ``result()`` becomes nan and ``results()``
  raises ValueError, because a compiled / XLA step cannot raise a Python error);
* IoU of class c = TP / (TP + FP + FN); a class that appears neither in the ground truth nor in
  the predictions has IoU ``nan`` and is left out of the mean, so **mIoU averages the classes
  present in the ground truth or in the predictions** (a class only predicted counts, with IoU 0);
* pixel accuracy = trace / total; mean class accuracy = mean of TP / ground-truth pixels over
  the classes present in the ground truth (``nan`` for the others);
* frequency-weighted IoU = sum over classes of (ground-truth frequency x IoU).

Two APIs share this: NumPy / TF functions (:func:`confusion_matrix`, :func:`tf_confusion_matrix`,
:func:`metrics_from_confusion`) and the Keras metric :class:`SegmentationMetrics`, usable in
``model.compile(metrics=[...])``. Its state is one ``(num_classes, num_classes)`` variable with
``aggregation="sum"``, so under ``tf.distribute`` the per-replica matrices are summed when read;
partial results from separate processes merge with :meth:`SegmentationMetrics.merge_state` or by
adding matrices.
"""
import keras
import numpy as np
import tensorflow as tf


def _check_num_classes(num_classes):
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    return int(num_classes)


def confusion_matrix(y_true, y_pred, num_classes, ignore_label=None):
    """NumPy confusion matrix (int64, ``[true, predicted]``) of two label maps of equal shape.

    Raises ValueError naming the offending values when a label (other than ``ignore_label`` in
    ``y_true``) is outside ``[0, num_classes)``.
    """
    num_classes = _check_num_classes(num_classes)
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"label shape {y_true.shape} differs from prediction shape {y_pred.shape}")
    for name, a in (("label", y_true), ("prediction", y_pred)):
        if not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{name}s must be integer class indices, got dtype {a.dtype}")
    y_true = y_true.reshape(-1).astype(np.int64)
    y_pred = y_pred.reshape(-1).astype(np.int64)
    if ignore_label is not None:
        keep = y_true != ignore_label
        y_true, y_pred = y_true[keep], y_pred[keep]
    for name, a in (("label", y_true), ("prediction", y_pred)):
        bad = (a < 0) | (a >= num_classes)
        if bad.any():
            values = np.unique(a[bad])[:10].tolist()
            raise ValueError(f"{name} values {values} are outside [0, {num_classes})"
                             + (f" and are not the ignore label {ignore_label}" if name == "label" else ""))
    return np.bincount(y_true * num_classes + y_pred,
                       minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _tf_counts(y_true, y_pred, num_classes, ignore_label):
    """(confusion matrix, number of out-of-range pixels), both float64; static shapes only, so
    it also runs under XLA (out-of-range pixels go to their own bin instead of raising)."""
    y_true = tf.reshape(tf.cast(y_true, tf.int64), [-1])
    y_pred = tf.reshape(tf.cast(y_pred, tf.int64), [-1])
    n = num_classes * num_classes
    valid = (y_true >= 0) & (y_true < num_classes) & (y_pred >= 0) & (y_pred < num_classes)
    index = tf.where(valid, y_true * num_classes + y_pred, n + 1)
    if ignore_label is not None:
        index = tf.where(tf.equal(y_true, ignore_label), tf.cast(n, tf.int64), index)
    counts = tf.math.unsorted_segment_sum(tf.ones_like(index, tf.float64), index, n + 2)
    return tf.reshape(counts[:n], [num_classes, num_classes]), counts[n + 1]


def _range_message(num_classes, ignore_label):
    extra = "" if ignore_label is None else f" and not the ignore label {ignore_label}"
    return (f"labels or predictions outside [0, {num_classes}){extra}: check num_classes / "
            f"ignore_label against the dataset's masks")


def tf_confusion_matrix(y_true, y_pred, num_classes, ignore_label=None, dtype=tf.int64):
    """TensorFlow version of :func:`confusion_matrix`; out-of-range labels raise
    ``tf.errors.InvalidArgumentError`` naming the problem."""
    num_classes = _check_num_classes(num_classes)
    tf.debugging.assert_equal(tf.size(y_true), tf.size(y_pred),
                              message="labels and predictions have different numbers of pixels")
    cm, invalid = _tf_counts(y_true, y_pred, num_classes, ignore_label)
    with tf.control_dependencies([tf.debugging.assert_equal(
            invalid, tf.constant(0.0, tf.float64), message=_range_message(num_classes, ignore_label))]):
        return tf.cast(cm, dtype)


def mean_iou(cm, over="union"):
    """Mean IoU (fraction) of a confusion matrix ``[true, predicted]``, averaged over the classes
    with a non-empty union (``over="union"``, the usual mIoU and :func:`metrics_from_confusion`'s)
    or over the classes present in the reference (``over="reference"``: the export parity
    gate's, so a class the artifact alone predicts lowers others' IoU, not the count). 1.0 when
    no class qualifies (nothing to disagree on)."""
    if over not in ("union", "reference"):
        raise ValueError(f"over must be 'union' or 'reference', got {over!r}")
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - tp
    valid = (cm.sum(1) > 0) if over == "reference" else (union > 0)
    return float(np.mean(tp[valid] / union[valid])) if valid.any() else 1.0


def metrics_from_confusion(cm, class_names=None):
    """Summary metrics of a confusion matrix (see the module docstring for conventions).

    Returns a dict of plain Python values: ``per_class_iou`` and ``per_class_accuracy`` (lists,
    ``nan`` for absent classes), ``miou``, ``pixel_accuracy``, ``mean_class_accuracy``, ``fw_iou``
    (fractions in [0, 1]), ``num_pixels``, ``present_classes`` and, if given, ``class_names``.
    """
    cm = np.asarray(cm, dtype=np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion matrix must be square, got shape {cm.shape}")
    if class_names is not None and len(class_names) != cm.shape[0]:
        raise ValueError(f"{len(class_names)} class names for {cm.shape[0]} classes")
    tp = np.diag(cm)
    gt = cm.sum(axis=1)
    pred = cm.sum(axis=0)
    union = gt + pred - tp
    total = cm.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        acc = np.where(gt > 0, tp / gt, np.nan)
    present = union > 0
    result = {
        "num_classes": int(cm.shape[0]),
        "num_pixels": int(total),
        "miou": float(np.mean(iou[present])) if present.any() else float("nan"),
        "pixel_accuracy": float(tp.sum() / total) if total else float("nan"),
        "mean_class_accuracy": float(np.mean(acc[gt > 0])) if (gt > 0).any() else float("nan"),
        "fw_iou": float(np.sum((gt / total)[gt > 0] * iou[gt > 0])) if total else float("nan"),
        "per_class_iou": [float(v) for v in iou],
        "per_class_accuracy": [float(v) for v in acc],
        "present_classes": [int(c) for c in np.flatnonzero(present)],
    }
    if class_names is not None:
        result["class_names"] = [str(n) for n in class_names]
    return result


@keras.saving.register_keras_serializable(package="deeplab_keras")
class SegmentationMetrics(keras.metrics.Metric):
    """Streaming confusion matrix; :meth:`result` is the mIoU, :meth:`results` the full dict.

    Args:
        num_classes: number of classes.
        ignore_label: label value excluded from the statistics (e.g. 255, or 11 for CamVid).
        from_logits: ``y_pred`` has a class axis (logits or probabilities) and is arg-maxed;
            ``False`` means ``y_pred`` is already class indices.
        class_names: optional names used by :meth:`results`.

    ``y_true`` may be ``(N, H, W)`` or ``(N, H, W, 1)``; ``sample_weight`` is not supported (use
    ``ignore_label`` to leave pixels out). Unlike ``keras.metrics.MeanIoU``, which drops labels
    outside the classes without a word, out-of-range pixels make ``result()`` nan (visible in the
    training log) and :meth:`results` raise. Works under XLA (static shapes) and tf.distribute.
    """

    def __init__(self, num_classes, ignore_label=None, from_logits=True, class_names=None,
                 name="mean_iou", dtype=None, **kwargs):
        super().__init__(name=name, dtype=dtype, **kwargs)
        self.num_classes = _check_num_classes(num_classes)
        self.ignore_label = None if ignore_label is None else int(ignore_label)
        self.from_logits = bool(from_logits)
        self.class_names = None if class_names is None else [str(n) for n in class_names]
        # float64 counts are exact up to 2**53 pixels and are summed across replicas on read.
        self.confusion = self.add_variable(shape=(self.num_classes, self.num_classes),
                                           initializer="zeros", dtype="float64",
                                           aggregation="sum", name="confusion")
        # pixels with a label outside [0, num_classes) that is not the ignore label: counted
        # (graph/XLA safe) and reported as an error by results(); result() is nan while > 0.
        self.invalid = self.add_variable(shape=(), initializer="zeros", dtype="float64",
                                         aggregation="sum", name="invalid")

    def update_state(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise ValueError("SegmentationMetrics does not take sample_weight; use ignore_label")
        y_pred = tf.convert_to_tensor(y_pred)
        y_true = tf.convert_to_tensor(y_true)
        if self.from_logits:
            if y_pred.shape[-1] is not None and y_pred.shape[-1] != self.num_classes:
                raise ValueError(f"predictions have {y_pred.shape[-1]} channels, expected "
                                 f"num_classes={self.num_classes}")
            y_pred = tf.argmax(y_pred, axis=-1)
        if y_true.shape.rank is not None and y_true.shape.rank == y_pred.shape.rank + 1 \
                and y_true.shape[-1] == 1:
            y_true = tf.squeeze(y_true, -1)
        cm, invalid = _tf_counts(y_true, y_pred, self.num_classes, self.ignore_label)
        self.confusion.assign_add(cm)
        self.invalid.assign_add(invalid)

    def result(self):
        cm = tf.cast(tf.convert_to_tensor(self.confusion), tf.float64)
        tp = tf.linalg.diag_part(cm)
        union = tf.reduce_sum(cm, 0) + tf.reduce_sum(cm, 1) - tp
        present = union > 0
        iou = tf.math.divide_no_nan(tp, union)
        miou = tf.math.divide_no_nan(tf.reduce_sum(tf.where(present, iou, 0.0)),
                                     tf.reduce_sum(tf.cast(present, tf.float64)))
        miou = tf.where(tf.convert_to_tensor(self.invalid) > 0, tf.constant(np.nan, tf.float64), miou)
        return tf.cast(miou, self.dtype)

    def confusion_matrix(self):
        """The accumulated confusion matrix as an int64 NumPy array."""
        return np.asarray(keras.ops.convert_to_numpy(self.confusion)).astype(np.int64)

    def results(self):
        """All metrics (:func:`metrics_from_confusion`) of the accumulated matrix; ValueError
        if any pixel had a label outside the classes and the ignore label."""
        invalid = int(keras.ops.convert_to_numpy(self.invalid))
        if invalid:
            raise ValueError(f"{invalid} pixels had " + _range_message(self.num_classes, self.ignore_label))
        return metrics_from_confusion(self.confusion_matrix(), self.class_names)

    def merge_state(self, metrics):
        """Add the confusion matrices of other :class:`SegmentationMetrics` (e.g. from other
        workers or evaluation shards) into this one."""
        for other in metrics:
            if not isinstance(other, SegmentationMetrics) or other.num_classes != self.num_classes:
                raise ValueError("can only merge SegmentationMetrics with the same num_classes")
            if other.ignore_label != self.ignore_label:
                raise ValueError("can only merge SegmentationMetrics with the same ignore_label")
            self.confusion.assign_add(tf.convert_to_tensor(other.confusion))
            self.invalid.assign_add(tf.convert_to_tensor(other.invalid))

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, ignore_label=self.ignore_label,
                      from_logits=self.from_logits, class_names=self.class_names)
        return config
