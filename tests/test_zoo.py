"""Preset catalogue, from_preset / weights=<preset> through a local mirror, CLI zoo/predict."""
import glob
import hashlib
import json
import os
import re

import numpy as np
import pytest
from PIL import Image

import deeplab_keras as dk
from deeplab_keras import download
from deeplab_keras.hub import zoo
from deeplab_keras.cli import main
from tests.conftest import REFERENCE, need
from tests.factories import ZOO_TINY
from tests.loopback import Server

REQUIRED = ["deeplabv3_mobilenetv2_voc", "deeplabv3_mobilenetv2_dm05_voc",
            "deeplabv3plus_xception65_voc", "deeplabv3plus_xception65_cityscapes",
            "deeplabv3_mobilenetv2_cityscapes", "mobilenetv2_imagenet", "resnet50_imagenet",
            "resnet101_imagenet", "vgg16_imagenet", "xception65_imagenet"]
FORMATS = {"tflite", "tf1_checkpoint_tar", "keras_weights_h5", "keras_applications_h5"}
TINY = ZOO_TINY  # the tiny preset's config (the tiny_zoo fixture, tests/conftest.py)


def test_catalogue_is_complete_and_consistent():
    names = dk.list_presets()
    assert set(REQUIRED) <= set(names)
    for name in names:
        p = dk.get_preset(name)
        assert p["name"] == name and p["architecture"] in dk.BUILDERS
        classes = p["config"].get("num_classes")
        if p.get("backbone_only"):
            assert classes is None
        else:
            assert len(p["labels"]) == len(p["palette"]) == classes, name
            assert all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in p["palette"])
        assert p["weights"] and sum(bool(w.get("default")) for w in p["weights"]) == 1, name
        for w in p["weights"]:
            assert w["format"] in FORMATS and (w["url"] or w["path"]) and w["file"]
            assert w["sha256"] is None or re.fullmatch(r"[0-9a-f]{64}", w["sha256"])
    voc = dk.get_preset("deeplabv3_mobilenetv2_voc")
    assert voc["labels"][15] == "person" and voc["palette"][15] == [192, 128, 128]
    assert voc["weights"][0]["sha256"].startswith("350af47f")


def test_unknown_preset_lists_presets():
    with pytest.raises(ValueError, match="deeplabv3_mobilenetv2_voc"):
        dk.get_preset("deeplabv9")
    with pytest.raises(ValueError, match="Available presets"):
        dk.from_preset("nope")
    with pytest.raises(ValueError, match="neither an existing file nor a known preset"):
        dk.DeepLabV3(num_classes=3, backbone="mobilenet_v2", alpha=0.35, weights="nope")


# tiny_zoo: tests/conftest.py (test_faults_misc uses it too)


def test_from_preset_through_mirror(tiny_zoo):
    x = np.random.default_rng(0).uniform(0, 255, (1, 33, 33, 3)).astype("float32")
    model = dk.from_preset("tiny", input_shape=(33, 33, 3), progress=False)
    np.testing.assert_allclose(model.predict(x, verbose=0),
                               tiny_zoo["source"].predict(x, verbose=0), atol=1e-5)
    builder = dk.DeepLabV3(input_shape=(33, 33, 3), weights="tiny", **TINY)
    np.testing.assert_allclose(builder.predict(x, verbose=0),
                               tiny_zoo["source"].predict(x, verbose=0), atol=1e-5)
    assert len(tiny_zoo["server"].requests) == 1
    five = dk.from_preset("tiny", num_classes=5, progress=False)  # new head
    assert five.output_shape[-1] == 5
    np.testing.assert_array_equal(five.get_layer("aspp0").get_weights()[0],
                                  tiny_zoo["source"].get_layer("aspp0").get_weights()[0])
    with pytest.raises(ValueError, match="num_classes"):
        dk.DeepLabV3(**{**TINY, "num_classes": 4}, weights="tiny")


def test_cli_zoo_list_show(tiny_zoo, capsys):
    assert main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    assert "deeplabv3_mobilenetv2_dm05_voc" in out and "tiny" in out and "(unpinned)" in out
    assert main(["zoo", "show", "deeplabv3plus_xception65_voc", "--json"]) == 0  # issue 12: card by default
    shown = json.loads(capsys.readouterr().out)
    assert shown["metrics"]["miou"] == 82.2
    assert main(["zoo", "show", "nope"]) == 1
    assert "Available presets" in capsys.readouterr().err
    assert main(["zoo", "download", "deeplabv3plus_xception65_voc"]) == 1  # unpinned, no opt-in
    assert "--allow-unpinned" in capsys.readouterr().err


def test_cli_predict(tiny_zoo, capsys):
    tmp = tiny_zoo["tmp"]
    images = []
    for i, size in enumerate([(40, 30), (21, 50)]):
        path = str(tmp / f"img{i}.png")
        Image.fromarray(np.random.default_rng(i).integers(0, 255, size[::-1] + (3,), np.uint8)).save(path)
        images.append(path)
    out = str(tmp / "pred")
    assert main(["predict", "--preset", "tiny", "--output", out] + images) == 0
    for path, size in zip(images, [(40, 30), (21, 50)]):
        stem = os.path.splitext(os.path.basename(path))[0]
        classes = Image.open(os.path.join(out, f"{stem}_classes.png"))
        overlay = Image.open(glob.glob(os.path.join(out, f"{stem}*overlay*.png"))[0])
        assert classes.size == overlay.size == size
        assert np.asarray(classes).max() < 3
    # --weights FILE with the same result; a corrupt image fails with a clear message
    out2 = str(tmp / "pred2")
    assert main(["predict", "--preset", "tiny", "--weights", tiny_zoo["weights"], "--output", out2,
                 images[0]]) == 0
    assert (np.asarray(Image.open(os.path.join(out, "img0_classes.png")))
            == np.asarray(Image.open(os.path.join(out2, "img0_classes.png")))).all()
    bad = tmp / "bad.png"
    bad.write_bytes(b"\x89PNG not really")
    capsys.readouterr()
    assert main(["predict", "--preset", "tiny", "--output", out2, str(bad)]) == 1
    assert "cannot read image" in capsys.readouterr().err


def test_real_google_tflite_through_mirror(tmp_path, monkeypatch):
    """Google's deeplabv3_257_mv_gpu.tflite served by a local mirror into from_preset."""
    tflite = need(REFERENCE / "deeplabv3_257_mv_gpu.tflite")
    bird = need(REFERENCE / "bird_segmentation.bmp")
    server = Server()
    try:
        server.add(tflite.name, tflite.read_bytes())
        monkeypatch.setenv(download.CACHE_ENV, str(tmp_path / "cache"))
        monkeypatch.setenv(download.MIRROR_ENV, server.url)
        model = dk.from_preset("deeplabv3_mobilenetv2_dm05_voc", input_shape=(257, 257, 3),
                               progress=False)
    finally:
        server.close()
    # the converted cache is keyed by the pinned source sha256 (issue 27)
    sha = dk.get_preset("deeplabv3_mobilenetv2_dm05_voc")["weights"][0]["sha256"]
    assert os.path.isfile(tmp_path / "cache" / (
        f"{tflite.name}.deeplabv3_mobilenetv2_dm05_voc.{sha[:16]}.weights.h5"))
    from ai_edge_litert.interpreter import Interpreter

    image = np.asarray(Image.open(bird).convert("RGB").resize((257, 257), Image.BILINEAR),
                       np.float32)
    interpreter = Interpreter(model_path=str(tflite))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"],
                           ((image - 127.5) / 127.5)[None])
    interpreter.invoke()
    expected = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]
    ours = model.predict(image[None], verbose=0)[0]
    agreement = float(np.mean(ours.argmax(-1) == expected.argmax(-1)))
    assert agreement > 0.99, agreement
    assert np.abs(ours - expected).max() < 0.05 * np.abs(expected).max()


def test_cli_demo(tmp_path, capsys):
    out = str(tmp_path / "demo")
    assert main(["demo", "--output", out, "--alpha", "0.35"]) == 0
    captured = capsys.readouterr()
    assert "segmented 480x360 synthetic road scene" in captured.out
    if not zoo.is_preset("deeplabv3plus_mobilenetv2_camvid"):
        assert "RANDOM weights" in captured.err
    for name in ("demo_road.png", "demo_road_classes.png", "demo_road_overlay.png"):
        assert Image.open(os.path.join(out, name)).size == (480, 360)
    assert np.asarray(Image.open(os.path.join(out, "demo_road_classes.png"))).max() < 11


def test_model_card_shows_the_scales_and_flip_figure():
    from deeplab_keras.commands.zoo import model_card
    with open(os.path.join(zoo.zoo_dir(), "presets", "deeplabv3plus_mobilenetv2_camvid.json")) as f:
        p = json.load(f)
    p["metrics"] = dict(p["metrics"], miou_scales_flip=74.25,
                        scales_flip={"scales": [0.75, 1.0, 1.25, 1.5], "flip": True, "source": "python x.py"})
    card = model_card(p)
    assert "74.2 mIoU with scales 0.75 1.0 1.25 1.5 + flip" in card and "measured by: python x.py" in card
    p["metrics"].pop("miou_scales_flip")
    assert "+ flip" not in model_card(p)
