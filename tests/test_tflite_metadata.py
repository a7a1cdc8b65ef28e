"""Input normalisation declared only in TFLite metadata (NormalizationOptions), as MediaPipe /
Task Library files carry it: ``dk.from_tflite`` reads it, so the Keras model still takes raw
0-255 RGB and matches what an app feeding ``(x - mean) / std`` gets from the file."""
import sys

import numpy as np
import pytest

import deeplab_keras as dk
from conftest import REFERENCE, need
from deeplab_keras.importers.tflite_describe import describe

GPU = "deeplabv3_257_mv_gpu.tflite"  # float input, no normalisation ops, no metadata


def _with_metadata(tmp_path, mean, std):
    from deeplab_keras.export import metadata
    if not metadata.available():
        pytest.skip("mediapipe (deeplab-keras[mobile]) not installed: no metadata writer")
    _, seg, _, _ = metadata._writers()
    data = bytearray(need(REFERENCE / GPU).read_bytes())
    out, _ = seg.MetadataWriter.create(data, input_norm_mean=mean, input_norm_std=std).populate()
    path = tmp_path / "with_metadata.tflite"
    path.write_bytes(out)
    return path


def _file_logits(path, x):
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_path=str(path))
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x.astype(np.float32))
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


def test_per_channel_metadata_normalisation_is_read_and_reproduced(tmp_path):
    mean, std = [120.0, 115.0, 105.0], [60.0, 58.0, 57.0]
    path = _with_metadata(tmp_path, mean, std)
    norm = describe(path)["input_normalization"]
    assert "metadata" in norm["source"]
    np.testing.assert_allclose(norm["scale"], 1 / np.array(std))
    np.testing.assert_allclose(norm["offset"], -np.array(mean) / np.array(std))
    model = dk.from_tflite(path)
    x = np.random.default_rng(0).uniform(0, 255, (1, 257, 257, 3)).astype(np.float32)
    theirs = _file_logits(path, (x - np.array(mean)) / np.array(std))  # what MediaPipe feeds
    ours = model.predict(x, verbose=0)
    np.testing.assert_allclose(ours, theirs, atol=2e-3 * np.abs(theirs).max())
    # the same model imported from the file without metadata assumes [-1, 1]: different logits
    assert describe(need(REFERENCE / GPU))["input_normalization"]["source"].startswith("assumed")


def test_scalar_metadata_equals_the_usual_convention(tmp_path):
    norm = describe(_with_metadata(tmp_path, [127.5], [127.5]))["input_normalization"]
    assert norm["scale"] == pytest.approx(1 / 127.5) and norm["offset"] == pytest.approx(-1.0)
    assert "metadata" in norm["source"]


def test_without_mediapipe_the_guess_is_not_silent(tmp_path, monkeypatch):
    path = _with_metadata(tmp_path, [0.0], [1.0])
    monkeypatch.setitem(sys.modules, "mediapipe.tasks.metadata", None)  # import fails
    with pytest.warns(UserWarning, match=r"deeplab-keras\[mobile\].*preprocessing="):
        norm = describe(path)["input_normalization"]
    assert norm["source"].startswith("assumed")
