"""``deeplab-keras convert FILE.tflite --output model.keras``: rebuild a DeepLab TFLite file as a
Keras model (architecture read from the graph, weights matched by structure)."""
import json
import os


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "convert", help="rebuild a DeepLab .tflite file as a Keras model (.keras)",
        description="Reads the file's op graph, infers the DeepLab configuration (v3 / v3+, "
                    "backbone: MobileNetV2 and its width, ResNet-50/101, Xception-41/65/71; "
                    "output stride, multi-grid, ASPP rates, classes, input size, resize "
                    "semantics, input normalisation), builds it and imports the weights by "
                    "structure. The .keras model takes raw 0-255 RGB and outputs logits.")
    parser.add_argument("tflite", help="the .tflite file")
    parser.add_argument("--output", "-o", required=True, help="the .keras file to write")
    parser.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="input size of the Keras model (default: the file's)")
    parser.add_argument("--any-size", action="store_true",
                        help="accept any input size (None, None, 3) instead of the file's")
    parser.add_argument("--force", action="store_true", help="overwrite an existing --output")
    return parser


def run(args):
    import keras

    from deeplab_keras.importers.tflite import from_tflite
    from deeplab_keras.importers.tflite_describe import describe
    from deeplab_keras.utils.io import atomic_path

    if not args.output.endswith(".keras"):
        raise ValueError(f"--output must end in .keras, got {args.output!r}")
    if os.path.exists(args.output) and not args.force:
        raise ValueError(f"{args.output} exists; pass --force to overwrite it")
    if args.input_size and args.any_size:
        raise ValueError("give at most one of --input-size and --any-size")
    input_shape = None
    if args.any_size:
        input_shape = (None, None, 3)
    elif args.input_size:
        if min(args.input_size) < 1:
            raise ValueError(f"--input-size must be positive, got {args.input_size}")
        input_shape = (args.input_size[0], args.input_size[1], 3)
        from deeplab_keras.importers.tflite_reader import check_input_size
        check_input_size(args.tflite, *args.input_size, what="--input-size")
    config = describe(args.tflite)
    model = from_tflite(args.tflite, input_shape=input_shape)
    with atomic_path(args.output, suffix=".keras") as tmp:
        model.save(tmp)
        keras.saving.load_model(tmp, compile=False)  # verify before it takes the final name
    summary = {k: (list(v) if isinstance(v, tuple) else v) for k, v in config.items()}
    if input_shape is not None:
        summary["input_shape"] = list(input_shape)
    print(json.dumps(summary, indent=1))
    print(f"wrote {args.output} ({model.count_params():,} parameters)")
    return 0
