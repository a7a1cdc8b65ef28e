"""Issue 27, item 5 (house items) and the weak cases about weights, presets, smoother arguments
and labels: one registry kind, one build_model, an import that leaves the environment alone, a
preset's weights built once, Keras' warnings silenced, unreadable / planted weight files, the
mirror variable, labels given as a string, TemporalSmoother arguments, evaluate's class count
from a preset, and the package's layer order."""
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from PIL import Image

import deeplab_keras as dk
from deeplab_keras import download
from deeplab_keras.utils.validate import check_labels
from deeplab_keras.video.smoothing import TemporalSmoother

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(num_classes=3, backbone="mobilenet_v2", alpha=0.35, atrous_rates=[], output_stride=16)
LABELS = ["a", "b", "c"]


def _tiny(seed=1, **kwargs):
    import keras
    keras.utils.set_random_seed(seed)
    return dk.DeepLabV3(**dict(TINY, **kwargs))


def _write_preset(root, name, fmt, file, data_path):
    from deeplab_keras.hub import preset as preset_schema  # noqa: F401  (schema checked on use)
    preset = {"name": name, "description": "test", "architecture": "deeplabv3",
              "backbone_only": False, "config": TINY, "dataset": "test", "labels": LABELS,
              "palette": [[0, 0, 0], [255, 0, 0], [0, 255, 0]], "ignore_label": 255,
              "preprocessing": {"input_size": [33, 33], "resize": "align_corners"},
              "weights": [{"format": fmt, "url": None, "path": f"weights/{file}", "file": file,
                           "sha256": download.file_hash(data_path),
                           "size": os.path.getsize(data_path), "default": True}],
              "metrics": {"miou": None, "split": None, "source": "test"}}
    (root / "presets" / f"{name}.json").write_text(json.dumps(preset))


@pytest.fixture
def tiny_zoo(tmp_path, monkeypatch, cache):
    """A catalogue of two tiny presets with shipped weights: ``tinyh`` (a ``.weights.h5``, used
    as it is) and ``tinyk`` (a ``.keras`` file, converted into the cache on use). Returns the
    model whose weights both hold."""
    from deeplab_keras.hub import zoo
    root = tmp_path / "zoo"
    (root / "presets").mkdir(parents=True)
    (root / "weights").mkdir()
    source = _tiny(seed=1)
    source.save_weights(str(root / "weights" / "tiny.weights.h5"))
    source.save(str(root / "weights" / "tiny.keras"))
    _write_preset(root, "tinyh", "keras_weights_h5", "tiny.weights.h5",
                  root / "weights" / "tiny.weights.h5")
    _write_preset(root, "tinyk", "keras_model", "tiny.keras", root / "weights" / "tiny.keras")
    monkeypatch.setattr(zoo, "ZOO_DIRS", (str(root),))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # this test's signing key
    return source


def _image(seed=0, size=33):
    return np.random.default_rng(seed).uniform(0, 255, (1, size, size, 3)).astype("float32")


# ---------------------------------------------------------------------------------------------
# one registry kind, one build_model


def test_one_registry_kind_and_one_build_model():
    from deeplab_keras import backbones, builders, models
    from deeplab_keras.export import REGISTRY as EXPORT_FORMATS
    from deeplab_keras.importers.formats import REGISTRY as IMPORTERS
    from deeplab_keras.utils.registry import Registry
    for registry in (models.BUILDERS, backbones.BACKBONES, IMPORTERS, EXPORT_FORMATS):
        assert isinstance(registry, Registry), registry
    assert not hasattr(models, "build_model")  # the twin is gone
    assert dk.build_model is builders.build_model
    assert list(dk.BUILDERS) == list(models.BUILDERS)
    assert sorted(models.BUILDERS) == ["deeplabv1", "deeplabv2", "deeplabv3", "deeplabv3plus"]
    assert dk.BUILDERS["deeplabv3"] is dk.DeepLabV3 and "weights" in \
        __import__("inspect").signature(dk.DeepLabV3).parameters
    # lookups: normalised, aliased, one line listing the names
    assert models.canonical("DeepLab-V3+") == "deeplabv3plus"
    assert backbones.get_backbone("MobileNetV2") is backbones.BACKBONES["mobilenet_v2"]
    with pytest.raises(ValueError, match=r"^Unknown backbone 'resnet9'\. Available: mobilenet_v2"):
        backbones.get_backbone("resnet9")
    with pytest.raises(ValueError, match=r"^Unknown architecture 'deeplabv4'"):
        dk.build_model("deeplabv4")
    with pytest.raises(ValueError, match="already registered"):
        models.BUILDERS.register("deeplabv3", lambda: None)
    with pytest.raises(TypeError):
        models.BUILDERS["x"] = None  # read-only: entries come through register


def test_an_architecture_registered_later_reaches_dk_builders():
    from deeplab_keras import models

    @models.register("housearch")
    def house(num_classes=2, name=None):
        return models.BUILDERS.build("deeplabv3", num_classes=num_classes, backbone="mobilenet_v2",
                                     alpha=0.35, atrous_rates=(), input_shape=(33, 33, 3),
                                     name=name)
    try:
        assert "housearch" in dk.BUILDERS
        model = dk.build_model("HouseArch", num_classes=2, weights=None)
        assert model.architecture == "housearch" and model.config == {"num_classes": 2}
    finally:
        del models.BUILDERS["housearch"]
    assert "housearch" not in dk.BUILDERS


# ---------------------------------------------------------------------------------------------
# import deeplab_keras leaves TF_CPP_MIN_LOG_LEVEL alone

_ENV_CHECK = """
import os, subprocess, sys
import deeplab_keras as dk
print("IMPORT", os.environ.get("TF_CPP_MIN_LOG_LEVEL"))
m = dk.build_model("deeplabv3", num_classes=2, backbone="mobilenet_v2", alpha=0.35,
                   atrous_rates=(), input_shape=(33, 33, 3))
print("BUILD", os.environ.get("TF_CPP_MIN_LOG_LEVEL"))
child = subprocess.run([sys.executable, "-c",
                        "import os; print(os.environ.get('TF_CPP_MIN_LOG_LEVEL'))"],
                       capture_output=True, text=True).stdout.strip()
print("CHILD", child)
"""


def test_import_does_not_set_tf_log_level_for_the_process():
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
               CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    out = subprocess.run([sys.executable, "-c", _ENV_CHECK], capture_output=True, text=True,
                         env=env, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["IMPORT", "None", "BUILD", "None", "CHILD", "None"], out.stdout
    # the load through dk.<name> is still quiet (TensorFlow reads the level once, at load)
    assert "oneDNN" not in out.stderr and "cuInit" not in out.stderr, out.stderr[-2000:]
    # a value the user set is theirs, untouched
    env["TF_CPP_MIN_LOG_LEVEL"] = "1"
    out = subprocess.run([sys.executable, "-c", "import os, deeplab_keras as dk; dk.segment; "
                          "print(os.environ['TF_CPP_MIN_LOG_LEVEL'])"],
                         capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert out.stdout.strip() == "1", out.stderr[-2000:]


def test_the_cli_still_quiets_its_own_process(monkeypatch, capsys):
    import logging
    from deeplab_keras import cli
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    levels = {name: logging.getLogger(name).level for name in ("absl", "tensorflow", "tf2onnx",
                                                                "h5py")}
    try:
        with warnings.catch_warnings():  # main() sets its filters for its process
            assert cli.main([]) == 2  # no command: the help, after the verbosity is set
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] in ("2", "3")
    assert "usage: deeplab-keras" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# weights


def test_preset_weights_through_a_builder_build_one_model(tiny_zoo, monkeypatch):
    from deeplab_keras.models.deeplab import DeepLab
    builds = []
    real = DeepLab.__init__

    def counting(self, *args, **kwargs):
        builds.append(kwargs.get("name"))
        real(self, *args, **kwargs)

    monkeypatch.setattr(DeepLab, "__init__", counting)
    model = dk.DeepLabV3(**TINY, weights="tinyh")
    assert len(builds) == 1, builds
    x = _image()
    np.testing.assert_allclose(model.predict(x, verbose=0), tiny_zoo.predict(x, verbose=0),
                               atol=1e-5)
    # another input size changes no weight: still one build
    builds.clear()
    fixed = dk.from_preset("tinyh", input_shape=(33, 33, 3), progress=False)
    assert len(builds) == 1, builds
    np.testing.assert_allclose(fixed.predict(x, verbose=0), tiny_zoo.predict(x, verbose=0),
                               atol=1e-5)
    # another architecture still gets the preset's weights copied by name (two builds: the
    # preset's model is the source), and an error if they do not fit
    builds.clear()
    with pytest.raises(ValueError, match="preset 'tinyh' does not fit this model"):
        dk.DeepLabV3(**dict(TINY, alpha=0.5), weights="tinyh")
    assert len(builds) == 2


def test_weights_of_another_architecture_one_line_no_keras_warnings(tmp_path, capfd):
    from deeplab_keras.hub.weights import WeightMismatchError
    other = dk.DeepLabV3Plus(**TINY)
    path = str(tmp_path / "plus.weights.h5")
    other.save_weights(path)
    model = _tiny()
    before = [w.copy() for w in model.get_weights()]
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(WeightMismatchError) as err:
            dk.load_weights(model, path)
    assert not caught, [str(w.message)[:100] for w in caught[:3]]
    assert "Skipping" not in capfd.readouterr().err
    assert path in str(err.value) and "\n" not in str(err.value)
    for a, b in zip(before, model.get_weights()):  # nothing half-loaded
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("content", [b"not an hdf5 file" * 10, "truncated"])
def test_unreadable_weights_file_is_named(tmp_path, content):
    model = _tiny()
    path = tmp_path / "broken.weights.h5"
    if content == "truncated":
        good = tmp_path / "good.weights.h5"
        model.save_weights(str(good))
        content = good.read_bytes()[:4096]
    path.write_bytes(content)
    with pytest.raises(ValueError) as err:
        dk.load_weights(model, str(path))
    message = str(err.value)
    assert str(path) in message and "cannot read the weights file" in message
    assert "\n" not in message


def test_planted_converted_weights_are_not_used(tiny_zoo, tmp_path, monkeypatch, capsys):
    from deeplab_keras.hub import converted
    from deeplab_keras.version import __version__
    x = _image()
    expected = tiny_zoo.predict(x, verbose=0)
    path, _ = converted.converted_weights("tinyk", progress=False)
    sha = dk.get_preset("tinyk")["weights"][0]["sha256"]
    assert sha[:16] in os.path.basename(path)  # keyed by the pinned source
    # plant other weights with a manifest that is consistent in every field it can check
    _tiny(seed=7).save_weights(path)
    planted = {"source": "tiny.keras", "source_sha256": sha,
               "converted_sha256": download.file_hash(path), "package_version": __version__,
               "signature": "0" * 64}
    with open(converted.manifest_path(path), "w") as f:
        json.dump(planted, f)
    ok, reason = converted.check_manifest(path, sha)
    assert not ok and "not signed" in reason
    capsys.readouterr()
    model = dk.from_preset("tinyk", progress=False)
    assert "not signed" in capsys.readouterr().err
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-5)
    assert converted.check_manifest(path, sha) == (True, None)  # converted again, signed
    # a cache copied from another user or machine (another key) is not trusted either
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "other-user"))
    ok, reason = converted.check_manifest(path, sha)
    assert not ok and "not signed" in reason


def test_mirror_that_is_not_a_url_names_the_variable(monkeypatch, cache):
    monkeypatch.setenv(download.MIRROR_ENV, "notaurl")
    with pytest.raises(ValueError) as err:
        download.fetch("https://example.invalid/x.bin", "x.bin", sha256="0" * 64, progress=False)
    message = str(err.value)
    assert message.startswith("DEEPLAB_KERAS_MIRROR='notaurl' is not a URL") and "\n" not in message
    monkeypatch.setenv(download.MIRROR_ENV, "http://127.0.0.1:9/m/")
    assert download.source_url("u", "x.bin") == "http://127.0.0.1:9/m/x.bin"


# ---------------------------------------------------------------------------------------------
# labels


@pytest.mark.parametrize("labels, message", [
    ("abcdefghijk", "labels must be a list of class names, got the string 'abcdefghijk'"),
    ({0: "a", 1: "b", 2: "c"}, "labels must be a list of class names in class order, got a dict"),
    (["a", None, "c"], r"labels\[1\] must be a class name"),
    (["a", "b"], "2 labels for a model with 3 classes"),
    (5, "labels must be a list of class names, got 5"),
])
def test_labels_must_be_a_list_of_names(labels, message):
    with pytest.raises(ValueError, match=message):
        check_labels(labels, 3)


def test_labels_string_refused_by_builders_and_presets():
    assert check_labels(("a", "b", 3), 3) == ["a", "b", "3"] and check_labels(None, 3) is None
    with pytest.raises(ValueError, match="got the string 'abc'"):
        dk.DeepLabV3(**TINY, input_shape=(33, 33, 3), labels="abc")
    from deeplab_keras.hub.preset import Preset, PresetError
    entry = json.loads(open(os.path.join(REPO, "zoo", "presets",
                                         "deeplabv3_mobilenetv2_dm05_voc.json")).read())
    entry.update(dataset=None, labels="abcdefghijklmnopqrstu",  # 21 letters for 21 classes
                 palette=[[0, 0, 0]] * 21)
    with pytest.raises(PresetError, match="got the string"):
        Preset.from_dict(entry)


# ---------------------------------------------------------------------------------------------
# TemporalSmoother arguments


@pytest.mark.parametrize("kwargs, message", [
    ({"strength": None}, "TemporalSmoother strength must be in \\[0, 1\\) \\(a number\\), got None"),
    ({"strength": "yes"}, "TemporalSmoother strength must be in \\[0, 1\\) \\(a number\\), got 'yes'"),
    ({"strength": 1.0}, "TemporalSmoother strength must be"),
    ({"margin": None}, "TemporalSmoother margin must be"),
    ({"motion_scale": "fast"}, "TemporalSmoother motion_scale must be a positive number"),
    ({"motion_scale": float("nan")}, "TemporalSmoother motion_scale must be"),
])
def test_smoother_errors_name_the_parameter(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TemporalSmoother(**kwargs)


def test_smoothing_argument_parser():
    assert TemporalSmoother.from_arg(None) is None and TemporalSmoother.from_arg(False) is None
    assert TemporalSmoother.from_arg(True).strength == TemporalSmoother().strength
    assert TemporalSmoother.from_arg(0.7).strength == 0.7
    mine = TemporalSmoother(margin=0)
    assert TemporalSmoother.from_arg(mine) is mine
    with pytest.raises(ValueError, match=r"^smoothing must be True, False, a strength in \[0, 1\) "
                                         r"or a TemporalSmoother, got 'yes' \(a str\)$"):
        TemporalSmoother.from_arg("yes")
    with pytest.raises(ValueError, match=r"^smoothing strength must be in \[0, 1\)"):
        TemporalSmoother.from_arg(-0.5)
    with pytest.raises(ValueError, match="^smoothing must be"):
        TemporalSmoother.from_arg(float("nan"))


def test_smoother_class_above_its_count_is_one_clear_line():
    smoother = TemporalSmoother()
    classes = np.zeros((4, 5), np.int64)
    classes[0, 0] = 7
    with pytest.raises(ValueError, match=r"^class map holds classes 0\.\.7 but num_classes is 3 "
                                         r"\(classes 0\.\.2\)"):
        smoother.update(classes, num_classes=3)
    classes[0, 0] = -1
    with pytest.raises(ValueError, match="num_classes is 3"):
        smoother.update(classes, num_classes=3)
    classes[0, 0] = 2
    assert smoother.update(classes, num_classes=3).shape == (4, 5, 3)


# ---------------------------------------------------------------------------------------------
# evaluate --dataset folder takes the class count from the preset


def test_evaluate_folder_takes_classes_from_the_preset(tiny_zoo, tmp_path, capsys):
    from deeplab_keras import cli
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    Image.fromarray(rng.integers(0, 256, (33, 33, 3), dtype=np.uint8)).save(data / "images" / "0.png")
    Image.fromarray(rng.integers(0, 3, (33, 33), dtype=np.uint8)).save(data / "masks" / "0.png")
    out = tmp_path / "r.json"
    rc = cli.main(["evaluate", "--preset", "tinyh", "--dataset", "folder", "--data-root",
                   str(data), "--output", str(out), "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    result = json.loads(out.read_text())
    assert result["num_classes"] == 3 and result["ignore_label"] == 255
    assert list(result["class_names"]) == LABELS


# ---------------------------------------------------------------------------------------------
# the layer order of docs/design.md

#: docs/design.md's order, low to high; modules of one rank may import each other (cycles are
#: test_architecture's); the shared helpers below may be imported from any layer
ORDER = [("layers",), ("backbones",), ("models",), ("importers",), ("hub", "builders"),
         ("inference",), ("evaluation", "export", "training"), ("video",), ("commands", "cli")]
SHARED = ("utils", "data", "frontend", "version", "filetypes", "transfer", "download",
          "archives")
#: modules that are shared helpers inside a layer's package: the one module that opens runtime
#: sessions (LiteRT, onnxruntime) needs no model code, and importers' parity check uses it
SHARED_MODULES = ("deeplab_keras.inference.runtime",)


def _layer(module):
    if module in SHARED_MODULES:
        return "utils"
    return module.split(".")[1] if module.count(".") else None


def test_imports_follow_the_documented_layer_order():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        from test_architecture import graph
    finally:
        sys.path.pop(0)
    rank = {name: i for i, names in enumerate(ORDER) for name in names}
    upward, shared_up = [], []
    for module, deps in graph().items():
        here = _layer(module)
        for dep in deps:
            there = _layer(dep)
            if here in rank and there in rank and rank[there] > rank[here]:
                upward.append(f"{module} -> {dep}")
            if here in SHARED and there in rank:
                shared_up.append(f"{module} -> {dep}")
    assert not upward, "imports against docs/design.md's layer order: " + "; ".join(sorted(upward))
    assert not shared_up, "shared helpers import a layer: " + "; ".join(sorted(shared_up))
    with open(os.path.join(REPO, "docs", "design.md")) as f:
        design = f.read()
    line = next(x for x in design.splitlines() if x.startswith("layers -> "))
    named = [part.strip() for part in line.split("->")]
    assert named.index("inference") < named.index("evaluation / export / training") \
        < named.index("video") < named.index("commands (CLI)")
