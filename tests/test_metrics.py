"""Segmentation metrics against a plain NumPy reference written pixel by pixel."""
import numpy as np
import pytest
import tensorflow as tf

from deeplab_keras.evaluation.metrics import (SegmentationMetrics, confusion_matrix,
                                              metrics_from_confusion, tf_confusion_matrix)

C, IGNORE = 5, 255


def _random_labels(seed, shape=(3, 17, 19), absent=(3,)):
    rng = np.random.default_rng(seed)
    classes = [c for c in range(C) if c not in absent]
    y_true = rng.choice(classes, size=shape)
    y_true[rng.random(shape) < 0.2] = IGNORE
    y_pred = np.where(rng.random(shape) < 0.6, np.where(y_true == IGNORE, 0, y_true),
                      rng.choice(classes, size=shape))
    return y_true.astype(np.int32), y_pred.astype(np.int32)


def _reference(y_true, y_pred):
    """Independent per-class definitions on the raw pixels (no confusion matrix)."""
    keep = y_true != IGNORE
    t, p = y_true[keep], y_pred[keep]
    iou, acc = [], []
    for c in range(C):
        inter = np.sum((t == c) & (p == c))
        union = np.sum((t == c) | (p == c))
        iou.append(inter / union if union else np.nan)
        acc.append(inter / np.sum(t == c) if np.sum(t == c) else np.nan)
    iou, acc = np.array(iou), np.array(acc)
    freq = np.array([np.mean(t == c) for c in range(C)])
    return {"miou": np.nanmean(iou), "pixel_accuracy": np.mean(t == p),
            "mean_class_accuracy": np.nanmean(acc),
            "fw_iou": np.sum(freq[freq > 0] * iou[freq > 0]), "per_class_iou": iou}


def _assert_matches(result, ref):
    for key in ("miou", "pixel_accuracy", "mean_class_accuracy", "fw_iou"):
        assert result[key] == pytest.approx(ref[key], abs=1e-12), key
    np.testing.assert_allclose(result["per_class_iou"], ref["per_class_iou"], atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_numpy_and_tf_match_reference(seed):
    y_true, y_pred = _random_labels(seed)
    ref = _reference(y_true, y_pred)
    cm = confusion_matrix(y_true, y_pred, C, IGNORE)
    assert cm.sum() == np.sum(y_true != IGNORE)
    result = metrics_from_confusion(cm)
    _assert_matches(result, ref)
    assert np.isnan(result["per_class_iou"][3]) and 3 not in result["present_classes"]
    np.testing.assert_array_equal(tf_confusion_matrix(y_true, y_pred, C, IGNORE).numpy(), cm)


def test_class_only_predicted_counts_in_miou():
    y_true = np.array([[0, 0, 1, 1]])
    y_pred = np.array([[0, 2, 1, 1]])
    r = metrics_from_confusion(confusion_matrix(y_true, y_pred, 3))
    assert r["per_class_iou"] == [0.5, 1.0, 0.0]
    assert r["miou"] == pytest.approx(0.5)
    assert np.isnan(r["per_class_accuracy"][2]) and r["mean_class_accuracy"] == pytest.approx(0.75)


def test_keras_metric_streaming_matches_reference_and_logits():
    y_true, y_pred = _random_labels(2)
    metric = SegmentationMetrics(C, ignore_label=IGNORE)
    logits = np.eye(C, dtype=np.float32)[y_pred] * 3.0  # argmax == y_pred
    for i in range(len(y_true)):  # one image at a time, (N, H, W, 1) labels
        metric.update_state(y_true[i:i + 1, ..., None], logits[i:i + 1])
    ref = _reference(y_true, y_pred)
    _assert_matches(metric.results(), ref)
    assert float(metric.result()) == pytest.approx(ref["miou"], abs=1e-6)
    metric.reset_state()
    assert metric.confusion_matrix().sum() == 0


def test_partial_matrices_merge_like_replicas():
    y_true, y_pred = _random_labels(3)
    whole = confusion_matrix(y_true, y_pred, C, IGNORE)
    parts = []
    for half in (slice(0, 1), slice(1, 3)):  # two "workers" each see part of the data
        m = SegmentationMetrics(C, ignore_label=IGNORE, from_logits=False)
        m.update_state(y_true[half], y_pred[half])
        parts.append(m)
    np.testing.assert_array_equal(parts[0].confusion_matrix() + parts[1].confusion_matrix(), whole)
    parts[0].merge_state([parts[1]])
    np.testing.assert_array_equal(parts[0].confusion_matrix(), whole)
    _assert_matches(parts[0].results(), _reference(y_true, y_pred))


_MIRRORED = r"""
import sys, numpy as np, tensorflow as tf, keras
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from deeplab_keras.evaluation.metrics import SegmentationMetrics, confusion_matrix
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert strategy.num_replicas_in_sync == 2
rng = np.random.default_rng(0)
x = rng.random((8, 8, 8, 3)).astype("float32")
y = rng.integers(0, 5, (8, 8, 8)).astype("int32")
y[:, 0] = 255
with strategy.scope():
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(5, 1)(inputs))
    metric = SegmentationMetrics(5, ignore_label=255)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255),
                  metrics=[metric], jit_compile=False)
model.evaluate(x, y, batch_size=4, verbose=0)
expected = confusion_matrix(y, np.argmax(model.predict(x, verbose=0), -1), 5, 255)
assert (metric.confusion_matrix() == expected).all(), (metric.confusion_matrix(), expected)
print("OK", int(expected.sum()))
"""


def test_metric_under_two_replica_mirrored_strategy():
    """Two logical CPU replicas (needs a fresh process): per-replica matrices are summed."""
    import os
    import subprocess
    import sys
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, "-c", _MIRRORED], capture_output=True, text=True,
                          timeout=240, env=env, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "OK 448" in proc.stdout


def test_out_of_range_labels_are_named():
    y_true = np.array([[0, 1, 7, IGNORE]])
    y_pred = np.array([[0, 1, 1, 9]])  # prediction under an ignored pixel is not checked
    with pytest.raises(ValueError, match=r"label values \[7\] are outside \[0, 5\)"):
        confusion_matrix(y_true, y_pred, C, IGNORE)
    with pytest.raises(ValueError, match=r"prediction values \[6\]"):
        confusion_matrix(np.array([1]), np.array([6]), C)
    with pytest.raises(tf.errors.InvalidArgumentError, match="outside"):
        tf_confusion_matrix(y_true, y_pred, C, IGNORE)
    metric = SegmentationMetrics(C, ignore_label=IGNORE, from_logits=False)
    metric.update_state(y_true, y_pred)
    assert np.isnan(float(metric.result()))
    with pytest.raises(ValueError, match="1 pixels had labels or predictions outside"):
        metric.results()
    with pytest.raises(ValueError, match="differs"):
        confusion_matrix(np.zeros((2, 2), int), np.zeros((2, 3), int), C)


def test_metric_in_compile_and_evaluate():
    import keras
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(C, 1)(inputs))
    metric = SegmentationMetrics(C, ignore_label=IGNORE)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=IGNORE),
                  metrics=[metric], jit_compile=True)  # XLA: static shapes only
    x = np.random.default_rng(0).random((4, 8, 8, 3)).astype("float32")
    y = np.random.default_rng(1).integers(0, C, (4, 8, 8)).astype("int32")
    y[:, 0] = IGNORE
    out = model.evaluate(x, y, batch_size=2, verbose=0, return_dict=True)
    pred = np.argmax(model.predict(x, verbose=0), -1)
    ref = metrics_from_confusion(confusion_matrix(y, pred, C, IGNORE))
    assert out["mean_iou"] == pytest.approx(ref["miou"], abs=1e-5)
