"""``deeplab-keras predict (--preset NAME | --weights FILE) --output-dir DIR IMAGE...``: one
class-index PNG (same size as the image) and one colour overlay PNG per image. Model flags as
every command (:mod:`deeplab_keras.commands.loader`)."""
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
    return parser


def run(args):
    from deeplab_keras import inference

    size, extra = loader.split_input_size(args.input_size)
    images = extra + list(args.images)
    if not images:
        raise ValueError("give at least one IMAGE to segment")
    model = loader.load_model(args)
    size, align = loader.input_contract(model, size)
    # issue 11: folders and globs, relative output folders, bad files reported at the end
    return inference.predict_batch(model, images, args.output, getattr(model, "palette", None),
                                   size, align, getattr(model, "labels", None))
