"""Issue 17: dk.VideoSegmenter (Keras and artifact sources, smoothing, size changes), the video
reader/writer and pipeline (size, frame count, audio, atomic writes), predict on videos and
artifacts, and the bad inputs (zero-frame, corrupt and truncated videos, class-count mismatch)."""
import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest

import deeplab_keras as dk
from deeplab_keras import cli

ff = pytest.importorskip("imageio_ffmpeg", reason="the 'video' extra (imageio-ffmpeg) is not "
                         "installed")

from tests.conftest import module_tiny
from tests.factories import LABELS, PALETTE
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_video(path, frames=8, size="65x49", fps=10, audio=True, extra=()):
    """A synthetic H.264 clip (odd size on purpose) with or without an audio track."""
    cmd = [ff.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "lavfi", "-i",
           f"testsrc=size={size}:rate={fps}"]
    if audio:
        cmd += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000"]
    cmd += ["-frames:v", str(frames), "-pix_fmt", "yuv444p", "-c:v", "libx264", *extra]
    cmd += (["-c:a", "aac", "-t", str(frames / fps)] if audio else []) + [str(path)]
    subprocess.run(cmd, check=True)
    return str(path)


@pytest.fixture(scope="module")
def tiny(tiny_keras, tmp_path_factory):
    return module_tiny(tiny_keras, tmp_path_factory, "video")


@pytest.fixture(scope="module")
def tflite(tiny):
    from deeplab_keras.export.api import export_model
    out = str(tiny["tmp"] / "tiny_classes.tflite")
    export_model(tiny["model"], out, "tflite", input_size=(33, 41), output_mode="classes",
                 labels=LABELS, num_parity=1)
    scores = str(tiny["tmp"] / "tiny_logits.tflite")
    export_model(tiny["model"], scores, "tflite", input_size=(33, 41), output_mode="logits",
                 labels=LABELS, num_parity=1)
    return {"classes": out, "logits": scores}


def frames_of(n=4, size=(49, 65), seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, size + (3,), np.uint8) for _ in range(n)]


# -- the API -----------------------------------------------------------------------------------

def test_keras_source_matches_segment_and_handles_size_changes(tiny):
    seg = dk.VideoSegmenter(tiny["model"])
    for frame in frames_of(2):
        out = seg.segment(frame)
        assert out.shape == frame.shape[:2] and out.dtype == np.uint8
        assert (out == dk.segment(tiny["model"], frame)).all()
    assert seg.labels == LABELS and seg.num_classes == 3
    smooth = dk.VideoSegmenter(tiny["path"], smoothing=True)  # a .keras file
    smooth.segment(frames_of(1)[0])
    other = smooth.segment(frames_of(1, (33, 40))[0])  # another size mid-stream: handled
    assert other.shape == (33, 40) and smooth.resets == 1
    with pytest.raises(ValueError, match=r"RGB uint8 frame \(H, W, 3\)"):
        seg.segment(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="source must be a Keras model"):
        dk.VideoSegmenter(42)
    with pytest.raises(FileNotFoundError, match="artifact not found"):
        dk.VideoSegmenter(str(tiny["tmp"] / "missing.tflite"))


def test_artifact_sources_read_their_contract_from_the_file(tiny, tflite):
    frame = frames_of(1)[0]
    ref = None
    for kind in ("classes", "logits"):
        seg = dk.VideoSegmenter(tflite[kind], num_threads=1)
        assert seg.input_size == (33, 41) and seg.labels == LABELS and seg.num_classes == 3
        assert seg.source.output == ("classes" if kind == "classes" else "scores")
        out = seg.segment(frame)
        assert out.shape == frame.shape[:2] and out.max() < 3
        ref = out if ref is None else ref
    # same file, same answer as dk.segment (evaluate's per-image call: one segmenter layer)
    assert (dk.segment(tflite["logits"], frame) == out).all()
    assert (dk.segment(tflite["logits"], frame.astype(np.float32)) == out).all()
    with pytest.raises(ValueError, match="has 3 classes but 2 labels were given"):
        dk.VideoSegmenter(tflite["classes"], labels=["a", "b"])
    bad = tiny["tmp"] / "bad.tflite"
    bad.write_bytes(b"TFL3 but not really a model")
    with pytest.raises(ValueError, match="cannot load .*bad.tflite"):
        dk.VideoSegmenter(str(bad))


def test_smoother_lowers_flicker_and_follows_motion():
    from deeplab_keras.video import TemporalSmoother
    rng = np.random.default_rng(0)
    base = np.zeros((20, 20, 2), np.float32)
    base[..., 0] = 0.05  # class 0 slightly ahead everywhere
    still = np.full((20, 20, 3), 100, np.uint8)
    raw_switches = smooth_switches = 0
    sm = TemporalSmoother()
    prev_raw = prev_smooth = None
    for _ in range(30):
        scores = base + rng.normal(0, 0.3, base.shape).astype(np.float32)  # noisy near-tie
        raw = scores.argmax(-1)
        shown = sm.with_hysteresis(sm.update(scores, still)).argmax(-1)
        if prev_raw is not None:
            raw_switches += int((raw != prev_raw).sum())
            smooth_switches += int((shown != prev_smooth).sum())
        prev_raw, prev_smooth = raw, shown
    assert smooth_switches < 0.25 * raw_switches
    # a clear change where the picture moved goes through at once (no smearing)
    moved = still.copy()
    moved[:10] = 250
    jump = np.zeros((20, 20, 2), np.float32)
    jump[..., 0] = 5.0
    jump[:10, :, 1] = 10.0  # class 1 in the top half, where the picture changed
    shown = sm.with_hysteresis(sm.update(jump, moved)).argmax(-1)
    assert (shown[:10] == 1).all() and (shown[10:] == 0).all()
    with pytest.raises(ValueError, match=r"strength must be in \[0, 1\)"):
        TemporalSmoother(strength=1.5)


def test_artifact_fast_paths_give_the_same_answers(tiny_int8_logits):
    """uint8 frames go to a uint8-input file as they are, and scores at the frame's size are
    argmaxed without dequantizing: both must change nothing."""
    from deeplab_keras.export.runtime import Artifact
    path = tiny_int8_logits  # int8, logits at 33x41
    art = Artifact(path, num_threads=1)
    frame = frames_of(1, (33, 41))[0]
    assert art.input_dtype == np.uint8 and art.run_raw(frame)[1] is not None
    assert (art(frame) == art(frame.astype(np.float32))).all()  # uint8 path == float path
    seg = dk.VideoSegmenter(path, num_threads=1)
    assert seg.source.scores_size == (33, 41)
    assert (seg.segment(frame) == seg.source(frame).argmax(-1)).all()
    # quantized scores: the raw argmax equals the dequantized one; a negative scale (order
    # reversed) is dequantized first
    rng = np.random.default_rng(1)
    raw = rng.integers(0, 256, (1, 33, 41, 3)).astype(np.uint8)
    for scale, zero in ((0.1, 86), (-0.1, 86)):
        seg.source.artifact.run_raw = lambda x, output=0, q=(scale, zero): (raw, q)
        want = ((raw[0].astype(np.float32) - zero) * scale).argmax(-1)
        assert (seg.source.raw_classes(frame) == want).all()


# -- video files -------------------------------------------------------------------------------

def test_pipeline_keeps_size_frames_rate_and_audio(tiny):
    from deeplab_keras.video import VideoReader, process_video
    src = make_video(tiny["tmp"] / "a.mp4", frames=7, size="65x49", audio=True)
    out = str(tiny["tmp"] / "a_out.mp4")
    seen = []
    seg = dk.VideoSegmenter(tiny["model"])
    result = process_video(seg.segment, src, out, lambda f, c: dk.overlay(f, c, PALETTE),
                           on_frame=lambda n, total: seen.append((n, total)))
    assert result["frames"] == 7 and seen[-1] == (7, 7) and result["audio"]
    made = VideoReader(out)
    assert (made.frames, made.size, made.fps, bool(made.audio)) == (7, (49, 65), 10.0, True)
    made.close()
    silent = make_video(tiny["tmp"] / "s.mp4", frames=3, size="64x48", audio=False)
    process_video(seg.segment, silent, out, lambda f, c: f)
    made = VideoReader(out)
    assert (made.frames, made.size, made.audio) == (3, (48, 64), None)
    made.close()


def test_bad_videos_are_named_and_leave_nothing(tiny):
    from deeplab_keras.video import VideoReader, process_video
    tmp = tiny["tmp"]
    garbage = tmp / "garbage.mp4"
    garbage.write_bytes(b"not a video at all")
    with pytest.raises(ValueError, match="cannot read video .*garbage.mp4"):
        VideoReader(str(garbage))
    # moov atom first, then cut: the container announces frames the file no longer holds
    full = make_video(tmp / "long.mp4", frames=40, size="64x48", audio=False,
                      extra=["-movflags", "+faststart"])
    data = open(full, "rb").read()
    cut = tmp / "cut.mp4"
    cut.write_bytes(data[:len(data) // 2])
    out = tmp / "cut_out.mp4"
    with pytest.raises(ValueError, match="cut.mp4"):
        process_video(lambda f: np.zeros(f.shape[:2], np.uint8), str(cut), str(out),
                      lambda f, c: f)
    assert not out.exists()
    audio_only = tmp / "audio.m4a"
    subprocess.run([ff.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "sine=frequency=440:sample_rate=16000", "-t", "0.5", "-c:a", "aac",
                    str(audio_only)], check=True)
    with pytest.raises(ValueError, match="no frames|no video stream|cannot read video"):
        VideoReader(str(audio_only))
    # a segmenter that fails mid-video: nothing under the final name
    calls = [0]

    def failing(frame):
        calls[0] += 1
        if calls[0] == 3:
            raise RuntimeError("boom")
        return np.zeros(frame.shape[:2], np.uint8)
    with pytest.raises(RuntimeError, match="boom"):
        process_video(failing, full, str(out), lambda f, c: f)
    assert not out.exists() and not list(tmp.glob(".cut_out.mp4*"))


# -- the command line --------------------------------------------------------------------------

def test_predict_artifact_on_images_and_video_with_smoothing(tiny, tflite, capsys):
    from deeplab_keras.video import VideoReader
    from PIL import Image
    tmp = tiny["tmp"]
    image = tmp / "img.png"
    Image.fromarray(frames_of(1, (50, 70))[0]).save(image)
    video = make_video(tmp / "clip.mp4", frames=5, size="65x49")
    out = tmp / "art_out"
    rc = cli.main(["predict", "--artifact", tflite["classes"], "--threads", "1", "--smoothing",
                   "--no-progress", "--output-dir", str(out), str(image), video])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    classes = np.asarray(Image.open(out / "img_classes.png"))
    assert classes.shape == (50, 70) and classes.max() < 3
    made = VideoReader(str(out / "clip_overlay.mp4"))
    assert (made.frames, made.size, bool(made.audio)) == (5, (49, 65), True)
    made.close()
    assert "5 frames in" in captured.out and "audio kept" in captured.out
    index = json.loads((out / "index.json").read_text())
    assert [e["input"] for e in index["inputs"]] == [str(image), video]
    labels = json.loads((out / "labels.json").read_text())
    assert [c["name"] for c in labels["classes"]] == LABELS
    # flags that do not apply to an artifact are refused, one line each
    assert cli.main(["predict", "--artifact", tflite["classes"], "--scales", "0.5", "1",
                     "--output-dir", str(out), str(image)]) == 1
    assert "--scales/--flip need a Keras model" in capsys.readouterr().err
    assert cli.main(["predict", "--artifact", tflite["classes"], "--num-classes", "5",
                     "--output-dir", str(out), str(image)]) == 1
    assert "has 3 classes, not 5" in capsys.readouterr().err


def test_predict_scales_and_flip_use_the_evaluation_predictor(tiny):
    from PIL import Image

    from deeplab_keras.evaluation import Predictor
    tmp = tiny["tmp"]
    image = frames_of(1, (40, 52), seed=3)[0]
    Image.fromarray(image).save(tmp / "ms.png")
    out = tmp / "ms_out"
    assert cli.main(["predict", "--weights", tiny["path"], "--scales", "0.75", "1", "--flip",
                     "--no-progress", "--output-dir", str(out), str(tmp / "ms.png")]) == 0
    want = Predictor(tiny["model"], scales=(0.75, 1.0), flip=True)(image).argmax(-1)
    assert (np.asarray(Image.open(out / "ms_classes.png")) == want).all()


def test_predict_scales_are_of_the_size_the_model_runs_at(tiny):
    """--scales multiply the size predict runs the model at (--input-size, else the model's
    preset input size), as a single-scale predict does, not the image's own size."""
    from PIL import Image

    from deeplab_keras.evaluation import Predictor
    tmp = tiny["tmp"]
    image = frames_of(1, (40, 52), seed=4)[0]
    Image.fromarray(image).save(tmp / "work.png")
    out = tmp / "work_out"
    assert cli.main(["predict", "--weights", tiny["path"], "--input-size", "57", "73",
                     "--scales", "1", "1.5", "--no-progress", "--output-dir", str(out),
                     str(tmp / "work.png")]) == 0
    got = np.asarray(Image.open(out / "work_classes.png"))
    want = Predictor(tiny["model"], scales=(1.0, 1.5), input_size=(57, 73))(image).argmax(-1)
    native = Predictor(tiny["model"], scales=(1.0, 1.5))(image).argmax(-1)
    assert (got == want).all() and not (got == native).all()


def test_predict_never_rereads_or_overwrites_its_inputs(tiny, capsys):
    from PIL import Image
    folder = tiny["tmp"] / "photos"
    folder.mkdir()
    for name in ("x.png", "x_overlay.png"):  # an input named like another's output
        Image.fromarray(frames_of(1, (20, 24))[0]).save(folder / name)
    before = (folder / "x_overlay.png").read_bytes()
    (folder / "loop").symlink_to(folder, target_is_directory=True)  # a symlink cycle
    rc = cli.main(["predict", "--weights", tiny["path"], "--no-progress", "--output-dir",
                   str(folder / "out"), str(folder / "**" / "*.png")])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    # again into the input folder itself: our outputs of the first run are skipped, and the
    # output that would replace the input x_overlay.png is refused, naming it
    rc = cli.main(["predict", "--weights", tiny["path"], "--no-progress", "--output-dir",
                   str(folder), str(folder)])
    err = capsys.readouterr().err
    assert rc == 1 and "would overwrite an input file" in err and "x_overlay.png" in err
    assert "skipped" in err and "out/x_classes.png" in err
    assert (folder / "x_overlay.png").read_bytes() == before


def test_killed_predict_leaves_nothing_under_the_final_name(tiny):
    video = make_video(tiny["tmp"] / "long_kill.mp4", frames=3000, size="64x48", audio=False)
    out = tiny["tmp"] / "kill_out"
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen([sys.executable, "-m", "deeplab_keras", "predict", "--weights",
                             tiny["path"], "--no-progress", "--output-dir", str(out), video],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(1200):  # wait on progress (a temporary file growing), not on a clock
            temps = list(out.glob(".long_kill_overlay.mp4.*")) if out.exists() else []
            if temps and temps[0].stat().st_size > 0:
                break
            assert proc.poll() is None, "predict ended before it could be killed"
            time.sleep(0.25)
        else:
            pytest.fail("no temporary video appeared")
        proc.kill()
    finally:
        proc.wait()
    assert not (out / "long_kill_overlay.mp4").exists()


# -- live mode ---------------------------------------------------------------------------------

class _FakeReader:
    """A source delivering ``n`` frames at once, then (``stall``) nothing more, ever."""

    def __init__(self, n, stall=False):
        self.n, self.stall, self.fps, self.path = n, stall, 1000.0, "fake://source"
        self.release = __import__("threading").Event()

    def __iter__(self):
        for i in range(self.n):
            yield np.full((4, 4, 3), i, np.uint8)
        if self.stall:
            self.release.wait()

    def close(self):
        self.release.set()


def test_live_keeps_the_newest_frame_and_counts_drops():
    from deeplab_keras.video.live import LiveFrames
    frames = LiveFrames(_FakeReader(50), live=True)
    taken = []
    for frame in frames:
        taken.append(int(frame[0, 0, 0]))
        frames._thread.join()  # a slow consumer: everything else arrives meanwhile
    assert taken[-1] == 49 and len(taken) <= 2  # the newest, not a backlog
    assert frames.received == 50 and frames.dropped + len(taken) == 50
    stalled = LiveFrames(_FakeReader(1, stall=True), live=True, stall_timeout=0.5)
    with pytest.raises(ValueError, match="the stream stopped"):
        for _ in stalled:
            pass
    stalled.close()


def test_live_command_on_a_file_source(tiny, capsys):
    from deeplab_keras.video import VideoReader
    video = make_video(tiny["tmp"] / "live.mp4", frames=12, size="64x48", audio=False)
    out = tiny["tmp"] / "live_out.mp4"
    rc = cli.main(["live", "--source", video, "--weights", tiny["path"], "--no-window",
                   "--output", str(out), "--background", "blur", "--keep", "road", "car",
                   "--speed", "4"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    line = [ln for ln in captured.out.splitlines() if ln.startswith("live:")][-1]
    processed = int(line.split()[1])
    dropped, received = (int(v) for v in
                         re.search(r"(\d+) of (\d+) received frames dropped", line).groups())
    assert received == 12 and processed + dropped == 12 and processed >= 1
    # glass to glass: each processed frame's arrival to its result written
    median, p90 = (int(v) for v in re.search(r"latency median (\d+) ms, p90 (\d+) ms", line).groups())
    assert 0 < median <= p90
    made = VideoReader(str(out))
    assert made.frames == processed and made.size == (48, 64)
    made.close()
    # bad input: one line each, nothing written
    assert cli.main(["live", "--source", "97", "--weights", tiny["path"], "--no-window",
                     "--output", str(tiny["tmp"] / "cam.mp4")]) == 1
    assert "camera 97 not found" in capsys.readouterr().err
    assert cli.main(["live", "--source", video, "--weights", tiny["path"], "--no-window"]) == 1
    assert "give --output FILE.mp4" in capsys.readouterr().err
    assert cli.main(["live", "--source", video, "--weights", tiny["path"], "--no-window",
                     "--output", str(tiny["tmp"] / "k.mp4"), "--background", "blur",
                     "--keep", "person"]) == 1
    assert "--keep 'person' is not a class of this model" in capsys.readouterr().err
    assert not (tiny["tmp"] / "cam.mp4").exists() and not (tiny["tmp"] / "k.mp4").exists()


def test_live_artifact_runs_a_thread_per_core_with_each_effect(tiny, tflite, capsys,
                                                                 monkeypatch):
    """Issue 28: without --threads, live runs an exported file on one runtime thread per core;
    each background effect writes every processed frame."""
    from deeplab_keras.video import VideoReader
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    video = make_video(tiny["tmp"] / "live_art.mp4", frames=6, size="64x48", audio=False)
    picture = tiny["tmp"] / "back.png"
    from PIL import Image
    Image.fromarray(frames_of(1, (30, 40))[0]).save(picture)
    for n, background in enumerate(["blur", "color:#102030", str(picture)]):
        out = tiny["tmp"] / f"live_art_{n}.mp4"
        rc = cli.main(["live", "--source", video, "--artifact", tflite["classes"], "--no-window",
                       "--output", str(out), "--background", background, "--keep", "car",
                       "--smoothing", "--speed", "4"])
        captured = capsys.readouterr()
        assert rc == 0, captured.err
        line = [ln for ln in captured.out.splitlines() if ln.startswith("live:")][-1]
        assert "2 threads" in line, line
        made = VideoReader(str(out))
        assert made.frames == int(line.split()[1]) and made.size == (48, 64)
        made.close()


def test_replace_background_keeps_only_the_chosen_classes():
    from deeplab_keras.inference import replace_background
    image = np.full((10, 12, 3), 200, np.uint8)
    classes = np.zeros((10, 12), np.uint8)
    classes[:, 6:] = 1
    out = replace_background(image, classes, [1], (0, 177, 64))
    assert (out[:, 8:] == 200).all() and (out[:, :4] == (0, 177, 64)).all()
    with pytest.raises(ValueError, match="background must be 'blur'"):
        replace_background(image, classes, [1], "sepia")


def test_large_image_class_map_never_holds_all_class_scores(tiny, monkeypatch):
    """Issue 19: the class map of a big photo is the argmax of the full-size logits, computed a
    few classes at a time (arrays checked, not timed)."""
    from deeplab_keras.inference import predict
    from deeplab_keras.layers import resize as resize_module
    image = frames_of(1, (300, 410), seed=5)[0]
    want = predict.predict_logits(tiny["model"], image, (33, 33)).argmax(-1)
    shapes = []
    real = resize_module.resize

    def spy(x, size, *args, **kwargs):
        out = real(x, size, *args, **kwargs)
        shapes.append(tuple(out.shape))
        return out
    monkeypatch.setattr(resize_module, "resize", spy)  # the one resize (dk.resize)
    monkeypatch.setattr(predict, "UPSAMPLE_BUDGET", 300 * 410 * 4)  # one class at a time
    got = predict.predict_classes(tiny["model"], image, (33, 33))
    assert (got == want).all() and got.dtype == np.uint8
    full = [s for s in shapes if s[1:3] == (300, 410)]
    assert len(full) == 3 and all(s[-1] == 1 for s in full)


def test_zoo_show_says_how_int8_latency_was_measured(capsys):
    assert cli.main(["zoo", "show", "deeplabv3plus_mobilenetv2_camvid"]) == 0
    out = capsys.readouterr().out
    metrics = dk.get_preset("deeplabv3plus_mobilenetv2_camvid")["metrics"]
    line = next(ln for ln in out.splitlines() if ln.startswith("int8 latency:"))
    assert f"{metrics['int8_latency_ms']:.1f} ms (python bench/zoo_latency.py" in line
    assert "threads" in line and "CPUs" in line
    assert cli.main(["zoo", "show", "deeplabv3plus_xception65_voc"]) == 0
    assert "int8 latency:   - (not measured)" in capsys.readouterr().out
