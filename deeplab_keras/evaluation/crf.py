"""Kept for imports written before DenseCRF moved to the segmenter layer:
:mod:`deeplab_keras.inference.crf`."""
from deeplab_keras.inference.crf import DEEPLAB_CRF, check_available, dense_crf  # noqa: F401
