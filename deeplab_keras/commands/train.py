"""``deeplab-keras train``: train from a recipe (JSON in ``zoo/recipes``) with overrides.

    deeplab-keras train --recipe zoo/recipes/camvid_deeplabv3plus_mobilenetv2.json \\
        --set epochs=20 batch_size=8 --strategy mirrored

An interrupted run resumes from ``<output_dir>/backup`` when started again with the same
settings; checkpoints (``last``/``best.weights.h5``), ``history.json`` and TensorBoard logs are
written to ``<output_dir>`` (default ``runs/<name>``)."""
import json


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
    p.add_argument("--epochs", type=int)
    p.add_argument("--minutes", type=float, help="stop after this wall-clock time")
    p.add_argument("--print-config", action="store_true", help="print the settings and exit")
    return p


def run(args):
    from deeplab_keras.training import make_config, parse_override, train
    overrides = dict(parse_override(o) for o in args.overrides)
    for key in ("strategy", "output_dir", "epochs", "minutes"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    config = make_config(args.recipe, **overrides)
    if args.print_config:
        print(json.dumps(config, indent=1))
        return 0
    _, history = train(config)
    last = {k: round(float(v[-1]), 4) for k, v in history.history.items()}
    print(f"trained {len(history.epoch)} epoch(s) in {history.seconds:.0f}s -> "
          f"{config['output_dir']}: {json.dumps(last)}")
    return 0
