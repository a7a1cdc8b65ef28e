"""TF1 checkpoint (Google's variable names) and keras.applications .h5 importers."""
import os
import re
import tarfile

import numpy as np
import pytest
import tensorflow as tf

import deeplab_keras as dk
from deeplab_keras.importers.keras_h5 import import_keras_h5
from deeplab_keras.importers.mapping import WeightMismatchError
from deeplab_keras.importers.tf1_checkpoint import import_tf1_checkpoint

SIZE = 65


def small_mobile_deeplab(num_classes=5, seed=None):
    if seed is not None:
        tf.keras.utils.set_random_seed(seed)
    return dk.DeepLabV3(num_classes=num_classes, backbone="mobilenet_v2", alpha=0.35,
                        output_stride=16, atrous_rates=(), input_shape=(SIZE, SIZE, 3),
                        align_corners=True)


def google_name(layer, weight):
    """Our layer/weight -> Google's TF-slim variable name (written independently of the importer)."""
    bn = layer.endswith("_BatchNorm")
    scope = layer[:-len("_BatchNorm")] if bn else layer
    m = re.fullmatch(r"(expanded_conv(?:_\d+)?)_(expand|depthwise|project)", scope)
    if m:
        scope = f"MobilenetV2/{m[1]}/{m[2]}"
    elif scope == "Conv":
        scope = "MobilenetV2/Conv"
    elif scope == "logits_semantic":
        scope = "logits/semantic"
    if bn:
        return f"{scope}/BatchNorm/{weight}"
    if weight == "bias":
        return f"{scope}/biases"
    return f"{scope}/{'depthwise_weights' if 'depthwise' in scope else 'weights'}"


def write_tf1_checkpoint(model, prefix, drop=None, extra=None, reshape=None):
    names, tensors = ["global_step"], [tf.constant(1234, tf.int64)]
    for layer in model.layers:
        for w, v in zip(layer.weights, layer.get_weights()):
            name = google_name(layer.name, w.name)
            if name == drop:
                continue
            if name == reshape:
                v = v[..., :-1]
            names.append(name)
            tensors.append(tf.constant(v))
            if layer.name == "aspp0" and w.name == "kernel":  # an optimizer slot: ignored
                names.append(name + "/Momentum")
                tensors.append(tf.constant(np.zeros_like(v)))
    for name, value in (extra or {}).items():
        names.append(name)
        tensors.append(tf.constant(value))
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=tensors)
    return prefix


def test_tf1_checkpoint_tarball_roundtrip(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPLAB_KERAS_CACHE", str(tmp_path / "cache"))  # extracted there (by sha256)
    source = small_mobile_deeplab(seed=1)
    for layer in source.layers:  # non-trivial BN statistics
        if layer.name.endswith("_BatchNorm"):
            g, b, m, v = layer.get_weights()
            layer.set_weights([g * 1.1, b + 0.1, m + 0.05, v * 1.5])
    folder = tmp_path / "deeplabv3_test_2018_01_01"
    folder.mkdir()
    write_tf1_checkpoint(source, str(folder / "model.ckpt-30000"))
    (folder / "frozen_inference_graph.pb").write_bytes(b"not used")
    tarball = tmp_path / "deeplabv3_test_2018_01_01.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    target = small_mobile_deeplab(seed=2)
    report = import_tf1_checkpoint(target, str(tarball))
    assert "global_step" in report["ignored"] and any(n.endswith("/Momentum") for n in report["ignored"])
    x = np.random.default_rng(0).uniform(0, 255, (1, SIZE, SIZE, 3)).astype("float32")
    np.testing.assert_allclose(target.predict(x, verbose=0), source.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-5)


def test_tf1_checkpoint_missing_unused_misshaped(tmp_path):
    source = small_mobile_deeplab(seed=1)
    target = small_mobile_deeplab(seed=2)
    with pytest.raises(WeightMismatchError, match=r"missing.*expanded_conv_3_depthwise"):
        import_tf1_checkpoint(target, write_tf1_checkpoint(
            source, str(tmp_path / "a" / "model.ckpt"),
            drop="MobilenetV2/expanded_conv_3/depthwise/depthwise_weights"))
    with pytest.raises(WeightMismatchError, match=r"unused.*aspp9"):
        import_tf1_checkpoint(target, write_tf1_checkpoint(
            source, str(tmp_path / "b" / "model.ckpt"),
            extra={"aspp9/weights": np.zeros((1, 1, 2, 2), np.float32)}))
    with pytest.raises(WeightMismatchError, match=r"mis-shaped.*concat_projection"):
        import_tf1_checkpoint(target, write_tf1_checkpoint(
            source, str(tmp_path / "c" / "model.ckpt"), reshape="concat_projection/weights"))


def test_tf1_checkpoint_new_classifier(tmp_path):
    source = small_mobile_deeplab(num_classes=5, seed=1)
    prefix = write_tf1_checkpoint(source, str(tmp_path / "model.ckpt"))
    target = small_mobile_deeplab(num_classes=3, seed=2)
    with pytest.raises(WeightMismatchError, match="skip_classifier"):
        import_tf1_checkpoint(target, prefix)
    before = target.get_layer("logits_semantic").get_weights()[0].copy()
    import_tf1_checkpoint(target, prefix, skip_classifier=True)
    np.testing.assert_array_equal(target.get_layer("logits_semantic").get_weights()[0], before)
    np.testing.assert_array_equal(target.get_layer("aspp0").get_weights()[0],
                                  source.get_layer("aspp0").get_weights()[0])


def test_keras_applications_mobilenet_v2_h5(tmp_path):
    import tf_keras

    tf_keras.utils.set_random_seed(3)
    ka = tf_keras.applications.MobileNetV2(weights=None, include_top=False, alpha=0.35,
                                           input_shape=(96, 96, 3))
    for layer in ka.layers:
        if isinstance(layer, tf_keras.layers.BatchNormalization):
            g, b, m, v = layer.get_weights()
            layer.set_weights([g + 0.2, b + 0.1, m + 0.3, v + 0.5])
    path = str(tmp_path / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5")
    ka.save_weights(path)  # legacy h5 format, as keras.applications publishes
    ours = dk.DeepLabV3Plus(num_classes=4, backbone="mobilenet_v2", alpha=0.35, divisible_by=8,
                            input_shape=(SIZE, SIZE, 3))
    report = import_keras_h5(ours, path)
    assert report["ignored"] == ["Conv_1", "Conv_1_bn"]
    assert "logits_semantic" in report["kept"] and "aspp0" in report["kept"]
    # block_16 project output (before keras' Conv_1) equals our backbone output at stride 32
    probe_ka = tf_keras.Model(ka.input, ka.get_layer("block_16_project_BN").output)
    ours32 = dk.DeepLabV3(num_classes=4, backbone="mobilenet_v2", alpha=0.35, divisible_by=8,
                          output_stride=32, input_shape=(96, 96, 3), include_preprocessing=False)
    import_keras_h5(ours32, path)
    import keras
    probe = keras.Model(ours32.input, ours32.get_layer("expanded_conv_16_project_BatchNorm").output)
    x = np.random.default_rng(1).uniform(-1, 1, (1, 96, 96, 3)).astype("float32")
    np.testing.assert_allclose(probe.predict(x, verbose=0), probe_ka.predict(x, verbose=0),
                               rtol=1e-4, atol=1e-4)


def test_keras_h5_mismatch_is_loud(tmp_path):
    import tf_keras

    ka = tf_keras.applications.MobileNetV2(weights=None, include_top=False, alpha=0.35,
                                           input_shape=(96, 96, 3))
    path = str(tmp_path / "mnv2.h5")
    ka.save_weights(path)
    wider = dk.DeepLabV3(num_classes=4, backbone="mobilenet_v2", alpha=0.5, atrous_rates=(),
                         input_shape=(SIZE, SIZE, 3))
    with pytest.raises(WeightMismatchError, match="mis-shaped"):
        import_keras_h5(wider, path)
    with pytest.raises(ValueError, match="not a readable HDF5"):
        bad = tmp_path / "bad.h5"
        bad.write_bytes(b"garbage")
        import_keras_h5(wider, str(bad))


@pytest.mark.parametrize("arch", ["resnet50", "vgg16"])
def test_keras_applications_resnet_vgg_h5(tmp_path, arch):
    """Names, BGR->RGB flip of the first conv and (ResNet) conv-bias folding into BatchNorm."""
    import keras
    import tf_keras

    tf_keras.utils.set_random_seed(4)
    if arch == "resnet50":
        ka = tf_keras.applications.ResNet50(weights=None, include_top=False, input_shape=(32, 32, 3))
        for layer in ka.layers:  # non-zero conv biases and BN statistics
            if layer.weights:
                layer.set_weights([w + np.random.default_rng(0).normal(0, 0.1, w.shape).astype(w.dtype)
                                   if w.ndim == 1 else w for w in layer.get_weights()])
        ours = dk.DeepLabV3(num_classes=2, backbone="resnet50", input_shape=(32, 32, 3),
                            include_preprocessing=False)
        pairs = [("conv1_bn", "conv1_BatchNorm")]
    else:
        ka = tf_keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
        ours = dk.DeepLabV1(num_classes=2, input_shape=(32, 32, 3), include_preprocessing=False)
        pairs = [("block1_conv2", "conv1_2")]
    path = str(tmp_path / f"{arch}_notop.h5")
    ka.save_weights(path)
    report = import_keras_h5(ours, path)
    assert "logits_semantic" in report["kept"] or "fc8" in report["kept"]
    x = np.random.default_rng(2).uniform(-100, 100, (1, 32, 32, 3)).astype("float32")
    for theirs, mine in pairs:
        a = tf_keras.Model(ka.input, ka.get_layer(theirs).output).predict(x[..., ::-1], verbose=0)
        b = keras.Model(ours.input, ours.get_layer(mine).output).predict(x, verbose=0)
        np.testing.assert_allclose(b, a, rtol=2e-3, atol=2e-3)


def test_tf1_fused_separable_layout(tmp_path):
    """Older Xception checkpoints: one separable_conv2d scope with depthwise + pointwise weights."""
    from deeplab_keras.importers.tf1_checkpoint import read_checkpoint

    scope = "xception_65/entry_flow/block1/unit_1/xception_module/separable_conv1"
    names = [f"{scope}_depthwise/depthwise_weights", f"{scope}_depthwise/pointwise_weights",
             f"{scope}_pointwise/BatchNorm/beta", "xception_65/logits/biases"]
    values = [np.ones((3, 3, 4, 1), np.float32), np.ones((1, 1, 4, 8), np.float32),
              np.zeros(8, np.float32), np.zeros(10, np.float32)]
    prefix = str(tmp_path / "model.ckpt")
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * 4,
                      tensors=[tf.constant(v) for v in values])
    source, ignored = read_checkpoint(prefix)
    layer = "entry_flow_block1_unit_1_xception_module_separable_conv1"
    assert source[layer + "_pointwise"]["kernel"].shape == (1, 1, 4, 8)
    assert source[layer + "_pointwise_BatchNorm"]["beta"].shape == (8,)
    np.testing.assert_allclose(source[layer + "_depthwise_BatchNorm"]["moving_variance"], 0.999)
    assert ignored == ["xception_65/logits/biases"]
