"""Issue 28 item 6: the Keras preset path says which size it runs at (VideoSegmenter.describe(),
live's first line) and ``live --input-size`` picks another (e.g. 360x480, the fast one)."""
import re

import numpy as np
import pytest

import deeplab_keras as dk
from deeplab_keras import cli

from tests.conftest import module_tiny

ff = pytest.importorskip("imageio_ffmpeg", reason="the 'video' extra (imageio-ffmpeg) is not "
                         "installed")


@pytest.fixture(scope="module")
def tiny(tiny_keras, tmp_path_factory):
    return module_tiny(tiny_keras, tmp_path_factory, "size")


def test_video_segmenter_names_the_preset_size_and_takes_another():
    default = dk.VideoSegmenter("deeplabv3plus_mobilenetv2_camvid")
    assert "(at 536x720)" in default.describe() and default.input_size == (536, 720)
    fast = dk.VideoSegmenter("deeplabv3plus_mobilenetv2_camvid", input_size=(360, 480))
    assert "(at 360x480)" in fast.describe() and fast.input_size == (360, 480)
    frame = np.zeros((90, 120, 3), np.uint8)
    assert fast.segment(frame).shape == (90, 120)  # the class map at the frame's size


def test_live_prints_its_run_size_first_and_takes_input_size(tiny, capsys):
    import subprocess
    from deeplab_keras.video import VideoReader
    video = str(tiny["tmp"] / "clip.mp4")
    subprocess.run([ff.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc=size=64x48:rate=10", "-frames:v", "6", "-pix_fmt", "yuv420p",
                    "-c:v", "libx264", video], check=True)
    base = ["live", "--source", video, "--weights", tiny["path"], "--no-window", "--speed", "4"]
    out = tiny["tmp"] / "o.mp4"
    assert cli.main(base + ["--input-size", "32x40", "--output", str(out)]) == 0
    err, stdout = capsys.readouterr()[::-1]
    first = err.lstrip().splitlines()[0]
    assert first.startswith("live: Keras model") and "(at 32x40)" in first, err
    summary = [ln for ln in stdout.splitlines() if ln.startswith("live: ")][-1]
    assert re.search(r"\d+ frames processed in .*\(at 32x40\)", summary), summary
    made = VideoReader(str(out))
    assert made.size == (48, 64)  # the output stays at the source's size
    made.close()
    # without --input-size: the model's own contract (this tiny model has none: each frame's size)
    assert cli.main(base + ["--output", str(tiny["tmp"] / "d.mp4")]) == 0
    assert "(at each image's size)" in capsys.readouterr().err.lstrip().splitlines()[0]
    assert cli.main(base + ["--input-size", "0", "--output", str(tiny["tmp"] / "bad.mp4")]) == 1
    assert "--input-size" in capsys.readouterr().err
    assert not (tiny["tmp"] / "bad.mp4").exists()
