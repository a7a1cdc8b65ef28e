"""Live sources with real-time pacing: a camera, a stream URL, or a file played at its own frame
rate. A reader thread keeps only the newest frame: a frame that arrives while the previous one
is still waiting (the consumer is busy) replaces it and is counted as dropped, so a slow model
falls behind by frames, never by a growing queue. :func:`segmented` runs the model one frame
ahead of the caller's drawing and writing, on its own thread."""
import os
import queue
import threading
import time

from deeplab_keras.utils.validate import check_number
from deeplab_keras.video.io import VideoReader


class StreamStalled(ValueError):
    """The source delivered no frame for ``stall_timeout`` seconds (the stream stopped)."""


def open_live(source, timeout=None):
    """A :class:`VideoReader` for ``source``: a camera index (``0`` -> ``/dev/video0``), a
    stream URL (``rtsp://``, ``http://`` ...) or a video file. ValueError naming a camera that
    does not exist. ``timeout``: seconds a camera or stream may take to answer at all (the
    stall timeout holds before the first frame too)."""
    text = str(source)
    if text.isdigit():
        device = f"/dev/video{int(text)}"
        if not os.path.exists(device):
            raise ValueError(f"camera {text} not found ({device} does not exist); give an "
                             "existing camera index, a stream URL or a video file")
        return VideoReader(device, count=False, timeout=timeout), True
    if "://" in text:
        return VideoReader(text, count=False, timeout=timeout), True
    return VideoReader(text, count=False, timeout=timeout), False


class LiveFrames:
    """Iterate over the newest frames of ``reader`` as they arrive.

    A file (``live=False``) is played at its own frame rate (``speed`` times), as a camera
    would deliver it. ``dropped`` counts the frames replaced before they were taken; a source
    that delivers nothing for ``stall_timeout`` seconds raises ValueError (the stream stopped)."""

    def __init__(self, reader, live=True, speed=1.0, stall_timeout=10.0):
        check_number("speed", speed, low=0, low_open=True)
        check_number("stall_timeout", stall_timeout, low=0, low_open=True)
        self.reader, self.live = reader, live
        self.interval = 1.0 / (reader.fps * float(speed))
        self.stall_timeout = float(stall_timeout)
        self.received = self.dropped = 0
        #: ``time.perf_counter()`` when the frame last yielded arrived from the source
        self.arrival = None
        self._frame, self._error, self._done = None, None, False
        self._arrived = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="live-source", daemon=True)
        self._thread.start()

    def _read(self):
        start = time.perf_counter()
        try:
            for n, frame in enumerate(self.reader):
                if self._stop.is_set():
                    return
                if not self.live:  # pace a file as a camera would deliver it
                    delay = start + n * self.interval - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                with self._cond:
                    if self._frame is not None:
                        self.dropped += 1
                    self._frame, self._arrived = frame, time.perf_counter()
                    self.received += 1
                    self._cond.notify()
        except Exception as err:  # handed to the consumer
            self._error = err
        finally:
            with self._cond:
                self._done = True
                self._cond.notify()

    def __iter__(self):
        while True:
            with self._cond:
                waited = self._cond.wait_for(
                    lambda: self._frame is not None or self._done, timeout=self.stall_timeout)
                if not waited:
                    self.close()  # the reader's ffmpeg is stopped, not left running
                    raise StreamStalled(f"{self.reader.path}: the stream stopped (no frame for "
                                        f"{self.stall_timeout:g} s)")
                frame, self._frame, self.arrival = self._frame, None, self._arrived
            if frame is None:  # done
                if self._error is not None:
                    raise self._error
                return
            yield frame

    def close(self):
        """Stop reading: the reader (and its ffmpeg) is closed at once."""
        self._stop.set()
        self.reader.close()


def segmented(frames, segment, depth=1, finish=None):
    """``(frame, classes, arrival)`` for each frame of ``frames`` (a :class:`LiveFrames`), with
    ``segment(frame)`` run on a thread of its own: while the caller draws and writes one frame,
    the next is segmented (the two overlap instead of adding up). At most ``depth`` segmented
    frames wait for the caller; while they wait, newer source frames replace each other at the
    source (dropped and counted there), so a slow caller falls behind by frames, never by a
    queue. ``arrival``: when the frame came from the source (``time.perf_counter()``).
    ``depth=0`` segments on the caller's thread (no overlap). An error of the source or of
    ``segment`` (a stalled stream included) is raised in the caller; closing the generator
    stops the thread. ``finish``: a step run on the caller's thread on each result, in order
    (``VideoSegmenter.finish``: smoothing there overlaps the model's next frame)."""
    finish = finish or (lambda out: out)
    if depth == 0:
        for frame in frames:
            yield frame, finish(segment(frame)), frames.arrival
        return
    done, stop = object(), threading.Event()
    ready = queue.Queue(depth)

    def put(item):
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work():
        try:
            for frame in frames:
                if not put((frame, segment(frame), frames.arrival)):
                    return
        except BaseException as err:  # handed to the caller's thread
            put((done, err, None))
            return
        put((done, None, None))

    worker = threading.Thread(target=work, name="live-segment", daemon=True)
    worker.start()
    try:
        while True:
            try:
                item = ready.get(timeout=0.1)
            except queue.Empty:
                if worker.is_alive():
                    continue
                return  # the worker ended without a word: nothing more comes
            if item[0] is done:
                if item[1] is not None:
                    raise item[1]
                return
            yield item[0], finish(item[1]), item[2]
    finally:
        stop.set()
        frames.close()  # wakes a worker waiting on the source
        worker.join(timeout=5)


def latency_summary(latencies):
    """``latency median X ms, p90 Y ms`` of glass-to-glass latencies in seconds (a frame's
    arrival from the source to its result written or shown), or "" for none."""
    if not latencies:
        return ""
    import numpy as np
    ms = np.asarray(latencies, np.float64) * 1000.0
    return f"latency median {np.median(ms):.0f} ms, p90 {np.percentile(ms, 90):.0f} ms"
