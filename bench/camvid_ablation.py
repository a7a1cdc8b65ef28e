"""CamVid recipe ablation: one row per training run of bench/train_camvid.py (its
``result.json``), each lever's effect on CamVid **val** mIoU (all 101 images, 480x360, single
scale, no flip) against the shipped preset's recipe.

    python bench/camvid_ablation.py bench/results/camvid_runs/camvid_fullres_ade bench/results/camvid_runs/camvid_fullres_ade_cw1 bench/results/camvid_runs/camvid_fullres_ade_24ep bench/results/camvid_runs/camvid_trainonly_24ep_ema

Every run here trains on CamVid train only (367 images) and is scored on val, so these rows
choose a recipe; none of them is a test-split figure.
"""
import glob
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import benchlib  # noqa: E402
from train_camvid import trains_on_val  # noqa: E402

#: recipe settings that tell the runs apart (shown in the table when they differ)
LEVERS = ("init_tflite", "init_weights", "crop_size", "min_scale", "max_scale", "epochs",
          "learning_rate", "class_weights", "class_weight_power", "freeze_bn", "train_split")


#: the CamVid preset before the train+val rework (commit before it), the ablation's reference
OLD_PRESET = "38b4777:zoo/presets/deeplabv3plus_mobilenetv2_camvid.json"


def previous_preset():
    """The old preset's metrics block, read from git history (None outside a git checkout)."""
    import subprocess
    try:
        out = subprocess.run(["git", "show", OLD_PRESET], cwd=os.path.dirname(HERE),
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return json.loads(out.stdout)["metrics"] if out.returncode == 0 else None


def load_run(folder):
    path = os.path.join(folder, "result.json")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: run bench/train_camvid.py --output-dir {folder} "
                                "first (or --eval-only on its checkpoints)")
    with open(path) as f:
        return json.load(f)


def load_eval(path):
    with open(path) as f:
        return json.load(f)


def row(folder, result):
    cfg = result["config"]
    final = result.get("final") or result["last"]
    return {"run": os.path.basename(os.path.normpath(folder)),
            "levers": {k: cfg.get(k) for k in LEVERS},
            "val_miou": final["miou"], "val_miou_last": result["last"]["miou"],
            "per_class": final["per_class_iou"], "epochs_done": result["epochs_done"],
            "train_minutes": result["train_seconds_total"] / 60,
            "images_per_sec": result["train_images_per_sec"], "command": result["command"]
            + (f"` then `{result['eval_command']}" if result.get("eval_command") else "")}


def averaging_rows(result):
    """``[(name, single-scale mIoU, scales + flip mIoU or None), ...]`` for the final weights and
    the averages train_camvid.py evaluated (empty when it evaluated neither averages nor --tta)."""
    averages = [k for k in result if (k == "ema" or k.startswith("swa_")) and not k.endswith("_scales_flip")]
    names = ["final"] + sorted(averages, key=lambda k: (k != "ema", int(k[4:]) if k != "ema" else 0))
    if len(names) == 1 and "final_scales_flip" not in result:
        return []
    out = []
    for name in names:
        single = (result.get(name) or result["last"])["miou"]
        tta = result.get(f"{name}_scales_flip")
        out.append((name, single, tta["miou"] if tta else None))
    return out


def main(argv=None):
    p = benchlib.parser(__doc__, "camvid_ablation.md", timing=False)
    p.add_argument("runs", nargs="+", help="output folders of bench/train_camvid.py")
    args = p.parse_args(argv)
    results = [load_run(folder) for folder in args.runs]
    for folder, result in zip(args.runs, results):
        if trains_on_val(result["config"]):
            raise SystemExit(f"{folder} trained on {result['config']['train_split']}: its val score is "
                             "not held out and has no place in a val ablation")
    rows = [row(folder, result) for folder, result in zip(args.runs, results)]
    classes = list(rows[0]["per_class"])
    old = previous_preset()
    reference = (f"val mIoU {old['miou']:.2f}" if old else "its val mIoU (not readable here: no git history)")
    lines = ["# CamVid recipe ablation (val split, 101 images, 480x360, single scale, no flip)", "",
             f"Reference: the CamVid preset shipped before this rework (`git show {OLD_PRESET}`), "
             f"{reference} (its recipe: VOC init, 320x320 crops, scale 0.75-1.5, 7 epochs, then a "
             "6-epoch BN-frozen second stage). Runs below train on CamVid train only; each row "
             "changes the levers shown. Earlier rows (VOC init; output stride 8 and multi-scale + flip "
             "at evaluation) are in `camvid_ablation_earlier.md`; each run's summary (`result.json`: "
             "settings, per-epoch history, confusion matrices) is kept in `bench/results/camvid_runs/`.", "",
             "| run | init | crop | scale | epochs | class weights | val mIoU (final, precise BN) | "
             "val mIoU (last) | train min (CPU) | img/s |", "|---|---|---|---|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        lv = r["levers"]
        init = os.path.basename(str(lv["init_tflite"] or lv["init_weights"] or "ImageNet/none"))
        weights = (f"{lv['class_weights']} ^ {lv['class_weight_power']}" if lv["class_weights"] else "none")
        lines.append(f"| {r['run']} | {init} | {lv['crop_size']} | {lv['min_scale']}-{lv['max_scale']} | "
                     f"{r['epochs_done']}/{lv['epochs']} | {weights} | {r['val_miou']:.2f} | "
                     f"{r['val_miou_last']:.2f} | {r['train_minutes']:.0f} | {r['images_per_sec']:.2f} |")
    lines += ["", "Per-class val IoU (final):", "",
              "| run | " + " | ".join(classes) + " |", "|---|" + "---:|" * len(classes)]
    for r in rows:
        lines.append(f"| {r['run']} | " + " | ".join(f"{r['per_class'][c]:.1f}" for c in classes) + " |")
    evals = [(r["run"], os.path.basename(path), load_eval(path))
             for folder, r in zip(args.runs, rows)
             for path in sorted(glob.glob(os.path.join(folder, "eval_*.json")))]
    if evals:
        lines += ["", "Evaluation levers on the same weights (`deeplab-keras evaluate ... --output-json "
                  "RUN/eval_NAME.json`; the file name says the output stride, os8/os16):", "",
                  "| run | eval file | scales | flip | val mIoU | pixel acc |", "|---|---|---|---|---:|---:|"]
        for run, name, e in evals:
            st = e.get("settings") or {}
            lines.append(f"| {run} | {name} | {st.get('scales') or [1.0]} | {bool(st.get('flip'))} | "
                         f"{100 * e['miou']:.2f} | {100 * e['pixel_accuracy']:.2f} |")
    averaged = [(r, result) for r, result in zip(rows, results) if averaging_rows(result)]
    if averaged:
        lines += ["", "Weight averaging and test-time scales + flip, on the same run (`bench/train_camvid.py "
                  "--snapshots K --tta`, setting `ema_momentum`): `final` is the last epoch's own weights, "
                  "`ema` the optimizer's moving average, `swa_K` the mean of the last K epochs' weights; "
                  "scales 0.75 1 1.25 1.5 + flip through the Predictor that `evaluate`/`predict` use:", "",
                  "| run | weights | val mIoU single scale | delta | val mIoU scales + flip | delta |",
                  "|---|---|---:|---:|---:|---:|"]
        for r, result in averaged:
            entries = averaging_rows(result)
            base, base_tta = entries[0][1:]
            for name, single, tta in entries:
                lines.append(f"| {r['run']} | {name} | {single:.2f} | {single - base:+.2f} | "
                             + (f"{tta:.2f} | {tta - base_tta:+.2f} |" if tta is not None and base_tta is not None
                                else f"{'-' if tta is None else f'{tta:.2f}'} | |"))
    lines += ["", "Commands:", ""] + [f"- `{r['command']}`" for r in rows]
    lines += ["", f"Table written by `python bench/camvid_ablation.py {' '.join(args.runs)}`."]
    return benchlib.publish(args.output, lines)


if __name__ == "__main__":
    sys.exit(main())
