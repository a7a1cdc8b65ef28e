"""Issue 28, item 1: the default (class-map) export carries the logits at output stride as a
second output; VideoSegmenter smooths them (not one-hot votes) and upsamples once; files made
before (one output) still work; files whose second output is not what their metadata records
are refused in one line."""
import json
import warnings

import numpy as np
import pytest

import deeplab_keras as dk
from deeplab_keras.inference import open_segmenter
from tests.factories import EXPORT_LABELS, EXPORT_SIZE

LOW = (EXPORT_SIZE - 1) // 16 + 1  # 65 at output stride 16 -> 5


@pytest.fixture(scope="module")
def files(export_tiny, tmp_path_factory):
    """The tiny model exported with the defaults (float32 and int8), and the same class map as
    files were written before the second output: one output, no ``video_output`` metadata."""
    from deeplab_keras.export.api import export_model
    tmp = tmp_path_factory.mktemp("smoothing")
    out = {"float": str(tmp / "tiny.tflite"), "int8": str(tmp / "tiny_int8.tflite"),
           "old": str(tmp / "tiny_old.tflite")}
    export_model(export_tiny, out["float"], "tflite", input_size=EXPORT_SIZE,
                 labels=EXPORT_LABELS, num_parity=1)
    export_model(export_tiny, out["int8"], "tflite", "int8", input_size=EXPORT_SIZE,
                 labels=EXPORT_LABELS, num_parity=1, num_calibration=2)
    _old_style(export_tiny, out["old"])
    out["tmp"] = tmp
    return out


def _old_style(model, path):
    """A class-map .tflite as exports wrote it before: the argmax as its only output."""
    import tensorflow as tf

    from deeplab_keras.export import convert, graph
    core = graph.logits_model(model)

    @tf.function(input_signature=[tf.TensorSpec([1, EXPORT_SIZE, EXPORT_SIZE, 3], tf.float32)])
    def serve(image):
        y = tf.argmax(core(image, training=False), axis=-1, output_type=tf.int32)
        return {"classes": tf.identity(y, name="classes")}

    serve.output_mode = "classes"
    convert.to_tflite(serve, path, metadata={"labels": EXPORT_LABELS, "output": "classes"})


def _with_metadata(src, dst, change):
    """A copy of ``src`` whose deeplab_keras metadata is ``change(metadata)``."""
    from tensorflow.lite.tools import flatbuffer_utils

    from deeplab_keras.inference.runtime import METADATA_NAME
    model = flatbuffer_utils.read_model(src)
    entry = next(e for e in model.metadata if e.name.decode() == METADATA_NAME)
    meta = change(json.loads(bytes(model.buffers[entry.buffer].data).decode()))
    model.buffers[entry.buffer].data = list(json.dumps(meta).encode())
    flatbuffer_utils.write_model(model, str(dst))
    return str(dst)


def _image(seed=0, size=(EXPORT_SIZE, EXPORT_SIZE)):
    return np.random.default_rng(seed).integers(0, 256, size + (3,), np.uint8)


def test_default_export_adds_lowres_logits_and_keeps_the_class_map_first(files, export_tiny):
    from deeplab_keras.export import graph
    from deeplab_keras.inference.runtime import Artifact, read_metadata
    from deeplab_keras.video.smoothing import upsampled_argmax
    image = _image()
    for kind in ("float", "int8"):
        art = Artifact(files[kind])
        assert art.output_names == ("classes", "lowres_logits")
        assert art.output_shape == (1, EXPORT_SIZE, EXPORT_SIZE)
        classes = art(image)[0]
        low = art.run_raw(image, output=1)[0]
        assert low.shape == (1, LOW, LOW, 5) and low.dtype == np.float32
        meta = read_metadata(files[kind])
        assert meta["output"] == "classes" and meta["video_output"] == {
            "name": "lowres_logits", "shape": [1, LOW, LOW, 5], "resize": "half_pixel"}
        # every consumer still gets the class map: dk.segment, the segmenter layer
        assert (dk.segment(files[kind], image) == classes).all()
        seg = open_segmenter(files[kind])
        assert seg.output == "classes" and seg.num_classes == 5 and seg.labels == EXPORT_LABELS
        assert seg.video_output == {"index": 1, "size": (LOW, LOW), "resize": "half_pixel",
                                    "classes": 5}
        assert (seg.lowres_scores(image) == low[0]).all()
        # the class map is the upsampled argmax of these logits (up to near ties)
        again = upsampled_argmax(low[0], (EXPORT_SIZE, EXPORT_SIZE), "half_pixel")
        assert (again == classes).mean() > 0.97
    # float: the logits are the Keras model's before its final upsampling
    import keras
    low_model = graph.logits_model(export_tiny, low_resolution=True)
    low_model = keras.Model(low_model.inputs[0], low_model.outputs[0])  # one input, no warning
    want = low_model(image[None].astype("float32"))
    got = Artifact(files["float"]).run_raw(image, output=1)[0]
    np.testing.assert_allclose(got, np.asarray(want), atol=1e-3)
    with pytest.raises(ValueError, match=r"has 2 output\(s\), no output 2"):
        Artifact(files["float"]).run_raw(image, output=2)


def test_smoothing_uses_the_lowres_scores_not_votes(files, monkeypatch):
    from deeplab_keras.video import TemporalSmoother
    from deeplab_keras.video.smoothing import upsampled_argmax, _softmax
    seg = dk.VideoSegmenter(files["int8"], smoothing=True)
    assert seg.evidence == "lowres scores" and f"on {LOW}x{LOW} scores" in seg.describe()
    calls = []
    real = seg.source.lowres_scores
    monkeypatch.setattr(seg.source, "lowres_scores", lambda f: calls.append(1) or real(f))
    monkeypatch.setattr(seg.source, "raw_classes", lambda f: pytest.fail("voted on classes"))
    frames = [_image(k) for k in range(3)]
    for frame in frames:
        out = seg.segment(frame)
        assert out.shape == frame.shape[:2] and out.dtype == np.uint8 and out.max() < 5
    assert len(calls) == 3
    # no averaging, no hysteresis: the argmax of the upsampled probabilities of this frame
    plain = dk.VideoSegmenter(files["int8"], smoothing=TemporalSmoother(0.0, None, 0.0))
    frame = frames[0]
    want = upsampled_argmax(_softmax(real(frame)), frame.shape[:2], "half_pixel")
    assert (plain.segment(frame) == want).all()
    # another frame size: the class map at the frame's size (nearest from the run size)
    assert seg.segment(_image(5, (40, 90))).shape == (40, 90) and seg.resets == 1


def test_a_file_exported_before_still_works_and_says_to_reexport(files):
    image = _image()
    new = dk.VideoSegmenter(files["float"])
    old = dk.VideoSegmenter(files["old"])
    assert old.source.video_output is None and old.source.num_classes == 5
    assert (old.segment(image) == new.segment(image)).all()
    with pytest.warns(UserWarning, match=r"no low-resolution scores .* re-export it"):
        smooth = dk.VideoSegmenter(files["old"], smoothing=True)
    assert smooth.evidence == "votes" and "re-export" in smooth.describe()
    assert smooth.segment(image).shape == image.shape[:2]
    with pytest.raises(ValueError, match="no low-resolution scores .* re-export it"):
        old.source.lowres_scores(image)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a default export smooths without a warning
        dk.VideoSegmenter(files["float"], smoothing=True)


@pytest.mark.parametrize("change, message", [
    (lambda m: dict(m, video_output=dict(m["video_output"], name="probs")),
     r"records a low-resolution output 'probs' but the file's outputs are \['classes', "
     r"'lowres_logits'\]; re-export it"),
    (lambda m: dict(m, video_output=dict(m["video_output"], shape=[1, 9, 9, 5])),
     r"low-resolution output 'lowres_logits' is \[1, 5, 5, 5\], not the \[1, h, w, C\] logits "
     r"its metadata records \(\[1, 9, 9, 5\]\).*; re-export it"),
    (lambda m: dict(m, video_output=dict(m["video_output"], resize="cubic")),
     r"low-resolution output resize 'cubic', not one of"),
    (lambda m: dict(m, video_output="lowres_logits"),
     r"records a low-resolution output None"),
    (lambda m: dict(m, video_output=dict(m["video_output"], name="classes")),
     r"low-resolution output 'classes' is \[1, 65, 65\], not the \[1, h, w, C\] logits"),
])
def test_a_second_output_unlike_its_metadata_is_refused_in_one_line(files, change, message):
    path = _with_metadata(files["float"], files["tmp"] / "bad.tflite", change)
    for opener in (dk.VideoSegmenter, open_segmenter):
        with pytest.raises(ValueError, match=message) as err:
            opener(path)
        assert "\n" not in str(err.value)


def test_metadata_naming_an_output_an_old_file_lacks_is_refused(files):
    def claim(meta):
        meta["video_output"] = {"name": "lowres_logits", "shape": [1, LOW, LOW, 5],
                                "resize": "half_pixel"}
        return meta
    path = _with_metadata(files["old"], files["tmp"] / "claims.tflite", claim)
    with pytest.raises(ValueError, match=r"outputs are \['classes'\]; re-export it"):
        dk.VideoSegmenter(path, smoothing=True)


def test_saved_model_and_onnx_class_maps_come_first(export_tiny, tmp_path):
    from deeplab_keras.export.api import export_model
    from deeplab_keras.inference.runtime import Artifact
    image = _image()
    want = dk.segment(export_tiny, image, input_size=(EXPORT_SIZE, EXPORT_SIZE))
    for fmt, name in (("saved_model", "sm"), ("onnx", "m.onnx")):
        pytest.importorskip("tf2onnx") if fmt == "onnx" else None
        path = str(tmp_path / name)
        export_model(export_tiny, path, fmt, input_size=EXPORT_SIZE, num_parity=1)
        art = Artifact(path)
        assert art.output_names == ("classes", "lowres_logits"), fmt
        seg = open_segmenter(path)
        assert seg.video_output["size"] == (LOW, LOW)
        assert (seg.segment(image) == want).mean() > 0.99


@pytest.mark.parametrize("semantics", ["half_pixel", "align_corners", "asymmetric"])
def test_upsampled_argmax_equals_resize_then_argmax(semantics):
    from deeplab_keras.layers.resize import resize
    from deeplab_keras.video import TemporalSmoother
    from deeplab_keras.video.smoothing import upsampled_argmax
    rng = np.random.default_rng(0)
    for shape, size in (((6, 8, 4), (23, 31)), ((5, 7, 3), (17, 29)), ((9, 9, 4), (9, 9)),
                        ((9, 12, 3), (4, 5)), ((1, 5, 3), (4, 9))):
        # a smooth field (few class changes per cell, as real scores) and pure noise
        for e in (np.asarray(resize(rng.random((3, 3, shape[2])).astype(np.float32),
                                    shape[:2], "half_pixel")),
                  rng.random(shape).astype(np.float32)):
            want = np.asarray(resize(e, size, semantics)).argmax(-1)
            got = upsampled_argmax(e, size, semantics)
            assert got.shape == size and got.dtype == np.uint8 and (got == want).all()
    # the hysteresis at the shown size equals hysteresis on the fully resized evidence
    low, full = TemporalSmoother(0.0, None, 0.2), TemporalSmoother(0.0, None, 0.2)
    for _ in range(4):
        e = np.asarray(resize(rng.random((6, 8, 4)).astype(np.float32), (23, 31), "half_pixel"))
        want = full.with_hysteresis(np.asarray(resize(e, (90, 120), semantics))).argmax(-1)
        assert (low.classes(e, (90, 120), semantics) == want).all()
