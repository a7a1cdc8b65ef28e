"""One path from weights to model (issue 18) and loading reads only the file (issue 19.2):
``dk.load_weights`` for every version's ``.keras`` with a new head, ``.weights.h5`` checked instead
of Keras' silent ``skip_mismatch``, a crafted ``.keras`` that names a preset / a tarball / itself
fetches and reads nothing, ``import deeplab_keras`` registers the Keras class, and a ``.tflite``
stands alone on the command line."""
import json
import os
import subprocess
import sys
import tarfile
import zipfile

import keras
import numpy as np
import pytest
from PIL import Image

import deeplab_keras as dk
from deeplab_keras import cli, download
from deeplab_keras.importers.mapping import WeightMismatchError
from deeplab_keras.models import parts
from tests.conftest import REFERENCE, need

MOBILE = {"backbone": "mobilenet_v2", "alpha": 0.35, "input_shape": (33, 33, 3)}
#: a tiny model of every version
VERSIONS = {
    "v1": (dk.DeepLabV1, {"fc_filters": 8, "input_shape": (33, 33, 3)}),
    "v2": (dk.DeepLabV2, {"backbone": "resnet50", "atrous_rates": (2, 4), "input_shape": (33, 33, 3)}),
    "v3": (dk.DeepLabV3, {**MOBILE, "atrous_rates": (2,), "aspp_filters": 16}),
    "v3+": (dk.DeepLabV3Plus, {**MOBILE, "atrous_rates": (2,), "aspp_filters": 16,
                               "decoder_filters": 16}),
}


def _weights(model, names):
    return {n: [w.copy() for w in model.get_layer(n).get_weights()] for n in names}


def _nested_layer(model, name):
    for layer in model.layers:
        if layer.name == name:
            return layer
        if hasattr(layer, "layers"):
            try:
                return layer.get_layer(name)
            except ValueError:
                pass
    raise ValueError(name)


@pytest.mark.parametrize("version", sorted(VERSIONS))
def test_fine_tune_keras_file_to_another_class_count(version, tmp_path):
    builder, config = VERSIONS[version]
    source = builder(num_classes=3, **config)
    assert parts(source)["classifier"], f"{version} records no classifier"
    path = str(tmp_path / "three.keras")
    source.save(path)
    target = builder(num_classes=5, **config)
    classifiers = parts(target)["classifier"]
    fresh = {n: [w.copy() for w in _nested_layer(target, n).get_weights()] for n in classifiers}
    with pytest.raises(WeightMismatchError):  # without new_head: the classifier does not fit
        dk.load_weights(target, path)
    assert dk.load_weights(target, path, new_head=True) is target
    backbone = parts(target)["backbone"]
    for name in backbone[:3] + backbone[-3:]:
        for a, b in zip(_nested_layer(source, name).get_weights(),
                        _nested_layer(target, name).get_weights()):
            np.testing.assert_array_equal(a, b)
    for name, weights in fresh.items():  # the new head keeps its initialisation
        for a, b in zip(weights, _nested_layer(target, name).get_weights()):
            np.testing.assert_array_equal(a, b)


def test_v2_multi_scale_records_its_classifier_inside_the_shared_core():
    model = dk.DeepLabV2(num_classes=3, backbone="resnet50", atrous_rates=(2, 4), multi_scale=True,
                         scales=(1.0, 0.5), input_shape=(33, 33, 3))
    assert parts(model)["classifier"] == ["aspp_l_c0", "aspp_l_c1"]


def test_weights_h5_new_head_loads_all_but_the_classifier_and_refuses_the_rest(tmp_path):
    config = {**MOBILE, "atrous_rates": (), "align_corners": True}
    source = dk.DeepLabV3(num_classes=3, **config)
    path = str(tmp_path / "three.weights.h5")
    source.save_weights(path)
    target = dk.DeepLabV3(num_classes=5, **config)
    with pytest.raises(WeightMismatchError, match="new_head=True"):
        dk.load_weights(target, path)
    dk.load_weights(target, path, new_head=True)
    for name in ("Conv", "aspp0", "image_pooling"):
        for a, b in zip(source.get_layer(name).get_weights(), target.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    # another backbone width: Keras' skip_mismatch would skip layers silently; we refuse and
    # leave the model as it was (no NaN left behind)
    wider = dk.DeepLabV3(num_classes=5, **dict(config, alpha=0.5))
    before = [w.copy() for w in wider.get_weights()]
    with pytest.raises(WeightMismatchError, match="outside its classifier"):
        dk.load_weights(wider, path, new_head=True)
    for a, b in zip(before, wider.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_train_init_weights_refuses_what_keras_skip_mismatch_skipped(tmp_path):
    """``train --init-weights x.weights.h5`` used Keras' skip_mismatch=True: layers of another
    shape kept their initialisation without a word. It now goes through dk.load_weights."""
    from deeplab_keras.data import custom_info
    from deeplab_keras.training.trainer import build_training_model
    config = {**MOBILE, "atrous_rates": (), "align_corners": True}
    path = str(tmp_path / "wide.weights.h5")
    dk.DeepLabV3(num_classes=5, **dict(config, alpha=0.5)).save_weights(path)
    recipe = {"architecture": "deeplabv3", "model": dict(config, num_classes=3),
              "init_tflite": None, "init_weights": path, "freeze_bn": False, "sync_bn": False}
    with pytest.raises(WeightMismatchError, match="outside its classifier"):
        build_training_model(recipe, custom_info(3, 255))


def test_builders_take_weights_models_do_not(tmp_path):
    from deeplab_keras import models
    config = {**MOBILE, "atrous_rates": (), "num_classes": 3}
    source = dk.DeepLabV3(**config)
    path = str(tmp_path / "m.weights.h5")
    source.save_weights(path)
    loaded = dk.build_model("deeplabv3", weights=path, **config)
    np.testing.assert_array_equal(loaded.get_layer("Conv").get_weights()[0],
                                  source.get_layer("Conv").get_weights()[0])
    with pytest.raises(ValueError, match="does not take weights"):
        models.DeepLabV3(weights=path, **config)  # the architecture alone never reads a file


# -- issue 19.2: loading a .keras file reads that file only -----------------------------------------

def _with_weights_key(src, dst, value):
    """A copy of the .keras file ``src`` whose saved builder config names ``weights=value``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                config["config"]["config"]["weights"] = value
                data = json.dumps(config).encode()
            zout.writestr(item, data)
    return dst


def test_a_crafted_keras_file_fetches_and_reads_nothing(tmp_path, monkeypatch, server):
    cache = tmp_path / "cache"
    monkeypatch.setenv(download.CACHE_ENV, str(cache))
    monkeypatch.setenv(download.MIRROR_ENV, server.url)  # a download would show up here
    model = dk.DeepLabV3(num_classes=3, **MOBILE, atrous_rates=())
    plain = str(tmp_path / "plain.keras")
    model.save(plain)
    tarball = tmp_path / "ckpt.tar.gz"
    (tmp_path / "model.ckpt.index").write_bytes(b"not read")
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(tmp_path / "model.ckpt.index", arcname="ckpt/model.ckpt.index")
    x = np.random.default_rng(0).uniform(0, 255, (1, 33, 33, 3)).astype("float32")
    expected = model.predict(x, verbose=0)
    itself = str(tmp_path / "itself.keras")
    crafted = {"preset": "deeplabv3_mobilenetv2_dm05_voc", "tarball": str(tarball),
               "itself": itself}
    for kind, value in crafted.items():
        path = itself if kind == "itself" else str(tmp_path / f"{kind}.keras")
        _with_weights_key(plain, path, value)
        with pytest.warns(UserWarning, match="ignored 'weights'"):
            loaded = keras.saving.load_model(path, compile=False)
        np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, atol=1e-6)
    # dk.load_weights (the CLI's --weights, train --init-weights) reads it the same way
    target = dk.DeepLabV3(num_classes=3, **MOBILE, atrous_rates=())
    with pytest.warns(UserWarning, match="ignored 'weights'"):
        dk.load_weights(target, itself)
    np.testing.assert_allclose(target.predict(x, verbose=0), expected, atol=1e-6)
    assert server.requests == []
    assert not cache.exists() or not any(cache.rglob("*")), sorted(cache.rglob("*"))


def _run(code):
    env = dict(os.environ, PYTHONPATH=os.getcwd(), TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "could not register" not in result.stderr, result.stderr[-2000:]
    return result.stdout


@pytest.mark.parametrize("first,then", [("deeplab_keras", "keras"), ("deeplab_keras", "tensorflow"),
                                        ("deeplab_keras.importers.tflite", "keras")])
def test_import_deeplab_keras_then_load_model(first, then, tmp_path):
    """A fresh process: ``import deeplab_keras`` (lazy: no Keras yet), then Keras (directly, or
    through TensorFlow, which also asks for Keras' spec without importing it), then a file;
    nothing of deeplab_keras is touched. (Keras imported first registers at once: this process.)
    A submodule imported first imports Keras in the middle of its own import (registering the
    class then would be a circular import): a stand-in builds the class when a file is loaded."""
    path = str(tmp_path / "m.keras")
    dk.DeepLabV3(num_classes=3, **MOBILE, atrous_rates=(), labels=["a", "b", "c"]).save(path)
    lazy = "assert 'keras' not in sys.modules\n" if first == "deeplab_keras" else ""
    out = _run(f"import sys\nimport {first}\n{lazy}"
               f"import {then}\nimport keras\n"
               f"m = keras.saving.load_model({path!r}, compile=False)\n"
               "print(type(m).__name__, m.labels)")
    assert out.split() == ["DeepLab", "['a',", "'b',", "'c']"]


# -- issue 18.4: a .tflite file stands alone on the command line ----------------------------------

@pytest.fixture(scope="module")
def tiny_tflite(tmp_path_factory):
    """A float32 .tflite of a tiny v3 (MobileNetV2 0.35, mobile head), converted here."""
    import tensorflow as tf
    model = dk.DeepLabV3(num_classes=3, **MOBILE, atrous_rates=(), align_corners=True)
    path = tmp_path_factory.mktemp("tflite") / "tiny.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return path


def _images(folder, n=2, size=(40, 48)):
    rng = np.random.default_rng(0)
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(
            folder / "images" / f"{i}.png")
        Image.fromarray(rng.integers(0, 3, size, dtype=np.uint8)).save(folder / "masks" / f"{i}.png")
    return folder


def test_tflite_stands_alone_in_predict_evaluate_and_export(tiny_tflite, tmp_path, capsys):
    pytest.importorskip("ai_edge_litert")
    data = _images(tmp_path / "data")
    out = tmp_path / "pred"
    assert cli.main(["predict", "--weights", str(tiny_tflite), "--output-dir", str(out),
                     str(data / "images" / "0.png")]) == 0, capsys.readouterr().err
    classes = np.asarray(Image.open(out / "0_classes.png"))
    assert classes.shape == (40, 48) and classes.max() < 3
    result = tmp_path / "r.json"
    assert cli.main(["evaluate", "--weights", str(tiny_tflite), "--dataset", "folder",
                     "--data-root", str(data), "--output", str(result)]) == 0, capsys.readouterr().err
    assert json.loads(result.read_text())["num_images"] == 2
    exported = tmp_path / "again.tflite"
    assert cli.main(["export", "--weights", str(tiny_tflite), "--format", "tflite",
                     "--input-size", "33", "--output", str(exported)]) == 0, capsys.readouterr().err
    assert exported.is_file()
    # the file's class count is checked like a .keras file's
    assert cli.main(["predict", "--weights", str(tiny_tflite), "--num-classes", "4",
                     "--output-dir", str(tmp_path / "p2"), str(data / "images" / "0.png")]) == 1
    assert "predicts 3 classes, not --num-classes 4" in capsys.readouterr().err


def test_google_tflite_stands_alone_in_predict(tmp_path, capsys):
    pytest.importorskip("ai_edge_litert")
    path = need(REFERENCE / "deeplabv3_257_mv_gpu.tflite")
    image = REFERENCE / "bird_segmentation.bmp"
    out = tmp_path / "pred"
    assert cli.main(["predict", "--weights", str(path), "--output-dir", str(out), str(image)]) == 0, \
        capsys.readouterr().err
    classes = np.asarray(Image.open(out / "bird_segmentation_classes.png"))
    assert classes.shape == np.asarray(Image.open(image)).shape[:2]
    assert 0 < np.count_nonzero(classes) < classes.size  # a bird on a background
