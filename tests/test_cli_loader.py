"""One model loader for predict, evaluate, export and demo (commands/loader.py): the same flags,
the same errors, a .keras file loading as it is, one spelling of --input-size."""
import argparse
import json

import numpy as np
import pytest
from PIL import Image

import deeplab_keras as dk
from deeplab_keras import cli
from deeplab_keras.commands import loader
from tests.factories import tiny_config

TINY = tiny_config(align_corners=True)


class Marker(ValueError):
    pass


@pytest.mark.parametrize("argv", [
    ["predict", "--preset", "x", "--output-dir", "out", "img.png"],
    ["evaluate", "--preset", "x", "--dataset", "folder", "--data-root", ".", "--num-classes", "3"],
    ["export", "--preset", "x", "--format", "onnx", "--input-size", "33", "--output", "m.onnx"],
    ["demo", "--preset", "x", "--output-dir", "out"],
])
def test_every_command_uses_the_one_loader(argv, monkeypatch, tmp_path, capsys):
    seen = []

    def fake(args, **kwargs):
        seen.append((args.preset, args.weights, args.config, args.architecture, args.num_classes,
                     args.allow_unpinned))
        raise Marker("loader reached")

    monkeypatch.setattr(loader, "load_model", fake)
    monkeypatch.chdir(tmp_path)
    if argv[0] == "evaluate":
        for sub in ("images", "masks"):
            (tmp_path / sub).mkdir()
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "images" / "a.png")
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "masks" / "a.png")
    assert cli.main(argv) == 1
    assert "loader reached" in capsys.readouterr().err
    assert seen and seen[0][0] == "x"


@pytest.mark.parametrize("values, size", [(["513"], (513, 513)), (["257", "385"], (257, 385)),
                                          (["257x385"], (257, 385)), ("65X33", (65, 33))])
def test_input_size_spellings(values, size):
    assert loader.parse_input_size(values) == size


@pytest.mark.parametrize("values", [["0"], ["a"], ["1", "2", "3"], ["-3x4"]])
def test_bad_input_size(values):
    with pytest.raises(ValueError, match="--input-size"):
        loader.parse_input_size(values)


def test_input_size_followed_by_images():
    assert loader.split_input_size(["257", "385", "a.png"]) == ((257, 385), ["a.png"])
    assert loader.split_input_size(["257x385", "a.png"]) == ((257, 385), ["a.png"])
    assert loader.split_input_size(["65", "a.png"]) == ((65, 65), ["a.png"])
    assert loader.split_input_size(None) == (None, [])


def _args(**kw):
    base = dict(preset=None, weights=None, config=None, architecture=None, num_classes=None,
                allow_unpinned=False)
    base.update(kw)
    return argparse.Namespace(**base)


def test_keras_file_loads_as_it_is_with_any_number_of_classes(tmp_path):
    model = dk.DeepLabV3(num_classes=5, input_shape=(None, None, 3), labels=list("abcde"),
                         palette=[[i, i, i] for i in range(5)], **TINY)
    path = str(tmp_path / "five.keras")
    model.save(path)
    loaded = loader.load_model(_args(weights=path))
    assert loaded.num_classes == 5 and loaded.labels == list("abcde")
    with pytest.raises(ValueError, match="predicts 5 classes, not --num-classes 3"):
        loader.load_model(_args(weights=path, num_classes=3))
    # predict with it: no preset needed, the file's palette colours the overlay
    image = tmp_path / "img.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 24, 3), np.uint8)).save(image)
    out = tmp_path / "pred"
    assert cli.main(["predict", "--weights", path, "--output-dir", str(out), "--input-size", "33",
                     "33", str(image)]) == 0
    classes = np.asarray(Image.open(out / "img_classes.png"))
    assert classes.shape == (20, 24) and classes.max() < 5


def test_loader_errors_name_the_fix(tmp_path):
    with pytest.raises(ValueError, match="give --preset NAME or --weights FILE"):
        loader.load_model(_args())
    with pytest.raises(ValueError, match="needs --weights FILE"):
        loader.load_model(_args(architecture="deeplabv3", config=json.dumps(TINY)))
    with pytest.raises(ValueError, match="not both"):
        loader.load_model(_args(preset="deeplabv3_mobilenetv2_voc", architecture="deeplabv3"))
    with pytest.raises(FileNotFoundError, match="model file not found"):
        loader.load_model(_args(weights=str(tmp_path / "missing.keras")))
    with pytest.raises(ValueError, match="untrained"):
        loader.load_model(_args(preset="deeplabv3_mobilenetv2_voc", num_classes=4))
    with pytest.raises(ValueError, match="backbone: give --num-classes"):
        loader.load_model(_args(preset="mobilenetv2_imagenet", weights="none"))
    # --weights none: a fresh model everywhere; export also takes an architecture alone
    fresh = loader.load_model(_args(architecture="deeplabv3", config=json.dumps(TINY),
                                    weights="none", num_classes=4))
    assert fresh.num_classes == 4
    same = loader.load_model(_args(architecture="deeplabv3", config=json.dumps(TINY),
                                   num_classes=4), missing_weights="fresh")
    assert same.count_params() == fresh.count_params()
    # a preset JSON as --config brings its labels along
    preset = dk.get_preset("deeplabv3_mobilenetv2_voc")
    model = loader.load_model(_args(config=json.dumps(preset), weights="none"))
    assert model.labels == preset["labels"]
