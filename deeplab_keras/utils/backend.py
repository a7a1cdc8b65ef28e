"""Which Keras backend runs, and the one refusal for what stays TensorFlow.

The models, presets, ``.keras`` files and inference run on every Keras 3 backend (TensorFlow, JAX,
PyTorch). Export (TFLite / ONNX / SavedModel), QAT and training (``tf.distribute`` strategies,
``tf.data`` pipelines) need TensorFlow graphs: on another backend they stop before any work with
:class:`BackendError`, naming the fix (docs/backends.md).
"""
import keras

FIX = "KERAS_BACKEND=tensorflow"


class BackendError(ValueError):
    """A TensorFlow-only feature was asked for on another Keras backend (a ValueError, so the
    command line prints it as one line)."""


def backend():
    """The Keras backend of this process: "tensorflow", "jax", "torch" or "numpy"."""
    return keras.backend.backend()


def require_tensorflow(what):
    """Raise :class:`BackendError` unless Keras runs on TensorFlow; ``what`` names the feature."""
    current = backend()
    if current != "tensorflow":
        raise BackendError(f"{what} needs Keras' TensorFlow backend, but this process runs "
                           f"{current!r}: rerun it with {FIX} (the same .keras / .weights.h5 "
                           "files load there)")
