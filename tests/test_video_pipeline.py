"""Issue 28: live's segmentation thread (order, each frame's arrival, errors, stop), ffmpeg's
thread settings and the runtime threads a video pass picks."""
import threading
import time

import numpy as np
import pytest


def test_ffmpeg_threads_are_one_each_unless_asked(tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    from deeplab_keras.video import io
    assert io._threads(None) == ["-threads", str(io.FFMPEG_THREADS)] == ["-threads", "1"]
    assert io._threads(0) == [] and io._threads("auto") == [] and io._threads(3)[-1] == "3"
    for bad in (-1, 1.5, True, "two"):
        with pytest.raises(ValueError, match="ffmpeg threads must be a positive integer"):
            io.VideoWriter(str(tmp_path / "x.mp4"), (8, 8), 10, threads=bad)
    assert list(tmp_path.iterdir()) == []  # refused before any file was made


def test_runtime_threads_default_to_the_cores_this_process_may_use(monkeypatch):
    import os

    from deeplab_keras.video.pipeline import runtime_threads
    assert runtime_threads(3) == 3
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert runtime_threads() == 2
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert runtime_threads() == 1


class _Frames:
    """A LiveFrames stand-in: ``n`` frames, each with its arrival time; ``fail`` raises after."""

    def __init__(self, n, fail=None):
        self.n, self.fail, self.arrival, self.closed = n, fail, None, threading.Event()

    def __iter__(self):
        for i in range(self.n):
            if self.closed.is_set():
                return
            self.arrival = float(i)
            yield np.full((2, 2, 3), i, np.uint8)
        if self.fail is not None:
            raise self.fail

    def close(self):
        self.closed.set()


@pytest.mark.parametrize("depth", [0, 1])
def test_live_segments_on_its_own_thread_in_order(depth):
    from deeplab_keras.video.live import StreamStalled, segmented
    threads = set()

    def segment(frame):
        threads.add(threading.current_thread().name)
        return frame[..., 0] * 2

    got = list(segmented(_Frames(6), segment, depth=depth))
    assert [int(f[0, 0, 0]) for f, _, _ in got] == list(range(6))
    assert all((c == f[..., 0] * 2).all() for f, c, _ in got)
    assert [a for _, _, a in got] == [float(i) for i in range(6)]  # each frame's own arrival
    assert threads == ({"live-segment"} if depth else {threading.current_thread().name})
    # the source's error (a stalled stream) and the model's reach the caller
    with pytest.raises(StreamStalled, match="stopped"):
        list(segmented(_Frames(2, fail=StreamStalled("x: the stream stopped")), segment,
                       depth=depth))
    with pytest.raises(ValueError, match="bad frame"):
        list(segmented(_Frames(3), lambda f: (_ for _ in ()).throw(ValueError("bad frame")),
                       depth=depth))


@pytest.mark.parametrize("depth", [0, 1])
def test_live_finishes_each_frame_on_the_callers_thread_in_order(depth):
    """``finish`` (VideoSegmenter.finish: the smoothing, which keeps state over frames) runs on
    the caller's thread, in frame order, while the model's part runs ahead on its own."""
    from deeplab_keras.video.live import segmented
    seen = []

    def finish(out):
        seen.append((int(out[0, 0]), threading.current_thread().name))
        return out + 1

    got = list(segmented(_Frames(5), lambda f: f[..., 0].astype(int), depth=depth, finish=finish))
    assert [int(c[0, 0]) for _, c, _ in got] == [i + 1 for i in range(5)]
    assert seen == [(i, threading.current_thread().name) for i in range(5)]


def test_video_segmenter_infer_then_finish_is_segment(tiny_keras):
    """segment(frame) == finish(infer(frame)) frame after frame, smoothing state included, so
    live's split across two threads shows what segment() would."""
    import deeplab_keras as dk
    model = tiny_keras["model"]
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (29, 37, 3), np.uint8) for _ in range(4)]
    one, two = dk.VideoSegmenter(model, smoothing=True), dk.VideoSegmenter(model, smoothing=True)
    inferred = [two.infer(f) for f in frames]  # all model work first, as a thread ahead would
    for frame, pending in zip(frames, inferred):
        np.testing.assert_array_equal(one.segment(frame), two.finish(pending))
    assert one.frames == two.frames == 4
    with pytest.raises(ValueError, match="RGB uint8"):
        two.infer(frames[0][..., :2])


def test_live_segmentation_thread_stops_when_the_caller_does():
    from deeplab_keras.video.live import segmented
    frames = _Frames(10 ** 6)
    gen = segmented(frames, lambda f: f[..., 0])
    next(gen)
    gen.close()  # the caller stops early (--max-frames, q in the window)
    assert frames.closed.is_set()
    deadline = time.time() + 5
    while any(t.name == "live-segment" for t in threading.enumerate()) and time.time() < deadline:
        time.sleep(0.01)
    assert not any(t.name == "live-segment" for t in threading.enumerate())


def test_commands_turn_opencvs_own_pool_off():
    cv2 = pytest.importorskip("cv2")
    from deeplab_keras.video.pipeline import leave_cores_to_runtime
    before = cv2.getNumThreads()
    try:
        leave_cores_to_runtime()
        assert cv2.getNumThreads() in (0, 1)  # sequential: no pool workers
    finally:
        cv2.setNumThreads(before)
