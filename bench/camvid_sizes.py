"""CamVid val mIoU of a train-only run's final weights at several working sizes (the size the model
runs at, what ``predict`` and ``evaluate`` use as scale 1): the inference-resolution lever.

    python bench/camvid_sizes.py runs/camvid_trainonly_24ep_ema --sizes 360x480 361x481 449x599 456x608 536x720 600x800

Each size runs through ``deeplab_keras.evaluation.evaluate(..., input_size=...)``, which scores the
class maps ``predict`` writes (one pass: logits resized back to 480x360, then argmax), on all 101
val images. ``--scales-flip`` adds scales 0.75 1 1.25 1.5 + flip of each size. Multiply-adds
(deeplab_keras/utils/flops.py) show what each size costs. Results: bench/results/camvid_sizes.md.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import benchlib  # noqa: E402

SHARED = os.environ.get("DEEPLAB_KERAS_SHARED", os.path.join(os.path.dirname(HERE), "..", "shared"))
TTA_SCALES = (0.75, 1.0, 1.25, 1.5)


def parse_size(text):
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise SystemExit(f"--sizes takes HxW entries such as 536x720, got {text!r}")
    return int(parts[0]), int(parts[1])


def main(argv=None):
    p = benchlib.parser(__doc__, "camvid_sizes.md", timing=False)
    p.add_argument("run", help="a train-only run folder (config.json + final.weights.h5)")
    p.add_argument("--sizes", nargs="+", default=["360x480", "456x608", "536x720"])
    p.add_argument("--scales-flip", action="store_true",
                   help="also scales 0.75 1 1.25 1.5 + flip around each size")
    args = p.parse_args(argv)
    sizes = [parse_size(s) for s in args.sizes]
    with open(os.path.join(args.run, "config.json")) as f:
        config = json.load(f)
    data_root = config["data_root"]
    if benchlib.missing(os.path.join(data_root, "val"), "CamVid"):
        return 0
    from deeplab_keras.data import split_names
    if "val" in split_names(config.get("train_split")):
        raise SystemExit(f"{args.run} trained on val: its val scores are not held out")

    from deeplab_keras import data
    from deeplab_keras.evaluation import evaluate
    from deeplab_keras.training.trainer import build_training_model, dataset_info
    from deeplab_keras.builders import build_model
    from deeplab_keras.utils import flops

    info = dataset_info(config)
    model, _ = build_training_model(dict(config, init_tflite=None, init_weights=None,
                                         freeze_bn=False), info)
    model.load_weights(os.path.join(args.run, "final.weights.h5"))
    pairs = data.list_pairs("camvid", data_root, "val")
    rows, base = [], None
    for size in sizes:
        macs = flops.count(build_model(config["architecture"], **dict(
            config["model"], input_shape=(*size, 3)))).mult_adds
        single = evaluate(model, pairs, dataset=info, input_size=size)
        tta = (evaluate(model, pairs, dataset=info, input_size=size, scales=TTA_SCALES, flip=True)
               if args.scales_flip else None)
        base = base or single["miou"]
        rows.append((size, macs, single, tta))
        print(size, round(100 * single["miou"], 2), tta and round(100 * tta["miou"], 2), flush=True)
    names = list(rows[0][2]["per_class"])
    command = ("python bench/camvid_sizes.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    lines = [f"# CamVid val at several working sizes ({os.path.basename(os.path.normpath(args.run))})",
             "", f"`{command}`", "",
             f"{len(pairs)} val images (480x360); the run trained on {config['train_split']} only "
             "(val held out) with crops of " + "x".join(map(str, config["crop_size"])) + ". mIoU of "
             "the class maps predict writes with the model run at each size (delta to the first "
             "row); multiply-adds of one pass.", "",
             "| working size | multiply-adds | single scale | delta |"
             + (" scales 0.75-1.5 + flip |" if args.scales_flip else "")
             + "".join(f" {n} |" for n in names),
             "|---|---:|---:|---:|" + ("---:|" if args.scales_flip else "") + "---:|" * len(names)]
    for size, macs, single, tta in rows:
        lines.append(f"| {size[0]}x{size[1]} | {macs / 1e9:.2f} G | {100 * single['miou']:.2f} | "
                     f"{100 * (single['miou'] - base):+.2f} |"
                     + (f" {100 * tta['miou']:.2f} |" if tta else "")
                     + "".join(f" {100 * v:.1f} |" for v in single["per_class"].values()))
    return benchlib.publish(args.output, lines)


if __name__ == "__main__":
    sys.exit(main())
