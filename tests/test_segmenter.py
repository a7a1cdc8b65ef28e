"""The segmenter layer (deeplab_keras/inference/source.py): every path that runs a model
(dk.segment, VideoSegmenter, predict, evaluate) opens it through one layer, so a file one path
refuses is refused by all, and one file gives one class map, pixel for pixel."""
import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import deeplab_keras as dk
from deeplab_keras import cli
from tests.conftest import module_tiny
from tests.factories import LABELS

SIZE = (33, 41)  # odd sizes: resizes in and out are not identities


@pytest.fixture(scope="module")
def tiny(tiny_keras, tmp_path_factory):
    return module_tiny(tiny_keras, tmp_path_factory, "segmenter")


@pytest.fixture(scope="module")
def tflite(tiny_int8_logits):
    """The tiny model exported int8 with logits (scores at the input size, SIZE) behind the gate."""
    return tiny_int8_logits


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    """A classifier .tflite (conv, pooling, dense 5): not a segmentation model."""
    import keras
    import tensorflow as tf
    keras.utils.set_random_seed(0)
    x = inputs = keras.Input((16, 16, 3), batch_size=1)
    x = keras.layers.Conv2D(4, 3)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(5)(x))
    path = tmp_path_factory.mktemp("cls") / "classifier.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return str(path)


def _onnx(path, layout="NHWC", dynamic=True, five_d=False):
    """A two-class ONNX 'segmenter' written with onnx.helper: class 0 scores the red channel,
    class 1 the green one (a red pixel is class 0, a green one class 1). ``layout`` NHWC or
    NCHW input and output; ``dynamic``: height and width (and batch) are symbols."""
    import onnx
    from onnx import TensorProto, helper

    h, w = ("H", "W") if dynamic else (8, 8)
    n = "N" if dynamic else 1
    weight = np.zeros((2, 3, 1, 1), np.float32)
    weight[0, 0] = weight[1, 1] = 1.0
    nodes, inits = [], [helper.make_tensor("w", TensorProto.FLOAT, weight.shape, weight.ravel())]
    if layout == "NHWC":
        shape_in, shape_out = [n, h, w, 3], [n, h, w, 2]
        nodes += [helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 3, 1, 2]),
                  helper.make_node("Conv", ["xt", "w"], ["yt"]),
                  helper.make_node("Transpose", ["yt"], ["y"], perm=[0, 2, 3, 1])]
    else:
        shape_in, shape_out = [n, 3, h, w], [n, 2, h, w]
        nodes += [helper.make_node("Conv", ["x", "w"], ["y"])]
    out = "y"
    if five_d:
        inits.append(helper.make_tensor("axes", TensorProto.INT64, [1], [1]))
        nodes.append(helper.make_node("Unsqueeze", ["y", "axes"], ["y5"]))
        out, shape_out = "y5", [shape_out[0], 1] + shape_out[1:]
    graph = helper.make_graph(nodes, "seg", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape_in)],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, shape_out)],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return str(path)


def _red_green(h=30, w=44):
    frame = np.zeros((h, w, 3), np.uint8)
    frame[:, : w // 2, 0] = 200  # left half red
    frame[:, w // 2:, 1] = 200   # right half green
    return frame


def _frame(seed=0, size=(40, 52)):
    return np.random.default_rng(seed).integers(0, 256, size + (3,)).astype(np.uint8)


def _one_error_line(capsys):
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    return err[0]


# -- one answer for one file -----------------------------------------------------------------

def test_segment_video_predict_and_evaluate_agree_on_a_tflite(tflite, tiny, tmp_path):
    from PIL import Image

    from deeplab_keras import data
    from deeplab_keras.evaluation import evaluate
    image = _frame(1)
    want = dk.segment(tflite, image)
    assert want.shape == image.shape[:2] and want.dtype == np.uint8
    assert (dk.VideoSegmenter(tflite).segment(image) == want).all()
    Image.fromarray(image).save(tmp_path / "img.png")
    assert cli.main(["predict", "--artifact", tflite, "--no-progress", "--output-dir",
                     str(tmp_path / "out"), str(tmp_path / "img.png")]) == 0
    assert (np.asarray(Image.open(tmp_path / "out" / "img_classes.png")) == want).all()
    # evaluate(file) == evaluate --artifact, on the same pairs
    root = tmp_path / "ds"
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
    for i in range(2):
        Image.fromarray(_frame(10 + i)).save(root / "images" / f"{i}.png")
        Image.fromarray((np.arange(40 * 52).reshape(40, 52) % 3).astype(np.uint8)).save(
            root / "masks" / f"{i}.png")
    pairs = data.list_pairs("folder", str(root), "val")
    api = evaluate(tflite, pairs, dataset=data.custom_info(3, 255))
    assert api["artifact"]["output_mode"] == "logits"
    assert cli.main(["evaluate", "--artifact", tflite, "--dataset", "folder", "--num-classes", "3",
                     "--data-root", str(root), "--no-progress",
                     "--output-json", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["miou"] == api["miou"]


def test_one_segmenter_may_be_shared_by_threads(tflite):
    """LiteRT's interpreter is not re-entrant: the artifact takes turns, every answer right."""
    seg = dk.inference.open_segmenter(tflite, num_threads=1)
    frames = [_frame(s) for s in range(6)]
    want = [seg.segment(f) for f in frames]
    got, errors = {}, []

    def work(k):
        try:
            for _ in range(3):
                for i, f in enumerate(frames):
                    got[(k, i)] = seg.segment(f)
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert all((got[(k, i)] == want[i]).all() for k in range(3) for i in range(len(frames)))


# -- what is not a segmenter is refused by every path ----------------------------------------

def test_a_classifier_is_refused_everywhere(classifier, tmp_path, capsys):
    from PIL import Image

    from deeplab_keras.evaluation import evaluate
    image = _frame()
    for run in (lambda: dk.segment(classifier, image), lambda: dk.VideoSegmenter(classifier),
                lambda: evaluate(classifier, [(image, np.zeros((40, 52), np.uint8))],
                                 num_classes=5)):
        with pytest.raises(ValueError, match="not a segmentation model") as info:
            run()
        assert classifier in str(info.value)
    Image.fromarray(image).save(tmp_path / "img.png")
    assert cli.main(["predict", "--artifact", classifier, "--num-classes", "5", "--no-progress",
                     "--output-dir", str(tmp_path / "out"), str(tmp_path / "img.png")]) == 1
    line = _one_error_line(capsys)
    assert "not a segmentation model" in line and classifier in line
    assert not (tmp_path / "out" / "img_classes.png").exists()


def test_a_dynamic_shape_onnx_runs_at_the_frames_size(tmp_path):
    path = _onnx(tmp_path / "dyn.onnx")
    frame = _red_green()
    seg = dk.VideoSegmenter(path)
    assert seg.input_size is None  # runs at each frame's size, not at 1x1
    out = seg.segment(frame)
    assert (out[:, :22] == 0).all() and (out[:, 22:] == 1).all()
    assert (dk.segment(path, frame) == out).all()
    other = _red_green(17, 20)  # another size: the file is run at that one
    assert (dk.segment(path, other)[:, 10:] == 1).all()


def test_an_nchw_onnx_segmenter_runs(tmp_path):
    for dynamic in (True, False):
        path = _onnx(tmp_path / f"nchw{dynamic}.onnx", layout="NCHW", dynamic=dynamic)
        frame = _red_green(8, 8) if not dynamic else _red_green()
        out = dk.segment(path, frame)
        half = frame.shape[1] // 2
        assert (out[:, :half] == 0).all() and (out[:, half:] == 1).all()


def test_a_five_d_output_is_named_with_the_file(tmp_path):
    path = _onnx(tmp_path / "five.onnx", dynamic=False, five_d=True)
    with pytest.raises(ValueError, match=r"five\.onnx: output shape \[1, 1, 8, 8, 2\] is not a "
                                         "segmentation map"):
        dk.segment(path, _red_green(8, 8))


# -- settings that do not apply, or cannot fit, are refused up front -------------------------

def test_settings_are_checked_before_any_work(tiny, tflite, tmp_path, capsys):
    model = tiny["model"]
    with pytest.raises(ValueError, match="list of class names, got the string"):
        dk.VideoSegmenter(tflite, labels="abcdefghijk")
    with pytest.raises(ValueError, match="list of class names, got the string"):
        dk.VideoSegmenter(model, labels="abc")
    with pytest.raises(ValueError, match=r"input_size must be \(height, width\)"):
        dk.VideoSegmenter(model, input_size="abc")
    with pytest.raises(ValueError, match=r"100000x100000 would need about .* GB of memory"):
        dk.VideoSegmenter(model, input_size=(100000, 100000))
    with pytest.raises(ValueError, match="num_threads / --threads sets the runtime threads"):
        dk.VideoSegmenter(model, num_threads=2)
    with pytest.raises(ValueError, match="smoothing must be"):
        dk.VideoSegmenter(model, smoothing="yes")
    with pytest.raises(ValueError, match="empty image"):
        dk.segment(model, np.zeros((0, 480, 3), np.uint8))
    with pytest.raises(ValueError, match="empty image"):
        dk.VideoSegmenter(tflite).segment(np.zeros((10, 0, 3), np.uint8))
    with pytest.raises(ValueError, match="--scales/--flip need a Keras model"):
        dk.segment(tflite, _frame(), scales=(1.0, 1.5))
    from PIL import Image
    Image.fromarray(_frame()).save(tmp_path / "img.png")
    base = ["predict", "--weights", tiny["path"], "--no-progress", "--output-dir",
            str(tmp_path / "out"), str(tmp_path / "img.png")]
    for extra, words in ((["--scales", "1", "8", "--input-size", "1200", "1200"],
                          "scale 8 of 1200x1200 runs at 9600x9600 would need about"),
                         (["--scales", "100"], "scales must be between 0.1 and 8"),
                         (["--input-size", "100000", "100000"], "GB of memory"),
                         (["--scales", "0.001"], "scales must be between 0.1 and 8"),
                         (["--threads", "2"], "--threads sets the runtime threads")):
        assert cli.main(base[:1] + extra + base[1:]) == 1, extra
        assert words in _one_error_line(capsys), extra
    assert not (tmp_path / "out").exists()  # refused before anything was written


_MEMORY = r"""
import resource, sys
import numpy as np
from PIL import Image
from deeplab_keras import cli
peaks = []
for name in ("small.png", "big.jpg"):
    assert cli.main(["predict", "--weights", sys.argv[1], "--input-size", "360", "480",
                     "--no-progress", "--output-dir", "out_" + name[:-4], name]) == 0
    peaks.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print("PEAKS", peaks[0], peaks[1])
"""


def test_a_24_megapixel_photo_costs_under_700_mb_more(tiny, tmp_path):
    """predict on a 6000x4000 photo after a 480x360 one, in one process: the peak grows by less
    than 700 MB (it was 941 MB: a float copy of the photo, 8-byte indices in the overlay)."""
    from PIL import Image
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (360, 480, 3)).astype(np.uint8)).save(tmp_path / "small.png")
    blocks = rng.integers(0, 256, (400, 600, 3)).astype(np.uint8)
    Image.fromarray(np.kron(blocks, np.ones((10, 10, 1), np.uint8))).save(tmp_path / "big.jpg")
    proc = subprocess.run([sys.executable, "-c", _MEMORY, tiny["path"]], cwd=tmp_path,
                          capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert proc.returncode == 0, proc.stderr[-2000:]
    small, big = (float(v) for v in proc.stdout.split("PEAKS")[1].split())
    assert big - small < 700, (small, big)


def test_running_a_tflite_prints_no_xnnpack_notice(tflite):
    """LiteRT logs 'INFO: Created TensorFlow Lite XNNPACK delegate' once per process: a fresh
    process shows whether `predict --artifact` (the segmenter layer) lets it through."""
    code = ("import numpy as np, deeplab_keras as dk, sys; "
            "print(dk.segment(sys.argv[1], np.zeros((20, 30, 3), np.uint8)).shape)")
    proc = subprocess.run([sys.executable, "-c", code, tflite], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "(20, 30)" in proc.stdout
    assert "XNNPACK" not in proc.stderr, proc.stderr
