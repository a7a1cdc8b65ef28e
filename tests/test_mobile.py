"""Mobile deployment: standard TFLite metadata, the mediapipe target gated by MediaPipe's own
ImageSegmenter, the app-developer hand-off in the report, held-out parity images; on CamVid val
the shipped preset's float / float16 / int8 MediaPipe files against the Keras argmax."""
import json
import os

import numpy as np
import pytest

import deeplab_keras as dk
from deeplab_keras.export import export_model, read_tflite_metadata
from deeplab_keras.export.calibration import synthetic_images

from conftest import CAMVID, need
from tests.factories import EXPORT_LABELS as LABELS, EXPORT_SIZE as SIZE, EXPORT_TINY as TINY

mp = pytest.importorskip("mediapipe", reason="the [mobile] extra (mediapipe) is not installed")
from deeplab_keras.export import mediapipe_gate, metadata  # noqa: E402


@pytest.fixture(scope="module")
def tiny(export_tiny):
    return export_tiny


@pytest.mark.parametrize("quantize", ["none", "int8"])
def test_mediapipe_target(tiny, tmp_path, quantize):
    out = tmp_path / f"mp_{quantize}.tflite"
    r = export_model(tiny, out, "tflite", quantize, SIZE, output_mode="logits", labels=LABELS,
                     report_dir=tmp_path, target="mediapipe")
    m = r["parity"]
    assert r["passed"] and out.is_file()
    assert m["mediapipe_agreement_with_keras"] >= mediapipe_gate.THRESHOLDS[quantize]
    assert m["mediapipe_labels_match"] and m["mediapipe_labels"] == LABELS
    # standard metadata, read back with MediaPipe's displayer
    md = metadata.read_segmenter_metadata(out)
    assert md["labels"] == LABELS and md["license"] == "Apache-2.0" and md["version"] == dk.__version__
    assert md["name"] == f"mp_{quantize}" and md["description"]
    inp = md["subgraph_metadata"][0]["input_tensor_metadata"][0]
    assert inp["content"]["content_properties"]["color_space"] == "RGB"
    norm = inp["process_units"][0]["options"]
    assert norm["mean"] == [0.0] and norm["std"] == [1.0]
    assert inp["stats"]["min"] == [0.0] and inp["stats"]["max"] == [255.0]
    outmd = md["subgraph_metadata"][0]["output_tensor_metadata"][0]
    assert outmd["associated_files"][0]["type"] == "TENSOR_AXIS_LABELS"
    assert md["min_parser_version"] == "1.5.0"  # custom segmenter options metadata
    # our own JSON entry survives the populator
    assert read_tflite_metadata(out)["labels"] == LABELS
    # same tensor names as the ONNX file; hand-off in the report beside the artifact
    d = r["deploy"]
    assert d["input"]["name"] == "image" and d["output"]["name"] == "logits"
    assert d["input"]["dtype"] == ("uint8" if quantize == "int8" else "float32")
    assert open(d["label_file"]).read().split() == LABELS
    text = (tmp_path / f"mp_{quantize}.md").read_text()
    assert "```kotlin" in text and "ImageSegmenter" in text and "agreement with Keras argmax" in text
    assert json.loads((tmp_path / f"mp_{quantize}.json").read_text())["deploy"]["output"]["name"] == "logits"


def test_report_python_snippet_runs(tiny, tmp_path):
    out = tmp_path / "snip.tflite"
    r = export_model(tiny, out, "tflite", "none", SIZE, labels=LABELS, target="mediapipe")
    from PIL import Image
    Image.fromarray(synthetic_images((SIZE, SIZE), 1)[0].astype("uint8")).save(tmp_path / "photo.jpg")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        ns = {}
        exec("import mediapipe as mp\n" + r["deploy"]["snippets"]["python"], ns)
    finally:
        os.chdir(cwd)
    assert ns["names"] == LABELS and ns["mask"].shape[:2] == (SIZE, SIZE)


def test_mediapipe_target_refuses_class_map(tiny, tmp_path):
    with pytest.raises(metadata.MetadataError, match="4-D"):
        export_model(tiny, tmp_path / "x.tflite", "tflite", "none", SIZE, output_mode="classes",
                     target="mediapipe")
    with pytest.raises(ValueError, match="tflite"):
        export_model(tiny, tmp_path / "x.onnx", "onnx", "none", SIZE, output_mode="logits",
                     target="mediapipe")
    with pytest.raises(ValueError, match="uint8"):
        export_model(tiny, tmp_path / "x.tflite", "tflite", "int8", SIZE, output_mode="logits",
                     io_dtype="int8", target="mediapipe")
    assert os.listdir(tmp_path) == []


def test_class_map_export_says_mediapipe_needs_scores(tiny, tmp_path):
    r = export_model(tiny, tmp_path / "c.tflite", "tflite", "none", SIZE, labels=LABELS,
                     report_dir=tmp_path)
    assert "4-D" in r["notes"]["mediapipe"]
    assert "4-D" in (tmp_path / "c.md").read_text()
    # and indeed MediaPipe cannot use it (a float class-map file has no standard metadata)
    with pytest.raises(metadata.MetadataError, match="NormalizationOptions"):
        mediapipe_gate.Segmenter(tmp_path / "c.tflite")


def test_mediapipe_gate_rejects_bad_file(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"TFL3" + b"\0" * 100)
    with pytest.raises(metadata.MetadataError, match="cannot load"):
        mediapipe_gate.Segmenter(bad)


def test_gate_fails_when_mediapipe_labels_differ(tiny, tmp_path, monkeypatch):
    """A file whose embedded labels are not the model's fails the MediaPipe gate, leaves no file."""
    real = metadata.write_segmenter_metadata
    monkeypatch.setattr(metadata, "write_segmenter_metadata",
                        lambda data, labels, *a, **k: real(data, list(reversed(labels)), *a, **k))
    with pytest.raises(Exception, match="labels"):
        export_model(tiny, tmp_path / "l.tflite", "tflite", "none", SIZE, labels=LABELS, target="mediapipe")
    assert not (tmp_path / "l.tflite").exists()


def test_parity_uses_held_out_images(tiny, tmp_path):
    from PIL import Image
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, img in enumerate(synthetic_images((SIZE, SIZE), 6, seed=3)):
        Image.fromarray(img.astype("uint8")).save(folder / f"{i}.png")
    r = export_model(tiny, tmp_path / "h.tflite", "tflite", "int8", SIZE, output_mode="logits",
                     calibration_data=str(folder), num_calibration=4, num_parity=2)
    assert r["parity_images"].startswith("2 held-out images (not used for calibration)")
    r = export_model(tiny, tmp_path / "h2.tflite", "tflite", "int8", SIZE, output_mode="logits",
                     calibration_data=str(folder), num_calibration=6, num_parity=2)
    assert "calibration images" in r["parity_images"] and "no other" in r["parity_images"]


def test_export_cli_mediapipe_target(tmp_path, capsys):
    from deeplab_keras import cli
    out = tmp_path / "sub" / "cli.tflite"
    out.parent.mkdir()
    rc = cli.main(["export", "--architecture", "deeplabv3", "--config", json.dumps(TINY),
                   "--target", "mediapipe", "--input-size", str(SIZE), "--output", str(out),
                   "--threshold", "0"])
    text = capsys.readouterr().out
    assert rc in (0, None) and out.is_file()
    assert "MediaPipe ImageSegmenter: loads" in text and "agreement with Keras argmax" in text
    assert (out.parent / "cli.json").is_file() and (out.parent / "cli.md").is_file()  # beside it
    rc = cli.main(["export", "--architecture", "deeplabv3", "--config", json.dumps(TINY),
                   "--format", "tflite", "--input-size", str(SIZE), "--output", str(tmp_path / "c.tflite"),
                   "--threshold", "0"])
    assert "NOTE: MediaPipe ImageSegmenter and the TFLite Task Library need a 4-D" in capsys.readouterr().out


def test_minimum_parser_version_rules():
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb
    import flatbuffers
    md = fb.ModelMetadataT()
    md.subgraphMetadata = [fb.SubGraphMetadataT()]
    b = flatbuffers.Builder(0)
    b.Finish(md.Pack(b), b"M001")
    assert metadata.minimum_parser_version(b.Output()) == "1.0.0"
    md.subgraphMetadata[0].inputProcessUnits = []
    b = flatbuffers.Builder(0)
    b.Finish(md.Pack(b), b"M001")
    assert metadata.minimum_parser_version(b.Output()) == "1.1.0"


# -- CamVid val: the shipped preset in MediaPipe ---------------------------------------------------
CAMVID_SIZE = (360, 480)  # CamVid val's own 480x360 (the fast export; the preset works at 536x720)


@pytest.fixture(scope="module")
def camvid_model():
    need(CAMVID / "val")
    return dk.from_preset("deeplabv3plus_mobilenetv2_camvid")


@pytest.mark.parametrize("quantize,threshold", [("none", 0.99), ("float16", 0.99), ("int8", 0.97)])
def test_camvid_preset_in_mediapipe(camvid_model, tmp_path, quantize, threshold):
    labels = dk.get_preset("deeplabv3plus_mobilenetv2_camvid")["labels"]
    val = str(CAMVID / "val")
    r = export_model(camvid_model, tmp_path / "camvid.tflite", "tflite", quantize, CAMVID_SIZE,
                     calibration_data=val, num_calibration=8, num_parity=4, labels=labels,
                     target="mediapipe")
    m = r["parity"]
    assert "held-out" in r["parity_images"] or quantize not in ("int8",)
    assert m["mediapipe_agreement_with_keras"] >= threshold, m
    assert m["mediapipe_labels"] == labels
    print(f"camvid {quantize}: MediaPipe agreement {m['mediapipe_agreement_with_keras']:.4f} on {r['parity_images']}")


def test_mediapipe_target_without_mediapipe_is_a_clear_error(tiny, tmp_path, monkeypatch):
    """No mediapipe: the mediapipe target refuses (naming the extra); a plain logits TFLite
    export still works and says the standard metadata was not written."""
    monkeypatch.setattr(metadata, "available", lambda: False)
    with pytest.raises(metadata.MetadataError, match=r"deeplab-keras\[mobile\]"):
        export_model(tiny, tmp_path / "x.tflite", "tflite", "none", SIZE, target="mediapipe")
    assert not (tmp_path / "x.tflite").exists()
    r = export_model(tiny, tmp_path / "y.tflite", "tflite", "none", SIZE, output_mode="logits")
    assert r["passed"] and "not written" in r["deploy"]["standard_metadata"]
    assert "mediapipe_agreement_with_keras" not in r["parity"]
