"""Training: loss vs NumPy, class weights, poly schedule, BN freezing, NaN guard, resume from
BackupAndRestore, v2 multi-scale losses and the train CLI - on tiny models and synthetic data."""
import json
import os

import keras
import numpy as np
import pytest
from PIL import Image

from deeplab_keras import cli, training
from deeplab_keras.training import (NaNGuard, PolyWarmup, SegmentationLoss,
                                    median_frequency_weights)
from tests.factories import tiny_config as tiny_model_config
from tests.factories import train_config as tiny_config, training_folder as make_folder  # noqa: F401

TINY = tiny_model_config()


def reference_loss(logits, labels, num_classes, ignore, weights=None, top_k=100.0):
    logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
        - logits.max(-1, keepdims=True)
    out = []
    for lp, lab in zip(logp, labels):
        lab = lab.ravel()
        lp = lp.reshape(-1, num_classes)
        valid = (lab >= 0) & (lab < num_classes)
        safe = np.where(valid, lab, 0)
        w = valid * (1.0 if weights is None else np.asarray(weights)[safe])
        ce = -lp[np.arange(lab.size), safe]
        if top_k < 100:  # the k hardest labelled pixels by their own cross-entropy
            k = max(int(np.floor(valid.sum() * top_k / 100)), 1)
            order = np.where(valid)[0][np.argsort(-ce[valid], kind="stable")][:k]
            ce, w = ce[order], w[order]
        out.append((ce * w).sum() / max(w.sum(), 1e-6))
    return np.mean(out)


@pytest.mark.parametrize("weights,top_k", [(None, 100.0), ([0.5, 2.0, 1.0, 3.0], 100.0),
                                           ([0.5, 2.0, 1.0, 3.0], 30.0), (None, 10.0)])
def test_loss_matches_numpy(weights, top_k):
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 5, 6, 4)).astype(np.float32) * 3
    labels = rng.integers(0, 4, (2, 5, 6))
    labels[rng.random((2, 5, 6)) < 0.3] = 255
    loss = SegmentationLoss(4, 255, weights, top_k)
    got = float(loss(labels, logits))
    np.testing.assert_allclose(got, reference_loss(logits, labels, 4, 255, weights, top_k), rtol=1e-5)
    clone = SegmentationLoss.from_config(loss.get_config())
    assert float(clone(labels, logits)) == pytest.approx(got)
    # ignored pixels have no influence
    changed = logits.copy()
    changed[labels == 255] = 100.0
    assert float(loss(labels, changed)) == pytest.approx(got, rel=1e-6)


def test_hard_pixel_loss_keeps_the_hardest_labelled_pixels():
    """top_k_percent (OHEM): each image keeps its k hardest labelled pixels, k a share of its
    labelled pixels (CamVid's ignore label 11 never ranked, however many there are); class
    weights weigh the kept pixels without changing which are kept."""
    # 10 pixels of one image: 4 labelled (classes 0, 1, 2, 0), 6 ignored (11)
    labels = np.array([[0, 1, 2, 0, 11, 11, 11, 11, 11, 11]])
    # confidence in the true class: pixel 1 hardest, then 3, then 0, then 2
    logits = np.full((1, 10, 11), -5.0, np.float32)
    for pixel, (cls, margin) in enumerate([(0, 2.0), (1, -3.0), (2, 4.0), (0, 0.5)]):
        logits[0, pixel, cls] = margin
    logits[0, 4:, :] = 9.0 * np.eye(11, dtype=np.float32)[:6]  # ignored pixels: any logits
    ce = -np.log(np.exp(logits[0, :4]) / np.exp(logits[0, :4]).sum(-1, keepdims=True))[np.arange(4), labels[0, :4]]
    half = SegmentationLoss(11, 11, top_k_percent=50.0)  # 50 % of 4 labelled pixels: 2, not 5
    assert float(half(labels, logits)) == pytest.approx((ce[1] + ce[3]) / 2, rel=1e-5)
    weights = [1.0, 3.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    weighted = SegmentationLoss(11, 11, class_weights=weights, top_k_percent=50.0)
    assert float(weighted(labels, logits)) == pytest.approx((3 * ce[1] + ce[3]) / 4, rel=1e-5)
    # 1 %: at least the hardest pixel; 100 %: every labelled pixel, as without mining
    assert float(SegmentationLoss(11, 11, top_k_percent=1.0)(labels, logits)) == pytest.approx(ce[1], rel=1e-5)
    assert float(SegmentationLoss(11, 11)(labels, logits)) == pytest.approx(ce.mean(), rel=1e-5)


def test_median_frequency_weights():
    w = median_frequency_weights([100, 10, 0, 50], [2, 1, 0, 1])
    np.testing.assert_allclose(w, [1.0, 5.0, 0.0, 1.0])
    np.testing.assert_allclose(median_frequency_weights([100, 10, 0, 50], [2, 1, 0, 1], power=0.5),
                               [1.0, np.sqrt(5.0), 0.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(median_frequency_weights([30, 10, 20]), [20 / 30, 2.0, 1.0], rtol=1e-6)
    with pytest.raises(ValueError, match="no labelled pixel"):
        median_frequency_weights([0, 0])


def test_poly_warmup_schedule():
    s = PolyWarmup(0.1, total_steps=100, power=0.9, warmup_steps=10)
    got = [float(s(t)) for t in (0, 5, 10, 55, 100, 200)]
    np.testing.assert_allclose(got, [0.0, 0.05, 0.1, 0.1 * 0.5 ** 0.9, 0.0, 0.0], atol=1e-7)
    opt = keras.optimizers.SGD(s, momentum=0.9)
    restored = keras.optimizers.SGD.from_config(json.loads(json.dumps(opt.get_config())))
    assert isinstance(restored._learning_rate, PolyWarmup)
    assert float(restored._learning_rate(55)) == pytest.approx(got[3])
    with pytest.raises(ValueError, match="warmup_steps"):
        PolyWarmup(0.1, total_steps=10, warmup_steps=10)


def test_freeze_and_synchronize_batch_norm():
    import deeplab_keras as dk
    model = dk.DeepLabV3(3, input_shape=(33, 33, 3), **TINY)
    bns = training.bn.batch_norm_layers(model)
    assert training.freeze_batch_norm(model, ("Conv", "expanded_conv_")) < len(bns)
    frozen = [b for b in bns if not b.trainable]
    assert frozen and all(b.name.startswith(("Conv", "expanded_conv")) for b in frozen)
    before = [b.moving_mean.numpy().copy() for b in frozen]
    model.compile("sgd", SegmentationLoss(3, 255))
    model.fit(np.random.rand(2, 33, 33, 3) * 255, np.random.randint(0, 3, (2, 33, 33)), verbose=0)
    assert all(np.array_equal(a, b.moving_mean.numpy()) for a, b in zip(before, frozen))
    assert training.synchronize_batch_norm(model) == len(bns) and all(b.synchronized for b in bns)


def test_nan_guard_stops_with_message(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    x = np.ones((4, 3), np.float32)
    x[2] = np.nan
    with pytest.raises(FloatingPointError, match=r"loss became nan at epoch 1, batch 2.*learning rate"):
        model.fit(x, np.ones((4, 2)), batch_size=2, epochs=2, verbose=0, shuffle=False,
                  callbacks=[NaNGuard(str(tmp_path))])


class _Crash(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt("simulated kill after epoch 2")


def test_interrupted_training_resumes_from_backup(tmp_path):
    config = tiny_config(tmp_path, epochs=3)
    with pytest.raises(KeyboardInterrupt):
        training.train(config, callbacks=[_Crash()])
    out = tmp_path / "run"
    assert json.loads((out / ".deeplab-keras-backup" / "training_metadata.json").read_text())["epoch"] == 2
    model, history = training.train(config)
    assert history.epoch == [2]  # only the third epoch ran
    assert [h["epoch"] for h in json.loads((out / "history.json").read_text())] == [1, 2, 3]
    assert int(model.optimizer.iterations.numpy()) == 6  # optimizer state came back too
    assert not (out / ".deeplab-keras-backup").exists() and (out / "last.weights.h5").exists()


def test_deeplabv2_multi_scale_losses(tmp_path):
    config = tiny_config(tmp_path, architecture="deeplabv2", steps_per_epoch=1, batch_size=1,
                         warmup_steps=0,
                         model={"backbone": "resnet50", "output_stride": 16,
                                "atrous_rates": [1, 2], "multi_scale": True,
                                "scales": [1.0, 0.5], "return_all_scales": True})
    model, history = training.train(config)
    assert len(model.outputs) == 3  # fused + 2 scales, one loss each
    losses = [k for k in history.history if k.endswith("loss")]
    assert len(losses) == 4 and np.isfinite(history.history["loss"][0])


def test_cli_train_tiny_recipe(tmp_path, capsys):
    recipe = tmp_path / "tiny.json"
    recipe.write_text(json.dumps(tiny_config(tmp_path, val_split="train")))
    out = tmp_path / "cli_run"
    rc = cli.main(["train", "--recipe", str(recipe), "--output-dir", str(out),
                   "--strategy", "mirrored",
                   "--set", "mixed_precision=mixed_bfloat16", "class_weights=median_frequency"])
    assert rc == 0, capsys.readouterr().err
    assert "trained 1 epoch(s)" in capsys.readouterr().out
    saved = json.loads((out / "config.json").read_text())
    assert len(saved["class_weights_used"]) == 3 and saved["mixed_precision"] == "mixed_bfloat16"
    assert (out / "best.weights.h5").exists() and (out / "logs").is_dir() is False
    assert keras.mixed_precision.global_policy().name == "float32"
    assert cli.main(["train", "--recipe", str(recipe), "--set", "epoch=3"]) == 1
    assert "unknown training setting 'epoch'" in capsys.readouterr().err


def test_recalibrate_batch_norm_averages_batch_statistics():
    import tensorflow as tf
    model = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization(name="bn"),
                              keras.layers.BatchNormalization(name="frozen")])
    model.get_layer("frozen").trainable = False
    batches = [np.full((2, 4), v, np.float32) + np.array([[0], [2]], np.float32) for v in (1, 3, 8)]
    ds = tf.data.Dataset.from_tensor_slices(np.stack(batches)).map(lambda x: (x, x))
    updated = training.recalibrate_batch_norm(model, ds, steps=3)
    assert [layer.name for layer in updated] == ["bn"]
    bn, frozen = model.get_layer("bn"), model.get_layer("frozen")
    np.testing.assert_allclose(bn.moving_mean.numpy(), np.full(4, (2 + 4 + 9) / 3), rtol=1e-6)
    np.testing.assert_allclose(bn.moving_variance.numpy(), np.ones(4), rtol=1e-5)
    assert bn.momentum == 0.99 and np.all(frozen.moving_mean.numpy() == 0)


def test_train_on_joined_splits(tmp_path):
    """train_split="train+val" trains on both folders (median-frequency weights counted over
    both); a missing part is named before any training starts."""
    root = tmp_path / "data"
    make_folder(root / "train", n=3)
    make_folder(root / "val", n=2)
    config = tiny_config(tmp_path, data_root=str(root), train_split="train+val",
                         class_weights="median_frequency")
    from deeplab_keras.training.trainer import _pairs, class_weights, dataset_info
    assert len(_pairs(training.make_config(config), "train+val", None)) == 5
    model, history = training.train(config)
    assert np.isfinite(history.history["loss"][0])
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["train_split"] == "train+val" and len(saved["class_weights_used"]) == 3
    assert class_weights(training.make_config(config), dataset_info(training.make_config(config))) \
        == saved["class_weights_used"]
    with pytest.raises(FileNotFoundError, match="test"):
        training.train(dict(config, train_split="train+test", output_dir=str(tmp_path / "run2")))


def test_ema_and_epoch_snapshots_average_the_weights(tmp_path):
    """ema_momentum: the run ends with the optimizer's moving average (saved as
    ema.weights.h5, the last epoch's own weights stay in last.weights.h5); EpochSnapshots keeps
    the last epochs, and average_weights loads their mean."""
    config = tiny_config(tmp_path, epochs=3, ema_momentum=0.5)
    snaps = tmp_path / "run" / "snapshots"
    model, _ = training.train(config, callbacks=[training.EpochSnapshots(str(snaps), 3, 2)])
    out = tmp_path / "run"
    assert sorted(p.name for p in snaps.iterdir()) == ["epoch_002.weights.h5", "epoch_003.weights.h5"]
    ema = [w.copy() for w in model.get_weights()]
    clone = keras.models.clone_model(model)
    clone.load_weights(out / "ema.weights.h5")
    assert all(np.array_equal(a, b) for a, b in zip(ema, clone.get_weights()))
    clone.load_weights(out / "last.weights.h5")
    last = clone.get_weights()
    assert any(not np.allclose(a, b) for a, b in zip(ema, last))  # the average is not the last step
    clone.load_weights(snaps / "epoch_003.weights.h5")  # the last snapshot is the last epoch
    assert all(np.array_equal(a, b) for a, b in zip(last, clone.get_weights()))
    clone.load_weights(snaps / "epoch_002.weights.h5")
    second = clone.get_weights()
    training.average_weights(clone, [snaps / "epoch_002.weights.h5", snaps / "epoch_003.weights.h5"])
    for mean, a, b in zip(clone.get_weights(), second, last):
        np.testing.assert_allclose(mean, (a.astype(np.float64) + b) / 2, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="at least one"):
        training.average_weights(clone, [])
    with pytest.raises(ValueError, match=r"last must be an integer in \[1, 3\]"):
        training.EpochSnapshots(str(snaps), 3, 4)
    for bad in (1, 0, "0.9"):
        with pytest.raises(ValueError, match=r"setting ema_momentum must be a finite number in \(0, 1\)"):
            training.make_config(config, ema_momentum=bad)


def test_training_on_jittered_crop_sizes(tmp_path):
    """crop_jitter: batches of several sizes train in one fit (the training step is traced for
    the sizes it meets); a negative jitter is refused as a setting."""
    from deeplab_keras.utils.validate import SettingError
    model, history = training.train(tiny_config(tmp_path, crop_jitter=16, steps_per_epoch=4))
    assert np.isfinite(history.history["loss"][0])
    assert json.loads((tmp_path / "run" / "config.json").read_text())["crop_jitter"] == 16
    with pytest.raises(SettingError, match="setting crop_jitter must be an integer"):
        training.make_config(tiny_config(tmp_path, crop_jitter=-1))


def test_recipe_extends_another(tmp_path):
    """"extends": a recipe (an ablation row) is its base recipe with the settings it gives
    changed; chains are followed and a loop is refused."""
    base = tmp_path / "base.json"
    base.write_text(json.dumps(tiny_config(tmp_path, epochs=2, top_k_percent=50.0)))
    row = tmp_path / "row.json"
    row.write_text(json.dumps({"extends": str(base), "epochs": 3, "model.alpha": 0.5}))
    config = training.make_config(str(row))
    assert config["epochs"] == 3 and config["top_k_percent"] == 50.0 and config["model"]["alpha"] == 0.5
    assert config["model"]["backbone"] == "mobilenet_v2" and "extends" not in config
    (tmp_path / "chain.json").write_text(json.dumps({"extends": str(row), "crop_jitter": 16}))
    assert training.make_config(str(tmp_path / "chain.json"))["epochs"] == 3
    base.write_text(json.dumps({"extends": str(row)}))
    with pytest.raises(ValueError, match="extend each other in a loop"):
        training.make_config(str(row))
    row.write_text(json.dumps({"extends": str(tmp_path / "missing.json")}))
    with pytest.raises(FileNotFoundError, match="recipe not found"):
        training.make_config(str(row))


def test_focus_classes_are_named_by_label_or_id(tmp_path):
    """crop_focus_classes: class names of the dataset or ids; one the data lacks is refused in
    one line before any training; a wrong type is refused as a setting."""
    from deeplab_keras.training.trainer import dataset_info, focus_class_ids
    from deeplab_keras.utils.validate import SettingError
    config = training.make_config(tiny_config(tmp_path, crop_focus_classes=["class_2", 1]))
    assert focus_class_ids(config, dataset_info(config)) == [1, 2]
    model, history = training.train(dict(config, crop_focus_probability=1.0))
    assert np.isfinite(history.history["loss"][0])
    with pytest.raises(ValueError, match=r"^crop_focus_classes: no class 'Pole' in folder; its classes: class_0"):
        training.train(tiny_config(tmp_path, crop_focus_classes=["Pole"], output_dir=str(tmp_path / "r2")))
    assert not (tmp_path / "r2" / "config.json").exists()
    with pytest.raises(ValueError, match="class id 7 is not one of folder's 3 classes"):
        focus_class_ids(dict(config, crop_focus_classes=[7]), dataset_info(config))
    with pytest.raises(SettingError, match="setting crop_focus_classes must be null or a list"):
        training.make_config(tiny_config(tmp_path, crop_focus_classes="Pole"))
