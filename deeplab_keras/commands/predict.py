"""``deeplab-keras predict --preset NAME [--weights FILE_OR_URL] --output DIR IMAGE...``: one
class-index PNG (same size as the image) and one colour overlay PNG per image."""


from deeplab_keras.utils.validate import positive_int


def add_parser(subparsers):
    parser = subparsers.add_parser("predict", help="segment images with a preset")
    parser.add_argument("images", nargs="+", metavar="IMAGE",
                        help="image files, folders (searched recursively) or glob patterns")
    parser.add_argument("--preset", required=True, help="preset name (see `deeplab-keras zoo list`)")
    parser.add_argument("--weights", default=None,
                        help="weights file or URL to use instead of the preset's own")
    parser.add_argument("--output", required=True, help="output directory")
    parser.add_argument("--input-size", type=positive_int("--input-size"), nargs=2,
                        metavar=("H", "W"), default=None,
                        help="run the model at this size (default: the preset's)")
    parser.add_argument("--allow-unpinned", action="store_true",
                        help="allow weight files without a pinned checksum (sha256 is printed)")
    return parser


def run(args):
    from deeplab_keras import inference, zoo
    from deeplab_keras.weights import load_weights

    preset = zoo.get_preset(args.preset)
    if args.weights:
        model = zoo.from_preset(args.preset, weights=False)
        load_weights(model, args.weights, allow_unpinned=args.allow_unpinned)
    else:
        model = zoo.from_preset(args.preset, allow_unpinned=args.allow_unpinned)
    prep = preset.get("preprocessing") or {}
    size = args.input_size or prep.get("input_size")
    align = prep.get("resize", "align_corners") == "align_corners"
    # issue 11: folders and globs, relative output folders, bad files reported at the end
    return inference.predict_batch(model, args.images, args.output, preset.get("palette"), size,
                                   align, preset.get("labels"))
