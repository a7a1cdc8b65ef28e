"""Temporal smoothing of per-frame segmentations: motion-aware exponential averaging of class
evidence, plus hysteresis on class switches.

Per pixel, at the source's output resolution:

* evidence ``p_t``: softmax probabilities of a scores output, or the one-hot class of a
  class-map output (an int8 ``classes`` artifact);
* ``E_t = (1 - a) * E_{t-1} + a * p_t`` with ``a = 1 - strength`` where the picture is still,
  rising to 1 where it moved (the grey-level difference of the frames, downscaled to the same
  resolution, over ``motion_scale``), so moving objects are not smeared over the background;
* hysteresis: the shown class stays until another class's evidence beats it by ``margin``
  (flicker between two near-equal classes stops; a clear change goes through at once).

``reset()`` forgets the past (a cut in the video, or a change of frame size).

The defaults were chosen on CamVid's val clip (``python bench/video.py --smoothing-only``, the
grid in ``bench/results/video_smoothing.md``; there is no second labelled clip to confirm them
on): with the int8 logits file, -25% flicker for -0.47 mIoU. Smoothing works on probabilities:
a class-map file (one-hot votes) gains much less; export with ``--output-mode logits`` (or
``--target mediapipe``) for video.
"""
import math
import numbers

import numpy as np


def _real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _show(value):
    return f"{value!r} (a {type(value).__name__})"


def _fraction(name, value):
    """``value`` as a float in [0, 1); else a ValueError naming the parameter."""
    if not _real(value) or not 0 <= value < 1:
        raise ValueError(f"TemporalSmoother {name} must be in [0, 1) (a number), got {_show(value)}")
    return float(value)


def _softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    np.exp(x, out=x)
    x /= x.sum(axis=-1, keepdims=True)
    return x


def _gray(frame, size):
    """Grey levels (0-1) of ``frame`` at ``size`` (nearest sampling: cheap, motion only)."""
    h, w = frame.shape[:2]
    rows = (np.arange(size[0]) * h // size[0])
    cols = (np.arange(size[1]) * w // size[1])
    small = frame[rows][:, cols].astype(np.float32)
    return small @ np.array([0.299, 0.587, 0.114], np.float32) / 255.0


class TemporalSmoother:
    """Smooth a stream of per-frame outputs (see the module docstring).

    Args:
        strength: 0 (off) .. <1: weight of the past where the picture is still.
        motion_scale: grey-level change (0-1) at which a pixel counts as fully moving (the past
            is dropped there); None turns motion gating off.
        margin: hysteresis margin on the averaged evidence (0 turns it off).
    """

    def __init__(self, strength=0.4, motion_scale=0.12, margin=0.25):
        self.strength = _fraction("strength", strength)
        if motion_scale is not None:
            if not _real(motion_scale) or not motion_scale > 0:
                raise ValueError(f"TemporalSmoother motion_scale must be a positive number or "
                                 f"None (no motion gating), got {_show(motion_scale)}")
            motion_scale = float(motion_scale)
        self.motion_scale = motion_scale
        self.margin = _fraction("margin", margin)
        self.reset()

    @classmethod
    def from_arg(cls, value, name="smoothing"):
        """A ``smoothing=`` argument (``VideoSegmenter``, ``predict``'s engine) as a smoother or
        None: False/None (off), True (the recommended defaults), a strength in [0, 1), or a
        :class:`TemporalSmoother`. Anything else is a ValueError naming ``name``."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, cls):
            return value
        if _real(value):
            if not 0 <= value < 1:
                raise ValueError(f"{name} strength must be in [0, 1) (0: hysteresis only; "
                                 f"True: the recommended {cls().strength:g}), got {value!r}")
            return cls(strength=float(value))
        raise ValueError(f"{name} must be True, False, a strength in [0, 1) or a "
                         f"TemporalSmoother, got {_show(value)}")

    def reset(self):
        self._evidence = self._shown = self._gray = None

    def update(self, output, frame=None, num_classes=None):
        """Smoothed evidence ``(h, w, C)`` float32 for this frame's ``output``: scores
        ``(h, w, C)`` or a class map ``(h, w)`` (then ``num_classes`` sets C)."""
        if output.ndim == 2:
            top = int(output.max()) if output.size else 0
            n = int(num_classes or top + 1)
            if output.size and (top >= n or int(output.min()) < 0):
                raise ValueError(f"class map holds classes {int(output.min())}..{top} but "
                                 f"num_classes is {n} (classes 0..{n - 1}): pass the model's "
                                 "class count as num_classes")
            p = np.zeros(output.shape + (n,), np.float32)
            np.put_along_axis(p, output[..., None].astype(np.intp), 1.0, axis=-1)
        else:
            p = _softmax(np.array(output, np.float32))
        if self._evidence is not None and self._evidence.shape != p.shape:
            self.reset()  # size or class count changed: start again
        gray = _gray(frame, p.shape[:2]) if frame is not None and self.motion_scale else None
        if self._evidence is None:
            self._evidence = p
        else:
            a = np.full(p.shape[:2], 1.0 - self.strength, np.float32)
            if gray is not None and self._gray is not None:
                moved = np.minimum(np.abs(gray - self._gray) / self.motion_scale, 1.0)
                a += (1.0 - a) * moved
            a = a[..., None]
            self._evidence = self._evidence * (1.0 - a) + p * a
        self._gray = gray
        return self._evidence

    def with_hysteresis(self, evidence):
        """``evidence`` with ``margin`` added to the previously shown class, so its argmax only
        switches class where another beats the shown one by the margin; remembers the new
        argmax as the shown class. (Biasing the evidence, not the class map, lets the caller
        still upsample it bilinearly to the frame's size.)"""
        if self.margin and self._shown is not None and self._shown.shape == evidence.shape[:2]:
            evidence = evidence.copy()
            idx = self._shown[..., None]
            np.put_along_axis(evidence, idx,
                              np.take_along_axis(evidence, idx, axis=-1) + self.margin, axis=-1)
        self._shown = evidence.argmax(-1)
        return evidence
