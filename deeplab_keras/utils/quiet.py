"""Quiet TensorFlow's C++ start-up chatter. Its log level is read once, when TensorFlow loads.

* ``TF_CPP_MIN_LOG_LEVEL=2`` hides INFO/WARNING start-up notices (oneDNN, CPU features);
* on a machine without NVIDIA device files, level 3: TensorFlow's CUDA build still calls
  ``cuInit`` and logs ``E ... failed call to cuInit`` at ERROR level, which neither
  ``CUDA_VISIBLE_DEVICES`` nor level 2 hides (tensorflow/tensorflow#57916, #37689);
* a value the user set is kept.

The command line sets the variable for its process (:func:`quiet_tensorflow`; ``--verbose``
sets 0). The library does not: ``import deeplab_keras`` leaves ``os.environ`` alone, and when a
``dk.<name>`` attribute is what loads TensorFlow, :func:`quiet_tensorflow_load` sets the level
only while TensorFlow loads and restores the environment right after (child processes and the
user's own settings see nothing of it).
"""
import contextlib
import glob
import os
import re
import sys
import tempfile

#: device files a CUDA (or WSL) GPU shows; none of them means no GPU for TensorFlow to find
GPU_DEVICE_FILES = ("/dev/nvidia[0-9]*", "/dev/nvidiactl", "/dev/dxg")


def has_gpu_device_files():
    return any(glob.glob(pattern) for pattern in GPU_DEVICE_FILES)


LOG_LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"


def quiet_level():
    return "2" if has_gpu_device_files() else "3"


def quiet_tensorflow(verbose=False):
    """The command line's setting: TensorFlow's log level for this process, before it loads (no
    effect once it has loaded). Not called by the library."""
    if verbose:
        os.environ[LOG_LEVEL_ENV] = "0"
        return
    os.environ.setdefault(LOG_LEVEL_ENV, quiet_level())


@contextlib.contextmanager
def quiet_tensorflow_load():
    """While the block runs, and only if TensorFlow has not loaded and the user has not set
    ``TF_CPP_MIN_LOG_LEVEL``: set it, so that TensorFlow, if the block loads it, reads the quiet
    level; afterwards ``os.environ`` is as it was."""
    if "tensorflow" in sys.modules or LOG_LEVEL_ENV in os.environ:
        yield
        return
    os.environ[LOG_LEVEL_ENV] = quiet_level()
    try:
        yield
    finally:
        os.environ.pop(LOG_LEVEL_ENV, None)


#: native log lines of TensorFlow, XLA and the TFLite converter that say nothing to a user:
#: absl/glog INFO and WARNING lines, the converter's settings dump, the XNNPACK notice and the
#: CUDA probe on machines without a GPU
CHATTER = re.compile(
    r"^(?:[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\]"
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IW] "
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|fully_quantize: \d+, inference_type"
    r"|INFO: Created TensorFlow Lite XNNPACK delegate"
    r"|.*failed call to cuInit"
    r"|\S+/tensorflow/lite/python/convert\.py:\d+: UserWarning: Statistics for quantized inputs"
    r"|  warnings\.warn\($)")


@contextlib.contextmanager
def filtered_stderr(enabled=True):
    """Send the process's stderr (file descriptor 2, where C++ libraries log) to a temporary
    file while the block runs, then write back every line except :data:`CHATTER`. Nothing a
    user needs is lost: errors, tracebacks and our own messages come through (after the block)."""
    if not enabled:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real stderr (embedded interpreters)
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            try:
                sys.stderr.flush()
            finally:
                os.dup2(saved, 2)
                os.close(saved)
            capture.seek(0)
            kept = [line for line in capture.read().decode("utf-8", "replace").splitlines(True)
                    if not CHATTER.match(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()
