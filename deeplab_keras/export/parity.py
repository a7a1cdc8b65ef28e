"""The parity gate: run the artifact and the Keras model on the same images and compare.

Metrics per export: logit max/mean abs error (when the artifact outputs logits/probabilities),
argmax agreement (fraction of pixels with the same class), and mIoU of the artifact's class map
taking the Keras class map as ground truth, averaged over the classes present in the Keras map
(100 = identical; ``miou_delta`` = 100 - that; a class the artifact alone predicts still lowers
the IoU of the classes whose pixels it took).

Thresholds on agreement, by quantization mode:
* none (float32): 0.99 - same graph, same float maths; only summation order differs, so any
  disagreement is a near-tie pixel. Also max abs logit error <= 1e-3 x the logit range.
* float16: 0.98 - fp16 weights (about 3 significant digits) move near-tie pixels only.
* dynamic: 0.95 - int8 weights with float activations: weight rounding, no activation clipping.
* int8 / qat: 0.90 - 8-bit activations; published QAT/PTQ DeepLab models lose about 1 mIoU
  point, which on real images is ~1-3% of pixels (boundaries); 0.90 leaves room for small
  calibration sets while catching broken conversions (wrong scale, wrong I/O, clipped ranges),
  which land far below (near chance for 21 classes).
"""
import json
import os
import time

import numpy as np

from deeplab_keras.evaluation.metrics import confusion_matrix, mean_iou
from deeplab_keras.utils import io

THRESHOLDS = {"none": 0.99, "float16": 0.98, "dynamic": 0.95, "int8": 0.90, "qat": 0.90}
FLOAT_LOGIT_RTOL = 1e-3


METRIC_NAMES = {  # report wording that cannot be read as accuracy against labels
    "agreement": "agreement with Keras argmax (fraction of pixels)",
    "miou_vs_keras": "mIoU of the artifact's class map taking the Keras class map as truth (100 = identical)",
    "miou_delta": "100 - the above (disagreement with Keras, not a loss against labels)",
    "mediapipe_agreement_with_keras": "MediaPipe ImageSegmenter category mask: agreement with Keras argmax",
    "mediapipe_labels_match": "MediaPipe labels equal the model's labels",
}


class ParityError(ValueError):
    """The exported artifact does not reproduce the Keras model within the gate."""


def confusion(pred, ref, num_classes):
    """Confusion matrix (rows = reference): :func:`deeplab_keras.evaluation.metrics.confusion_matrix`."""
    return confusion_matrix(np.asarray(ref).astype(np.int64), np.asarray(pred).astype(np.int64),
                            num_classes)


def miou_from_confusion(cm, present_only=False):
    """Mean IoU in % from a confusion matrix (rows = reference). ``present_only``: average over
    the classes present in the reference, else over every class with a non-empty union
    (:func:`deeplab_keras.evaluation.metrics.mean_iou`)."""
    return 100.0 * mean_iou(cm, over="reference" if present_only else "union")


def _classes(y, output_mode):
    return y if output_mode == "classes" else np.argmax(y, axis=-1)


def compare(artifact, serve, images, num_classes):
    """Run ``artifact`` (an :class:`~deeplab_keras.export.runtime.Artifact`) and ``serve`` (the
    float Keras graph) on ``images``; returns a dict of metrics."""
    mode = serve.output_mode
    agree, total, max_err, sum_err, n_err, ref_range = 0, 0, 0.0, 0.0, 0, 0.0
    cm = np.zeros((num_classes, num_classes), np.int64)
    for img in images:
        ref = next(iter(serve(np.asarray(img, np.float32)[None]).values())).numpy()
        got = np.asarray(artifact(img))
        if got.shape != ref.shape:
            got = got.reshape(ref.shape)  # e.g. ONNX dropping nothing; sizes must match anyway
        if mode != "classes":
            diff = np.abs(got.astype(np.float32) - ref)
            max_err = max(max_err, float(diff.max()))
            sum_err += float(diff.sum())
            n_err += diff.size
            ref_range = max(ref_range, float(ref.max() - ref.min()))
        pc, rc = _classes(got, mode), _classes(ref, mode)
        agree += int((pc == rc).sum())
        total += pc.size
        cm += confusion(np.clip(pc, 0, num_classes - 1), rc, num_classes)
    miou = miou_from_confusion(cm, present_only=True)
    out = {"images": len(images), "pixels": total, "agreement": agree / total,
           "miou_vs_keras": miou, "miou_delta": 100.0 - miou}
    if mode != "classes":
        out.update(max_abs_error=max_err, mean_abs_error=sum_err / max(n_err, 1),
                   reference_range=ref_range)
    return out


def check(metrics, quantize, threshold=None):
    """``(passed, reasons)`` for ``metrics`` under the gate of ``quantize``."""
    threshold = THRESHOLDS[quantize] if threshold is None else float(threshold)
    reasons = []
    if metrics["agreement"] < threshold:
        reasons.append(f"argmax agreement {metrics['agreement']:.4f} < {threshold}")
    if quantize == "none" and "max_abs_error" in metrics:
        limit = FLOAT_LOGIT_RTOL * max(1.0, metrics["reference_range"])
        if metrics["max_abs_error"] > limit:
            reasons.append(f"max abs error {metrics['max_abs_error']:.3g} > {limit:.3g}")
    return not reasons, reasons, threshold


def write_report(report, report_dir, name):
    """Atomically write ``<name>.json`` and ``<name>.md`` in ``report_dir``; returns both paths."""
    os.makedirs(report_dir, exist_ok=True)
    paths = []
    for ext, text in ((".json", json.dumps(report, indent=1, default=str)), (".md", to_markdown(report))):
        paths.append(io.write_text(os.path.join(report_dir, name + ext), text + "\n"))
    return paths


def to_markdown(report):
    m = report.get("parity", {})
    lines = [f"# Export report: {report.get('name')}", "",
             f"- artifact: `{report.get('output')}` ({report.get('format')}, quantize "
             f"{report.get('quantize')}, output {report.get('output_mode')}, input "
             f"{report.get('input_size')}, {report.get('size_bytes', '?')} bytes)",
             f"- model: {report.get('model')} ({report.get('architecture') or 'given model'})",
             f"- parity images: {report.get('parity_images')}",
             f"- gate: agreement >= {report.get('threshold')} -> **{'PASS' if report.get('passed') else 'FAIL'}**"]
    for r in report.get("reasons", []):
        lines.append(f"  - {r}")
    lines += ["", "Figures compare the artifact with the Keras model on the parity images (not with "
              "ground-truth labels: for accuracy on a labelled set run `deeplab-keras evaluate --artifact`).",
              "", "| metric | value |", "|---|---|"]
    for k in ("agreement", "miou_vs_keras", "miou_delta", "max_abs_error", "mean_abs_error",
              "reference_range", "images", "pixels", "mediapipe_agreement_with_keras",
              "mediapipe_labels_match"):
        if k in m:
            v = m[k]
            k = METRIC_NAMES.get(k, k)
            lines.append(f"| {k} | {v:.6g} |" if isinstance(v, float) else f"| {k} | {v} |")
    for k, v in report.get("notes", {}).items():
        lines.append(f"- {k}: {v}")
    from deeplab_keras.export import handoff
    lines += handoff.to_markdown(report)
    lines.append(f"\n_generated {time.strftime('%Y-%m-%d %H:%M:%S')}_")
    return "\n".join(lines)
