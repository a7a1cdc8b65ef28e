"""Kept for imports written before test-time inference moved to the segmenter layer:
:mod:`deeplab_keras.inference.multiscale`."""
from deeplab_keras.inference.multiscale import (Predictor, predict_probabilities,  # noqa: F401
                                                window_starts, window_weights)
