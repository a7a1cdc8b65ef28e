"""Video files in and out through the ffmpeg that imageio-ffmpeg bundles (the ``video`` extra),
each run as our own subprocess so that nothing waits forever on it: frames at the source's own
size, the frame count and duration kept (a variable-frame-rate source's timestamps pass through
to the output), exactly one video and one audio stream written, truncation reported against the
container's own frame count, and an H.264 writer that writes atomically and marks its files as
ours (a ``comment`` metadata tag) so later runs know what they may replace."""
import contextlib
import os
import re
import subprocess
import threading
from fractions import Fraction

import numpy as np

from deeplab_keras.utils.io import atomic_path

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")
#: what the writer writes, by the output's extension (the container ffmpeg is asked for)
OUTPUT_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
#: frame rates outside this range are a damaged or unusual header, named rather than guessed
MIN_FPS, MAX_FPS = 0.1, 480.0
#: the ``comment`` metadata tag our videos carry (how a later run knows a video is ours)
COMMENT_PREFIX = "deeplab-keras"
#: threads each ffmpeg (decoder, encoder) runs by default: one, so that they do not fight the
#: model's runtime threads for the cores (ffmpeg's own default starts about one per core each).
#: Measured on 2 shared cores at 480x360 (3 interleaved rounds): 10-15% less ffmpeg CPU a frame
#: (decode 1.5-1.8 vs 1.8-2.0 ms, encode 2.3-2.5 vs 2.5-3.0 ms) and predict's frames/s the same
#: within that machine's noise
FFMPEG_THREADS = 1


def _threads(threads):
    """ffmpeg's ``-threads`` option for ``threads`` (default :data:`FFMPEG_THREADS`; 0 or
    "auto": ffmpeg's own choice)."""
    threads = FFMPEG_THREADS if threads is None else threads
    if threads in (0, "auto"):
        return []
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"ffmpeg threads must be a positive integer, 0 or 'auto', got "
                         f"{threads!r}")
    return ["-threads", str(threads)]


def _ffmpeg():
    try:
        import imageio_ffmpeg
    except ImportError:
        raise ValueError("video needs imageio-ffmpeg: pip install 'deeplab-keras[video]'") from None
    return imageio_ffmpeg.get_ffmpeg_exe()


def _reason(text):
    """The useful line of an ffmpeg failure (its last non-empty, non-banner stderr line)."""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(("ffmpeg version", "built with",
                                                       "configuration:", "lib", "==="))]
    line = (useful or lines or ["ffmpeg failed"])[-1]
    return re.sub(r"^\[[^\]]*\]\s*", "", line)[:200]


def check_output_extension(path, flag="--output"):
    """ValueError unless ``path`` ends with a video extension the writer writes (a ``.png``
    or a name without extension would get raw H.264 bytes no player opens)."""
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in OUTPUT_FORMATS:
        raise ValueError(f"{flag} {os.fspath(path)!r}: a video output must end with "
                         f"{', '.join(OUTPUT_FORMATS)} (got "
                         f"{ext or 'no extension'})")
    return ext


def _number(text):
    """``"29.97"`` / ``"1k"`` / ``"30000/1001"`` -> float (ffmpeg writes 1000 as ``1k``)."""
    text = text.strip()
    scale = 1000.0 if text.endswith("k") else 1.0
    return float(Fraction(text.rstrip("k"))) * scale


def parse_header(text):
    """What ffmpeg's stderr says about its input: ``{"video": n, "audio": n, "size": (h, w),
    "fps": float or None, "audio_codec", "duration": seconds or None, "comment"}``."""
    info = {"video": 0, "audio": 0, "size": None, "fps": None, "audio_codec": None,
            "duration": None, "comment": None}
    section = None
    for line in text.splitlines():
        if line.startswith("Input #"):
            section = "in" if section is None else "done"
        elif line.startswith("Output #"):
            section = "done"
        if section != "in":
            continue
        m = re.match(r"\s+Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", line)
        if m:
            h, mi, s = m.groups()
            info["duration"] = int(h) * 3600 + int(mi) * 60 + float(s)
        m = re.match(r"\s+comment\s*:\s*(.*)", line)
        if m and info["comment"] is None:
            info["comment"] = m.group(1).strip()
        m = re.match(r"\s+Stream #\d+:\d+.*?: (Video|Audio): (\w+)", line)
        if not m:
            continue
        if m.group(1) == "Audio":
            info["audio"] += 1
            info["audio_codec"] = info["audio_codec"] or m.group(2)
            continue
        info["video"] += 1
        if info["video"] > 1:
            continue
        size = re.search(r", (\d+)x(\d+)", line)
        if size:
            info["size"] = (int(size.group(2)), int(size.group(1)))
        for key in ("fps", "tbr"):
            rate = re.search(r", ([\d.]+k?) " + key, line)
            if rate and info["fps"] is None:
                info["fps"] = _number(rate.group(1))
    return info


def probe(path, timeout=60):
    """:func:`parse_header` of ``path`` (ffmpeg's own reading of the container header)."""
    try:
        run = subprocess.run([_ffmpeg(), "-hide_banner", "-nostdin", "-i", os.fspath(path)],
                             capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ValueError(f"cannot read video {path}: ffmpeg gave no header in {timeout} s") \
            from None
    return parse_header(run.stderr.decode(errors="replace"))


def is_our_video(path):
    """Did deeplab-keras write ``path``? (its ``comment`` tag starts with ``deeplab-keras``)."""
    if os.path.islink(path) or not os.path.isfile(path):
        return False
    comment = probe(path).get("comment") or ""
    return comment.startswith(COMMENT_PREFIX)


def _boxes(data, start, end):
    while start + 8 <= end:
        size = int.from_bytes(data[start:start + 4], "big")
        kind = data[start + 4:start + 8]
        head = 8
        if size == 1:
            size, head = int.from_bytes(data[start + 8:start + 16], "big"), 16
        elif size == 0:
            size = end - start
        if size < head:
            return
        yield kind, start + head, min(start + size, end)
        start += size


def container_frame_count(path):
    """The video frame count an MP4 / MOV header announces (its ``stsz`` sample count), or None
    (another container, or no such header): what a cut-short file is checked against."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read(64 << 20)  # a faststart header sits at the start
    except OSError:
        return None
    for kind, s, e in _boxes(data, 0, len(data)):
        if kind != b"moov":
            continue
        for tkind, ts, te in _boxes(data, s, e):
            if tkind != b"trak":
                continue
            found = {}

            def walk(a, b):
                for k, bs, be in _boxes(data, a, b):
                    if k in (b"mdia", b"minf", b"stbl"):
                        walk(bs, be)
                    elif k == b"hdlr":
                        found["handler"] = data[bs + 8:bs + 12]
                    elif k in (b"stsz", b"stz2"):
                        found["count"] = int.from_bytes(data[bs + 8:bs + 12], "big")
            walk(ts, te)
            if found.get("handler") == b"vide" and "count" in found:
                return found["count"]
    return None


def _packets(path):
    """``(time_base, sorted pts)`` of the first video stream's packets (stream copy, no
    decoding): the frames the file holds and when each is shown."""
    run = subprocess.run([_ffmpeg(), "-hide_banner", "-nostdin", "-i", path, "-map", "0:v:0",
                          "-c", "copy", "-f", "framecrc", "-"], capture_output=True)
    out = run.stdout.decode(errors="replace")
    tb = re.search(r"^#tb 0: (\d+)/(\d+)", out, re.M)
    pts = [int(m.group(1)) for m in re.finditer(r"^0,\s*-?\d+,\s*(-?\d+),", out, re.M)]
    if run.returncode != 0 and not pts:
        raise ValueError(f"cannot read video {path}: "
                         f"{_reason(run.stderr.decode(errors='replace'))}")
    return (Fraction(int(tb.group(1)), int(tb.group(2))) if tb else None), sorted(pts)


class VideoReader:
    """Frames of a video file or stream URL as RGB uint8 ``(H, W, 3)`` arrays, decoded by an
    ffmpeg subprocess of ours (every decoded frame, no frame-rate conversion).

    Attributes: ``fps``, ``size`` (height, width), ``frames`` (the frame count: the container's
    own for MP4 / MOV, else the packets the file holds; None for streams or ``count=False``),
    ``timestamps`` / ``time_base`` (each frame's presentation time in ``time_base`` units, for
    files counted; what a writer needs to keep a variable frame rate), ``audio`` (the audio
    codec or None), ``duration``. Unreadable, empty, audio-only or truncated inputs and absurd
    frame rates raise ValueError naming the file. ``timeout``: seconds to wait for the source's
    header (a stream that never answers), None for no bound. ``threads``: ffmpeg's decoding
    threads (default :data:`FFMPEG_THREADS`; 0: ffmpeg's own choice, about one per core)."""

    def __init__(self, path, count=True, timeout=None, threads=None):
        exe = _ffmpeg()
        self.path = os.fspath(path)
        camera = self.path.startswith("/dev/video")
        stream = self.stream = "://" in self.path or camera
        if not stream and not os.path.isfile(self.path):
            raise FileNotFoundError(f"video not found: {self.path}")
        self.timestamps = self.time_base = self.frames = None
        self._proc, self._lines, self._cond = None, [], threading.Condition()
        cmd = [exe, "-hide_banner", "-nostdin"] + (["-f", "v4l2"] if camera else [])
        cmd += _threads(threads) + ["-i", self.path, "-map", "0:v:0?", "-fps_mode",
                                    "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE)
        self._err_thread = threading.Thread(target=self._drain, name="ffmpeg-stderr",
                                            daemon=True)
        self._err_thread.start()
        try:
            self._open(timeout, count and not stream)
            if count and not stream:
                self._count()
                self._check_rate()
        except BaseException:
            self.close()
            raise

    def _drain(self):
        for raw in self._proc.stderr:
            with self._cond:
                self._lines.append(raw.decode(errors="replace").rstrip())
                self._cond.notify_all()
        with self._cond:
            self._lines.append(None)  # ffmpeg closed its stderr (exited)
            self._cond.notify_all()

    def _open(self, timeout, count):
        def ready():  # the output stream's line (its size, after any rotation) or an exit
            if None in self._lines:
                return True
            out = next((i for i, ln in enumerate(self._lines) if ln.startswith("Output #")),
                       None)
            return out is not None and any("Video: rawvideo" in ln for ln in self._lines[out:])
        with self._cond:
            if not self._cond.wait_for(ready, timeout=timeout):
                raise ValueError(f"cannot read video {self.path}: no answer in {timeout:g} s "
                                 "(the source sent no header)")
            text = "\n".join(ln for ln in self._lines if ln is not None)
        info = parse_header(text)
        self.meta = info
        if not info["video"] and (info["audio"] or "Input #" in text):
            if info["audio"]:
                raise ValueError(f"video {self.path} has no video stream (audio only: "
                                 f"{info['audio_codec']}); give a file with pictures")
            raise ValueError(f"video {self.path} has no video stream")
        if not info["video"] or not info["size"]:
            raise ValueError(f"cannot read video {self.path}: {_reason(text)} (corrupt, "
                             "truncated or not a video)")
        out = re.search(r"Output #0.*?Stream #0:0.*?, (\d+)x(\d+)", text, re.S)
        self.size = (int(out.group(2)), int(out.group(1))) if out else info["size"]
        self.fps = info["fps"]
        self.audio = info["audio_codec"]
        self.duration = info["duration"]
        self.fps_guessed = False
        if self.fps is None and self.stream:  # many live streams announce no rate: say so, use 25
            self.fps, self.fps_guessed = 25.0, True
        if not count:  # else checked once the packets have given the true rate
            self._check_rate()

    def _check_rate(self):
        fps = self.fps
        if fps is None or not (MIN_FPS <= fps <= MAX_FPS):
            said = "no frame rate" if fps is None else f"a frame rate of {fps:g} fps"
            raise ValueError(f"video {self.path} has {said} (outside {MIN_FPS:g}..{MAX_FPS:g} "
                             "fps: a damaged or unusual header); re-encode it at a normal rate: "
                             "ffmpeg -i IN -r 30 OUT.mp4")

    def _count(self):
        tb, pts = _packets(self.path)
        announced = container_frame_count(self.path)
        self.frames = announced if announced else len(pts)
        if self.frames == 0 or not pts:
            raise ValueError(f"video {self.path} has no frames")
        if tb is not None and len(pts) > 1:
            deltas = {b - a for a, b in zip(pts, pts[1:])}
            span = float((pts[-1] - pts[0]) * tb)
            if len(deltas) > 1:  # a variable frame rate: keep each frame's time
                self.time_base, self.timestamps = tb, [p - pts[0] for p in pts]
                self.fps = (len(pts) - 1) / span if span > 0 else self.fps
            elif span > 0 and (self.fps is None or not MIN_FPS <= self.fps <= MAX_FPS):
                self.fps = (len(pts) - 1) / span  # the header's rate is missing or garbled

    def __iter__(self):
        height, width = self.size
        size = height * width * 3
        n = 0
        while True:
            raw = self._proc.stdout.read(size) if self._proc is not None else b""
            if not raw:
                break
            if len(raw) != size:
                break  # a partial last frame: ffmpeg stopped mid-frame
            n += 1
            yield np.frombuffer(raw, np.uint8).reshape(height, width, 3)
        code = self._proc.wait() if self._proc is not None else 0
        self._err_thread.join(timeout=5)
        if self._closed:
            return
        if n == 0:
            raise ValueError(f"video {self.path} has no frames" + (
                f": {self._last_error()}" if code else ""))
        if self.frames is not None and n < self.frames:
            raise ValueError(f"video {self.path} stopped after {n} of {self.frames} frames "
                             "(corrupt or truncated)")
        if code != 0 and self.frames is None:
            raise ValueError(f"video {self.path} is corrupt or truncated after {n} frames: "
                             f"{self._last_error()}")

    _closed = False

    def _last_error(self):
        with self._cond:
            return _reason("\n".join(ln for ln in self._lines if ln))

    def close(self):
        """Stop the decoder (killed, not asked: nothing waits on it)."""
        self._closed = True
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.kill()
        if proc is not None:
            with contextlib.suppress(Exception):
                proc.wait(timeout=10)
            for pipe in (proc.stdout,):
                with contextlib.suppress(Exception):
                    pipe.close()


def _setpts(timestamps, time_base):
    """A ``setpts`` expression giving frame ``N`` its time (seconds): runs of equal steps,
    found by a binary search over the runs (short for long videos with few rate changes)."""
    runs = []  # (first frame, its time in ticks, step in ticks)
    for i, t in enumerate(timestamps):
        if runs:
            n0, t0, step = runs[-1]
            if step is None and i == n0 + 1:
                runs[-1] = (n0, t0, t - t0)
                continue
            if step is not None and t == t0 + (i - n0) * step:
                continue
        runs.append((i, t, None))

    def expr(lo, hi):
        if lo == hi:
            n0, t0, step = runs[lo]
            return f"{t0}+(N-{n0})*{step or 0}"
        mid = (lo + hi + 1) // 2
        return f"if(lt(N,{runs[mid][0]}),{expr(lo, mid - 1)},{expr(mid, hi)})"
    # setpts truncates: half a tick rounds the float expression to the nearest tick
    return (f"({expr(0, len(runs) - 1)})*{time_base.numerator}/{time_base.denominator}/TB"
            "+0.5")


class VideoWriter:
    """H.264 writer of RGB uint8 frames to an MP4 / MOV / MKV file (by ``path``'s extension),
    written to a temporary file beside it and moved to ``path`` by :meth:`close` (``abort``,
    an error or a full disk leave nothing, not even the temporary file). Odd frame sizes are
    kept (4:4:4 chroma; even sizes use the widely playable 4:2:0). ``audio_from``: a file whose
    first audio track (if any) is copied in, re-encoded to AAC (one video and one audio stream,
    nothing else). ``timestamps`` / ``time_base``: each frame's time, for a variable frame rate
    (else ``fps`` throughout). ``comment``: the metadata tag that marks the file as ours.
    ``preset``: x264's speed preset; the default ``ultrafast`` costs about a third of
    ``veryfast``'s CPU for a file about 1.5x larger (what lets encoding hide behind inference on
    a 2-core machine; ``bench/video.py``). ``threads``: x264's threads (default
    :data:`FFMPEG_THREADS`; 0: about 1.5 per core, x264's own choice)."""

    def __init__(self, path, size, fps, audio_from=None, quality=7, preset="ultrafast",
                 timestamps=None, time_base=None, comment=COMMENT_PREFIX, threads=None):
        exe = _ffmpeg()
        self.path, self.size, self.fps = os.fspath(path), tuple(size), float(fps)
        ext = check_output_extension(self.path, flag="video output")
        encoder_threads = _threads(threads)  # checked before any file is made
        if os.path.isdir(self.path):
            raise ValueError(f"video output {self.path!r} is a folder; name a file "
                             f"(for example {os.path.join(self.path, 'out.mp4')})")
        self.frames = 0
        self._atomic = atomic_path(self.path, suffix=ext)
        self.tmp = self._atomic.__enter__()
        height, width = self.size
        even = height % 2 == 0 and width % 2 == 0
        crf = int((1 - quality / 10.0) * 51)
        cmd = [exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-f", "rawvideo",
               "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-framerate", f"{self.fps:.6g}",
               "-i", "-"]
        if audio_from:
            cmd += ["-i", os.fspath(audio_from), "-map", "0:v:0", "-map", "1:a:0?",
                    "-c:a", "aac"]
        else:
            cmd += ["-map", "0:v:0"]
        self._script = None
        if timestamps is not None:
            tb = Fraction(time_base)
            graph = (f"settb={tb.numerator}/{tb.denominator},"
                     f"setpts='{_setpts(list(timestamps), tb)}'")
            if len(graph) < 32000:
                cmd += ["-vf", graph]
            else:  # a long video of many rate changes: past a command line's length limit
                import tempfile
                with tempfile.NamedTemporaryFile("w", suffix=".ffgraph", delete=False) as f:
                    f.write(graph)
                self._script = f.name
                cmd += ["-/vf", self._script]
            cmd += ["-fps_mode", "passthrough", "-enc_time_base",
                    f"{tb.numerator}/{tb.denominator}"]
        cmd += ["-c:v", "libx264", "-preset", str(preset), "-crf", str(crf)] + encoder_threads
        cmd += ["-pix_fmt", "yuv420p" if even else "yuv444p", "-map_metadata", "-1",
                "-metadata", f"comment={comment}", "-f", OUTPUT_FORMATS[ext], self.tmp]
        self._err = []
        try:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except BaseException:
            self._atomic.__exit__(OSError, OSError("ffmpeg did not start"), None)
            raise
        self._err_thread = threading.Thread(target=self._drain, name="ffmpeg-stderr",
                                            daemon=True)
        self._err_thread.start()

    def _drain(self):
        for raw in self._proc.stderr:
            self._err.append(raw.decode(errors="replace").rstrip())

    def _failure(self):
        self._err_thread.join(timeout=5)
        if self._err:
            return _reason("\n".join(self._err))
        code = self._proc.poll()
        if code is not None and code < 0:
            import signal
            if -code == getattr(signal, "SIGXFSZ", None):
                return "the file size limit was reached (SIGXFSZ: File too large)"
            return f"ffmpeg was killed ({signal.Signals(-code).name})"
        return f"ffmpeg stopped (exit status {code})"

    def write(self, frame):
        frame = np.ascontiguousarray(frame, np.uint8)
        if frame.shape != self.size + (3,):
            raise ValueError(f"frame of shape {frame.shape} written to a {self.size} video")
        try:
            self._proc.stdin.write(memoryview(frame).cast("B"))  # the array's bytes, no copy
        except (BrokenPipeError, OSError, ValueError):
            self._proc.wait()
            reason = self._failure()
            self.abort()
            raise ValueError(f"cannot write video {self.path}: {reason} (nothing was written; "
                             "free some space or choose another folder)") from None
        self.frames += 1

    def close(self):
        """Finish the file and move it to its final name."""
        try:
            with contextlib.suppress(BrokenPipeError, OSError, ValueError):
                self._proc.stdin.close()
            code = self._proc.wait()
            self._forget_script()
            if code != 0:
                raise ValueError(f"cannot write video {self.path}: {self._failure()} (nothing "
                                 "was written; free some space or choose another folder)")
            self._atomic.__exit__(None, None, None)
            self._atomic = None
        except BaseException as err:
            self.abort(err)
            raise

    def _forget_script(self):
        if getattr(self, "_script", None):
            with contextlib.suppress(OSError):
                os.remove(self._script)
            self._script = None

    def abort(self, err=None):
        """Stop the encoder and drop the temporary file; nothing is left under the final name."""
        self._forget_script()
        proc = getattr(self, "_proc", None)
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(OSError):
                    proc.kill()
            with contextlib.suppress(Exception):
                proc.wait(timeout=10)
            with contextlib.suppress(Exception):
                proc.stdin.close()
        if self._atomic is not None:
            err = err or RuntimeError("aborted")
            with contextlib.suppress(BaseException):
                self._atomic.__exit__(type(err), err, None)
            self._atomic = None
