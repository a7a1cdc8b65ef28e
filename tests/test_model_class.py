"""The DeepLab model class: get_config = the builder's arguments, labels / palette / ignore label /
input contract kept by .keras files (for every preset of the catalogue), recorded parts instead of
layer-name conventions, bad metadata refused."""
import json

import keras
import numpy as np
import pytest

import deeplab_keras as dk
from deeplab_keras.hub import zoo
from deeplab_keras.export import graph
from deeplab_keras.models import DeepLab, parts
from tests.factories import tiny_config

TINY = tiny_config(num_classes=3, align_corners=True)
#: presets whose architecture is cheap to save/reload in a test; for the others (ResNet-101,
#: Xception-65, VGG-16: 25-140M parameters) the test checks that get_config() (what the .keras
#: file stores) survives JSON with the metadata, and the save/reload of the cheap ones covers
#: the mechanism
CHEAP_BACKBONES = ("mobilenet_v2",)


def test_builder_records_its_arguments_and_metadata(tmp_path):
    model = dk.DeepLabV3(input_shape=(33, 33, 3), labels=["a", "b", "c"],
                         palette=[[0, 0, 0], [255, 0, 0], [0, 255, 0]], ignore_label=255,
                         preprocessing={"input_size": [33, 33], "resize": "align_corners"}, **TINY)
    assert isinstance(model, DeepLab) and model.architecture == "deeplabv3"
    config = model.get_config()
    assert config["config"]["backbone"] == "mobilenet_v2" and config["config"]["alpha"] == 0.35
    assert config["config"]["input_shape"] == [33, 33, 3] and "weights" not in config["config"]
    assert model.num_classes == 3 and model.input_size == (33, 33) and model.align_corners
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is DeepLab and loaded.name == model.name
    assert loaded.labels == ["a", "b", "c"] and loaded.palette[1] == [255, 0, 0]
    assert loaded.ignore_label == 255 and loaded.preprocessing["input_size"] == [33, 33]
    assert loaded.get_config() == config
    x = np.random.default_rng(0).uniform(0, 255, (1, 33, 33, 3)).astype("float32")
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-5)
    rebuilt = DeepLab.from_config(config)
    assert rebuilt.count_params() == model.count_params() and rebuilt.labels == model.labels


def test_parts_replace_layer_name_conventions():
    v3 = dk.DeepLabV3(input_shape=(33, 33, 3), activation="softmax", **TINY)
    recorded = parts(v3)
    assert recorded["probabilities"] == "probabilities" and recorded["classifier"] == ["logits_semantic"]
    assert v3.get_layer(recorded["upsample"]).align_corners is True
    assert set(recorded["backbone_features"]) >= {"4", "out"}
    # the logits cut follows the recorded upsampling, whatever it is called
    assert tuple(graph.logits_model(v3).outputs[0].shape) == (None, 33, 33, 3)
    assert tuple(graph.logits_model(v3, low_resolution=True).outputs[0].shape) == (None, 3, 3, 3)
    v1 = dk.DeepLabV1(num_classes=2, input_shape=(33, 33, 3), fc_filters=8)
    assert parts(v1)["classifier"] == ["fc8"]
    from deeplab_keras.models.common import head_layer_names
    assert head_layer_names(v1) == ["fc6", "fc7", "fc8"]
    plain = keras.Model(v3.inputs, v3.outputs)
    with pytest.raises(ValueError, match="not a deeplab_keras model"):
        graph.logits_model(plain)


@pytest.mark.parametrize("bad, match", [
    ({"labels": ["a", "b"]}, "2 labels for a model with 3 classes"),
    ({"palette": [[0, 0, 0]] * 2}, "2 palette colours"),
    ({"palette": [[0, 0, 0], [0, 0, 0], [0, 0, 256]]}, "values 0-255"),
    ({"ignore_label": "255"}, "ignore_label must be an integer"),
    ({"preprocessing": {"input_size": [0, 3]}}, "input_size"),
])
def test_bad_metadata_is_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        dk.DeepLabV3(input_shape=(33, 33, 3), **TINY, **bad)


def test_from_config_needs_an_architecture():
    with pytest.raises(ValueError, match="needs 'architecture'"):
        DeepLab.from_config({"config": {}})


@pytest.mark.parametrize("name", zoo.list_presets())
def test_every_preset_reloads_with_its_labels_and_palette(name, tmp_path):
    preset = dk.get_preset(name)
    classes = preset["config"].get("num_classes") or 2
    model = dk.from_preset(name, num_classes=classes, weights=False, input_shape=(65, 65, 3))
    if preset.get("backbone_only"):
        assert model.labels is None and model.palette is None  # a new head has no names
    else:
        assert model.labels == preset["labels"] and model.palette == preset["palette"]
    assert model.ignore_label == preset.get("ignore_label")
    assert model.preprocessing == preset.get("preprocessing")
    if preset["config"].get("backbone") not in CHEAP_BACKBONES:
        stored = json.loads(json.dumps(model.get_config()))
        assert stored["architecture"] == preset["architecture"]
        assert {k: stored[k] for k in ("labels", "palette", "ignore_label", "preprocessing")} == {
            "labels": model.labels, "palette": model.palette, "ignore_label": model.ignore_label,
            "preprocessing": model.preprocessing}
        return
    path = str(tmp_path / f"{name}.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, DeepLab) and loaded.architecture == preset["architecture"]
    assert loaded.labels == model.labels and loaded.palette == model.palette
    assert loaded.ignore_label == model.ignore_label and loaded.preprocessing == model.preprocessing
    assert loaded.count_params() == model.count_params()


def _preset_entry(**changes):
    entry = {"name": "p", "architecture": "deeplabv3", "config": dict(TINY), "dataset": "test",
             "labels": ["a", "b", "c"], "palette": [[0, 0, 0], [1, 1, 1], [2, 2, 2]],
             "ignore_label": 255,
             "preprocessing": {"input_size": [33, 33], "normalization": "zero_mean_unit_range",
                               "resize": "align_corners"},
             "weights": [{"format": "keras_weights_h5", "url": "https://example.invalid/p",
                          "path": None, "file": "p.weights.h5", "sha256": None, "size": None,
                          "default": True}]}
    entry.update(changes)
    return entry


def test_preset_schema_checks_every_field():
    from deeplab_keras.hub.preset import Preset, PresetError

    assert Preset.from_dict(_preset_entry()).to_dict()["labels"] == ["a", "b", "c"]
    bad = [({"confg": {}}, "unknown fields"),
           ({"architecture": "deeplabv9"}, "Unknown architecture"),
           ({"labels": ["a"]}, "labels must list 3"),
           ({"weights": []}, "non-empty list"),
           ({"weights": [{"format": "zip", "file": "f", "url": "u", "default": True}]}, "format 'zip'"),
           ({"weights": [{"format": "tflite", "file": "f", "url": "u"}]}, "exactly one"),
           ({"weights": [{"format": "tflite", "file": "f", "url": "u", "default": True, "sha": 1}]},
            "unexpected keyword"),
           ({"preprocessing": {"normalization": "mean_subtraction"}}, "not what the mobilenet_v2"),
           ({"preprocessing": {"resize": "nearest"}}, "resize must be one of"),
           # labels of a known dataset have one copy, data.DATASETS
           ({"dataset": "camvid", "config": dict(TINY, num_classes=11),
             "labels": [str(i) for i in range(11)], "palette": [[0, 0, 0]] * 11,
             "ignore_label": 11}, "drop 'labels'")]
    for changes, match in bad:
        with pytest.raises(PresetError, match=match):
            Preset.from_dict(_preset_entry(**changes))
    camvid = Preset.from_dict(_preset_entry(dataset="camvid", config=dict(TINY, num_classes=11),
                                            labels=None, palette=None, ignore_label=None))
    from deeplab_keras.data import DATASETS
    assert camvid.labels == list(DATASETS["camvid"].labels) and camvid.ignore_label == 11


def test_qat_twin_is_built_from_the_models_own_config():
    pytest.importorskip("tf_keras", reason="QAT needs the [qat] extra (tf_keras)")
    pytest.importorskip("tensorflow_model_optimization", reason="QAT needs the [qat] extra (tfmot)")
    from deeplab_keras.export import qat

    model = dk.DeepLabV3(input_shape=(None, None, 3), **TINY)
    twin = qat.tf_keras_twin(model, input_size=(33, 33))  # no architecture/config passed
    x = np.random.default_rng(0).uniform(0, 255, (1, 33, 33, 3)).astype("float32")
    assert qat.max_abs_diff(model, twin, x) < 1e-4
    assert twin.parts["upsample"] == model.parts["upsample"]
    qat_model, _ = qat.quantize(twin)
    qat_model.parts = qat.wrapped_parts(twin, qat_model)
    assert qat_model.parts["upsample"] == "quant_" + model.parts["upsample"]
    assert tuple(graph.logits_model(qat_model, low_resolution=True).outputs[0].shape) == (None, 3, 3, 3)
    with pytest.raises(ValueError, match="does not record its architecture"):
        qat.tf_keras_twin(keras.Model(model.inputs, model.outputs), input_size=(33, 33))
