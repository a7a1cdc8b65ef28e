"""Temporal smoothing of per-frame segmentations: motion-aware exponential averaging of class
evidence, plus hysteresis on class switches.

Per pixel, at the source's output resolution:

* evidence ``p_t``: softmax probabilities of scores: a scores output, a Keras model's logits, or
  the second output of a class-map export (``lowres_logits``: the logits at the output stride,
  90x120x11 for CamVid at 360x480, 16x fewer values than the frame). A class-map file without
  it (exported before it was added) gives only the one-hot class of its map;
* ``E_t = (1 - a) * E_{t-1} + a * p_t`` with ``a = 1 - strength`` where the picture is still,
  rising to 1 where it moved (the grey-level difference of the frames, block means at the
  evidence's resolution, over ``motion_scale``), so moving objects are not smeared;
* hysteresis: the shown class stays until another class's evidence beats it by ``margin``
  (flicker between two near-equal classes stops; a clear change goes through at once); the
  margin falls to 0 where the picture moved, as the past does. On low-resolution evidence it is
  applied at the size shown (:meth:`TemporalSmoother.classes`): the evidence is upsampled once
  (:func:`upsampled_argmax`) and each shown pixel keeps its class unless beaten there.

``reset()`` forgets the past (a cut in the video, or a change of frame size).

The defaults were chosen by ``python bench/video_smoothing.py --int8 camvid_int8.tflite`` on
synthetic clips made from CamVid train sequence 0006R0 (a zoom and pan at three speeds with
fresh noise; not the val clip), the largest flicker reduction with an mIoU drop <= 0.25 there:
strength 0.3, motion_scale 0.3, margin 0.3 (-26.6% flicker, -0.03 mIoU on those clips). On
CamVid's val clip with the default int8 export (``bench/results/video_smoothing_choice.md``):
flicker 0.0453 -> 0.0347 (-23.4%), mIoU 81.73 -> 80.40 (-1.33), about 5-8 ms a frame on 2
shared AMD EPYC cores (0.80x the unsmoothed frames/s in the recorded run): short of the -25% at
<= 0.5 mIoU asked for. A class-map file without the
low-resolution output gains nothing from these settings (votes: 0.0%): export it again.
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
    """Softmax over the last axis of ``x`` (h, w, C) float32, as a new array. The per-pixel max
    is taken class by class and the sum is a matrix product: NumPy's reductions over a short
    last axis are 3-5x slower (1.7 vs 0.5 ms at 90x120x11)."""
    top = x[..., 0].copy()
    for k in range(1, x.shape[-1]):
        np.maximum(top, x[..., k], out=top)
    x = x - top[..., None]
    np.exp(x, out=x)
    x /= (x @ np.ones(x.shape[-1], np.float32))[..., None]
    return x


def _gray(frame, size):
    """Grey levels (0-1) of ``frame`` at ``size``, each the mean of its block of the frame (an
    edge moving inside a block changes it; one sampled pixel per block would miss it)."""
    h, w = frame.shape[:2]
    weights = np.array([0.299, 0.587, 0.114], np.float32)
    if h % size[0] == 0 and w % size[1] == 0:
        sy, sx = h // size[0], w // size[1]  # whole blocks: strided sums (3x reduceat's speed)
        rows = frame[0::sy].astype(np.uint32 if sy * sx > 256 else np.uint16)
        for k in range(1, sy):
            rows += frame[k::sy]
        sums = rows[:, 0::sx].copy()
        for k in range(1, sx):
            sums += rows[:, k::sx]
        return sums.astype(np.float32) @ (weights / np.float32(255.0 * sy * sx))
    rows = np.arange(size[0]) * h // size[0]
    cols = np.arange(size[1]) * w // size[1]
    sums = np.add.reduceat(np.add.reduceat(frame, rows, axis=0, dtype=np.uint32), cols, axis=1)
    counts = np.diff(np.append(rows, h))[:, None] * np.diff(np.append(cols, w))[None, :]
    return (sums.astype(np.float32) @ weights) / (counts * 255.0).astype(np.float32)


_GRIDS = {}


def _axis(in_size, out_size, semantics):
    """One axis of a bilinear resize: each output index's lower source index ``i`` and weight on
    ``i + 1`` (TensorFlow's sampling, :func:`deeplab_keras.layers.resize.source_indices`; 0
    where it samples ``i`` alone), and the same grouped by source cell: for each input index,
    the output indices whose lower source index it is (padded with -1 to one width) and their
    weights."""
    from deeplab_keras.layers.resize import source_indices

    lower, upper, lerp = source_indices(in_size, out_size, semantics)
    lerp = np.where(upper > lower, lerp, np.float32(0)).astype(np.float32)
    counts = np.bincount(lower, minlength=in_size)
    width = max(int(counts.max()), 1)
    index = np.full((in_size, width), -1, np.intp)
    weight = np.zeros((in_size, width), np.float32)
    slot = np.arange(out_size) - np.searchsorted(lower, lower)  # lower is non-decreasing
    index[lower, slot] = np.arange(out_size)
    weight[lower, slot] = lerp[np.arange(out_size)]
    return lower.astype(np.intp), index, weight, lerp


def _grid(in_size, out_size, semantics):
    """Both axes of :func:`_axis` for ``in_size`` -> ``out_size``, cached per sizes."""
    key = (tuple(in_size), tuple(out_size), semantics)
    if key not in _GRIDS:
        if len(_GRIDS) > 8:
            _GRIDS.clear()
        _GRIDS[key] = tuple(_axis(int(i), int(o), semantics) for i, o in zip(in_size, out_size))
    return _GRIDS[key]


def upsampled_argmax(evidence, size, semantics="half_pixel"):
    """The argmax of ``evidence`` ``(h, w, C)`` bilinearly resized to ``size`` with the model's
    ``semantics``, without resizing all C channels of every pixel. An output pixel is
    interpolated from the corners of one source cell (rows i, i+1 and columns j, j+1); where the
    four corners share their argmax, the interpolated vector (a convex combination of vectors
    with that largest entry) has it too. So the class map is the corners' class there, and the
    C channels are interpolated only in cells whose corners differ (boundaries: about 8% of the
    cells of a CamVid frame at 90x120), cell by cell. Equal to ``resize(evidence, size)``'s
    argmax up to float ties; uint8 (int32 beyond 256 classes)."""
    h, w, c = evidence.shape
    (rows, row_out, row_w, _), (cols, col_out, col_w, _) = _grid((h, w), tuple(size), semantics)
    top = evidence.argmax(-1).astype(np.uint8 if c <= 256 else np.int32)
    out = top.take(rows, axis=0).take(cols, axis=1)  # the cell's class, nearest-style
    edge = np.pad(top, ((0, 1), (0, 1)), mode="edge")
    mixed = ((edge[:-1, :-1] != edge[:-1, 1:]) | (edge[:-1, :-1] != edge[1:, :-1]) |
             (edge[:-1, :-1] != edge[1:, 1:]))
    ci, cj = np.divmod(np.flatnonzero(mixed), w)  # (flatnonzero: 4x nonzero's speed)
    if ci.size:
        below, right = np.minimum(ci + 1, h - 1), np.minimum(cj + 1, w - 1)
        tl, tr = evidence[ci, cj], evidence[ci, right]  # (n, C)
        bl, br = evidence[below, cj], evidence[below, right]
        wx = col_w[cj][:, :, None]  # (n, Kx, 1): TensorFlow's lerp order
        upper = tl[:, None] + (tr - tl)[:, None] * wx
        lower = bl[:, None] + (br - bl)[:, None] * wx
        value = upper[:, None] + (lower - upper)[:, None] * row_w[ci][:, :, None, None]
        y, x = row_out[ci][:, :, None], col_out[cj][:, None, :]
        keep = (y >= 0) & (x >= 0)
        keep, y, x = np.broadcast_arrays(keep, y, x)
        out[y[keep], x[keep]] = value.argmax(-1)[keep]
    return out


def _upsampled_at(evidence, ys, xs, classes, semantics, size):
    """The evidence of ``classes`` at output pixels ``(ys, xs)`` of ``evidence`` bilinearly
    resized to ``size``: the values :func:`upsampled_argmax` compares, for a few pixels."""
    h, w, c = evidence.shape
    (rows, _, _, wy), (cols, _, _, wx) = _grid((h, w), tuple(size), semantics)
    y0, x0 = rows[ys], cols[xs]
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    flat = evidence.reshape(-1)
    k = classes.astype(np.intp)
    tl, tr = flat[(y0 * w + x0) * c + k], flat[(y0 * w + x1) * c + k]
    bl, br = flat[(y1 * w + x0) * c + k], flat[(y1 * w + x1) * c + k]
    a, b = wx[xs], wy[ys]
    upper = tl + (tr - tl) * a
    return upper + (bl + (br - bl) * a - upper) * b


class TemporalSmoother:
    """Smooth a stream of per-frame outputs (see the module docstring).

    Args:
        strength: 0 (off) .. <1: weight of the past where the picture is still.
        motion_scale: grey-level change (0-1) at which a pixel counts as fully moving (the past
            is dropped there); None turns motion gating off.
        margin: hysteresis margin on the averaged evidence (0 turns it off).
    """

    def __init__(self, strength=0.3, motion_scale=0.3, margin=0.3):
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
        self._evidence = self._shown = self._gray = self._moved = None

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
            p = _softmax(np.asarray(output, np.float32))
        if self._evidence is not None and self._evidence.shape != p.shape:
            self.reset()  # size or class count changed: start again
        gray = _gray(frame, p.shape[:2]) if frame is not None and self.motion_scale else None
        self._moved = None
        if self._evidence is None:
            self._evidence = p
        else:
            keep = np.float32(self.strength)
            if gray is not None and self._gray is not None:
                # how far each pixel moved, 0..1; a = (1 - s) + s * moved
                self._moved = np.minimum(np.abs(gray - self._gray) / self.motion_scale, 1)
                a = (self._moved * keep + (1 - keep))[..., None]
            else:
                a = 1 - keep
            self._evidence = self._evidence + (p - self._evidence) * a
        self._gray = gray
        return self._evidence

    def _margin(self, shape):
        """The hysteresis margin per pixel of the evidence: ``margin`` where the picture is
        still, falling to 0 where it moved (a moving object's class follows it at once)."""
        if self._moved is None or self._moved.shape != shape:
            return np.float32(self.margin)
        return self.margin * (1 - self._moved)

    def with_hysteresis(self, evidence):
        """``evidence`` with ``margin`` added to the previously shown class, so its argmax only
        switches class where another beats the shown one by the margin; remembers the new
        argmax as the shown class. (Biasing the evidence, not the class map, lets the caller
        still upsample it bilinearly to the frame's size.)"""
        if self.margin and self._shown is not None and self._shown.shape == evidence.shape[:2]:
            evidence = evidence.copy()
            idx = self._shown[..., None]
            margin = self._margin(evidence.shape[:2])
            margin = margin[..., None] if np.ndim(margin) else margin
            np.put_along_axis(evidence, idx,
                              np.take_along_axis(evidence, idx, axis=-1) + margin, axis=-1)
        self._shown = evidence.argmax(-1)
        return evidence

    def classes(self, evidence, size, semantics="half_pixel"):
        """The class map shown at ``size`` for low-resolution ``evidence`` (from
        :meth:`update`): the argmax of the evidence bilinearly resized to ``size``
        (:func:`upsampled_argmax`), with the hysteresis at ``size``: a pixel keeps the class it
        showed unless the new class's resized evidence beats it by ``margin``. The argmax of
        evidence with the margin added to the shown class is one of those two, so only the
        pixels whose class would change are interpolated, for those two classes. (Hysteresis
        on the low-resolution evidence instead, then resizing, still lets boundaries inside a
        cell move with every fluctuation: on CamVid's val clip at the earlier defaults (0.4,
        0.12, 0.25), 16% less flicker than unsmoothed, against 23% here.)"""
        shown = upsampled_argmax(evidence, size, semantics)
        before = self._shown
        if self.margin and before is not None and before.shape == shown.shape:
            ys, xs = np.divmod(np.flatnonzero(shown != before), shown.shape[1])
            if ys.size:
                new = _upsampled_at(evidence, ys, xs, shown[ys, xs], semantics, size)
                old = _upsampled_at(evidence, ys, xs, before[ys, xs], semantics, size)
                margin = self._margin(evidence.shape[:2])
                if np.ndim(margin):  # the margin of the evidence pixel each one lies in
                    (rows, _, _, _), (cols, _, _, _) = _grid(evidence.shape[:2], size, semantics)
                    margin = margin[rows[ys], cols[xs]]
                keep = new < old + margin
                shown[ys[keep], xs[keep]] = before[ys[keep], xs[keep]]
        self._shown = shown
        return shown
