"""``deeplab-keras predict (--preset NAME | --weights FILE | --artifact FILE) --output-dir DIR
INPUT...``: per image a class map ``*_classes.png`` (a palette PNG: pixel values are class
indices, viewers show the class colours), an overlay ``*_overlay.png`` with a legend of the
classes present and, with ``--side-by-side``, ``*_side.png`` (image | overlay); per video an
overlay video ``*_overlay.mp4`` (same size, frame count, frame rate and audio; decoded,
segmented and encoded in a pipeline). ``labels.json`` (index, name, colour) and ``index.json``
(input -> outputs) beside them. Files, folders (recursive) and globs; a progress bar.

``--artifact FILE.tflite|FILE.onnx`` runs an exported file (LiteRT / onnxruntime, ``--threads``)
instead of a Keras model; ``--scales``/``--flip`` average a Keras model's predictions as
``evaluate`` does; ``--smoothing`` smooths videos over time. Model flags as every command
(:mod:`deeplab_keras.commands.loader`)."""
from deeplab_keras.commands import loader


def add_parser(subparsers):
    parser = subparsers.add_parser("predict", help="segment images and videos with a preset, "
                                   "model file or exported artifact")
    parser.add_argument("images", nargs="*", metavar="INPUT",
                        help="image or video files, folders (searched recursively) or glob "
                        "patterns")
    loader.add_model_arguments(parser)
    parser.add_argument("--artifact", help="an exported .tflite / .onnx file: run the file "
                        "itself (LiteRT / onnxruntime) instead of a Keras model")
    parser.add_argument("--threads", type=int, help="runtime threads for --artifact (default: "
                        "one per core)")
    parser.add_argument("--output-dir", "--output", dest="output", required=True,
                        help="output directory (--output is the same flag)")
    loader.add_input_size(parser, help="run the model at this size: N, H W or HxW "
                          "(default: the model's own)")
    parser.add_argument("--scales", nargs="+", type=float, default=[1.0], metavar="S",
                        help="images: average over these scales, as evaluate (e.g. 0.75 1 1.25)")
    parser.add_argument("--flip", action="store_true",
                        help="images: also average the mirrored image, as evaluate")
    parser.add_argument("--smoothing", nargs="?", type=float, const=RECOMMENDED, default=None,
                        metavar="STRENGTH", help="videos: temporal smoothing (the recommended "
                        "settings, or a strength in [0, 1))")
    parser.add_argument("--side-by-side", action="store_true",
                        help="also write <name>_side.png: the image and its overlay side by side")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace files in the output folder that deeplab-keras did not "
                        "write (its own earlier outputs are replaced without it)")
    return parser


#: the value ``--smoothing`` takes when given without a strength
RECOMMENDED = -1.0


def smoothing_option(value):
    """``--smoothing`` flag value -> VideoSegmenter's ``smoothing`` argument (a strength is
    checked: in [0, 1), one line naming the flag otherwise)."""
    if value is None:
        return False
    if value == RECOMMENDED:
        return True
    from deeplab_keras.utils.validate import check_number
    check_number("--smoothing", value, low=0.0, high=1.0, high_open=True)
    return value


def run(args):
    from deeplab_keras import inference
    from deeplab_keras.commands import predict_engine

    size, extra = loader.split_input_size(args.input_size)
    images = extra + list(args.images)
    if not images:
        raise ValueError("give at least one INPUT (image, video, folder or glob) to segment")
    smoothing = smoothing_option(args.smoothing)  # checked before the model loads
    from deeplab_keras.video.pipeline import leave_cores_to_runtime, runtime_threads
    leave_cores_to_runtime()
    if args.artifact:
        runner = predict_engine.Runner(artifact=loader.check_artifact(args), input_size=size,
                                       scales=args.scales, flip=args.flip, smoothing=smoothing,
                                       threads=runtime_threads(args.threads),
                                       num_classes=args.num_classes)
    else:
        model = loader.load_model(args)
        size, semantics = inference.input_contract(model, size)
        runner = predict_engine.Runner(model, input_size=size, semantics=semantics,
                                       scales=args.scales, flip=args.flip, smoothing=smoothing,
                                       threads=args.threads)
    # issue 11: folders and globs, relative output folders, bad files reported at the end
    return predict_engine.predict_batch(runner, images, args.output,
                                        side_by_side=args.side_by_side,
                                        progress=not args.no_progress,
                                        overwrite=args.overwrite)
