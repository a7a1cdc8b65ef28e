"""``evaluate()`` and ``deeplab-keras evaluate``: on a synthetic image folder (always) and on real
CamVid val images (when ../shared is present) with tiny randomly initialised models."""
import json
import os

import keras
import numpy as np
import pytest
from PIL import Image

import deeplab_keras as dk
from deeplab_keras import cli
from deeplab_keras.evaluation import confusion_matrix, evaluate, metrics_from_confusion
from tests.factories import labelled_folder, tiny_conv_model

CAMVID = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "camvid")


# the shared helpers (tests/factories.py) under this module's names
_tiny_model = tiny_conv_model
_folder = labelled_folder


def _reference(model, images, masks, num_classes, ignore_label):
    pred = np.argmax(model.predict(images.astype("float32"), verbose=0), -1)
    return metrics_from_confusion(confusion_matrix(masks, pred, num_classes, ignore_label))


def test_evaluate_api_on_arrays_matches_direct_metrics():
    model = _tiny_model(3)
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (3, 24, 32, 3)).astype(np.float32)
    masks = rng.integers(0, 3, (3, 24, 32))
    masks[:, 0] = 255
    result = evaluate(model, [(images[i], masks[i]) for i in range(3)], ignore_label=255, limit=2)
    ref = _reference(model, images[:2], masks[:2], 3, 255)
    assert result["num_images"] == 2
    assert result["miou"] == pytest.approx(ref["miou"], abs=1e-6)
    assert list(result["per_class"]) == ["class_0", "class_1", "class_2"]
    with pytest.raises(ValueError, match="predicts 3 classes but the dataset 'camvid' has 11"):
        evaluate(model, [(images[0], masks[0])], dataset="camvid")


def test_evaluate_api_on_a_batched_tf_data_pipeline(tmp_path):
    from deeplab_keras.data import list_pairs, make_dataset
    images, masks = _folder(tmp_path, n=3)
    model = _tiny_model(3)
    pairs = list_pairs("folder", tmp_path, None)
    ds = make_dataset(pairs, num_classes=3, ignore_label=255, batch_size=2)
    result = evaluate(model, ds, num_classes=3, ignore_label=255)
    ref = _reference(model, images, masks, 3, 255)
    assert result["num_images"] == 3 and result["miou"] == pytest.approx(ref["miou"], abs=1e-6)
    assert evaluate(model, pairs, num_classes=3)["confusion_matrix"] == result["confusion_matrix"]


def test_cli_on_an_image_folder(tmp_path, capsys):
    images, masks = _folder(tmp_path / "data")
    model = _tiny_model(3)
    model.save(tmp_path / "tiny.keras")
    out = tmp_path / "out" / "results.json"
    rc = cli.main(["evaluate", "--weights", str(tmp_path / "tiny.keras"), "--dataset", "folder",
                   "--data-root", str(tmp_path / "data"), "--num-classes", "3",
                   "--output", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "class_2" in text and "mIoU" in text and "fwIoU" in text
    result = json.loads(out.read_text())
    ref = _reference(model, images, masks, 3, 255)
    for key in ("miou", "pixel_accuracy", "mean_class_accuracy", "fw_iou"):
        assert result[key] == pytest.approx(ref[key], abs=1e-6)
    assert result["num_images"] == 2 and result["ignore_label"] == 255
    assert not [p for p in os.listdir(out.parent) if p.startswith(".tmp")]  # atomic write
    rc = cli.main(["evaluate", "--weights", str(tmp_path / "tiny.keras"), "--dataset", "folder",
                   "--data-root", str(tmp_path / "data")])
    assert rc == 1 and "needs --num-classes" in capsys.readouterr().err
    _tiny_model(2).save(tmp_path / "two.keras")
    rc = cli.main(["evaluate", "--weights", str(tmp_path / "two.keras"), "--dataset", "folder",
                   "--data-root", str(tmp_path / "data"), "--num-classes", "2"])  # masks hold 2
    err = capsys.readouterr().err
    assert rc == 1 and "outside classes 0..1" in err and ".png" in err


def test_cli_preset_architecture_with_own_weights(tmp_path, capsys):
    _folder(tmp_path / "data", n=1)
    preset = "deeplabv3_mobilenetv2_dm05_voc"
    model = dk.from_preset(preset, num_classes=3, weights=False)
    model.save_weights(str(tmp_path / "own.weights.h5"))
    out = tmp_path / "r.json"
    rc = cli.main(["evaluate", "--preset", preset, "--weights", str(tmp_path / "own.weights.h5"),
                   "--dataset", "folder", "--data-root", str(tmp_path / "data"),
                   "--num-classes", "3", "--output", str(out)])
    assert rc == 0, capsys.readouterr().err
    result = json.loads(out.read_text())
    assert result["model"]["preset"] == preset and result["num_images"] == 1


def test_cli_runs_the_model_at_its_own_input_size_as_predict_does(tmp_path, capsys):
    """evaluate measures what predict gives: scale 1 is the model's preset input size (its input
    contract); --input-size picks another, 'image' each image's own size."""
    from deeplab_keras.evaluation import Predictor
    from deeplab_keras.data import list_pairs

    _folder(tmp_path / "data", n=2)
    keras.utils.set_random_seed(0)
    model = dk.DeepLabV3(num_classes=3, backbone="mobilenet_v2", alpha=0.35, atrous_rates=[],
                         output_stride=16, preprocessing={"input_size": [57, 73]})
    model.save(tmp_path / "contract.keras")
    pairs = list_pairs("folder", tmp_path / "data", None)
    results = {}
    for name, extra in {"own": [], "image": ["--input-size", "image"],
                        "given": ["--input-size", "33x41"]}.items():
        out = tmp_path / f"{name}.json"
        rc = cli.main(["evaluate", "--weights", str(tmp_path / "contract.keras"), "--dataset",
                       "folder", "--data-root", str(tmp_path / "data"), "--num-classes", "3",
                       "--no-progress", "--output", str(out)] + extra)
        assert rc == 0, capsys.readouterr().err
        results[name] = json.loads(out.read_text())
    assert results["own"]["settings"]["input_size"] == [57, 73]
    assert results["image"]["settings"]["input_size"] is None
    assert results["given"]["settings"]["input_size"] == [33, 41]
    for name, size in {"own": (57, 73), "image": None, "given": (33, 41)}.items():
        predictor = Predictor(model, input_size=size)
        cm = sum(confusion_matrix(np.array(Image.open(m)), predictor(np.array(Image.open(i),
                 np.float32)).argmax(-1), 3, 255) for i, m in pairs)
        assert results[name]["confusion_matrix"] == cm.tolist(), name
    assert results["own"]["confusion_matrix"] != results["image"]["confusion_matrix"]
    # the Python evaluate() defaults to the same working size; "image" / None: each image's own
    assert evaluate(model, pairs, num_classes=3)["confusion_matrix"] == results["own"]["confusion_matrix"]
    assert evaluate(model, pairs, num_classes=3, input_size="image")["settings"]["input_size"] is None
    with pytest.raises(ValueError, match="input_size must be 'model', 'image'"):
        evaluate(model, pairs, num_classes=3, input_size="native")
    rc = cli.main(["evaluate", "--weights", str(tmp_path / "contract.keras"), "--dataset",
                   "folder", "--data-root", str(tmp_path / "data"), "--num-classes", "3",
                   "--input-size", "0"])
    assert rc == 1 and "--input-size" in capsys.readouterr().err


@pytest.mark.skipif(not os.path.isdir(CAMVID), reason="../shared/data/camvid (CamVid) is not present")
def test_cli_on_real_camvid_val_images(tmp_path, capsys):
    import deeplab_keras as dk
    from deeplab_keras.data import list_pairs

    keras.utils.set_random_seed(0)
    model = dk.DeepLabV3Plus(num_classes=11, backbone="mobilenet_v2", alpha=0.35)
    weights = str(tmp_path / "tiny.weights.h5")
    model.save_weights(weights)
    out = tmp_path / "results.json"
    config = json.dumps({"architecture": "deeplabv3plus", "backbone": "mobilenet_v2", "alpha": 0.35})
    rc = cli.main(["evaluate", "--weights", weights, "--config", config, "--dataset", "camvid",
                   "--data-root", CAMVID, "--split", "val", "--limit", "2", "--flip",
                   "--scales", "1", "--sliding-window", "256", "--output", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    for name in ("Sky", "Bicyclist", "mIoU", "pixel acc", "fwIoU"):
        assert name in text
    result = json.loads(out.read_text())
    assert result["num_images"] == 2 and result["dataset"] == "camvid" and result["ignore_label"] == 11
    assert result["settings"] == {"scales": [1.0], "flip": True, "input_size": None,
                                  "sliding_window": [256, 256],
                                  "overlap": pytest.approx(1 / 3), "weighting": "gaussian", "crf": None}
    cm = np.array(result["confusion_matrix"])
    masks = [np.array(Image.open(m)) for _, m in list_pairs("camvid", CAMVID, "val")[:2]]
    assert cm.sum() == sum(int(np.sum(m != 11)) for m in masks)
    assert result["miou"] == pytest.approx(metrics_from_confusion(cm)["miou"])
    assert set(result["per_class"]) == set(dk.data.DATASETS["camvid"].labels)
    # the Python API on the same images and settings gives the same numbers
    api = evaluate(model, list_pairs("camvid", CAMVID, "val"), dataset="camvid", limit=2,
                   flip=True, sliding_window=256)
    assert api["confusion_matrix"] == result["confusion_matrix"]
