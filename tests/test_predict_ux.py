"""Issue 12(c, d): predict for real use (progress, palette class maps, labels.json, legends,
background blending, side by side) and the API conveniences (dk.segment, dk.overlay,
model.labels, a clear error for one image passed to model.predict, from_preset(weights=PATH))."""
import json
import os

import numpy as np
import pytest
from PIL import Image

import deeplab_keras as dk
from deeplab_keras import cli, inference

from tests.conftest import module_tiny
from tests.factories import LABELS, PALETTE


@pytest.fixture(scope="module")
def tiny(tiny_keras, tmp_path_factory):
    made = module_tiny(tiny_keras, tmp_path_factory, "tiny")
    model, path, tmp = made["model"], made["path"], made["tmp"]
    rng = np.random.default_rng(0)
    images = []
    for i, (h, w) in enumerate([(65, 65), (50, 70)]):
        images.append(str(tmp / f"img{i}.png"))
        Image.fromarray(rng.integers(0, 255, (h, w, 3), np.uint8)).save(images[-1])
    return {"model": model, "path": path, "images": images, "tmp": tmp}


# -- overlays --------------------------------------------------------------------------------

def test_background_is_not_darkened_and_other_classes_blend():
    image = np.full((20, 20, 3), 200, np.uint8)
    classes = np.zeros((20, 20), np.uint8)
    classes[:, 10:] = 1
    out = dk.overlay(image, classes, PALETTE, labels=LABELS)
    assert (out[:, :10] == 200).all()  # background: the photo as it is
    assert (out[:, 10:] == np.round(0.5 * 200 + 0.5 * np.array(PALETTE[1]))).all()
    assert inference.background_classes(["sky", "void"], [[0, 0, 0], [1, 2, 3]]) == [0, 1]
    # an explicit choice wins; the old call (image, classes, palette) still blends everything else
    dark = dk.overlay(image, classes, PALETTE, background=[])
    assert (dark[:, :10] == 100).all()


def test_overlay_legend_names_the_classes_present():
    image = np.full((240, 320, 3), 90, np.uint8)
    classes = np.zeros((240, 320), np.uint8)
    classes[120:] = 2
    plain = dk.overlay(image, classes, PALETTE, labels=LABELS)
    shown = dk.overlay(image, classes, PALETTE, labels=LABELS, legend=True)
    assert shown.shape == plain.shape
    corner = shown[:60, :160].reshape(-1, 3)
    assert (shown != plain).any() and (corner == PALETTE[2]).all(axis=1).any()  # car's swatch
    assert not (corner == PALETTE[1]).all(axis=1).any()  # road is not present: no swatch
    small = dk.overlay(image[:8, :8], classes[:8, :8], PALETTE, labels=LABELS, legend=True)
    assert (small == dk.overlay(image[:8, :8], classes[:8, :8], PALETTE, labels=LABELS)).all()
    with pytest.raises(ValueError, match="differ in size"):
        dk.overlay(image, classes[:10], PALETTE)


def test_class_maps_are_palette_pngs_holding_the_indices(tmp_path):
    classes = np.random.default_rng(1).integers(0, 3, (17, 23)).astype(np.uint8)
    path = inference.save_class_map(classes, str(tmp_path / "c.png"), PALETTE)
    with Image.open(path) as im:
        assert im.mode == "P" and im.getpalette()[:9] == sum(PALETTE, [])
        assert (np.asarray(im) == classes).all()
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp.png")]


# -- predict ----------------------------------------------------------------------------------

def test_predict_writes_palette_maps_labels_json_legend_side_by_side(tiny, capsys):
    out = tiny["tmp"] / "pred"
    assert cli.main(["predict", "--weights", tiny["path"], "--output-dir", str(out),
                     "--side-by-side"] + tiny["images"]) == 0
    text = capsys.readouterr().out
    assert "2/2" in text and "segmented 2/2 image(s)" in text and "images/s" in text
    labels = json.loads((out / "labels.json").read_text())
    assert [c["name"] for c in labels["classes"]] == LABELS
    assert [c["color"] for c in labels["classes"]] == PALETTE and labels["ignore_label"] == 255
    with Image.open(out / "img1_classes.png") as im:
        assert im.mode == "P" and im.size == (70, 50) and np.asarray(im).max() < 3
    with Image.open(out / "img1_side.png") as im:
        assert im.size[1] == 50 and im.size[0] > 2 * 70
    # the class maps are what dk.segment returns for the same file
    expected = dk.segment(tiny["model"], tiny["images"][1])
    assert (np.asarray(Image.open(out / "img1_classes.png")) == expected).all()


def test_predict_keeps_a_labels_json_it_did_not_write(tiny, capsys):
    out = tiny["tmp"] / "theirs"
    out.mkdir()
    (out / "labels.json").write_text('{"mine": true}')
    assert cli.main(["predict", "--weights", tiny["path"], "--output-dir", str(out),
                     "--no-progress", tiny["images"][0]]) == 1
    assert "was not written by deeplab-keras" in capsys.readouterr().err
    assert (out / "labels.json").read_text() == '{"mine": true}'
    assert not list(out.glob("*_classes.png"))


# -- API ----------------------------------------------------------------------------------------

def test_segment_takes_paths_pil_arrays_and_batches(tiny):
    model, path = tiny["model"], tiny["images"][1]
    expected = dk.segment(model, path)
    assert expected.shape == (50, 70) and expected.dtype == np.uint8
    array = np.asarray(Image.open(path))
    assert (dk.segment(model, Image.open(path)) == expected).all()
    assert (dk.segment(model, array) == expected).all()
    assert (dk.segment(model, array.astype(np.float32)) == expected).all()
    batch = dk.segment(model, np.stack([array, array]))
    assert len(batch) == 2 and all((b == expected).all() for b in batch)
    mixed = dk.segment(model, [path, tiny["images"][0]])
    assert [m.shape for m in mixed] == [(50, 70), (65, 65)]
    with pytest.raises(ValueError, match="0-1"):
        dk.segment(model, array / 255.0)
    with pytest.raises(ValueError, match=r"expected one image"):
        dk.segment(model, array[..., :2])


def test_model_labels_and_a_clear_error_for_one_image_in_predict(tiny):
    model = tiny["model"]
    assert model.labels == LABELS
    image = np.zeros((33, 33, 3), np.float32)
    with pytest.raises(ValueError, match=r"dk.segment\(model, image\)"):
        model.predict(image)
    assert model.predict(image[None], verbose=0).shape[:3] == (1, 33, 33)


def test_from_preset_weights_path_loads_that_file_or_raises(tmp_path):
    name = "deeplabv3plus_mobilenetv2_camvid"
    with pytest.raises(FileNotFoundError, match="no file"):
        dk.from_preset(name, weights=str(tmp_path / "missing.weights.h5"))
    with pytest.raises(TypeError, match="True, False or a file path"):
        dk.from_preset(name, weights=3)
    fresh = dk.from_preset(name, weights=False)
    values = [w + 0.25 for w in fresh.get_weights()]
    fresh.set_weights(values)
    path = str(tmp_path / "mine.weights.h5")
    fresh.save_weights(path)
    loaded = dk.from_preset(name, weights=path)
    assert all(np.allclose(a, b) for a, b in zip(loaded.get_weights(), values))
    assert loaded.labels[3] == "Road"
    other = dk.build_model("deeplabv3", num_classes=3, backbone="mobilenet_v2", alpha=0.35)
    bad = str(tmp_path / "other.weights.h5")
    other.save_weights(bad)
    with pytest.raises(ValueError, match="could not be loaded"):  # Keras' shape check
        dk.from_preset(name, weights=bad)


# -- video (extra 'video': imageio + imageio-ffmpeg) -------------------------------------------

def test_predict_video_writes_an_overlay_video_and_reports_fps(tiny, capsys):
    imageio = pytest.importorskip("imageio.v2", reason="the 'video' extra (imageio) is not installed")
    pytest.importorskip("imageio_ffmpeg", reason="the 'video' extra (imageio-ffmpeg) is not installed")
    video = str(tiny["tmp"] / "clip.mp4")
    rng = np.random.default_rng(3)
    with imageio.get_writer(video, format="FFMPEG", fps=10, codec="libx264") as writer:
        for _ in range(5):
            writer.append_data(rng.integers(0, 255, (48, 64, 3), np.uint8))
    bad = tiny["tmp"] / "broken.mp4"
    bad.write_bytes(b"not a video")
    out = tiny["tmp"] / "video_out"
    rc = cli.main(["predict", "--weights", tiny["path"], "--output-dir", str(out), video, str(bad)])
    captured = capsys.readouterr()
    assert rc == 1 and "broken.mp4" in captured.err and "1 input(s) failed" in captured.err
    assert "5 frames in" in captured.out and "frames/s; source 10 fps" in captured.out
    with imageio.get_reader(str(out / "clip_overlay.mp4"), format="FFMPEG") as reader:
        frames = [f for f in reader]
        assert reader.get_meta_data()["fps"] == 10
    assert len(frames) == 5 and frames[0].shape == (48, 64, 3)
    assert not [p for p in os.listdir(out) if ".tmp" in p]
