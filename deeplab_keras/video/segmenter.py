"""``dk.VideoSegmenter``: segment a stream of frames, one call per frame, with a compiled Keras
model or an exported artifact, optionally smoothed over time."""
import warnings

import numpy as np

from deeplab_keras.inference.source import open_segmenter, resize
from deeplab_keras.video.smoothing import TemporalSmoother

#: what smoothing says of a class-map file exported without low-resolution scores
NO_LOWRES = ("{name} has a class-map output and no low-resolution scores (exported before "
             "they were added): smoothing can only vote on its class map, which lowers flicker "
             "little and slows each frame; re-export it with deeplab-keras export for video")


def _nearest(classes, size):
    """Nearest-neighbour resize of a class map (half-pixel, as ``tf.image.resize(method="nearest")``)."""
    return resize(classes[:, :, None], size, "half_pixel", "nearest")[:, :, 0]


class VideoSegmenter:
    """Segment video frames one at a time.

        seg = dk.VideoSegmenter("camvid_int8.tflite", smoothing=True, num_threads=2)
        for frame in frames:              # RGB uint8 (H, W, 3)
            classes = seg.segment(frame)  # (H, W) uint8 at the frame's size
        seg.reset()                       # a cut: forget the past

    Args:
        source: a Keras model, a preset name, a ``.keras`` file, an exported ``.tflite``
            (LiteRT with XNNPACK) / ``.onnx`` (onnxruntime) file, or a segmenter of
            :func:`deeplab_keras.inference.open_segmenter` (the same layer ``dk.segment``,
            ``predict`` and ``evaluate`` run through). A file's input size, output kind and
            labels are read from the file (and its export report beside it).
        smoothing: False, True (the recommended :class:`TemporalSmoother`), a float strength in
            [0, 1), or a :class:`TemporalSmoother`. A class-map file (the default export) is
            smoothed on its second output, the logits at the output stride (90x120 for a
            360x480 input), then upsampled once; a file exported without them (before they
            were added) smooths one-hot votes of its class map, with a warning to re-export.
        num_threads: runtime threads for an artifact (None: the runtime's default).
        input_size: run a Keras model at this size (default: its preset's contract).
        labels: class names; for an artifact they must match its class count.
    """

    def __init__(self, source, smoothing=False, *, num_threads=None, input_size=None,
                 labels=None):
        self.source = open_segmenter(source, num_threads=num_threads, input_size=input_size,
                                     labels=labels)
        self.smoother = TemporalSmoother.from_arg(smoothing)
        src = self.source
        #: what the smoother averages: "scores", "lowres scores" (a class-map file's second
        #: output) or "votes" (one-hot class maps of a file without it); None when off
        self.evidence = None
        if self.smoother is not None:
            self.evidence = ("scores" if src.output == "scores" else
                             "lowres scores" if src.video_output is not None else "votes")
            if self.evidence == "votes":
                warnings.warn(NO_LOWRES.format(name=getattr(src, "path", "this file")),
                              stacklevel=2)
        self.frame_size = None
        self.frames = 0
        self.resets = 0

    # -- contract ----------------------------------------------------------------------------
    @property
    def num_classes(self):
        return self.source.num_classes

    @property
    def labels(self):
        return self.source.labels

    @property
    def palette(self):
        return self.source.palette

    @property
    def input_size(self):
        return self.source.input_size

    def describe(self):
        smooth = "off"
        if self.smoother is not None:
            on = ("" if self.evidence == "scores" else
                  ", on class-map votes (re-export for scores)" if self.evidence == "votes" else
                  ", on {}x{} scores".format(*self.source.video_output["size"]))
            smooth = (f"strength {self.smoother.strength:g}, motion {self.smoother.motion_scale}, "
                      f"margin {self.smoother.margin:g}{on}")
        return f"{self.source.description}; smoothing {smooth}"

    # -- running -----------------------------------------------------------------------------
    def reset(self):
        """Forget the past frames (call it at a cut)."""
        if self.smoother is not None:
            self.smoother.reset()

    def segment(self, frame):
        """(H, W) uint8 class map (int32 beyond 256 classes) of one RGB uint8 frame (H, W, 3)."""
        return self.finish(self.infer(frame))

    def infer(self, frame):
        """The model's part of :meth:`segment`: runs the source on ``frame`` and touches no
        smoothing state, so it can run on another thread, one frame ahead of :meth:`finish`
        (``live`` does). Returns what :meth:`finish` takes; ``finish`` must see the frames in
        order."""
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"expected one RGB uint8 frame (H, W, 3), got shape {frame.shape} "
                             f"{frame.dtype}")
        if self.smoother is None and self.source.kind == "file":
            return frame, "classes", self.source.segment(frame)  # the layer's one call
        if self.evidence == "lowres scores":
            return frame, "lowres", self.source.lowres_scores(frame)
        return frame, "raw", self.source(frame)  # a Keras model compiled, or raw scores

    def finish(self, inferred):
        """The class map of one :meth:`infer` result: smoothing over time (at the output
        stride for a default export), one upsample to the frame's size, argmax."""
        frame, kind, out = inferred
        size = frame.shape[:2]
        if self.frame_size is not None and size != self.frame_size:
            self.reset()  # another size mid-stream: the past no longer lines up
            self.resets += 1
        self.frame_size = size
        self.frames += 1
        if kind == "classes":
            return out
        if kind == "lowres":  # smooth at the output stride, upsample once
            out = self.smoother.update(out, frame)
            out = self.smoother.classes(out, self.source.run_size(size),
                                        self.source.video_output["resize"])
            if out.shape != size:
                out = _nearest(out, size)
            return self.source.check_classes(out)
        if self.smoother is not None:
            out = self.smoother.update(out, frame, self.num_classes)
            out = self.smoother.with_hysteresis(out)
            if self.source.output == "classes":  # one-hot evidence: vote, then nearest
                out = out.argmax(-1)
        if out.ndim == 3:  # scores: bilinear to the frame, then argmax
            if out.shape[:2] != size:
                out = resize(out, size, self.source.semantics)
            out = out.argmax(-1)
        elif out.shape != size:
            out = _nearest(out, size)
        return self.source.check_classes(out)
