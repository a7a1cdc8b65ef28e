"""``deeplab-keras predict (--preset NAME | --weights FILE) --output-dir DIR IMAGE...``: per
image a class map ``*_classes.png`` (a palette PNG: pixel values are class indices, viewers show
the class colours), an overlay ``*_overlay.png`` with a legend of the classes present and, with
``--side-by-side``, ``*_side.png`` (image | overlay); ``labels.json`` (index, name, colour)
beside them. Files, folders (recursive) and globs; a progress bar with n/N and time per image.
Model flags as every command (:mod:`deeplab_keras.commands.loader`)."""
from deeplab_keras.commands import loader


def add_parser(subparsers):
    parser = subparsers.add_parser("predict", help="segment images with a preset or model file")
    parser.add_argument("images", nargs="*", metavar="IMAGE",
                        help="image files, folders (searched recursively) or glob patterns")
    loader.add_model_arguments(parser)
    parser.add_argument("--output-dir", "--output", dest="output", required=True,
                        help="output directory (--output is the same flag)")
    loader.add_input_size(parser, help="run the model at this size: N, H W or HxW "
                          "(default: the model's own)")
    parser.add_argument("--side-by-side", action="store_true",
                        help="also write <name>_side.png: the image and its overlay side by side")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def run(args):
    from deeplab_keras import inference
    from deeplab_keras.commands import predict_engine

    size, extra = loader.split_input_size(args.input_size)
    images = extra + list(args.images)
    if not images:
        raise ValueError("give at least one IMAGE to segment")
    model = loader.load_model(args)
    size, align = inference.input_contract(model, size)
    # issue 11: folders and globs, relative output folders, bad files reported at the end
    return predict_engine.predict_batch(model, images, args.output,
                                        getattr(model, "palette", None), size, align,
                                        getattr(model, "labels", None),
                                        side_by_side=args.side_by_side,
                                        progress=not args.no_progress)
