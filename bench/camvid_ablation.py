"""CamVid recipe ablation: one row per training run of bench/train_camvid.py (its
``result.json``), each lever's effect on CamVid **val** mIoU (all 101 images, 480x360, single
scale, no flip) against the shipped preset's recipe, and, for runs with a hold-out of train
(issue 31), on that hold-out too.

    python bench/camvid_ablation.py bench/results/camvid_runs/camvid_fullres_ade bench/results/camvid_runs/camvid_fullres_ade_cw1 bench/results/camvid_runs/camvid_fullres_ade_24ep bench/results/camvid_runs/camvid_trainonly_24ep_ema

The hold-out ablation (``zoo/recipes/camvid_ablation_*.json``: train without sequence 0006R0,
settings chosen on 0006R0, val the reported check), one command per row, then the table:

    python bench/camvid_ablation.py --plan              # the command of each row
    python bench/camvid_ablation.py --run crop536       # train + evaluate one row (hours on 2 CPU cores)
    python bench/camvid_ablation.py --collect           # the table of the rows run so far

Every run here trains without val and is scored on val, so these rows choose a recipe; none of
them is a test-split figure.
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
          "learning_rate", "class_weights", "class_weight_power", "freeze_bn", "train_split",
          "val_split", "crop_jitter", "top_k_percent", "crop_focus_classes",
          "crop_focus_probability")

#: the hold-out ablation of issue 31: row name -> (recipe in zoo/recipes, the lever it changes)
ROWS = {
    "baseline": ("camvid_ablation_baseline", "the shipped recipe, train without 0006R0"),
    "crop_jitter": ("camvid_ablation_crop_jitter", "crop_jitter 16 (every stride-16 alignment)"),
    "crop536": ("camvid_ablation_crop536", "536x720 crops, scale 0.75-3.0 (the working size)"),
    "topk": ("camvid_ablation_topk", "top_k_percent 25 (hard-pixel mining)"),
    "focus": ("camvid_ablation_focus", "half the crops around a weak-class pixel (class-balanced crops)"),
    "36ep": ("camvid_ablation_36ep", "36 epochs instead of 24"),
}
#: the preset's working size: every row is also scored there (what predict runs)
WORKING_SIZE = (536, 720)
#: wall-clock bound of one row: a stop for a runaway run, not a budget (a cut run shows in the
#: table as fewer epochs done than planned)
ROW_MINUTES = 1440


def row_args(name, runs_dir="runs", minutes=ROW_MINUTES, extra=()):
    """bench/train_camvid.py's arguments for ablation row ``name`` (``extra``: ``--set``
    overrides, e.g. for a smoke run of a few steps)."""
    if name not in ROWS:
        raise SystemExit(f"unknown ablation row {name!r}; rows: {', '.join(ROWS)}")
    recipe = ROWS[name][0]
    args = ["--recipe", recipe,
            "--output-dir", os.path.join(runs_dir, recipe), "--minutes", str(minutes),
            "--input-size", str(WORKING_SIZE[0]), str(WORKING_SIZE[1])]
    return args + (["--set", *extra] if extra else [])


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


def _at(block, size):
    """A block's single-scale mIoU at ``size`` (its 360x480 figure for the images' own size)."""
    if block is None:
        return None
    if tuple(size) == (360, 480):
        return (block.get("final") or block["last"])["miou"]
    at = (block.get("at_input_size") or {}).get("x".join(map(str, size)))
    return at["single"]["miou"] if at else None


def focus_text(levers):
    """The class-balanced crops of a run: its classes and the share of crops placed on them."""
    classes = levers.get("crop_focus_classes")
    if not classes:
        return "-"
    return f"{', '.join(map(str, classes))} ({levers.get('crop_focus_probability')})"


def row(folder, result):
    cfg = result["config"]
    final = result.get("final") or result["last"]
    holdout = result.get("holdout")
    return {"run": os.path.basename(os.path.normpath(folder)),
            "holdout_split": holdout["split"] if holdout else None,
            "holdout_miou": _at(holdout, (360, 480)), "holdout_miou_working": _at(holdout, WORKING_SIZE),
            "val_miou_working": _at(result, WORKING_SIZE),
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
    p.add_argument("runs", nargs="*", help="output folders of bench/train_camvid.py")
    p.add_argument("--plan", action="store_true", help="print the command of each hold-out ablation row")
    p.add_argument("--run", metavar="ROW", choices=list(ROWS), help="train and evaluate one row: " + ", ".join(ROWS))
    p.add_argument("--collect", action="store_true", help="tabulate the rows found in --runs-dir")
    p.add_argument("--runs-dir", default="runs", help="where the rows' run folders are (default runs)")
    p.add_argument("--minutes", type=float, default=ROW_MINUTES,
                   help="with --run: wall-clock bound of the row (default %(default)s)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="with --run: settings changed for this run only (e.g. a smoke run: "
                        "epochs=1 steps_per_epoch=2 crop_size=[64,96])")
    args = p.parse_args(argv)
    if args.plan:
        for name in ROWS:
            print(f"# {name}: {ROWS[name][1]}")
            print("python bench/camvid_ablation.py --run " + name + "   # = python bench/train_camvid.py "
                  + " ".join(row_args(name, args.runs_dir)))
        return 0
    if args.run:
        import train_camvid
        return train_camvid.main(row_args(args.run, args.runs_dir, args.minutes, args.set))
    if args.collect:
        args.runs = args.runs + [os.path.join(args.runs_dir, recipe) for recipe, _ in ROWS.values()
                                 if os.path.isfile(os.path.join(args.runs_dir, recipe, "result.json"))]
    if not args.runs:
        raise SystemExit("no runs to tabulate: give run folders, or --collect after --run ROW")
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
    held = [r for r in rows if r["holdout_split"]]
    if held:
        fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
        size = "x".join(map(str, WORKING_SIZE))
        lines += ["", "Hold-out ablation: settings are chosen on the hold-out of train (a sequence the "
                  "run did not train on); val is the reported check, never used to choose. Single scale, "
                  f"no flip, final weights (last epoch, precise BN); {size} is the preset's working size:", "",
                  f"| run | hold-out | hold-out mIoU 360x480 | hold-out mIoU {size} | val mIoU 360x480 | "
                  f"val mIoU {size} | crop | jitter | top-k % | focus crops | epochs | train min (CPU) | img/s |",
                  "|---|---|---:|---:|---:|---:|---|---:|---:|---|---:|---:|---:|"]
        for r in held:
            lv = r["levers"]
            lines.append(f"| {r['run']} | {r['holdout_split']} | {fmt(r['holdout_miou'])} | "
                         f"{fmt(r['holdout_miou_working'])} | {fmt(r['val_miou'])} | {fmt(r['val_miou_working'])} | "
                         f"{lv['crop_size']} {lv['min_scale']}-{lv['max_scale']} | {lv.get('crop_jitter') or 0} | "
                         f"{lv.get('top_k_percent') or 100:g} | {focus_text(lv)} | {r['epochs_done']}/{lv['epochs']} | "
                         f"{r['train_minutes']:.0f} | {r['images_per_sec']:.2f} |")
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
