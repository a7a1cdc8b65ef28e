"""Which Keras builds the graph: Keras 3 (default) or tf_keras (Keras 2, needed by tfmot QAT).

Every block in :mod:`deeplab_keras.layers` takes its layer classes from :func:`layers`, so the
same builder code produces a Keras 3 model normally and an identical tf_keras model inside
``with frontend.use(tf_keras):``. Weights then transfer by layer name.
"""
import contextlib
import threading

import keras

_state = threading.local()


def get():
    """The Keras module in use: ``keras`` (Keras 3) unless switched with :func:`use`."""
    return getattr(_state, "module", keras)


def layers():
    return get().layers


def is_keras3():
    return get() is keras


@contextlib.contextmanager
def use(module):
    """Build with another Keras module (``tf_keras``) inside the block."""
    previous = getattr(_state, "module", keras)
    _state.module = module
    try:
        yield module
    finally:
        _state.module = previous
