"""Bounds checked before any allocation: the size a model is asked to run at (an input size, a
scale of it) against the memory this machine has, with one line naming the setting to change.

The cost per pixel is an estimate from a measurement: the CamVid preset (DeepLab v3+
MobileNetV2, 11 classes) run eagerly on TensorFlow at 536x720 and at 1072x1440 peaks at 3.1 KB
per pixel above the model itself (``python bench/run_memory.py 536x720 1072x1440``: 1144 MB and
4589 MB). Larger backbones cost more; the check only has to catch sizes that cannot work
(a scale of 100, a 100000x100000 input), not to predict a run that fits.
"""
import os

#: bytes a pixel of the size a model runs at (activations, input, output), measured (see above)
BYTES_PER_PIXEL = 3072
#: the part of the memory available now that one run may plan to use
SHARE = 0.8


def available_memory():
    """Bytes of memory available now (``MemAvailable`` of /proc/meminfo, else the free pages),
    or None when the system does not say."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def run_bytes(size, num_classes=None):
    """Estimated peak bytes of running a model at ``size`` (height, width)."""
    h, w = (int(s) for s in size)
    return h * w * (BYTES_PER_PIXEL + 8 * int(num_classes or 0))


def _gb(n):
    return f"{n / 2 ** 30:.1f} GB"


def check_run_size(size, num_classes=None, what="the input size", fix="a smaller size"):
    """ValueError (before anything is allocated) when running at ``size`` cannot fit in memory:
    the message names ``what`` asked for it and ``fix``."""
    h, w = (int(s) for s in size)
    if h < 1 or w < 1:
        raise ValueError(f"{what} {h}x{w} is empty: give a positive height and width")
    need, have = run_bytes((h, w), num_classes), available_memory()
    if have is not None and need > SHARE * have:
        raise ValueError(f"{what} {h}x{w} would need about {_gb(need)} of memory, more than the "
                         f"{_gb(have)} available: use {fix}")
