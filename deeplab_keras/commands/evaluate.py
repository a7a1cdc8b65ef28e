"""``deeplab-keras evaluate``: mIoU and per-class IoU of a model on a dataset split.

    deeplab-keras evaluate --preset deeplabv3plus_mobilenetv2_camvid \\
        --dataset camvid --data-root ../shared/data/camvid --split val --output results.json
    deeplab-keras evaluate --weights runs/camvid/best.weights.h5 --config runs/camvid/config.json \\
        --dataset camvid --data-root ../shared/data/camvid --scales 0.75 1 1.25 --flip --crf

The model comes from ``--preset``, or from ``--weights``: a ``.keras`` file is complete; other
weight files need the architecture from ``--config`` (a preset JSON, a training config/recipe with
``architecture`` + ``model``, or plain builder arguments; a file or an inline JSON string) and/or
``--architecture``. ``num_classes`` defaults to the dataset's. The model flags are every
command's (:mod:`deeplab_keras.commands.loader`).

``--artifact FILE.tflite|FILE.onnx|SAVED_MODEL_DIR`` evaluates an exported file itself (LiteRT /
onnxruntime / TensorFlow), single scale, with the same metrics:

    deeplab-keras evaluate --artifact camvid_int8.tflite --dataset camvid \
        --data-root ../shared/data/camvid --split val
"""
import os

from deeplab_keras.commands import loader


def _floats(values):
    out = []
    for value in values:
        out += [float(v) for v in str(value).replace(",", " ").split()]
    return out


def _window(text):
    parts = str(text).lower().replace("x", " ").replace(",", " ").split()
    if len(parts) not in (1, 2):
        raise ValueError(f"--sliding-window takes CROP or HxW, got {text!r}")
    return tuple(int(p) for p in parts) if len(parts) == 2 else int(parts[0])


def working_size(values):
    """``evaluate()``'s ``input_size`` for ``--input-size``: ``"image"`` (each image's own), a
    size, or ``"model"`` (absent: the model's input contract, as ``predict`` runs it)."""
    if values and [str(v).lower() for v in values] == ["image"]:
        return "image"
    return loader.parse_input_size(values) or "model"


def add_parser(subparsers):
    p = subparsers.add_parser("evaluate", help="mIoU / per-class IoU on a dataset split",
                              description=__doc__.split("\n\n")[0])
    loader.add_model_arguments(p, num_classes_help="classes of the model and of a 'folder' dataset "
                               "(default: the dataset's)")
    p.add_argument("--artifact", help="an exported .tflite / .onnx file or SavedModel folder: "
                   "evaluate the file itself (LiteRT / onnxruntime) instead of a Keras model")
    p.add_argument("--threads", type=int, help="runtime threads for --artifact")
    data = p.add_argument_group("data")
    data.add_argument("--dataset", required=True,
                      help="camvid | voc | cityscapes | ade20k | folder (images/ + masks/)")
    data.add_argument("--data-root", required=True, help="dataset folder")
    data.add_argument("--split", default="val")
    data.add_argument("--ignore-label", type=int, default=None,
                      help="ignore label of a 'folder' dataset (default: the model file's, else 255)")
    data.add_argument("--limit", type=int, help="evaluate only the first N images")
    inf = p.add_argument_group("inference")
    inf.add_argument("--input-size", nargs="+", metavar="SIZE",
                     help="run the model at this size (scale 1): N, H W or HxW; 'image' runs "
                     "each image at its own size (default: the model's own, as predict: its "
                     "preset's input size, else the image's)")
    inf.add_argument("--scales", nargs="+", default=["1.0"],
                     help="image scales to average, e.g. 0.5 0.75 1 1.25 1.5 1.75")
    inf.add_argument("--flip", action="store_true", help="also average the mirrored image")
    inf.add_argument("--sliding-window", type=_window, metavar="CROP",
                     help="tiled inference with CROP or HxW windows")
    inf.add_argument("--overlap", type=float, default=1 / 3, help="window overlap fraction")
    inf.add_argument("--weighting", choices=("gaussian", "uniform"), default="gaussian")
    inf.add_argument("--crf", action="store_true", help="DenseCRF refinement (DeepLab's settings)")
    out = p.add_argument_group("output")
    out.add_argument("--output-json", "--output", dest="output",
                     help="write the results as JSON to this file (atomically; --output is the same flag)")
    out.add_argument("--progress", action="store_true", default=True,
                     help="a progress bar (the default; kept for old command lines)")
    out.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    out.add_argument("--plots-dir", help="where the pictures go: confusion-matrix heatmap and "
                     "per-class IoU chart (need matplotlib: pip install 'deeplab-keras[plots]') and "
                     "example overlays (default: beside --output-json; none without either)")
    out.add_argument("--examples", type=int, default=3,
                     help="example panels (image | ground truth | prediction) to draw (default 3)")
    out.add_argument("--overwrite", action="store_true",
                     help="replace an existing --output-json / picture that deeplab-keras did "
                     "not write (default: refuse)")
    return p


def run(args):
    from deeplab_keras import data
    from deeplab_keras.evaluation import evaluate, format_table, write_json

    check_outputs(args)  # issue 19: before any work, never replace a user's file
    model = None
    if args.dataset == "folder":
        if args.num_classes is None and (loader.stands_alone(args) or args.preset) \
                and not args.artifact:
            # issue 12: a trained model file knows its classes, names, colours and ignore label
            # (a .tflite file its classes); issue 27: so does a preset (a backbone preset asks
            # for --num-classes in load_model)
            model = loader.load_model(args)
            if loader.stands_alone(args) and not getattr(model, "labels", None) \
                    and not str(args.weights).endswith(".tflite"):
                raise ValueError("--dataset folder needs --num-classes (and --ignore-label): "
                                 f"{args.weights} does not record its classes (a file written "
                                 "by `deeplab-keras train` does)")
            ignore = args.ignore_label if args.ignore_label is not None else \
                getattr(model, "ignore_label", None)
            info = data.custom_info(int(model.output_shape[-1]), 255 if ignore is None else ignore,
                                    labels=getattr(model, "labels", None),
                                    palette=getattr(model, "palette", None))
        elif args.num_classes is None:
            raise ValueError("--dataset folder needs --num-classes (and --ignore-label), or a "
                             "--preset or trained --weights FILE.keras that records them")
        else:
            info = data.custom_info(args.num_classes,
                                    255 if args.ignore_label is None else args.ignore_label)
    else:
        info = data.get_dataset_info(args.dataset)
        if args.num_classes is not None and args.num_classes != info.num_classes:
            raise ValueError(f"--num-classes {args.num_classes} but {args.dataset} has {info.num_classes}")
    pairs = data.list_pairs(args.dataset, args.data_root, args.split)
    if args.limit is not None:
        if args.limit < 1:
            raise ValueError(f"--limit must be positive, got {args.limit}")
        pairs = pairs[:args.limit]
    if args.artifact:  # -- mobile (issue 10): evaluate an exported file
        return _run_artifact(args, info, pairs)
    model = model or loader.load_model(args, num_classes=info.num_classes)
    examples = []
    keep = max(0, args.examples) if _plots_dir(args) else 0

    def collect(images, labels, pred):
        for item in zip(images, labels, pred):
            if len(examples) < keep:
                examples.append([a.copy() for a in item])

    result = evaluate(model, pairs, dataset=info, scales=_floats(args.scales), flip=args.flip,
                      sliding_window=args.sliding_window, overlap=args.overlap,
                      weighting=args.weighting, crf=True if args.crf else None,
                      progress=args.progress, on_batch=collect,
                      input_size=working_size(args.input_size))
    result.update(split=args.split, data_root=os.path.abspath(args.data_root),
                  model={"preset": args.preset, "weights": args.weights, "name": model.name})
    print(f"{model.name} on {args.dataset} {args.split}")
    print(format_table(result))
    if args.output:
        check_outputs(args)  # again: the folder may have changed while we evaluated
        print(f"wrote {write_json(result, args.output)}")
    palette = getattr(model, "palette", None) or [list(c) for c in info.palette]
    write_pictures(args, result, palette, examples, info.ignore_label,
                   getattr(model, "labels", None) or list(result.get("class_names") or []))
    return 0


def _pictures(args):
    """The pictures evaluate will write: ``[(path, writer)]`` with writer one of confusion, iou,
    example."""
    from deeplab_keras.evaluation import plots

    folder = _plots_dir(args)
    if not folder or args.artifact:
        return []
    stem = os.path.splitext(os.path.basename(args.output))[0] if args.output else "evaluate"
    kinds = (["confusion", "iou"] if plots.have_matplotlib() else []) + \
        [f"example{i}" for i in range(max(0, args.examples))]
    return [os.path.join(folder, f"{stem}_{kind}.png") for kind in kinds]


def check_outputs(args):
    """Refuse (naming the file and --overwrite) to replace a JSON or picture we did not write."""
    from deeplab_keras.evaluation import plots
    from deeplab_keras.evaluation.evaluator import is_result_json
    from deeplab_keras.utils import io

    overwrite = getattr(args, "overwrite", False)
    if args.output:
        io.check_owned([args.output], is_result_json, overwrite=overwrite, what="--output-json")
    io.check_owned(_pictures(args), plots.is_ours, overwrite=overwrite, what="evaluate picture")


def _plots_dir(args):
    if args.plots_dir:
        return args.plots_dir
    return os.path.dirname(os.path.abspath(args.output)) if args.output else None


def write_pictures(args, result, palette, examples, ignore_label, labels):
    """Confusion heatmap, per-class IoU chart (matplotlib) and example panels beside the JSON."""
    from deeplab_keras.evaluation import plots

    folder = _plots_dir(args)
    if not folder:
        return []
    check_outputs(args)
    stem = os.path.splitext(os.path.basename(args.output))[0] if args.output else "evaluate"
    names = list(result.get("class_names") or [str(i) for i in range(result["num_classes"])])
    written = []
    if plots.have_matplotlib():
        written.append(plots.confusion_heatmap(result["confusion_matrix"], names,
                                               os.path.join(folder, f"{stem}_confusion.png")))
        written.append(plots.iou_bars(result["per_class_iou"], names,
                                      os.path.join(folder, f"{stem}_iou.png"), result["miou"],
                                      palette=palette))
    else:
        print("evaluate: matplotlib is not installed, so no confusion-matrix or IoU chart "
              "(pip install 'deeplab-keras[plots]'); example panels are still drawn")
    for i, (image, label, pred) in enumerate(examples):
        written.append(plots.example_panel(image, label, pred, palette,
                                           os.path.join(folder, f"{stem}_example{i}.png"),
                                           ignore_label, labels))
    for path in written:
        print(f"wrote {path}")
    return written


def _run_artifact(args, info, pairs):
    """``--artifact``: the exported file on the labelled split (issue 10)."""
    from deeplab_keras.evaluation import evaluate, format_table, write_json
    from deeplab_keras.inference.source import open_segmenter

    loader.check_artifact(args)
    if args.sliding_window or args.crf:
        raise ValueError(f"{args.artifact} runs at its fixed input size: drop --sliding-window/"
                         "--crf (they need a Keras model: --preset, --weights)")
    # the segmenter layer checks the file and refuses what does not apply to it, as predict
    segmenter = open_segmenter(args.artifact, num_threads=args.threads,
                               input_size=args.input_size and loader.parse_input_size(args.input_size),
                               scales=_floats(args.scales), flip=args.flip)
    result = evaluate(segmenter, pairs, dataset=info, progress=args.progress)
    result.update(split=args.split, data_root=os.path.abspath(args.data_root))
    check_outputs(args)
    a = result["artifact"]
    print(f"{args.artifact} ({a['format']}, {a['runtime']}, input {a['input_shape']} {a['input_dtype']}, "
          f"output {a['output_mode'] or 'by shape'}) on {args.dataset} {args.split}")
    print(format_table(result))
    if args.output:
        print(f"wrote {write_json(result, args.output)}")
    return 0
