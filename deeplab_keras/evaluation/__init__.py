"""Evaluation: streaming segmentation metrics, multi-scale / flip / sliding-window inference,
DenseCRF post-processing, and a dataset evaluation loop."""
from deeplab_keras.evaluation.metrics import (SegmentationMetrics, confusion_matrix,
                                              metrics_from_confusion, tf_confusion_matrix)

__all__ = ["SegmentationMetrics", "confusion_matrix", "metrics_from_confusion", "tf_confusion_matrix"]
