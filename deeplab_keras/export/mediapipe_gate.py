"""Run an exported ``.tflite`` in MediaPipe Tasks' ``ImageSegmenter`` (the task graph Android, iOS
and the web use) and compare its category mask with the Keras model's argmax.

    from deeplab_keras.export import mediapipe_gate
    result = mediapipe_gate.compare("model.tflite", serve, images, labels=labels)
"""
import numpy as np

from deeplab_keras.export.metadata import MetadataError

# agreement of MediaPipe's category mask with the Keras argmax (same numbers as the bar)
THRESHOLDS = {"none": 0.99, "float16": 0.99, "dynamic": 0.97, "int8": 0.97, "qat": 0.97}


def available():
    try:
        from mediapipe.tasks.python import vision  # noqa: F401
        return True
    except ImportError:
        return False


class Segmenter:
    """``Segmenter(path)(image)`` -> (H, W) uint8 category mask from MediaPipe ImageSegmenter;
    ``.labels`` as MediaPipe reads them from the file's metadata."""

    def __init__(self, path):
        try:
            import mediapipe as mp
            from mediapipe.tasks.python import vision
            from mediapipe.tasks.python.core.base_options import BaseOptions
        except ImportError as err:
            raise MetadataError("the MediaPipe gate needs mediapipe: pip install "
                                "'deeplab-keras[mobile]'") from err
        self._mp = mp
        opts = vision.ImageSegmenterOptions(base_options=BaseOptions(model_asset_path=str(path)),
                                            output_category_mask=True, output_confidence_masks=False)
        try:
            self._seg = vision.ImageSegmenter.create_from_options(opts)
        except Exception as err:  # MediaPipe raises RuntimeError/ValueError with its status text
            raise MetadataError(f"MediaPipe ImageSegmenter cannot load {path}: {err}") from err
        self.labels = list(self._seg.labels)

    def __call__(self, image):
        x = np.ascontiguousarray(np.clip(np.round(np.asarray(image, np.float32)), 0, 255).astype(np.uint8))
        result = self._seg.segment(self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=x))
        return np.array(result.category_mask.numpy_view()).reshape(x.shape[:2])

    def close(self):
        self._seg.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def compare(path, serve, images, labels=None, quantize="none", threshold=None):
    """MediaPipe category masks vs the Keras argmax of ``serve`` on ``images`` (H, W, 3 at the
    file's input size). Returns ``{"mediapipe_agreement_with_keras", "mediapipe_labels_match",
    "passed", "reasons", ...}``."""
    thr = THRESHOLDS[quantize] if threshold is None else float(threshold)
    agree = total = 0
    with Segmenter(path) as seg:
        got_labels = seg.labels
        for img in images:
            ref = next(iter(serve(np.asarray(img, np.float32)[None]).values())).numpy()
            ref = ref if serve.output_mode == "classes" else np.argmax(ref, axis=-1)
            mask = seg(img)
            agree += int((mask == ref.reshape(mask.shape)).sum())
            total += mask.size
    out = {"mediapipe_images": len(images), "mediapipe_agreement_with_keras": agree / max(total, 1),
           "mediapipe_labels": got_labels, "mediapipe_threshold": thr}
    reasons = []
    if out["mediapipe_agreement_with_keras"] < thr:
        reasons.append(f"MediaPipe category-mask agreement with Keras "
                       f"{out['mediapipe_agreement_with_keras']:.4f} < {thr}")
    if labels is not None:
        out["mediapipe_labels_match"] = list(labels) == got_labels
        if not out["mediapipe_labels_match"]:
            reasons.append(f"MediaPipe reads labels {got_labels[:5]}... not the model's {list(labels)[:5]}...")
    out["mediapipe_passed"] = not reasons
    out["mediapipe_reasons"] = reasons
    return out
