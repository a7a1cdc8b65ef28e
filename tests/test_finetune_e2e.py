"""Issue 12(b): a fine-tuned model end to end through the command line - train a tiny 5-class
model on a synthetic folder dataset, then predict / evaluate / export with only its .keras file,
running the very commands ``train`` prints."""
import json
import os
import shlex

import numpy as np
import pytest
from PIL import Image

from deeplab_keras import cli

LABELS = ["sky", "road", "car", "tree", "person"]


def make_folder(root, n=4, size=(65, 65), num_classes=5):
    rng = np.random.default_rng(0)
    for i in range(n):
        label = rng.integers(0, num_classes, size).astype(np.uint8)
        label[:3] = 255
        lab = label.astype(np.int32)
        image = np.stack([lab * 50 % 256, lab * 90 % 256, lab * 20 % 256], -1).astype(np.uint8)
        for sub, arr in (("images", image), ("masks", label)):
            os.makedirs(os.path.join(root, sub), exist_ok=True)
            Image.fromarray(arr).save(os.path.join(root, sub, f"{i}.png"))
    return str(root)


def recipe(tmp_path):
    # no data_root and a warm-up longer than the run: the flags and the trainer take care of both
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps({
        "name": "ft5", "architecture": "deeplabv3plus",
        "model": {"backbone": "mobilenet_v2", "alpha": 0.35, "output_stride": 16,
                  "atrous_rates": [], "align_corners": True},
        "labels": LABELS, "val_split": None, "crop_size": [65, 65], "batch_size": 2,
        "steps_per_epoch": 2, "learning_rate": 0.01, "warmup_steps": 30, "verbose": 0,
        "tensorboard": False}))
    return str(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ft5")
    data = make_folder(tmp / "data")
    out = tmp / "run"
    import contextlib
    import io
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        rc = cli.main(["train", "--recipe", recipe(tmp), "--dataset", "folder", "--num-classes", "5",
                       "--data-root", data, "--epochs", "1", "--output-dir", str(out)])
    assert rc == 0, stderr.getvalue()[-3000:]
    return {"tmp": tmp, "data": data, "out": out, "stdout": stdout.getvalue(),
            "stderr": stderr.getvalue()}


def test_train_writes_a_keras_model_with_labels_and_prints_next_commands(trained):
    model_file = trained["out"] / "model.keras"
    assert model_file.is_file() and (trained["out"] / "last.weights.h5").is_file()
    assert "warmup_steps=30 is not shorter than this run's 2 steps" in trained["stderr"]
    assert f"model: {model_file}" in trained["stdout"] and "next:" in trained["stdout"]
    import keras
    model = keras.saving.load_model(str(model_file))
    assert model.labels == LABELS and model.num_classes == 5 and len(model.palette) == 5
    assert model.ignore_label == 255 and model.preprocessing == {"resize": "align_corners"}


def _printed(trained, verb):
    lines = [line.strip() for line in trained["stdout"].splitlines()]
    return next(shlex.split(line)[1:] for line in lines if line.startswith(f"deeplab-keras {verb} "))


def test_printed_predict_runs_with_the_keras_file_alone(trained, capsys):
    argv = _printed(trained, "predict")
    assert argv[-1] == "IMAGE_OR_FOLDER..." and "--preset" not in argv and "--config" not in argv
    argv[-1] = os.path.join(trained["data"], "images")
    assert cli.main(argv) == 0, capsys.readouterr().err
    pred = trained["out"] / "predictions"
    classes = np.asarray(Image.open(pred / "0_classes.png"))
    assert classes.shape == (65, 65) and classes.max() < 5
    assert Image.open(pred / "0_overlay.png").size == (65, 65)


def test_printed_evaluate_runs_with_the_keras_file_alone(trained, capsys):
    argv = _printed(trained, "evaluate")
    assert "--weights" in argv and "--preset" not in argv
    result = trained["tmp"] / "eval.json"
    assert cli.main(argv + ["--output-json", str(result)]) == 0, capsys.readouterr().err
    metrics = json.loads(result.read_text())
    assert metrics["class_names"] == LABELS and len(metrics["per_class_iou"]) == 5
    assert metrics["num_pixels"] == 4 * 62 * 65  # the model file's ignore label (255) honoured


def test_export_takes_the_keras_file_alone_quietly(trained, capfd):
    out = trained["tmp"] / "new_folder" / "ft5.tflite"  # a folder that does not exist yet
    model_file = str(trained["out"] / "model.keras")
    rc = cli.main(["export", "--weights", model_file, "--format", "tflite", "--input-size", "65",
                   "--output", str(out)])
    captured = capfd.readouterr()
    assert rc == 0, captured.err
    assert out.is_file() and out.stat().st_size > 10_000
    assert "parity PASS" in captured.out
    # the converter's native log lines are filtered (they show with --verbose)
    for chatter in ("Starting new session", "tf_tfl_flatbuffer_helpers", "absl::InitializeLog"):
        assert chatter not in captured.err, captured.err


def test_train_init_weights_from_the_keras_file(trained, capsys):
    out = trained["tmp"] / "run2"
    rc = cli.main(["train", "--recipe", recipe(trained["tmp"]), "--dataset", "folder",
                   "--num-classes", "5", "--data-root", trained["data"], "--epochs", "1",
                   "--init-weights", str(trained["out"] / "model.keras"), "--output-dir", str(out),
                   "--print-config"])
    assert rc == 0
    config = json.loads(capsys.readouterr().out)
    assert config["init_weights"].endswith("model.keras") and config["init_tflite"] is None
    assert config["data_root"] == trained["data"] and config["model"]["num_classes"] == 5


def test_init_weights_from_a_model_with_other_classes_keeps_a_fresh_head(trained):
    import keras

    import deeplab_keras as dk
    from deeplab_keras.hub.weights import load_weights
    source = keras.saving.load_model(str(trained["out"] / "model.keras"))
    model = dk.build_model("deeplabv3plus", num_classes=3, backbone="mobilenet_v2", alpha=0.35,
                           output_stride=16, atrous_rates=[], align_corners=True)
    head = [w.copy() for w in model.get_layer("logits_semantic").get_weights()]
    with pytest.raises(Exception, match="logits_semantic"):
        load_weights(model, str(trained["out"] / "model.keras"))  # not fine-tuning: strict
    load_weights(model, str(trained["out"] / "model.keras"), new_head=True)
    for layer in source.layers:
        if layer.get_weights() and layer.name != "logits_semantic":
            assert all(np.array_equal(a, b) for a, b in
                       zip(model.get_layer(layer.name).get_weights(), layer.get_weights())), layer.name
    assert all(np.array_equal(a, b) for a, b in
               zip(model.get_layer("logits_semantic").get_weights(), head))


def test_train_says_when_it_resumes(tmp_path, capsys, monkeypatch):
    import deeplab_keras.training as training

    class History:
        history, epoch, seconds, model_file = {"loss": [0.5]}, [0], 1.0, None

    calls = []
    monkeypatch.setattr(training, "train", lambda config: calls.append(config) or (None, History()))
    out = tmp_path / "run"
    backup = out / ".deeplab-keras-backup"
    backup.mkdir(parents=True)
    (backup / "chief").write_text("state of a killed run")
    (out / ".deeplab-keras-run").write_text('{"written_by": "deeplab-keras train"}')
    argv = ["train", "--recipe", recipe(tmp_path), "--dataset", "folder", "--num-classes", "5",
            "--data-root", str(tmp_path), "--output-dir", str(out)]
    assert cli.main(argv) == 0
    assert f"resuming the interrupted run in {backup}" in capsys.readouterr().out
    (backup / "chief").unlink()
    assert cli.main(argv) == 0
    assert "resuming" not in capsys.readouterr().out and len(calls) == 2
