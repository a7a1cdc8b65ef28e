"""Quiet TensorFlow by default: its C++ log level is read once, when TensorFlow loads, so this
runs from ``deeplab_keras/__init__`` before anything imports TensorFlow.

* ``TF_CPP_MIN_LOG_LEVEL=2`` hides INFO/WARNING start-up notices (oneDNN, CPU features);
* on a machine without NVIDIA device files, level 3: TensorFlow's CUDA build still calls
  ``cuInit`` and logs ``E ... failed call to cuInit`` at ERROR level, which neither
  ``CUDA_VISIBLE_DEVICES`` nor level 2 hides (tensorflow/tensorflow#57916, #37689);
* a value the user set is kept; ``deeplab-keras --verbose`` sets 0 before TensorFlow loads.
"""
import glob
import os

#: device files a CUDA (or WSL) GPU shows; none of them means no GPU for TensorFlow to find
GPU_DEVICE_FILES = ("/dev/nvidia[0-9]*", "/dev/nvidiactl", "/dev/dxg")


def has_gpu_device_files():
    return any(glob.glob(pattern) for pattern in GPU_DEVICE_FILES)


def quiet_tensorflow(verbose=False):
    """Set TensorFlow's log level before it loads (no effect once it has loaded)."""
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2" if has_gpu_device_files() else "3")
