"""int8 ONNX (onnxruntime static QDQ) behind the parity gate, and ``evaluate --artifact``: the
exported file itself on labelled data, with the same metrics as the Keras model."""
import json
import os

import numpy as np
import pytest

import deeplab_keras as dk
from deeplab_keras.export import export_model
from deeplab_keras.export.calibration import synthetic_images

from conftest import CAMVID, need
from tests.factories import EXPORT_LABELS as LABELS, EXPORT_SIZE as SIZE

pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")
pytest.importorskip("tf2onnx", reason="the [onnx] extra is not installed")


@pytest.fixture(scope="module")
def tiny(export_tiny):
    return export_tiny


def test_onnx_int8_is_qdq_per_channel_and_gated(tiny, tmp_path):
    import onnx
    out = tmp_path / "q.onnx"
    r = export_model(tiny, out, "onnx", "int8", SIZE, output_mode="logits", labels=LABELS,
                     report_dir=tmp_path)
    assert r["passed"] and r["parity"]["agreement"] >= 0.9
    model = onnx.load(str(out))
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    # per-channel weights: some DequantizeLinear has a vector scale
    inits = {i.name: i for i in model.graph.initializer}
    scales = [inits[n.input[1]] for n in model.graph.node
              if n.op_type == "DequantizeLinear" and n.input[1] in inits]
    assert any(len(s.dims) == 1 and s.dims[0] > 1 for s in scales)
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["deeplab_keras"])["labels"] == LABELS
    # same tensor names as the TFLite file
    assert r["deploy"]["input"]["name"] == "image" and r["deploy"]["output"]["name"] == "logits"
    assert [f for f in os.listdir(tmp_path) if ".tmp" in f or ".float" in f or ".pre" in f] == []
    # deeplab-keras benchmark runs it
    from deeplab_keras import cli
    assert cli.main(["benchmark", str(out), "--threads", "1", "--runs", "2", "--warmup", "1",
                     "--same-process", "--json", str(tmp_path / "b.json")]) in (0, None)
    assert json.loads((tmp_path / "b.json").read_text())[0]["median_ms"] > 0


def test_onnx_rejects_other_quantization(tiny, tmp_path):
    with pytest.raises(ValueError, match="ONNX: none or int8"):
        export_model(tiny, tmp_path / "x.onnx", "onnx", "float16", SIZE)
    assert os.listdir(tmp_path) == []


def _folder_dataset(root, n=3):
    from PIL import Image
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i, img in enumerate(synthetic_images((SIZE, SIZE), n, seed=7)):
        Image.fromarray(img.astype("uint8")).save(root / "images" / f"{i}.png")
        Image.fromarray(rng.integers(0, 5, (SIZE, SIZE)).astype("uint8")).save(root / "masks" / f"{i}.png")


@pytest.mark.parametrize("fmt,mode", [("tflite", "classes"), ("onnx", "logits")])
def test_evaluate_artifact_matches_keras(tiny, tmp_path, fmt, mode):
    """A float export evaluated by its runtime gives the Keras model's confusion matrix (up to
    near-tie pixels), through the same metrics code."""
    from deeplab_keras import data
    from deeplab_keras.evaluation import evaluate
    from deeplab_keras.export.artifact_eval import evaluate_artifact
    _folder_dataset(tmp_path / "ds")
    out = tmp_path / f"m.{fmt}"
    export_model(tiny, out, fmt, "none", SIZE, output_mode=mode)
    info = data.custom_info(5, 255)
    pairs = data.list_pairs("folder", str(tmp_path / "ds"), "val")
    got = evaluate_artifact(out, pairs, dataset=info)
    ref = evaluate(tiny, pairs, dataset=info)
    assert got["num_images"] == ref["num_images"] == 3
    assert abs(got["miou"] - ref["miou"]) < 0.005
    diff = np.abs(np.array(got["confusion_matrix"]) - np.array(ref["confusion_matrix"])).sum()
    assert diff <= 0.002 * got["num_pixels"] * 2
    assert got["artifact"]["format"] == fmt and got["artifact"]["output_mode"] == mode


def test_evaluate_artifact_cli_and_bad_arguments(tiny, tmp_path, capsys):
    from deeplab_keras import cli
    _folder_dataset(tmp_path / "ds")
    out = tmp_path / "m.tflite"
    export_model(tiny, out, "tflite", "int8", SIZE)
    base = ["evaluate", "--dataset", "folder", "--num-classes", "5", "--data-root", str(tmp_path / "ds"),
            "--split", "val"]
    assert cli.main(base + ["--artifact", str(out), "--output", str(tmp_path / "r.json")]) in (0, None)
    text = capsys.readouterr().out
    assert "LiteRT" in text and "mIoU" in text
    assert json.loads((tmp_path / "r.json").read_text())["artifact"]["input_dtype"] == "uint8"
    for extra, match in ((["--flip"], "need a Keras model"), (["--preset", "x"], "alone"),):
        with pytest.raises(ValueError, match=match):
            from deeplab_keras.commands import evaluate as ev
            import argparse
            p = argparse.ArgumentParser().add_subparsers()
            ev.add_parser(p)
            args = p.choices["evaluate"].parse_args(base[1:] + ["--artifact", str(out)] + extra)
            ev.run(args)
    with pytest.raises(FileNotFoundError):
        cli_args = base + ["--artifact", str(tmp_path / "missing.tflite")]
        from deeplab_keras.commands import evaluate as ev
        import argparse
        p = argparse.ArgumentParser().add_subparsers()
        ev.add_parser(p)
        ev.run(p.choices["evaluate"].parse_args(cli_args[1:]))
    # a file predicting more classes than the dataset has: a clear error, not a wrong mIoU
    with pytest.raises(ValueError, match="classes"):
        from deeplab_keras.export.artifact_eval import evaluate_artifact
        from deeplab_keras import data
        evaluate_artifact(out, data.list_pairs("folder", str(tmp_path / "ds"), "val"),
                          dataset=data.custom_info(2, 255))


def test_camvid_int8_onnx_and_tflite_on_labels(tmp_path):
    """CamVid val (first 8 images): int8 ONNX and int8 TFLite files of the shipped preset, run by
    their runtimes, stay within 1.5 mIoU of the Keras model on the same images (the full-split
    figures, 0.5 goal, are in bench/results/mobile_camvid.md)."""
    need(CAMVID / "val")
    from deeplab_keras import data
    from deeplab_keras.evaluation import evaluate
    from deeplab_keras.export.artifact_eval import evaluate_artifact
    model = dk.from_preset("deeplabv3plus_mobilenetv2_camvid")
    pairs = data.list_pairs("camvid", str(CAMVID), "val")[:8]
    ref = evaluate(model, pairs, dataset="camvid", input_size=(360, 480))["miou"]  # the files' size
    calib = sorted(str(CAMVID / "val" / f) for f in os.listdir(CAMVID / "val"))[-12:]  # not the 8 evaluated
    for fmt in ("onnx", "tflite"):
        out = tmp_path / f"c.{fmt}"
        r = export_model(model, out, fmt, "int8", (360, 480), output_mode="logits" if fmt == "onnx" else "classes",
                         calibration_data=calib, num_calibration=8, num_parity=4)
        assert "held-out" in r["parity_images"]
        got = evaluate_artifact(out, pairs, dataset="camvid", num_threads=2)["miou"]
        print(f"camvid first 8 val: keras {100 * ref:.2f}, {fmt} int8 {100 * got:.2f}")
        assert abs(got - ref) * 100 < 1.5


@pytest.mark.parametrize("mode", ["classes", "lowres_logits"])
def test_evaluate_artifact_other_image_size(tiny, tmp_path, mode):
    """Images of another size than the file's input: resized in, output brought back to the
    label's size (labels never resampled); lowres logits are upsampled before the argmax."""
    from PIL import Image
    from deeplab_keras import data
    from deeplab_keras.export.artifact_eval import evaluate_artifact
    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i, img in enumerate(synthetic_images((60, 80), 2, seed=9)):
        Image.fromarray(img.astype("uint8")).save(root / "images" / f"{i}.png")
        Image.fromarray(np.full((60, 80), i, np.uint8)).save(root / "masks" / f"{i}.png")
    out = tmp_path / "m.tflite"
    export_model(tiny, out, "tflite", "none", SIZE, output_mode=mode)
    r = evaluate_artifact(out, data.list_pairs("folder", str(root), "val"), dataset=data.custom_info(5, 255))
    assert r["num_pixels"] == 2 * 60 * 80 and r["artifact"]["output_mode"] == mode
