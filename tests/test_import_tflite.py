"""Google's published DeepLab TFLite files imported into our Keras models reproduce them."""
import numpy as np
import pytest
from PIL import Image

from conftest import REFERENCE, need
from deeplab_keras import DeepLabV3, from_tflite
from deeplab_keras.importers.tflite import import_tflite
from deeplab_keras.importers.tflite_describe import describe


def golden_agreement(pred, gt):
    """Google's segmentation-model test metric: common / (2N - common), mask 255 -> 0."""
    gt = np.where(gt == 255, 0, gt)
    common = int((pred == gt).sum())
    return common / (2 * gt.size - common)


def _bird():
    image = np.array(Image.open(need(REFERENCE / "bird_segmentation.bmp")).convert("RGB"))
    mask = np.array(Image.open(REFERENCE / "bird_segmentation_mask.bmp"))
    return image, mask


def _run_tflite(path, x):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    if inp["dtype"] == np.uint8:
        interpreter.set_tensor(inp["index"], x[None].astype(np.uint8))
    else:
        interpreter.set_tensor(inp["index"], (x[None].astype(np.float32) - 127.5) / 127.5)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]


def test_float_dm05_reproduces_google_logits():
    path = need(REFERENCE / "deeplabv3_257_mv_gpu.tflite")
    config = describe(path)
    assert (config["alpha"], config["output_stride"], config["num_classes"]) == (0.5, 8, 21)
    model = from_tflite(path)
    image, mask = _bird()
    small = np.array(Image.fromarray(image).resize((257, 257), Image.BILINEAR))
    theirs = _run_tflite(path, small)
    ours = model.predict(small[None].astype(np.float32), verbose=0)[0]
    assert np.abs(theirs - ours).max() < 1e-3
    assert (theirs.argmax(-1) == ours.argmax(-1)).mean() == 1.0
    back = np.array(Image.fromarray(ours.argmax(-1).astype(np.uint8)).resize((513, 513), Image.NEAREST))
    assert golden_agreement(back, mask) >= 0.936


def test_int8_mnv2_dequantized_reaches_golden_agreement():
    path = need(REFERENCE / "deeplabv3_mnv2_pascal_quant.tflite")
    model = from_tflite(path)
    image, mask = _bird()
    ours = model.predict(image[None].astype(np.float32), verbose=0)[0].argmax(-1)
    assert golden_agreement(ours, mask) >= 0.95
    theirs = _run_tflite(path, image)
    assert (theirs == ours).mean() > 0.99


def test_wrong_architecture_and_bad_files_are_refused(tmp_path):
    path = need(REFERENCE / "deeplabv3_257_mv_gpu.tflite")
    wrong_width = DeepLabV3(num_classes=21, backbone="mobilenet_v2", alpha=1.0, output_stride=8,
                            atrous_rates=(), weights=None)
    with pytest.raises(ValueError, match="kernel has shape"):
        import_tflite(wrong_width, path)
    with_aspp = DeepLabV3(num_classes=21, backbone="mobilenet_v2", alpha=0.5, output_stride=8,
                          weights=None)
    with pytest.raises(ValueError, match="concat_projection"):
        import_tflite(with_aspp, path)
    other_classes = DeepLabV3(num_classes=11, backbone="mobilenet_v2", alpha=0.5, output_stride=8,
                              atrous_rates=(), weights=None)
    report = import_tflite(other_classes, path, skip_classifier=True)
    assert report["skipped"] == ["logits_semantic"] and not report["missing"]
    corrupt = tmp_path / "corrupt.tflite"
    corrupt.write_bytes(b"TFL3" + b"\0" * 64)
    with pytest.raises(ValueError, match="not a readable TFLite"):
        import_tflite(other_classes, corrupt)
    with pytest.raises(FileNotFoundError):
        import_tflite(other_classes, tmp_path / "missing.tflite")
