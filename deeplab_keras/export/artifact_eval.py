"""``evaluate_artifact``: an exported file evaluated on a labelled dataset, kept for code written
before :func:`deeplab_keras.evaluation.evaluate` took any source. It is that function, given the
file: the same segmenter layer (:mod:`deeplab_keras.inference.source`) that ``predict``,
``dk.segment`` and ``VideoSegmenter`` run files through, so the figures are the same.

    from deeplab_keras.evaluation import evaluate
    result = evaluate("camvid_int8.tflite", data.list_pairs("camvid", root, "val"),
                      dataset="camvid")
"""
import os


def evaluate_artifact(path, data, *, dataset=None, num_classes=None, ignore_label=None,
                      class_names=None, limit=None, num_threads=None, progress=False):
    """:func:`deeplab_keras.evaluation.evaluate` of the exported file at ``path``."""
    from deeplab_keras.evaluation import evaluate
    from deeplab_keras.inference.source import FileSegmenter

    segmenter = FileSegmenter(os.fspath(path), num_threads=num_threads)
    return evaluate(segmenter, data, dataset=dataset, num_classes=num_classes,
                    ignore_label=ignore_label, class_names=class_names, limit=limit,
                    progress=progress)
