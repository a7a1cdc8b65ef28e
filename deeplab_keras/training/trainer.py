"""``train(recipe, **overrides)``: data, model, loss, optimizer, callbacks and ``model.fit``
under a ``tf.distribute`` strategy, from one flat configuration (see :mod:`.config`)."""
import os
import time

import keras
import numpy as np

from deeplab_keras import data as dkdata
from deeplab_keras.evaluation.metrics import SegmentationMetrics
from deeplab_keras.utils import io
from deeplab_keras.utils.backend import require_tensorflow
from deeplab_keras.training import bn as bnlib
from deeplab_keras.training import run_folder
from deeplab_keras.training.callbacks import (AtomicCheckpoint, atomic_save_weights, ChiefBackupAndRestore, NaNGuard,
                                             Throughput, TimeBudget)
from deeplab_keras.training.config import fit_warmup, make_config
from deeplab_keras.training.losses import SegmentationLoss, median_frequency_weights
from deeplab_keras.training.schedules import PolyWarmup
from deeplab_keras.training.strategy import fix_multi_worker_build, get_strategy, worker_info


def dataset_info(config):
    if config["dataset"] == "folder":
        return dkdata.custom_info(config["num_classes"], config["ignore_label"],
                                  labels=config.get("labels"))
    return dkdata.get_dataset_info(config["dataset"])


def _pairs(config, split, limit):
    if config["tfrecords"]:
        return config["tfrecords"][split] if isinstance(config["tfrecords"], dict) else config["tfrecords"]
    if not config["data_root"]:
        raise ValueError("set data_root (folder of the dataset) or tfrecords")
    pairs = dkdata.list_pairs(config["dataset"], config["data_root"], split)
    return pairs[:limit] if limit else pairs


def focus_class_ids(config, info):
    """``crop_focus_classes`` as class ids (names looked up in the dataset's labels)."""
    names = config.get("crop_focus_classes")
    if not names:
        return None
    ids = []
    for name in names:
        if isinstance(name, str):
            if name not in info.labels:
                raise ValueError(f"crop_focus_classes: no class {name!r} in {info.name}; its classes: "
                                 f"{', '.join(info.labels)}")
            ids.append(info.labels.index(name))
        elif name >= info.num_classes:
            raise ValueError(f"crop_focus_classes: class id {name} is not one of {info.name}'s "
                             f"{info.num_classes} classes (0..{info.num_classes - 1})")
        else:
            ids.append(int(name))
    return sorted(set(ids))


def build_datasets(config, info, num_outputs=1):
    """Training (augmented, repeated) and validation datasets, labels repeated for multi-output
    models (DeepLab v2 multi-scale: one loss per scale + fused)."""
    train_pairs = _pairs(config, config["train_split"], config["max_train_images"])
    train = dkdata.make_dataset(
        train_pairs, dataset_info=info, batch_size=config["batch_size"],
        crop_size=config["crop_size"], training=True, seed=config["seed"],
        min_scale=config["min_scale"], max_scale=config["max_scale"], cache=config["cache"],
        repeat=True, check=config["check_data"], crop_jitter=config["crop_jitter"],
        focus_classes=focus_class_ids(config, info), focus_probability=config["crop_focus_probability"])
    val = None
    if config["val_split"]:
        val_pairs = _pairs(config, config["val_split"], config["max_val_images"])
        val = dkdata.make_dataset(val_pairs, dataset_info=info,
                                  batch_size=config["val_batch_size"], cache=config["cache"],
                                  check=config["check_data"])
    if num_outputs > 1:
        train = train.map(lambda x, y: (x, (y,) * num_outputs))
        val = val.map(lambda x, y: (x, (y,) * num_outputs)) if val is not None else None
    return train, val, None if config["tfrecords"] else len(train_pairs)


def class_weights(config, info):
    spec = config["class_weights"]
    if spec is None:
        return None
    if spec == "median_frequency":
        ds = dkdata.make_dataset(_pairs(config, config["train_split"], config["max_train_images"]),
                                 dataset_info=info, batch_size=8, check=None)
        pixels, images = dkdata.class_pixel_counts(ds, info.num_classes)
        return median_frequency_weights(pixels, images, config["class_weight_power"]).tolist()
    if len(spec) != info.num_classes:
        raise ValueError(f"class_weights has {len(spec)} values for {info.num_classes} classes")
    return [float(w) ** config["class_weight_power"] for w in spec]


def build_training_model(config, info):
    """The model of a training config (architecture + model arguments), initialised from
    ``init_tflite`` / ``init_weights``, BatchNorm frozen and synchronised as configured;
    returns ``(model, report)``."""
    from deeplab_keras.hub.preset import model_spec
    from deeplab_keras.hub.weights import load_weights
    from deeplab_keras.builders import build_model
    architecture, kwargs = model_spec(config)
    kwargs.setdefault("num_classes", info.num_classes)
    if kwargs["num_classes"] != info.num_classes:
        raise ValueError(f"model num_classes={kwargs['num_classes']} but the data has "
                         f"{info.num_classes} classes")
    model = build_model(architecture, **kwargs)
    before = {layer.name: [w.copy() for w in layer.get_weights()]
              for layer in bnlib.batch_norm_layers(model)}
    # any class count (new_head: the classifier is fresh when the source's classes differ);
    # every other tensor must fit, or the error names it (dk.load_weights)
    report = None
    if config["init_tflite"]:  # partial: e.g. a v3 file (no decoder) into a v3+ model
        load_weights(model, config["init_tflite"], new_head=True, partial=True)
        report = {"source": config["init_tflite"]}
    elif config["init_weights"]:
        load_weights(model, config["init_weights"], new_head=True)
    pretrained = {layer.name for layer in bnlib.batch_norm_layers(model)
                  if any(not np.array_equal(a, b) for a, b in zip(before[layer.name], layer.get_weights()))}
    freeze = config["freeze_bn"]
    if freeze == "pretrained":
        bnlib.freeze_batch_norm(model, pretrained) if pretrained else 0
    elif freeze:
        bnlib.freeze_batch_norm(model)
    frozen = sorted(layer.name for layer in bnlib.batch_norm_layers(model) if not layer.trainable)
    if config["sync_bn"]:
        bnlib.synchronize_batch_norm(model)
    return model, {"import": report, "frozen_bn": frozen}


def make_optimizer(config, total_steps):
    schedule = PolyWarmup(config["learning_rate"], total_steps, power=config["poly_power"],
                          warmup_steps=config["warmup_steps"])
    name = config["optimizer"].lower()
    # ema_momentum: Keras keeps the moving average of the weights; fit() ends by copying it in
    ema = dict(use_ema=True, ema_momentum=float(config["ema_momentum"])) if config.get("ema_momentum") else {}
    if name == "sgd":
        opt = keras.optimizers.SGD(schedule, momentum=config["momentum"],
                                   weight_decay=config["weight_decay"] or None, **ema)
    elif name == "adamw":
        opt = keras.optimizers.AdamW(schedule, weight_decay=config["weight_decay"], **ema)
    else:
        raise ValueError(f"optimizer must be 'sgd' or 'adamw', got {config['optimizer']!r}")
    if config["weight_decay"]:
        opt.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    return opt


def train(config_or_recipe=None, *, callbacks=None, **overrides):
    """Train from a recipe (name, path or dict) with ``overrides``; returns ``(model, history)``.
    ``callbacks``: extra Keras callbacks.

    Resumes automatically from ``output_dir/.deeplab-keras-backup``
    (``keras.callbacks.BackupAndRestore``) when a previous run with the same ``output_dir`` was
    interrupted. ``output_dir`` must be new, empty or a run folder of ours; it is locked while
    the run writes (see :mod:`.run_folder`)."""
    require_tensorflow("training (tf.distribute strategies, tf.data pipelines)")
    config = make_config(config_or_recipe, **overrides)
    keras.utils.set_random_seed(int(config["seed"]))
    strategy = get_strategy(config["strategy"])
    _, is_chief = worker_info() if config["strategy"] == "multi_worker" else (0, True)
    with run_folder.claim(config["output_dir"], is_chief):
        return _train(config, strategy, is_chief, callbacks)


def _train(config, strategy, is_chief, callbacks):
    out = config["output_dir"]
    info = dataset_info(config)
    focus_class_ids(config, info)  # a class the data does not have: refused before any work
    cw = class_weights(config, info)
    previous_policy = keras.mixed_precision.global_policy()
    try:  # the policy matters while layers are created; leave the global one as it was
        if config["mixed_precision"]:
            keras.mixed_precision.set_global_policy(config["mixed_precision"])
        with strategy.scope():
            model, build_report = build_training_model(config, info)
            num_outputs = len(model.outputs)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    train_ds, val_ds, n_train = build_datasets(config, info, num_outputs)
    steps = config["steps_per_epoch"] or max(1, (n_train or 0) // config["batch_size"])
    if not steps:
        raise ValueError("set steps_per_epoch (the number of training images is unknown)")
    total = steps * config["epochs"]
    config["warmup_steps"] = fit_warmup(config["warmup_steps"], total)  # short runs (issue 11)
    with strategy.scope():
        loss = SegmentationLoss(info.num_classes, info.ignore_label, cw, config["top_k_percent"])
        # our metric: out-of-range labels make it nan instead of vanishing (keras' MeanIoU)
        metrics = [SegmentationMetrics(info.num_classes, info.ignore_label, from_logits=True,
                                       name="mean_iou")]
        model.compile(optimizer=make_optimizer(config, total),
                      loss=[loss] * num_outputs if num_outputs > 1 else loss,
                      metrics=[metrics] + [[]] * (num_outputs - 1) if num_outputs > 1 else metrics,
                      jit_compile=config["jit_compile"])
    fix_multi_worker_build(model, strategy)
    extra = list(callbacks or [])
    callbacks = [
        Throughput(config["batch_size"]),
        AtomicCheckpoint(out, monitor="val_mean_iou" if val_ds is not None else "mean_iou",
                         is_chief=is_chief),
        ChiefBackupAndRestore(run_folder.backup_dir(out), is_chief=is_chief,
                              double_checkpoint=True),
        NaNGuard(out),
    ]
    if config["tensorboard"] and is_chief:
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(out, "logs"), update_freq=10))
    if config["minutes"]:
        callbacks.append(TimeBudget(config["minutes"]))
    callbacks += extra
    if is_chief:
        io.write_json(os.path.join(out, "config.json"),
                      dict(config, class_weights_used=cw, frozen_bn=len(build_report["frozen_bn"]),
                           frozen_bn_layers=build_report["frozen_bn"]))
    start = time.time()
    # shuffle=False: train_ds shuffles itself (make_dataset); Keras ignores fit's shuffle for a
    # tf.data.Dataset and warns when it is left at its default True
    history = model.fit(train_ds, epochs=config["epochs"], steps_per_epoch=steps,
                        validation_data=val_ds, validation_freq=config["validation_freq"],
                        callbacks=callbacks, verbose=config["verbose"], shuffle=False)
    history.seconds = time.time() - start
    if config.get("ema_momentum") and is_chief:
        # fit() copied the moving average into the model; last.weights.h5 keeps the last
        # epoch's own weights, so both can be evaluated
        atomic_save_weights(model, os.path.join(out, "ema.weights.h5"))
    history.steps_per_epoch = steps
    history.model_file = save_model_file(model, config, info) if is_chief else None
    return model, history


def save_model_file(model, config, info, path=None):
    """Write the trained model as one ``.keras`` file (default ``<output_dir>/model.keras``,
    atomically) that ``predict``/``evaluate``/``export --weights FILE.keras`` load alone: a
    fresh, uncompiled copy of the architecture carrying the dataset's labels, palette and ignore
    label (the training model carries loss, optimizer and frozen-BN state a user does not
    want). Returns the path."""
    import deeplab_keras as dk
    from deeplab_keras.hub.preset import model_spec
    architecture, kwargs = model_spec(config)
    kwargs.setdefault("num_classes", info.num_classes)
    clean = dk.build_model(architecture, **kwargs, labels=list(info.labels),
                           palette=[list(c) for c in info.palette], ignore_label=info.ignore_label)
    # the resize semantics it was trained with (the loader runs it the same way)
    clean.preprocessing = {"resize": clean.resize_semantics}
    clean.set_weights(model.get_weights())
    path = path or os.path.join(config["output_dir"], "model.keras")
    with io.atomic_path(path, suffix=".keras") as tmp:
        clean.save(tmp)
    return path
