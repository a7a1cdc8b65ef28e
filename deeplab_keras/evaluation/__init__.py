"""Evaluation: streaming segmentation metrics, multi-scale / flip / sliding-window inference,
DenseCRF post-processing, and a dataset evaluation loop.

    from deeplab_keras.evaluation import evaluate, predict_probabilities
    result = evaluate(model, data.list_pairs("camvid", root, "val"), dataset="camvid", flip=True)
"""
from deeplab_keras.inference.crf import DEEPLAB_CRF, dense_crf
from deeplab_keras.evaluation.evaluator import evaluate, format_table, write_json
from deeplab_keras.inference.multiscale import Predictor, predict_probabilities
from deeplab_keras.evaluation.metrics import (SegmentationMetrics, confusion_matrix,
                                              metrics_from_confusion, tf_confusion_matrix)

__all__ = ["SegmentationMetrics", "confusion_matrix", "metrics_from_confusion",
           "tf_confusion_matrix", "Predictor", "predict_probabilities", "DEEPLAB_CRF", "dense_crf",
           "evaluate", "format_table", "write_json"]
