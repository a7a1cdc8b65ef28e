"""Kept for imports written before the runtime moved: the one module that opens LiteRT,
onnxruntime and TensorFlow sessions is :mod:`deeplab_keras.inference.runtime`."""
from deeplab_keras.inference.runtime import Artifact, artifact_format  # noqa: F401
