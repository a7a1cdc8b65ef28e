"""A pipelined video pass: one thread decodes, the caller's thread segments, one thread draws and
encodes, with small bounded queues between them so I/O hides behind inference. The cores are
left to the model: ffmpeg decodes and encodes on one thread each
(:data:`deeplab_keras.video.io.FFMPEG_THREADS`) and the runtime gets one thread per core
(:func:`runtime_threads`)."""
import os
import queue
import threading
import time

from deeplab_keras.video.io import COMMENT_PREFIX, VideoReader, VideoWriter

_END = object()


def leave_cores_to_runtime():
    """Turn OpenCV's own thread pool off in this process (``cv2.setNumThreads(0)``), when
    OpenCV is installed: the drawing stage's blur, resize and box filter then run on the
    drawing thread alone instead of waking pool workers that wait actively and contend with the
    runtime's threads for the cores. For the commands, which own their process; the library
    leaves a caller's OpenCV as it is. Measured on 2 shared cores, ``live --background blur``
    in child processes, 3 alternating rounds: 34.4 / 29.9 / 35.8 ms of CPU a frame and
    24.3 / 25.7 / 28.5 frames/s, against 31.8 / 36.5 / 37.2 ms and 22.4 / 24.8 / 24.8 with
    OpenCV's default pool."""
    from deeplab_keras.inference.draw import opencv
    cv2 = opencv()
    if cv2 is not None:
        cv2.setNumThreads(0)


def runtime_threads(threads=None):
    """The runtime threads of a video pass or a live run on an exported file: ``threads`` when
    given, else one per core this process may use. On 2 cores that beat one runtime thread
    beside the pipeline's own (``bench/video.py``): the decoding, drawing and encoding threads
    mostly wait, and their work fits in the runtime's gaps."""
    if threads is not None:
        return threads  # checked where the runtime opens (one line naming the value)
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores)


class _Stage(threading.Thread):
    """A daemon thread running ``fn``; its exception is kept for the caller to re-raise."""

    def __init__(self, fn, name):
        super().__init__(name=name, daemon=True)
        self.fn, self.error = fn, None

    def run(self):
        try:
            self.fn()
        except BaseException as err:  # handed to the caller's thread
            self.error = err


def _put(q, item, stop, consumer=None):
    """Put ``item`` unless ``stop`` is set or the ``consumer`` stage died (a full queue whose
    reader is gone must not hold its writer forever: issue 27, a full disk)."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            if consumer is not None and not consumer.is_alive():
                return False
    return False


def _get(q, stop, stage=None):
    while True:
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if stop.is_set() or (stage is not None and not stage.is_alive()):
                return _END


def process_video(segment, path, output, draw, *, on_frame=None, depth=4, reader=None,
                  comment=COMMENT_PREFIX):
    """Decode ``path``, run ``segment(frame) -> classes`` on each frame, write
    ``draw(frame, classes)`` to ``output`` (H.264 MP4 at the source's size and frame rate, its
    audio kept, written atomically: a failure or kill leaves nothing under ``output``). A
    variable frame rate is kept (each frame keeps its timestamp). A stage that dies (a full
    disk stops the encoder) stops the others: no stage waits forever on another. ``comment``:
    the metadata tag that marks the output as ours.

    ``on_frame(n, total)`` is called after each encoded frame (``total``: the true frame count).
    Returns ``{"frames", "seconds", "fps", "steady_fps", "source_fps", "size", "audio"}``;
    ``steady_fps`` excludes the first frame (start-up: tracing, runtime warm-up)."""
    reader = reader or VideoReader(path)
    writer = None
    stop = threading.Event()
    decoded, drawn = queue.Queue(depth), queue.Queue(depth)
    done = [0, None, None]  # frames written, time of the first and of the last

    def decode():
        for frame in reader:
            if not _put(decoded, frame, stop, main):
                return
        _put(decoded, _END, stop, main)

    def encode():
        while True:
            item = _get(drawn, stop, main)
            if item is _END:
                return
            try:
                writer.write(draw(*item))
            except BaseException:
                stop.set()  # every other stage ends too
                raise
            done[0] += 1
            now = time.perf_counter()
            done[1] = done[1] or now
            done[2] = now
            if on_frame is not None:
                on_frame(done[0], reader.frames)

    start = time.perf_counter()
    main = threading.current_thread()
    decoder = _Stage(decode, "video-decode")
    encoder = _Stage(encode, "video-encode")
    try:
        writer = VideoWriter(output, reader.size, reader.fps,
                             audio_from=path if reader.audio else None,
                             timestamps=reader.timestamps, time_base=reader.time_base,
                             comment=comment)
        decoder.start()
        encoder.start()
        while True:
            frame = _get(decoded, stop, decoder)
            if frame is _END:
                break
            if encoder.error is not None:
                break
            if not _put(drawn, (frame, segment(frame)), stop, encoder):
                break
        _put(drawn, _END, stop, encoder)
        if encoder.error is not None or decoder.error is not None:
            stop.set()  # a stage died: the others must not wait on it
        while decoder.is_alive() or encoder.is_alive():
            if decoder.error is not None or encoder.error is not None:
                stop.set()
                reader.close()  # wakes a decoder blocked on ffmpeg's output
            decoder.join(timeout=0.1)
            encoder.join(timeout=0.1)
        for stage in (decoder, encoder):
            if stage.error is not None:
                raise stage.error
        if done[0] == 0:
            raise ValueError(f"video {path} has no frames")
        writer.close()
    except BaseException:
        stop.set()
        reader.close()
        if writer is not None:
            writer.abort()
        for stage in (decoder, encoder):
            if stage.is_alive():
                stage.join(timeout=5)
        raise
    finally:
        reader.close()
    seconds = time.perf_counter() - start
    steady = (done[0] - 1) / (done[2] - done[1]) if done[0] > 1 and done[2] > done[1] else None
    return {"frames": done[0], "seconds": seconds, "fps": done[0] / seconds,
            "steady_fps": steady, "source_fps": reader.fps, "size": reader.size,
            "audio": reader.audio}
