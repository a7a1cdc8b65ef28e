"""``deeplab-keras export``: one verified deployment artifact (SavedModel, TFLite or ONNX).

    deeplab-keras export --preset deeplabv3_mobilenetv2_voc --format tflite --quantize int8 \\
        --input-size 513 --calibration images/ --output deeplab_int8.tflite

The artifact is written only if it passes its parity gate against the Keras model; the report
goes to ``--report-dir`` (default: beside the artifact) as JSON and markdown.

    deeplab-keras export --preset deeplabv3plus_mobilenetv2_camvid --target mediapipe \
        --quantize int8 --input-size 360x480 --calibration images/ --output camvid.tflite

``--target mediapipe``: a .tflite file MediaPipe ImageSegmenter runs (4-D scores, standard
metadata with the labels), gated by running ImageSegmenter on it.
"""
import json
import os


def add_parser(subparsers):
    p = subparsers.add_parser("export", help="export a verified SavedModel / TFLite / ONNX artifact")
    src = p.add_argument_group("model")
    src.add_argument("--preset", help="preset name (architecture, config, labels and weights)")
    src.add_argument("--weights", help="weights file/URL/preset to load instead of the preset's own; "
                     "'none' keeps the fresh initialisation")
    src.add_argument("--architecture", help="deeplabv1/deeplabv2/deeplabv3/deeplabv3plus (fresh model, with --config)")
    src.add_argument("--config", help="builder kwargs as JSON text or a .json file (with --architecture)")
    src.add_argument("--allow-unpinned", action="store_true", help="allow unpinned weight downloads")
    p.add_argument("--format", choices=("saved_model", "tflite", "onnx"),
                   help="artifact format (required unless --target mediapipe, which means tflite)")
    p.add_argument("--target", choices=("tflite", "mediapipe"),
                   help="mediapipe: a .tflite for MediaPipe ImageSegmenter / the Task Library "
                   "(4-D score output, standard metadata, gated by running ImageSegmenter)")
    p.add_argument("--quantize", default="none", choices=("none", "float16", "dynamic", "int8", "qat"),
                   help="quantization (default none = float32); ONNX: none or int8 (onnxruntime static QDQ)")
    p.add_argument("--input-size", required=True, help="N or HxW: the artifact's fixed input size")
    p.add_argument("--output-mode", default=None,
                   choices=("classes", "logits", "probabilities", "lowres_logits"),
                   help="default: classes, or logits for --target mediapipe")
    p.add_argument("--gpu-delegate", action="store_true",
                   help="TFLite graph for the GPU delegate: float output, no ArgMax, no int64")
    p.add_argument("--io-dtype", default="uint8", choices=("uint8", "int8"),
                   help="input (and quantized output) type of int8/QAT TFLite files")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--calibration", help="folder of images for int8 calibration / QAT fine-tuning")
    p.add_argument("--num-calibration", type=int, default=16, help="calibration images (default 16)")
    p.add_argument("--parity-images", help="folder of images for the parity gate "
                   "(default: the calibration images, else deterministic synthetic images)")
    p.add_argument("--num-parity", type=int, default=4, help="images for the parity gate (default 4)")
    p.add_argument("--threshold", type=float, help="override the gate's argmax-agreement threshold")
    p.add_argument("--qat-steps", type=int, default=100, help="QAT fine-tuning steps (default 100)")
    p.add_argument("--qat-lr", type=float, default=1e-5, help="QAT learning rate (default 1e-5)")
    p.add_argument("--report-dir", default=None,
                   help="where the JSON + markdown report goes (default: the artifact's folder)")
    p.add_argument("--output", required=True, help="output file (.tflite/.onnx) or SavedModel directory")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output that "
                   "is not a previous deeplab-keras export (default: refuse)")
    return p


def _load_config(text):
    if text is None:
        return {}
    if os.path.isfile(text):
        with open(text) as f:
            return json.load(f)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"--config is neither a file nor JSON: {err}") from None


def build(args):
    """``(model, architecture, config, labels)`` from the model arguments."""
    from deeplab_keras import zoo
    from deeplab_keras.models import build_model
    from deeplab_keras.weights import load_weights

    if bool(args.preset) == bool(args.architecture):
        raise ValueError("give exactly one of --preset and --architecture")
    labels = None
    if args.preset:
        preset = zoo.get_preset(args.preset)
        architecture, config = preset["architecture"], dict(preset["config"])
        config.update(_load_config(args.config))
        labels = preset.get("labels")
        if config.get("num_classes") is None:
            raise ValueError(f"preset {args.preset!r} is a backbone; export a segmentation preset")
        if args.weights:
            model = build_model(architecture, **config)
            if args.weights != "none":
                load_weights(model, args.weights, allow_unpinned=args.allow_unpinned)
        else:
            model = zoo.from_preset(args.preset, allow_unpinned=args.allow_unpinned,
                                    **_load_config(args.config))
    else:
        architecture, config = args.architecture, _load_config(args.config)
        model = build_model(architecture, **config)
        if args.weights and args.weights != "none":
            load_weights(model, args.weights, allow_unpinned=args.allow_unpinned)
    if labels is not None and len(labels) != model.outputs[0].shape[-1]:
        labels = None
    return model, architecture, config, labels


def run(args):
    from deeplab_keras.export import api, calibration, graph, qat

    # -- mobile (issue 10): --target mediapipe implies tflite + a 4-D score output
    if args.target == "mediapipe" and args.format not in (None, "tflite"):
        raise ValueError("--target mediapipe writes a .tflite file; drop --format or use --format tflite")
    if args.format is None and args.target is None:
        raise ValueError("give --format (saved_model, tflite, onnx) or --target mediapipe")
    args.format = args.format or "tflite"
    if args.output_mode is None:
        args.output_mode = "logits" if args.target == "mediapipe" else "classes"
    report_dir = args.report_dir or os.path.dirname(os.path.abspath(args.output))
    # -- end mobile
    from deeplab_keras.export import ownership
    ownership.check_output(args.output, args.overwrite)  # issue 11: before loading anything
    graph.parse_size(args.input_size)                      # (and a bad --input-size too)
    model, architecture, config, labels = build(args)
    size = graph.parse_size(args.input_size)
    qat_model, notes = None, {}
    if args.quantize == "qat":
        if args.format != "tflite":
            raise ValueError("--quantize qat produces TFLite files (use --format tflite)")
        images, desc = calibration.get_images(args.calibration, size, args.num_calibration)
        qat_model, info = qat.quantization_aware_model(model, architecture, config, size,
                                                       data=images, steps=args.qat_steps,
                                                       learning_rate=args.qat_lr)
        notes["qat"] = (f"tf_keras twin max |logit diff| {info['transfer_max_abs_diff']:.3g}; "
                        f"{info['steps']} fine-tuning steps on {desc} (self-distillation); "
                        f"custom configs {info['custom_quantize_configs']}")
    report = api.export_model(
        model, args.output, format=args.format, quantize=args.quantize, input_size=size,
        output_mode=args.output_mode, calibration_data=args.calibration,
        parity_data=args.parity_images, num_calibration=args.num_calibration,
        num_parity=args.num_parity, io_dtype=args.io_dtype, gpu_delegate=args.gpu_delegate,
        opset=args.opset, labels=labels, report_dir=report_dir, threshold=args.threshold,
        qat_model=qat_model, architecture=architecture, extra_notes=notes, target=args.target,
        overwrite=args.overwrite)
    m = report["parity"]
    extra = f", max |logit err| {m['max_abs_error']:.3g}" if "max_abs_error" in m else ""
    print(f"{args.output}: {report['format']} {report['quantize']} {report['output_mode']} "
          f"{report['size_bytes'] / 2**20:.2f} MB; parity PASS on {report['parity_images']}: "
          f"agreement with Keras argmax {m['agreement']:.4f} (>= {report['threshold']}){extra}")
    # -- mobile (issue 10)
    if "mediapipe_agreement_with_keras" in m:
        print(f"MediaPipe ImageSegmenter: loads, labels match: {m.get('mediapipe_labels_match')}, "
              f"category-mask agreement with Keras {m['mediapipe_agreement_with_keras']:.4f} "
              f"(>= {m['mediapipe_threshold']})")
    if report["notes"].get("mediapipe"):
        print("NOTE: " + report["notes"]["mediapipe"])
    print("accuracy on labelled data: deeplab-keras evaluate --artifact " + args.output + " ...")
    # -- end mobile
    for path in report.get("report_files", []):
        print(f"report: {path}")
    return 0
