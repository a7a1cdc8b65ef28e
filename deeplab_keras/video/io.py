"""Video files in and out with imageio-ffmpeg (the ``video`` extra): frames at the source's own
size, the true frame count, and an H.264 writer that keeps the frame size (no macro-block
padding), the frame rate and the source's audio track, writing atomically."""
import contextlib
import os

import numpy as np

from deeplab_keras.utils.io import atomic_path

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")


def _ffmpeg():
    try:
        import imageio_ffmpeg
    except ImportError:
        raise ValueError("video needs imageio-ffmpeg: pip install 'deeplab-keras[video]'") from None
    return imageio_ffmpeg


def _reason(err):
    """The useful line of an ffmpeg failure (its last non-empty stderr line)."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(("ffmpeg version", "built with",
                                                       "configuration:", "lib", "==="))]
    return (useful or lines or [type(err).__name__])[-1][:200]


class VideoReader:
    """Frames of a video file or stream URL as RGB uint8 ``(H, W, 3)`` arrays.

    Attributes: ``fps``, ``size`` (height, width), ``frames`` (the true frame count, counted by
    decoding when ``count=True``; None for streams), ``audio`` (the audio codec or None).
    Unreadable, empty or truncated inputs raise ValueError naming the file."""

    def __init__(self, path, count=True):
        ff = _ffmpeg()
        self.path = os.fspath(path)
        camera = self.path.startswith("/dev/video")
        stream = "://" in self.path or camera
        if not stream and not os.path.isfile(self.path):
            raise FileNotFoundError(f"video not found: {self.path}")
        try:
            self._gen = ff.read_frames(self.path, input_params=["-f", "v4l2"] if camera else None)
            meta = next(self._gen)
        except Exception as err:  # imageio-ffmpeg raises OSError / RuntimeError / StopIteration
            raise ValueError(f"cannot read video {self.path}: {_reason(err)} (corrupt, "
                             "truncated or not a video)") from None
        self.meta = meta
        width, height = meta.get("size") or (0, 0)
        self.size = (int(height), int(width))
        self.fps = float(meta.get("fps") or 0) or 25.0
        self.audio = meta.get("audio_codec")
        self.duration = meta.get("duration")
        self.frames = None
        if count and not stream:
            try:
                self.frames = int(ff.count_frames_and_secs(self.path)[0])
            except Exception as err:
                self.close()
                raise ValueError(f"cannot read video {self.path}: {_reason(err)}") from None
            if self.frames == 0:
                self.close()
                raise ValueError(f"video {self.path} has no frames")
        if 0 in self.size:
            self.close()
            raise ValueError(f"video {self.path} has no video stream")

    def __iter__(self):
        height, width = self.size
        n = 0
        try:
            for raw in self._gen:
                frame = np.frombuffer(raw, np.uint8)
                if frame.size != height * width * 3:
                    raise ValueError(f"video {self.path}: frame {n} has {frame.size} bytes, "
                                     f"not {height}x{width}x3")
                n += 1
                yield frame.reshape(height, width, 3)
        except ValueError:
            raise
        except Exception as err:
            raise ValueError(f"video {self.path} is corrupt or truncated after {n} frames: "
                             f"{_reason(err)}") from None
        if n == 0:
            raise ValueError(f"video {self.path} has no frames")
        if self.frames is not None and n < self.frames:
            raise ValueError(f"video {self.path} stopped after {n} of {self.frames} frames "
                             "(corrupt or truncated)")

    def close(self):
        with contextlib.suppress(Exception):
            self._gen.close()


class VideoWriter:
    """H.264 MP4 writer of RGB uint8 frames, written to a temporary file and moved to ``path``
    by :meth:`close` (``abort`` or an error leaves nothing under ``path``). Odd frame sizes are
    kept (4:4:4 chroma; even sizes use the widely playable 4:2:0). ``audio_from``: a file whose
    audio track (if any) is copied in (re-encoded to AAC). ``preset``: x264's speed preset; the
    default ``ultrafast`` costs about a third of ``veryfast``'s CPU for a file about 1.5x larger
    (what lets encoding hide behind inference on a 2-core machine; ``bench/video.py``)."""

    def __init__(self, path, size, fps, audio_from=None, quality=7, preset="ultrafast"):
        ff = _ffmpeg()
        self.path, self.size, self.fps = os.fspath(path), tuple(size), float(fps)
        os.makedirs(os.path.dirname(os.path.abspath(self.path)) or ".", exist_ok=True)
        self._atomic = atomic_path(self.path, suffix=os.path.splitext(self.path)[1] or ".mp4")
        self.tmp = self._atomic.__enter__()
        height, width = self.size
        even = height % 2 == 0 and width % 2 == 0
        params = ["-preset", str(preset)]
        if audio_from:
            params += ["-map", "0:v:0", "-map", "1:a:0?", "-c:a", "aac"]
        self._gen = ff.write_frames(self.tmp, (width, height), fps=self.fps, codec="libx264",
                                    quality=quality, macro_block_size=1,
                                    pix_fmt_out="yuv420p" if even else "yuv444p",
                                    output_params=params,
                                    audio_path=os.fspath(audio_from) if audio_from else None)
        self._gen.send(None)
        self.frames = 0

    def write(self, frame):
        frame = np.ascontiguousarray(frame, np.uint8)
        if frame.shape != self.size + (3,):
            raise ValueError(f"frame of shape {frame.shape} written to a {self.size} video")
        self._gen.send(frame)
        self.frames += 1

    def close(self):
        """Finish the file and move it to its final name."""
        try:
            self._gen.close()
        except BaseException as err:
            self.abort(err)
            raise ValueError(f"cannot write video {self.path}: {_reason(err)}") from None
        self._atomic.__exit__(None, None, None)

    def abort(self, err=None):
        """Drop the temporary file; nothing is left under the final name."""
        with contextlib.suppress(Exception):
            self._gen.close()
        err = err or RuntimeError("aborted")
        with contextlib.suppress(BaseException):
            self._atomic.__exit__(type(err), err, None)
