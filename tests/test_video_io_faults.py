"""Issue 27, the writer policy and faithful video: predict and live never replace a file we did
not write (ours is recognised by what we wrote into it) nor an input; a full disk stops every
stage of the video pipeline with one line and no temporary file; one video and one audio stream;
a variable frame rate's frame count and timestamps kept; truncation reported against the
container's frame count; audio-only files and absurd frame rates named; live/predict flags
checked before any work."""
import errno
import os
import re
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from deeplab_keras import cli

ff = pytest.importorskip("imageio_ffmpeg", reason="the 'video' extra (imageio-ffmpeg) is not "
                         "installed")

from tests.conftest import module_tiny  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FFMPEG = ff.get_ffmpeg_exe()


def ffmpeg(*args):
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *map(str, args)],
                   check=True)


def clip(path, frames=4, fps=10, audio=False, extra=()):
    """A tiny 64x48 H.264 clip, with a sine audio track when ``audio``."""
    args = ["-f", "lavfi", "-i", f"testsrc=size=64x48:rate={fps}"]
    if audio:
        args += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000", "-c:a", "aac",
                 "-t", frames / fps]
    ffmpeg(*args, "-frames:v", frames, "-c:v", "libx264", "-pix_fmt", "yuv420p", *extra, path)
    return str(path)


def streams(path):
    """Stream kinds of ``path`` in order, as ffmpeg lists them."""
    err = subprocess.run([FFMPEG, "-hide_banner", "-i", str(path)], capture_output=True,
                         text=True).stderr
    return [("video" if ": Video:" in ln else "audio") for ln in err.splitlines()
            if ln.strip().startswith("Stream #") and (": Video:" in ln or ": Audio:" in ln)]


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def tiny(tiny_keras, tmp_path_factory):
    return module_tiny(tiny_keras, tmp_path_factory, "io_faults")


def zeros(frame):
    return np.zeros(frame.shape[:2], np.uint8)


# -- faithful video (cases 8, 9, 10 and the weak reader cases) ---------------------------------

def test_audio_is_written_once_not_twice(tmp_path):
    """Case 8: video, audio, video, audio -> exactly one video and one audio stream."""
    from deeplab_keras.video import process_video
    src = clip(tmp_path / "a.mp4", frames=5, audio=True)
    out = tmp_path / "a_out.mp4"
    process_video(zeros, src, str(out), lambda f, c: f)
    assert streams(out) == ["video", "audio"]


def packet_times(path):
    """Presentation times (s) of the video packets of ``path``, read by ffmpeg itself."""
    out = subprocess.run([FFMPEG, "-hide_banner", "-i", str(path), "-map", "0:v:0", "-c",
                          "copy", "-f", "framecrc", "-"], capture_output=True, text=True).stdout
    num, den = re.search(r"^#tb 0: (\d+)/(\d+)", out, re.M).groups()
    pts = sorted(int(ln.split(",")[2]) for ln in out.splitlines() if ln.startswith("0,"))
    return [(p - pts[0]) * int(num) / int(den) for p in pts]


def test_variable_frame_rate_keeps_frame_count_and_timestamps(tmp_path):
    """Case 9: 10 frames over about 2.4 s stay 10 frames with the same times (not 30 frames
    at a made-up constant rate)."""
    from deeplab_keras.video import VideoReader, process_video
    src = tmp_path / "vfr.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=100", "-frames:v", 10, "-vf",
           "settb=1/1000,setpts='if(lt(N,5),N*100,500+(N-5)*475)/1000/TB'", "-fps_mode", "vfr",
           "-c:v", "libx264", "-pix_fmt", "yuv420p", "-video_track_timescale", 1000, src)
    want = packet_times(src)
    assert len(want) == 10 and want[-1] == pytest.approx(2.4, abs=0.01)
    out = tmp_path / "vfr_out.mp4"
    result = process_video(zeros, str(src), str(out), lambda f, c: f)
    assert result["frames"] == 10
    assert packet_times(out) == pytest.approx(want, abs=1e-3)
    made = VideoReader(str(out))
    assert made.frames == 10
    made.close()


def test_cut_short_faststart_mp4_is_reported_against_its_header(tmp_path):
    """Case 10: the header says 10 frames, 3 decode -> "stopped after 3 of 10 frames", and no
    output is left."""
    from deeplab_keras.video import VideoReader, process_video
    full = clip(tmp_path / "full.mp4", frames=10, extra=["-g", 1, "-movflags", "+faststart"])
    data = open(full, "rb").read()
    # keep the header and the first 3 frames' bytes: find where frame 4 starts
    reader = VideoReader(full)
    assert reader.frames == 10
    reader.close()
    cut = tmp_path / "cut.mp4"
    sizes = subprocess.run([FFMPEG, "-hide_banner", "-i", full, "-c", "copy", "-f", "framecrc",
                            "-"], capture_output=True, text=True).stdout
    packets = [int(ln.split(",")[4]) for ln in sizes.splitlines() if ln.startswith("0,")]
    mdat = data.index(b"mdat") + 4
    cut.write_bytes(data[:mdat + sum(packets[:3])])
    out = tmp_path / "cut_out.mp4"
    with pytest.raises(ValueError, match=r"cut\.mp4 stopped after 3 of 10 frames"):
        process_video(zeros, str(cut), str(out), lambda f, c: f)
    assert not out.exists() and leftovers(tmp_path) == []


def test_audio_only_file_is_named(tmp_path):
    from deeplab_keras.video import VideoReader
    audio = tmp_path / "song.mp4"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000", "-t", 0.5, "-c:a",
           "aac", audio)
    with pytest.raises(ValueError, match=r"song\.mp4 has no video stream \(audio only"):
        VideoReader(str(audio))


def test_absurd_frame_rate_is_named_not_replaced_by_25(tmp_path):
    from deeplab_keras.video import VideoReader
    fast = clip(tmp_path / "fast.mp4", frames=5, fps=1000)
    with pytest.raises(ValueError, match=r"fast\.mp4 has a frame rate of 1000 fps"):
        VideoReader(fast)


# -- a full or read-only disk (case 7) ---------------------------------------------------------

FULL_DISK = textwrap.dedent("""
    import resource, signal, sys
    import numpy as np
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit get EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))
    from deeplab_keras.video import process_video
    noise = np.random.default_rng(0)
    try:
        process_video(lambda f: np.zeros(f.shape[:2], np.uint8), sys.argv[1], sys.argv[2],
                      lambda f, c: noise.integers(0, 255, f.shape, np.uint8))
    except ValueError as err:
        print("ERROR", err)
        sys.exit(3)
""")


def test_full_disk_ends_every_stage_with_one_line_and_no_temp(tmp_path):
    """Case 7: ffmpeg stops (file too large / no space), the decoder must not block on a full
    queue nor the main thread on the decoder: the process ends (bounded generously, it is not
    a timing test) with one line naming the file, and no temporary file is left."""
    src = clip(tmp_path / "long.mp4", frames=300)
    out = tmp_path / "out" / "full.mp4"
    out.parent.mkdir()
    script = tmp_path / "full_disk.py"
    script.write_text(FULL_DISK)
    run = subprocess.run([sys.executable, str(script), src, str(out)], capture_output=True,
                         text=True, timeout=300, env=dict(os.environ, PYTHONPATH=ROOT))
    assert run.returncode == 3, run.stderr[-2000:]
    line = [ln for ln in run.stdout.splitlines() if ln.startswith("ERROR")]
    assert len(line) == 1 and "cannot write video" in line[0] and "full.mp4" in line[0]
    assert "File too large" in line[0] or "No space" in line[0]
    assert os.listdir(out.parent) == []


def test_writer_failing_mid_stream_stops_the_pipeline(tmp_path, monkeypatch):
    """The same with a writer that raises ENOSPC after a few frames (in process): the pipeline
    returns the error, its threads end, nothing is left in the folder."""
    from deeplab_keras.video import io as vio
    from deeplab_keras.video import pipeline
    src = clip(tmp_path / "src.mp4", frames=60)
    real_write = vio.VideoWriter.write
    calls = [0]

    def write(self, frame):
        calls[0] += 1
        if calls[0] == 3:
            self.abort()
            raise ValueError(f"cannot write video {self.path}: "
                             f"{os.strerror(errno.ENOSPC)}")
        real_write(self, frame)
    monkeypatch.setattr(vio.VideoWriter, "write", write)
    out = tmp_path / "o" / "x.mp4"
    out.parent.mkdir()
    before = {t.name for t in threading.enumerate()}
    result = {}

    def run():
        try:
            pipeline.process_video(zeros, src, str(out), lambda f, c: f, depth=1)
        except ValueError as err:
            result["err"] = str(err)
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=120)  # generous: it ends within a second when nothing deadlocks
    assert not worker.is_alive(), "the pipeline waits forever on its dead encoder"
    assert "No space left on device" in result["err"]
    assert os.listdir(out.parent) == []
    assert not [t for t in threading.enumerate() if t.name.startswith("video-")
                and t.name not in before and t.is_alive()]


def test_read_only_folder_is_refused_up_front(tiny, tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("running as root: a 0o555 folder does not stop root's writes")
    folder = tmp_path / "ro"
    folder.mkdir()
    os.chmod(folder, 0o555)
    try:
        src = clip(tmp_path / "s.mp4", frames=3)
        rc = cli.main(["live", "--source", src, "--weights", tiny["path"], "--no-window",
                       "--output", str(folder / "o.mp4")])
        assert rc == 1 and "read-only" in capsys.readouterr().err
    finally:
        os.chmod(folder, 0o755)


# -- the writer policy (cases 4, 5, 6) ---------------------------------------------------------

def test_predict_never_replaces_a_users_file_but_replaces_its_own(tiny, tmp_path, capsys):
    """Case 4: a user's img_overlay.png / clip_overlay.mp4 in the output folder are refused,
    naming the file and --overwrite; predict's own outputs (tagged) are replaced on a rerun."""
    from PIL import Image
    image = tmp_path / "img.png"
    Image.fromarray(np.full((20, 24, 3), 90, np.uint8)).save(image)
    video = clip(tmp_path / "clip.mp4", frames=3)
    out = tmp_path / "out"
    out.mkdir()
    for name, data in (("img_overlay.png", image.read_bytes()),
                       ("clip_overlay.mp4", open(video, "rb").read())):
        user = out / name
        user.write_bytes(data)
        rc = cli.main(["predict", "--weights", tiny["path"], "--no-progress", "--output-dir",
                       str(out), str(image), video])
        err = capsys.readouterr().err
        assert rc == 1 and name in err and "--overwrite" in err
        assert user.read_bytes() == data and not (out / "img_classes.png").exists()
        user.unlink()
    assert cli.main(["predict", "--weights", tiny["path"], "--no-progress", "--output-dir",
                     str(out), str(image), video]) == 0
    capsys.readouterr()
    with Image.open(out / "img_overlay.png") as im:
        assert im.text["Software"].startswith("deeplab-keras")
    # a rerun replaces what it wrote; --overwrite replaces a user's file
    assert cli.main(["predict", "--weights", tiny["path"], "--no-progress", "--output-dir",
                     str(out), str(image), video]) == 0
    (out / "img_overlay.png").write_bytes(image.read_bytes())
    assert cli.main(["predict", "--weights", tiny["path"], "--no-progress", "--overwrite",
                     "--output-dir", str(out), str(image)]) == 0


def test_predict_never_writes_onto_a_hard_linked_input(tiny, tmp_path, capsys):
    from PIL import Image
    image = tmp_path / "p.png"
    Image.fromarray(np.full((20, 24, 3), 50, np.uint8)).save(image)
    out = tmp_path / "o"
    out.mkdir()
    os.link(image, out / "p_overlay.png")  # the input, under an output's name
    before = image.read_bytes()
    rc = cli.main(["predict", "--weights", tiny["path"], "--no-progress", "--overwrite",
                   "--output-dir", str(out), str(image)])
    assert rc == 1 and "p_overlay.png" in capsys.readouterr().err
    assert image.read_bytes() == before


def test_live_output_policy(tiny, tmp_path, capsys):
    """Cases 5 and 6 and the weak --output cases: a user's file, the source itself, a folder
    and a non-video name are refused before any frame is processed; our own file is
    replaced."""
    src = clip(tmp_path / "src.mp4", frames=4)
    base = ["live", "--source", src, "--weights", tiny["path"], "--no-window"]
    user = tmp_path / "user.mp4"
    user.write_bytes(open(src, "rb").read())
    source_bytes = open(src, "rb").read()
    cases = [(str(user), "user.mp4"), (src, "is an input of this run"),
             (str(tmp_path), "is a folder"), (str(tmp_path / "x.png"), ".mp4"),
             (str(tmp_path / "noext"), "no extension")]
    for output, message in cases:
        assert cli.main(base + ["--output", output]) == 1, output
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert open(src, "rb").read() == source_bytes and user.read_bytes() == source_bytes
    assert "--overwrite" in (cli.main(base + ["--output", str(user)]) and
                             capsys.readouterr().err)
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "noext").exists()
    ours = tmp_path / "ours.mp4"
    for _ in range(2):  # the second run replaces the first run's (tagged) file
        assert cli.main(base + ["--output", str(ours), "--speed", "8"]) == 0
    capsys.readouterr()
    # --overwrite replaces the user's file, never the source
    assert cli.main(base + ["--output", str(user), "--overwrite", "--speed", "8"]) == 0
    assert cli.main(base + ["--output", src, "--overwrite"]) == 1
    assert open(src, "rb").read() == source_bytes


# -- flags (weak cases) ------------------------------------------------------------------------

@pytest.mark.parametrize("flags, message", [
    (["--max-frames", "0"], "--max-frames"), (["--max-frames", "-1"], "--max-frames"),
    (["--speed", "0"], "--speed"), (["--speed", "-2"], "--speed"), (["--speed", "nan"], "--speed"),
    (["--stall-timeout", "-1"], "--stall-timeout"), (["--smoothing", "-0.5"], "--smoothing"),
    (["--smoothing", "1.5"], "--smoothing")])
def test_live_flags_are_checked_before_any_work(tiny, tmp_path, capsys, flags, message):
    src = clip(tmp_path / "s.mp4", frames=3)
    out = tmp_path / "o.mp4"
    rc = cli.main(["live", "--source", src, "--weights", tiny["path"], "--no-window",
                   "--output", str(out), *flags])
    err = capsys.readouterr().err
    assert rc == 1 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_predict_smoothing_strength_is_checked(tiny, tmp_path, capsys):
    rc = cli.main(["predict", "--weights", tiny["path"], "--smoothing", "-0.5", "--output-dir",
                   str(tmp_path / "o"), clip(tmp_path / "s.mp4", frames=2)])
    assert rc == 1 and "--smoothing" in capsys.readouterr().err


def test_live_max_frames_stops_after_that_many(tiny, tmp_path, capsys):
    from deeplab_keras.video import VideoReader
    src = clip(tmp_path / "s.mp4", frames=12)
    out = tmp_path / "o.mp4"
    assert cli.main(["live", "--source", src, "--weights", tiny["path"], "--no-window",
                     "--output", str(out), "--max-frames", "2"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip().splitlines()[-1].startswith("live: 2 frames processed")
    made = VideoReader(str(out))
    assert made.frames == 2
    made.close()


# -- live streams that stall (weak cases) ------------------------------------------------------

class _Stalling:
    """A reader that delivers ``n`` frames, then nothing until closed."""

    def __init__(self, n):
        self.n, self.fps, self.path, self.size = n, 1000.0, "fake://cam", (4, 4)
        self.closed = threading.Event()

    def __iter__(self):
        for i in range(self.n):
            yield np.full((4, 4, 3), i, np.uint8)
        self.closed.wait()

    def close(self):
        self.closed.set()


def test_stall_closes_the_reader_at_once():
    from deeplab_keras.video.live import LiveFrames, StreamStalled
    reader = _Stalling(2)
    frames = LiveFrames(reader, live=True, stall_timeout=0.3)
    with pytest.raises(StreamStalled, match="the stream stopped"):
        for _ in frames:
            pass
    assert reader.closed.is_set()  # not left running after the stall
    frames._thread.join(timeout=60)
    assert not frames._thread.is_alive()


def test_stream_that_never_answers_honours_the_stall_timeout(tmp_path, capfd):
    """Before the first frame too: a source that sends no header ends after the timeout (a
    FIFO nobody writes to, bounded generously), with one line and ffmpeg stopped."""
    from deeplab_keras.video.live import open_live
    fifo = tmp_path / "cam.fifo"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # keeps the FIFO open, sends nothing
    try:
        result = {}

        def attempt():
            try:
                open_live(f"file://{fifo}", timeout=0.5)
            except ValueError as err:
                result["err"] = str(err)
        t = threading.Thread(target=attempt, daemon=True)
        t.start()
        t.join(timeout=120)
        assert not t.is_alive(), "open_live waited past its timeout"
        assert "no answer in 0.5 s" in result["err"]
        assert "We had to kill ffmpeg" not in capfd.readouterr().err
    finally:
        os.close(writer)


def test_live_stall_mid_stream_keeps_the_frames_processed(tiny, tmp_path, capsys, monkeypatch):
    """After a mid-stream stall the frames already processed are written, the progress line
    is ended and the stall is named (exit 1)."""
    from deeplab_keras.video import VideoReader
    from deeplab_keras.video import live as live_module
    stalling = _Stalling(3)

    def frames():
        for i in range(3):
            yield np.full((48, 64, 3), 40 * i, np.uint8)
        stalling.closed.wait()
    monkeypatch.setattr(live_module, "open_live", lambda source, timeout=None: (
        type("R", (), {"__iter__": lambda self: frames(), "close": stalling.close,
                       "fps": 10.0, "path": "fake://cam", "size": (48, 64)})(), True))
    out = tmp_path / "kept.mp4"
    rc = cli.main(["live", "--source", "rtsp://example.invalid/cam", "--weights", tiny["path"],
                   "--no-window", "--output", str(out), "--stall-timeout", "1"])
    captured = capsys.readouterr()
    assert rc == 1 and "the stream stopped" in captured.err
    assert re.search(r"\rlive: .* dropped\ndeeplab-keras live: ", captured.err)  # line ended
    kept = re.search(r"(\d+) frames were processed and written to", captured.err)
    made = VideoReader(str(out))
    assert kept and made.frames == int(kept.group(1)) >= 1  # the newest frames, none lost
    made.close()
    assert stalling.closed.is_set()


# -- the same policy for the other writers found (demo pictures, benchmark --json) ------------

def test_demo_and_benchmark_never_replace_a_users_file(tmp_path, capsys):
    from PIL import Image
    user = tmp_path / "demo_road.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(user)
    before = user.read_bytes()
    assert cli.main(["demo", "--output-dir", str(tmp_path), "--no-export"]) == 1
    err = capsys.readouterr().err
    assert "demo_road.png" in err and "--overwrite" in err and user.read_bytes() == before
    model = tmp_path / "m.onnx"
    model.write_bytes(b"a model")
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": 1}\n')
    for target, message in ((notes, "--overwrite"), (model, "is an input of this run")):
        assert cli.main(["benchmark", str(model), "--json", str(target)]) == 1
        assert message in capsys.readouterr().err
    assert notes.read_text() == '{"mine": 1}\n' and model.read_bytes() == b"a model"


def test_export_never_writes_onto_its_own_model_file(tiny, tmp_path, capsys):
    import shutil
    model = tmp_path / "m.keras"
    shutil.copy(tiny["path"], model)
    before = model.read_bytes()
    rc = cli.main(["export", "--weights", str(model), "--format", "saved_model", "--input-size",
                   "33", "--output", str(model), "--overwrite"])
    err = capsys.readouterr().err
    assert rc == 1 and "is an input of this run" in err and model.read_bytes() == before
