"""Shared fixtures. Something expensive that several test modules use (a built model) is made once
per test session - once per pytest-xdist worker - by a session-scoped fixture here; a test that
would change it works on a copy. Plain helpers live in tests/factories.py."""
import json
import os
import pathlib
import shutil

import pytest

from tests import factories
from tests.loopback import Server

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = pathlib.Path(os.environ.get("DEEPLAB_KERAS_SHARED", REPO.parent / "shared"))
REFERENCE = SHARED / "reference"
CAMVID = SHARED / "data" / "camvid"


def need(path):
    """Skip the calling test when shared material is absent (a user's fresh clone)."""
    if not pathlib.Path(path).exists():
        pytest.skip(f"shared material not found: {path} (see README: ../shared)")
    return pathlib.Path(path)


@pytest.fixture
def server():
    """A loopback HTTP server (tests/loopback.py), closed after the test."""
    s = Server()
    yield s
    s.close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty download cache of the test's own, no mirror."""
    from deeplab_keras import download
    path = tmp_path / "cache"
    monkeypatch.setenv(download.CACHE_ENV, str(path))
    monkeypatch.delenv(download.MIRROR_ENV, raising=False)
    return path


@pytest.fixture(scope="session")
def tiny_keras(tmp_path_factory):
    """factories.tiny_keras_model (3 classes, labels, palette, saved as tiny.keras), built once per
    session for the video, segmenter, predict and export-report modules. Tests read the model and
    its file; none changes either (a test that would, copies the file). Modules write their own
    outputs to a folder of their own: ``module_tiny`` below."""
    return factories.tiny_keras_model(tmp_path_factory.mktemp("tiny_keras"))


def module_tiny(tiny_keras, tmp_path_factory, name):
    """``tiny_keras`` with ``tmp``, a fresh folder for one module's outputs."""
    return dict(tiny_keras, tmp=tmp_path_factory.mktemp(name))


@pytest.fixture(scope="session")
def tiny_int8_logits(tiny_keras, tmp_path_factory):
    """``tiny_keras`` exported int8 with logits at 33x41 (odd sizes: the resizes in and out are not
    identities) behind the gate, threshold 0 (random weights), once per session: the segmenter
    and video tests read it; none changes it."""
    from deeplab_keras.export.api import export_model
    path = str(tmp_path_factory.mktemp("tiny_int8") / "tiny_int8_logits.tflite")
    export_model(tiny_keras["model"], path, "tflite", "int8", input_size=(33, 41),
                 output_mode="logits", labels=factories.LABELS, num_parity=1, threshold=0.0)
    return path


@pytest.fixture(scope="session")
def export_tiny():
    """The export tests' decisive 5-class tiny DeepLab v3 (factories.decisive_tiny), built once.
    Tests export it and read it; none changes its weights."""
    return factories.decisive_tiny()


@pytest.fixture
def tiny_zoo(tmp_path, monkeypatch):
    """A catalogue = the real presets + a tiny preset whose weights a local mirror serves."""
    import deeplab_keras as dk
    from deeplab_keras import download
    from deeplab_keras.hub import zoo

    root = tmp_path / "zoo"
    shutil.copytree(zoo.zoo_dir() + "/presets", root / "presets")
    source = dk.DeepLabV3(input_shape=(33, 33, 3), **factories.ZOO_TINY)
    weights = str(tmp_path / "tiny.weights.h5")
    source.save_weights(weights)
    data = open(weights, "rb").read()
    server = Server()
    sha = server.add("tiny.weights.h5", data)
    preset = {"name": "tiny", "description": "test", "architecture": "deeplabv3",
              "backbone_only": False, "config": factories.ZOO_TINY, "dataset": "test",
              "labels": ["a", "b", "c"], "palette": [[0, 0, 0], [255, 0, 0], [0, 255, 0]],
              "ignore_label": 255, "preprocessing": {"input_size": [33, 33],
                                                     "normalization": "zero_mean_unit_range",
                                                     "resize": "align_corners"},
              "weights": [{"format": "keras_weights_h5", "url": "https://example.invalid/tiny",
                           "path": None, "file": "tiny.weights.h5", "sha256": sha,
                           "size": len(data), "default": True}],
              "metrics": {"miou": None, "split": None, "source": "test"}}
    (root / "presets" / "tiny.json").write_text(json.dumps(preset))
    monkeypatch.setattr(zoo, "ZOO_DIRS", (str(root),))
    monkeypatch.setenv(download.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(download.MIRROR_ENV, server.url)
    yield {"source": source, "server": server, "cache": tmp_path / "cache", "weights": weights,
           "tmp": tmp_path}
    server.close()
