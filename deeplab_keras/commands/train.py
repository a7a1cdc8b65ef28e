"""``deeplab-keras train``: train from a recipe (JSON in ``zoo/recipes``) with overrides.

    deeplab-keras train --recipe camvid_deeplabv3plus_mobilenetv2 \\
        --data-root ../shared/data/camvid --epochs 2 --output-dir runs/camvid
    deeplab-keras train --recipe my_recipe.json --dataset folder --num-classes 5 \\
        --data-root my_data --init-weights deeplabv3plus_mobilenetv2_camvid --epochs 1

Besides the checkpoints it writes ``<output_dir>/model.keras``: the trained model with its
labels and palette, which ``predict``/``evaluate``/``export --weights FILE.keras`` load alone;
the commands to run next are printed at the end. A short run needs no care about warm-up (a
recipe's ``warmup_steps`` longer than the run is scaled down, with a message).

An interrupted run resumes from ``<output_dir>/.deeplab-keras-backup`` when started again with
the same settings. ``--output-dir`` must be new, empty or a run folder of ours (it carries a
``.deeplab-keras-run`` marker); a second run into it refuses while the first runs. Checkpoints (``last``/``best.weights.h5``), ``history.json`` and TensorBoard logs are
written to ``<output_dir>`` (default ``runs/<name>``)."""
import json
import os
import shlex


def add_parser(subparsers):
    p = subparsers.add_parser("train", help="train a model from a recipe",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--recipe", required=True, help="recipe name in zoo/recipes or a JSON file")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override settings, e.g. epochs=5 model.output_stride=8 "
                        "(values are JSON when they parse as JSON)")
    # the names are checked by training.get_strategy (importing it here would load TensorFlow)
    p.add_argument("--strategy", help="tf.distribute strategy: default | mirrored | "
                   "multi_worker (reads TF_CONFIG) | tpu")
    p.add_argument("--output-dir", help="where checkpoints, backup and logs go")
    p.add_argument("--data-root", help="dataset folder (overrides the recipe's data_root)")
    p.add_argument("--dataset", help="camvid | voc | cityscapes | ade20k | folder (images/ + masks/)")
    p.add_argument("--num-classes", type=int, help="classes of a 'folder' dataset")
    p.add_argument("--init-weights", help="start from these weights: a .keras / .weights.h5 "
                   "file, a preset name or URL (replaces the recipe's init_tflite/init_weights)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--minutes", type=float, help="stop after this wall-clock time")
    p.add_argument("--print-config", action="store_true", help="print the settings and exit")
    return p


def run(args):
    from deeplab_keras.training import make_config, parse_override, train
    overrides = dict(parse_override(o) for o in args.overrides)
    for key in ("strategy", "output_dir", "epochs", "minutes", "data_root", "dataset",
                "num_classes"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    if args.num_classes is not None:
        overrides["model.num_classes"] = args.num_classes  # the head follows the data
    if args.init_weights is not None:
        overrides.update(init_weights=args.init_weights, init_tflite=None)
    config = make_config(args.recipe, **overrides)
    if args.print_config:
        print(json.dumps(config, indent=1))
        return 0
    out = config["output_dir"]
    from deeplab_keras.training import run_folder
    if run_folder.resuming(out):
        print(f"resuming the interrupted run in {run_folder.backup_dir(out)} (delete that folder "
              "to start over)")
    _, history = train(config)
    last = {k: round(float(v[-1]), 4) for k, v in history.history.items()}
    print(f"trained {len(history.epoch)} epoch(s) in {history.seconds:.0f}s -> {out}: "
          f"{json.dumps(last)}")
    model_file = getattr(history, "model_file", None)
    if model_file:
        print(f"model: {model_file} (with its labels; weights also in {out}/*.weights.h5)")
        print("next:\n" + "\n".join("  " + c for c in next_commands(model_file, config)))
    return 0


def next_commands(model_file, config):
    """What to run with a trained model file (printed after training; tested to run)."""
    q = shlex.quote
    out = config["output_dir"]
    lines = [f"deeplab-keras predict --weights {q(model_file)} --output-dir "
             f"{q(os.path.join(out, 'predictions'))} IMAGE_OR_FOLDER..."]
    if config.get("data_root"):
        evaluate = (f"deeplab-keras evaluate --weights {q(model_file)} --dataset "
                    f"{q(config['dataset'])} --data-root {q(str(config['data_root']))}")
        if config.get("val_split"):
            evaluate += f" --split {q(config['val_split'])}"
        if config["dataset"] == "folder":
            evaluate += f" --ignore-label {config['ignore_label']}"
        lines.append(evaluate)
    size = config.get("crop_size") or [513, 513]
    lines.append(f"deeplab-keras export --weights {q(model_file)} --format tflite --quantize int8 "
                 f"--input-size {size[0]}x{size[1]} --output {q(os.path.join(out, 'model_int8.tflite'))}")
    return lines
