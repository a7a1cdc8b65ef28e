"""The shipped CamVid preset (trained by bench/train_camvid.py) still segments real CamVid val
images as measured: checks a few images against their ground truth."""
import os

import numpy as np
import pytest

CAMVID = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "camvid")


@pytest.mark.skipif(not os.path.isdir(CAMVID), reason="../shared/data/camvid (real CamVid) not present")
def test_camvid_preset_on_real_val_images():
    import deeplab_keras as dk
    from deeplab_keras import data
    preset = dk.get_preset("deeplabv3plus_mobilenetv2_camvid")
    assert preset["metrics"]["miou"] > 60.1  # SegNet, as published
    model = dk.from_preset("deeplabv3plus_mobilenetv2_camvid")
    pairs = data.list_pairs("camvid", CAMVID, "val")[::25]  # 5 images
    from deeplab_keras.evaluation.metrics import confusion_matrix, metrics_from_confusion
    cm = np.zeros((11, 11), np.int64)
    for x, y in data.make_dataset(pairs, dataset_info="camvid", batch_size=5):
        pred = np.argmax(model.predict_on_batch(x), -1)
        cm += confusion_matrix(y.numpy(), pred, 11, ignore_label=11)
    assert np.trace(cm) / cm.sum() > 0.85  # pixel accuracy (91.3% over all 101 val images)
    iou = np.nan_to_num(np.array(metrics_from_confusion(cm)["per_class_iou"]))
    assert iou[[0, 3, 8]].min() > 0.7  # sky, road, car
