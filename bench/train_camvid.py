"""The CamVid result: fine-tune DeepLab v3+ MobileNetV2 (Google's VOC weights) on CamVid train at
480x360 within a wall-clock budget, then evaluate the best checkpoint on all 101 val images at
full 480x360 (mIoU + per-class IoU) and write JSON.

    nohup nice -n 5 python bench/train_camvid.py --minutes 50 > runs/camvid.log 2>&1 &

With a hold-out of train (``--set train_split=train-minus:0006R0 val_split=train-only:0006R0``,
or a ``zoo/recipes/camvid_ablation_*`` recipe), the final weights are scored on both: the
hold-out (``result["holdout"]``, where settings are chosen) and val (``result["final"]``, the
check that is reported); each printed figure names its split.

Killed? Run the same command again: training resumes from runs/<name>/.deeplab-keras-backup.
"""
import argparse
import glob
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from deeplab_keras.utils.io import write_json  # noqa: E402

RECIPE = "zoo/recipes/camvid_deeplabv3plus_mobilenetv2.json"


def evaluate(model, pairs, info):
    """The library's evaluate (the segmenter layer, one metric) over full-size images (ignore
    label excluded), in the bench's units (percent)."""
    from deeplab_keras.evaluation import evaluate as evaluate_source
    r = evaluate_source(model, pairs, dataset=info, input_size="image")
    return {"miou": r["miou"] * 100,
            "per_class_iou": {name: round(v * 100, 2) for name, v in
                              zip(info.labels, r["per_class_iou"])},
            "pixel_accuracy": r["pixel_accuracy"] * 100,
            "images": r["num_images"], "eval_seconds": r["seconds"],
            "confusion_matrix": r["confusion_matrix"]}


def evaluate_at_size(model, pairs, info, size, scales=(1.0,), flip=False):
    """The same evaluate with the model run at ``size`` (the working size; what predict runs),
    optionally with scales + flip, in the bench's units."""
    from deeplab_keras.evaluation import evaluate as evaluate_source
    r = evaluate_source(model, pairs, dataset=info, scales=scales, flip=flip, input_size=list(size))
    return {"miou": r["miou"] * 100, "input_size": list(size), "scales": list(scales), "flip": flip,
            "eval_seconds": r["seconds"],
            "per_class_iou": {n: round(v * 100, 2) for n, v in r["per_class"].items()}}


PRESET = "deeplabv3plus_mobilenetv2_camvid"
#: CamVid's images (480x360): the size the model runs at unless --input-size says otherwise
IMAGE_SIZE = (360, 480)
#: test-time augmentation measured with --tta (BiSeNet-style multi-scale + flip)
TTA_SCALES = (0.75, 1.0, 1.25, 1.5)


#: settings that may differ between the shipped train+val run and its train-only evidence run
RUN_ONLY = ("train_split", "val_split", "output_dir", "minutes", "verbose", "tensorboard", "name",
            "validation_freq")


def _commands(result):
    commands = [result["command"]] + ([result["eval_command"]] if result.get("eval_command") else [])
    init = result["config"].get("init_weights")  # a second stage: include the first's commands
    if init and os.path.isfile(os.path.join(os.path.dirname(init), "result.json")):
        with open(os.path.join(os.path.dirname(init), "result.json")) as f:
            first = json.load(f)
        commands = [first["command"]] + ([first["eval_command"]] if first.get("eval_command") else []) + commands
    return commands


#: settings that only record something beside the training trajectory: a run with them is the
#: same recipe as far as its "final" (the last epoch's own weights) goes
RECORD_ONLY = ("ema_momentum",)


def trains_on_val(config):
    from deeplab_keras.data import split_names
    return "val" in split_names(config.get("train_split"))


#: the split every figure of this bench is reported on (the held-out check)
VAL = "val"


def holdout_split(config):
    """The training-time validation split when it is not val: a hold-out of the training data's
    source (e.g. ``train-only:0006R0``) to choose settings on; None when there is none."""
    split = config.get("val_split")
    return split if split and split != VAL else None


def check_holdout(config, holdout_pairs, train_pairs):
    """Refuse (one line) a hold-out that shares images with the training split or reads val."""
    from deeplab_keras.data import split_names
    split = holdout_split(config)
    if VAL in split_names(split):
        raise ValueError(f"val_split {split!r} reads val: val is the reported check here, choose "
                         "settings on a hold-out of train (e.g. train-only:0006R0)")
    shared = {os.path.realpath(i) for i, _ in holdout_pairs} & {os.path.realpath(i) for i, _ in train_pairs}
    if shared:
        raise ValueError(f"val_split {split!r} shares {len(shared)} images with train_split "
                         f"{config['train_split']!r}: it is not held out (train on the rest, e.g. "
                         f"train-minus:SEQUENCE with val_split train-only:SEQUENCE)")


def describe_split(split, images):
    kind = ("held out, the reported check" if split == VAL else
            "hold-out of train, where settings are chosen")
    return f"{split} ({images} images, {kind})"


def check_evidence(result, evidence):
    """The train-only run whose val score stands for a train+val run's recipe must be that
    same recipe: every setting equal except the splits and run bookkeeping."""
    if trains_on_val(evidence["config"]):
        raise ValueError("the evidence run trained on val: its val score is not held out")
    from deeplab_keras.training.config import DEFAULTS
    # a setting added since a run was made reads as its default there (e.g. crop_jitter 0)
    a, b = dict(DEFAULTS, **result["config"]), dict(DEFAULTS, **evidence["config"])
    differ = sorted(k for k in set(a) | set(b)
                    if k not in RUN_ONLY + RECORD_ONLY and a.get(k) != b.get(k))
    if differ:
        raise ValueError("the evidence run's recipe differs from this run's in " +
                         ", ".join(f"{k} ({b.get(k)!r} vs {a.get(k)!r})" for k in differ))


def held_out(run, input_size=None):
    """``(single-scale figure, scales + flip figure or None, where)`` of a run's final weights:
    at the working size ``input_size`` (from --input-size) when given, else at the images' own."""
    if input_size and tuple(input_size) != IMAGE_SIZE:
        key = "x".join(str(v) for v in input_size)
        at = (run.get("at_input_size") or {}).get(key) or {}
        if "single" not in at:
            raise ValueError(f"this run was not evaluated with the model at {key}: rerun it with "
                             f"--eval-only --tta --input-size {input_size[0]} {input_size[1]}")
        return at["single"], at.get("scales_flip"), f", the model run at {key}"
    return run.get("final") or run["last"], run.get("final_scales_flip"), ""


def scales_flip_block(run, input_size=None):
    """The preset's scales + flip figure from a train-only run evaluated with --tta (else {})."""
    _, tta, where = held_out(run, input_size)
    if not tta:
        return {}
    return {"miou_scales_flip": round(tta["miou"], 2),
            "scales_flip": {"scales": tta["scales"], "flip": tta["flip"],
                            "per_class_iou": tta["per_class_iou"],
                            "source": "measured: " + " && ".join(_commands(run)) +
                                      f" (101 CamVid val images at 480x360{where}, scales " +
                                      " ".join(str(s) for s in tta["scales"]) + " + flip)"}}


def metrics_block(result, evidence=None, input_size=None):
    """The preset's metrics. A run trained on val cannot score itself there: its block carries
    the val figure of the train-only evidence run and marks its own val figure as trained-on.
    ``input_size``: the working size the figures are measured at (the preset's input size)."""
    if not trains_on_val(result["config"]):
        final, _, where = held_out(result, input_size)
        where = f" (101 CamVid val images at 480x360{where}, single scale, no flip)"
        return {"miou": round(final["miou"], 2), "split": "val", "per_class_iou": final["per_class_iou"],
                **scales_flip_block(result, input_size),
                "source": "measured: " + " && ".join(_commands(result)) + where}
    if evidence is None:
        raise ValueError(f"these weights trained on {result['config']['train_split']}; publish them with "
                         "--evidence RUN_DIR, the train-only run of the same recipe whose val score is "
                         "the held-out evidence")
    check_evidence(result, evidence)
    held, _, at = held_out(evidence, input_size)
    where = f" (101 CamVid val images at 480x360{at}, single scale, no flip)"
    own = result["final"]
    return {"miou": round(held["miou"], 2), "split": "val",
            "per_class_iou": held["per_class_iou"], **scales_flip_block(evidence, input_size),
            "evidence": "val score of the same recipe trained on train only (val held out); the "
                        f"shipped weights are trained on {result['config']['train_split']}",
            "source": "measured: " + " && ".join(_commands(evidence)) + where,
            "trained_on": result["config"]["train_split"],
            "trained_on_val_miou": round(own["miou"], 2),
            "trained_on_source": "trained and measured (val is part of its training data, NOT held "
                                 "out): " + " && ".join(_commands(result)) +
                                 " (101 CamVid val images at 480x360, single scale, no flip)"}


def publish(result, info, zoo_dir="zoo", evidence=None, input_size=None):
    """Ship the final weights as preset ``deeplabv3plus_mobilenetv2_camvid`` (zoo/weights +
    zoo/presets), with sha256, size and the measured val mIoU (see :func:`metrics_block`)."""
    import hashlib
    import shutil
    metrics = metrics_block(result, evidence, input_size)  # refuses before anything is written
    init = os.path.basename(str(result["config"].get("init_tflite") or result["config"].get("init_weights")))
    name = f"{PRESET}.weights.h5"
    target = os.path.join(zoo_dir, "weights", name)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copyfile(result["final"]["weights"], target + ".tmp")
    os.replace(target + ".tmp", target)
    with open(target, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    model_cfg = dict(result["config"]["model"])
    preset = {
        "name": PRESET,
        "description": "DeepLab v3+, MobileNetV2 1.0 (mobile head, OS 16), CamVid 11 classes, "
                       f"fine-tuned from {init} on CamVid {result['config']['train_split']} "
                       "(bench/train_camvid.py)",
        "architecture": result["config"]["architecture"],
        "backbone_only": False,
        "config": model_cfg,
        "dataset": "camvid",  # labels, palette: data.DATASETS["camvid"] (their only copy)
        "ignore_label": info.ignore_label,
        "preprocessing": {"input_size": list(input_size or IMAGE_SIZE),
                          "normalization": "zero_mean_unit_range",
                          "resize": "align_corners"},
        "weights": [{"format": "keras_weights_h5", "url": None, "path": f"weights/{name}",
                     "file": name, "sha256": sha, "size": os.path.getsize(target),
                     "default": True}],
        "metrics": metrics,
    }
    path = os.path.join(zoo_dir, "presets", f"{PRESET}.json")
    if os.path.isfile(path):  # keep what other scripts measured (params, macs, latency)
        with open(path) as f:
            old = json.load(f).get("metrics") or {}
        for key in ("params", "macs", "cost_source", "int8_latency_ms", "int8_latency_source"):
            if key in old:
                preset["metrics"][key] = old[key]
    from deeplab_keras.hub.preset import Preset
    Preset.from_dict(preset)  # the catalogue's schema, checked before anything is written
    write_json(path, preset)
    print("published", path, target, sha)


def figure_lines(result):
    """One line per headline figure of the final weights, each naming its split and size."""
    lines = []
    holdout = result.get("holdout")
    blocks = ([(holdout["split"], holdout["images"], holdout)] if holdout else []) + \
        [(VAL, result["final"].get("images"), dict(result, final=result["final"]))]
    for split, images, block in blocks:
        where = describe_split(split, images)
        lines.append(f"final on {where}, 360x480 single scale: mIoU {block['final']['miou']:.2f}")
        for key, at in sorted((block.get("at_input_size") or {}).items()):
            lines.append(f"final on {where}, {key} single scale: mIoU {at['single']['miou']:.2f}")
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default=RECIPE)
    p.add_argument("--minutes", type=float, default=50.0, help="training wall-clock budget")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--output-dir", default="runs/camvid")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    p.add_argument("--eval-only", action="store_true", help="only evaluate output-dir's checkpoints")
    p.add_argument("--publish", action="store_true",
                   help=f"copy the final weights to zoo/weights and write zoo/presets/{PRESET}.json")
    p.add_argument("--evidence", metavar="RUN_DIR",
                   help="with --publish, for a run trained on val: the train-only run of the same "
                        "recipe whose val score the preset reports")
    p.add_argument("--recalibrate-bn", type=int, default=50, metavar="BATCHES",
                   help="re-estimate the trainable BatchNorm statistics of the last checkpoint "
                        "on this many augmented training batches (precise BN) -> final model")
    p.add_argument("--snapshots", type=int, default=0, metavar="K",
                   help="keep the weights of the last K epochs in OUTPUT_DIR/snapshots and "
                        "evaluate their averages (stochastic weight averaging)")
    p.add_argument("--tta", action="store_true",
                   help="also evaluate the final weights (and averages) with scales "
                        "0.75 1 1.25 1.5 + flip")
    p.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"),
                   help="the size the model works at (the preset's preprocessing.input_size, "
                        "what predict runs; default the images' own 360 480): also evaluate the "
                        "final weights there (and with --tta its scales + flip) and publish it")
    args = p.parse_args(argv)

    from deeplab_keras import data
    from deeplab_keras.training import make_config, parse_override, train
    from deeplab_keras.training.trainer import build_training_model, dataset_info, focus_class_ids

    overrides = dict(parse_override(s) for s in args.set)
    overrides.update(output_dir=args.output_dir, minutes=args.minutes, verbose=2)
    if args.epochs:
        overrides["epochs"] = args.epochs
    config = make_config(args.recipe, **overrides)
    info = dataset_info(config)
    result = {"command": "python bench/train_camvid.py " + " ".join(argv or sys.argv[1:]),
              "config": config}
    holdout = holdout_split(config)
    if holdout:  # refused before any training
        from deeplab_keras.training.trainer import _pairs as split_pairs
        holdout_pairs = data.list_pairs("camvid", config["data_root"], holdout)
        check_holdout(config, holdout_pairs, split_pairs(config, config["train_split"], None))
    if not args.eval_only:
        start = time.time()
        from deeplab_keras.training import EpochSnapshots
        extra = [EpochSnapshots(os.path.join(args.output_dir, "snapshots"), config["epochs"],
                                args.snapshots)] if args.snapshots else []
        _, history = train(config, callbacks=extra)
        result["train_wall_seconds"] = time.time() - start
        result["history"] = history.history
    with open(os.path.join(args.output_dir, "history.json")) as f:
        epochs = json.load(f)
    result["epochs_done"] = len(epochs)
    rates = [e["images_per_sec"] for e in epochs[1:]] or [e["images_per_sec"] for e in epochs]
    result["train_images_per_sec"] = float(np.median(rates))
    result["train_seconds_total"] = float(sum(e["train_seconds"] for e in epochs))

    # freeze_bn=False: the checkpoints hold the frozen layers' statistics already; which layers
    # were frozen in training is re-applied below for the recalibration.
    model, _ = build_training_model(dict(config, init_tflite=None, init_weights=None, freeze_bn=False), info)
    pairs = data.list_pairs("camvid", config["data_root"], VAL)
    out = os.path.join(args.output_dir, "result.json")
    if args.eval_only and os.path.isfile(out):
        with open(out) as f:
            result = dict(json.load(f), eval_command=result["command"])
    # a run that trains on val has no held-out "best": only its fixed-schedule last epoch counts
    for which in ("last",) if trains_on_val(config) else ("best", "last"):
        if which in result:
            continue
        model.load_weights(os.path.join(args.output_dir, f"{which}.weights.h5"))
        result[which] = evaluate(model, pairs, info)
        print(which, json.dumps({k: v for k, v in result[which].items() if k != "confusion_matrix"}),
              flush=True)
    if not args.recalibrate_bn and "final" not in result:  # final = last, model weights only
        from deeplab_keras.training.callbacks import atomic_save_weights
        model.load_weights(os.path.join(args.output_dir, "last.weights.h5"))
        final = os.path.join(args.output_dir, "final.weights.h5")
        atomic_save_weights(model, final)
        result["final"] = dict(result["last"], weights=final)
    if args.recalibrate_bn and "final" not in result:
        from deeplab_keras.training import recalibrate_batch_norm
        from deeplab_keras.training.trainer import _pairs
        model.load_weights(os.path.join(args.output_dir, "last.weights.h5"))
        with open(os.path.join(args.output_dir, "config.json")) as f:
            frozen = set(json.load(f).get("frozen_bn_layers") or [])
        if not frozen:  # layers the imported weights filled: all but the decoder's
            frozen = {l.name for l in model.layers if "BatchNorm" in l.name and not l.name.startswith("decoder")}
        for layer in model.layers:
            if layer.name in frozen:
                layer.trainable = False
        train_ds = data.make_dataset(_pairs(config, config["train_split"], None), dataset_info=info,
                                     batch_size=config["batch_size"], crop_size=config["crop_size"],
                                     training=True, seed=config["seed"] + 1,
                                     min_scale=config["min_scale"], max_scale=config["max_scale"],
                                     crop_jitter=config["crop_jitter"],
                                     focus_classes=focus_class_ids(config, info),
                                     focus_probability=config["crop_focus_probability"])
        start = time.time()
        updated = recalibrate_batch_norm(model, train_ds, args.recalibrate_bn)
        final = os.path.join(args.output_dir, "final.weights.h5")
        from deeplab_keras.training.callbacks import atomic_save_weights
        atomic_save_weights(model, final)
        result["final"] = evaluate(model, pairs, info)
        result["final"].update(weights=final, recalibrated_layers=[l.name for l in updated],
                               recalibration_batches=args.recalibrate_bn,
                               recalibration_seconds=time.time() - start)
        print("final (last + precise BN)", json.dumps(
            {k: v for k, v in result["final"].items() if k != "confusion_matrix"}), flush=True)
    # weight averages: the optimizer's moving average (setting ema_momentum) and the mean of the
    # last K epochs kept by --snapshots (stochastic weight averaging)
    from deeplab_keras.training import average_weights
    averages = {}
    if os.path.isfile(os.path.join(args.output_dir, "ema.weights.h5")):
        averages["ema"] = [os.path.join(args.output_dir, "ema.weights.h5")]
    snaps = sorted(glob.glob(os.path.join(args.output_dir, "snapshots", "epoch_*.weights.h5")))
    for k in (2, 4, 8, 12, 16, 24):
        if len(snaps) >= k:
            averages[f"swa_{k}"] = snaps[-k:]
    for name, paths in averages.items():
        if name not in result:
            average_weights(model, paths)
            result[name] = dict(evaluate(model, pairs, info), weights=paths)
            print(name, round(result[name]["miou"], 2), flush=True)
    if args.tta:  # test-time scales + flip: the same Predictor that evaluate/predict --scales --flip use
        from deeplab_keras.evaluation import evaluate as evaluate_tta
        for name in ["final"] + list(averages):
            key = f"{name}_scales_flip"
            if name not in result or key in result:
                continue
            if name in averages:
                average_weights(model, averages[name])
            else:
                model.load_weights(result[name]["weights"])
            r = evaluate_tta(model, pairs, dataset=info, scales=TTA_SCALES, flip=True)
            result[key] = {"miou": r["miou"] * 100, "scales": list(TTA_SCALES), "flip": True,
                           "per_class_iou": {n: round(v * 100, 2) for n, v in r["per_class"].items()},
                           "pixel_accuracy": r["pixel_accuracy"] * 100, "eval_seconds": r["seconds"]}
            print(key, round(result[key]["miou"], 2), flush=True)
    if args.input_size:  # the final weights at the working size, through evaluate = predict
        size = list(args.input_size)
        at = result.setdefault("at_input_size", {}).setdefault("x".join(map(str, size)), {})
        runs = [("single", (1.0,), False)] + ([("scales_flip", TTA_SCALES, True)] if args.tta else [])
        for key, scales, flip in runs:
            if key in at:
                continue
            model.load_weights(result["final"]["weights"])
            at[key] = evaluate_at_size(model, pairs, info, size, scales, flip)
            print(f"final at {size[0]}x{size[1]} {key}", round(at[key]["miou"], 2), flush=True)
    if holdout:  # the same final weights on the hold-out of train, at each size val was scored at
        block = result.setdefault("holdout", {"split": holdout, "images": len(holdout_pairs)})
        model.load_weights(result["final"]["weights"])
        if "final" not in block:
            block["final"] = evaluate(model, holdout_pairs, info)
        for key in result.get("at_input_size") or {}:
            at = block.setdefault("at_input_size", {}).setdefault(key, {})
            if "single" not in at:
                at["single"] = evaluate_at_size(model, holdout_pairs, info, [int(v) for v in key.split("x")])
    for line in figure_lines(result):
        print(line, flush=True)
    write_json(out, result, default=str)
    print("wrote", out)
    if args.publish:
        evidence = None
        if args.evidence:
            with open(os.path.join(args.evidence, "result.json")) as f:
                evidence = json.load(f)
        publish(result, info, evidence=evidence, input_size=args.input_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
