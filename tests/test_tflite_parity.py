"""Op-by-op parity of imported TFLite files (deeplab_keras.importers.tflite_parity).

Each convolution of the imported model, fed the file's own input tensor of that op, must
reproduce the op's output to within the file's rounding (RMS <= 0.5 quantization steps; pure
rounding is 1/sqrt(12) = 0.29), or to float precision for a float file. This is what "the
import is exact" means for a quantized file; class-map agreement then only measures how much
the file's int8 activation rounding moves near-tie pixels on a given image (0.91 of the bird
image's pixels for MLPerf's post-training-quantized file, 0.98-0.99 on street scenes)."""
import numpy as np
import pytest
from PIL import Image

import deeplab_keras as dk
from conftest import CAMVID, REFERENCE, need

pytest.importorskip("ai_edge_litert")
from deeplab_keras.importers.tflite_parity import compare_with_file  # noqa: E402

FILES = ["mlperf_deeplabv3_mnv2_ade20k_int8.tflite", "deeplabv3_mnv2_pascal_quant.tflite",
         "deeplabv3_257_mv_gpu.tflite"]


def _images(size):
    h, w = size
    paths = [need(REFERENCE / "bird_segmentation.bmp"), need(REFERENCE / "cityscapes_segmentation.bmp")]
    paths += sorted(need(CAMVID / "val").glob("*.png"))[:2]
    return [np.array(Image.open(p).convert("RGB").resize((w, h), Image.BILINEAR)) for p in paths]


@pytest.mark.parametrize("filename", FILES)
def test_every_op_reproduces_the_file_to_its_rounding(filename):
    path = need(REFERENCE / filename)
    model = dk.from_tflite(path)
    report = compare_with_file(model, path, _images(model.input_shape[1:3]))
    layers, images = report["layers"], report["images"]
    assert len(layers) >= 50  # every conv of MobileNetV2 + head was compared
    if report["logit_step"]:  # quantized file: each op alone adds only rounding
        worst = max(layers, key=lambda r: r["local_steps"])
        assert worst["local_steps"] <= 0.5, worst
        assert max(r["relative_error"] for r in layers) < 0.2  # accumulated rounding stays small
    else:  # float file: the same arithmetic
        assert max(r["relative_error"] for r in layers) < 1e-4
    agreement = [i["agreement"] for i in images]
    print(filename, [round(a, 4) for a in agreement],
          [round(i["decided_agreement"], 4) for i in images])
    # street scenes (in or near the training domains): the file's decided pixels all agree
    assert min(i["decided_agreement"] for i in images[1:]) >= 0.99


def test_a_wrong_weight_is_found_at_its_op():
    """The check can fail: one depthwise kernel scaled by 1.1 shows up at exactly that op."""
    path = need(REFERENCE / "deeplabv3_mnv2_pascal_quant.tflite")
    model = dk.from_tflite(path)
    layer = model.get_layer("expanded_conv_5_depthwise")
    kernel, *rest = layer.get_weights()
    layer.set_weights([kernel * 1.1, *rest])
    report = compare_with_file(model, path, _images(model.input_shape[1:3])[1:2])
    bad = [r for r in report["layers"] if r["local_steps"] > 0.5]
    assert [r["layer"] for r in bad] == ["expanded_conv_5_depthwise_relu6"], bad
    with pytest.raises(ValueError, match=r"the file takes \(513, 513\)"):
        compare_with_file(model, path, [np.zeros((64, 64, 3), np.uint8)])
