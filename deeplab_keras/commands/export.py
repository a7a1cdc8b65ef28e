"""``deeplab-keras export``: one verified deployment artifact (SavedModel, TFLite or ONNX).

    deeplab-keras export --preset deeplabv3_mobilenetv2_voc --format tflite --quantize int8 \\
        --input-size 513 --calibration images/ --output deeplab_int8.tflite

The artifact is written only if it passes its parity gate against the Keras model; the report
goes to ``--report-dir`` (default: beside the artifact) as JSON and markdown. The model
flags are every command's (:mod:`deeplab_keras.commands.loader`); an architecture without
``--weights`` exports its fresh initialisation (as ``--weights none``).

    deeplab-keras export --preset deeplabv3plus_mobilenetv2_camvid --target mediapipe \
        --quantize int8 --input-size 360x480 --calibration images/ --output camvid.tflite

``--target mediapipe``: a .tflite file MediaPipe ImageSegmenter runs (4-D scores, standard
metadata with the labels), gated by running ImageSegmenter on it.

``--target web``: a folder with that file, a page and the MediaPipe Tasks for Web runtime, run in
the browser offline (int8 by default; docs/web.md); ``--weights FILE.tflite`` takes a
MediaPipe-compatible file as it is.
"""
import os

from deeplab_keras.commands import loader


def add_parser(subparsers):
    p = subparsers.add_parser("export", help="export a verified SavedModel / TFLite / ONNX artifact")
    loader.add_model_arguments(p)
    p.add_argument("--format", choices=("saved_model", "tflite", "onnx"),
                   help="artifact format (required unless --target mediapipe, which means tflite)")
    p.add_argument("--target", choices=("tflite", "mediapipe", "web"),
                   help="mediapipe: a .tflite for MediaPipe ImageSegmenter / the Task Library "
                   "(4-D score output, standard metadata, gated by running ImageSegmenter); web: "
                   "a folder (--output) with that file, a page and MediaPipe Tasks for Web, "
                   "offline (docs/web.md)")
    p.add_argument("--quantize", default=None, choices=("none", "float16", "dynamic", "int8", "qat"),
                   help="quantization (default none = float32, int8 for --target web); ONNX: "
                   "none or int8 (onnxruntime static QDQ)")
    loader.add_input_size(p, required=True, help="the artifact's fixed input size: N, H W or HxW")
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
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output (and "
                   "report files beside it) that deeplab-keras did not write (default: refuse)")
    return p


def _name(output):
    """The artifact's name, as :func:`deeplab_keras.export.api.validate` derives it."""
    return os.path.splitext(os.path.basename(os.path.normpath(output)))[0]


def run(args):
    from deeplab_keras.export import api, calibration, qat

    args.quantize = args.quantize or ("int8" if args.target == "web" else "none")
    if args.target == "web":  # issue 29: the export below, into a staging folder
        return _web(args)
    # -- mobile (issue 10): --target mediapipe implies tflite + a 4-D score output
    if args.target == "mediapipe" and args.format not in (None, "tflite"):
        raise ValueError("--target mediapipe writes a .tflite file; drop --format or use --format tflite")
    if args.format is None and args.target is None:
        raise ValueError("give --format (saved_model, tflite, onnx) or --target mediapipe")
    args.format = args.format or "tflite"  # export_model picks the output mode for the target
    report_dir = args.report_dir or os.path.dirname(os.path.abspath(args.output))
    # -- end mobile
    from deeplab_keras.export import ownership
    inputs = [args.weights, args.config]  # issue 27: never written onto, not even with --overwrite
    ownership.check_output(args.output, args.overwrite, inputs)  # before loading anything
    ownership.check_report_files(report_dir, _name(args.output), overwrite=args.overwrite,
                                 inputs=inputs)
    size, extra = loader.split_input_size(args.input_size)  # (and a bad --input-size too)
    if extra:
        raise ValueError(f"--input-size takes N, H W or HxW; unexpected {' '.join(extra)!r}")
    model = getattr(args, "_model", None) or loader.load_model(args, missing_weights="fresh")
    if not getattr(model, "architecture", None):
        raise ValueError(f"{args.weights} is not a deeplab_keras model (it does not record its "
                         "architecture); export needs one")
    architecture, labels = model.architecture, getattr(model, "labels", None)
    qat_model, notes = None, {}
    if args.quantize == "qat":
        if args.format != "tflite":
            raise ValueError("--quantize qat produces TFLite files (use --format tflite)")
        images, desc = calibration.get_images(args.calibration, size, args.num_calibration)
        qat_model, info = qat.quantization_aware_model(model, input_size=size,
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


def _web(args):
    """``--target web``: the MediaPipe export (or a given MediaPipe-compatible .tflite) into a
    staging folder, then the page and the vendored runtime beside it; the staging folder
    replaces ``--output`` only when all of it succeeded."""
    import contextlib
    import io
    import json
    import shutil

    from deeplab_keras.web import app
    if args.format not in (None, "tflite") or args.report_dir:
        raise ValueError("--target web writes a folder (--output) that holds its .tflite and "
                         "report; drop --format and --report-dir")
    app.check_output(args.output, args.overwrite)  # before loading anything
    given = args.weights if str(args.weights or "").lower().endswith(".tflite") else None
    if not given:
        size, extra = loader.split_input_size(args.input_size)  # a bad one before loading
        if extra:
            raise ValueError(f"--input-size takes N, H W or HxW; unexpected {' '.join(extra)!r}")
    from deeplab_keras.web import runtime
    runtime.tarball()  # npm (once) or the cache: a missing runtime stops here, before the export
    if given:
        labels, palette = app.check_tflite(given), None
    else:
        model = loader.load_model(args, missing_weights="fresh")
        labels, palette = getattr(model, "labels", None), getattr(model, "palette", None)
    folder = args.output
    with app.staging(folder) as stage:
        export_report = None
        model_file = os.path.join(stage, app.MODEL_FILE)
        if given:
            shutil.copyfile(given, model_file)
        else:  # the --target mediapipe export, with its gates and report, inside the folder
            args.target, args.format, args.output, args.report_dir = "mediapipe", "tflite", model_file, stage
            args._model = model
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                run(args)
            final = os.path.abspath(folder)
            print(printed.getvalue().replace(stage, final), end="")
            for name in (_name(model_file) + ".json", _name(model_file) + ".md"):  # name the final paths
                path = os.path.join(stage, name)
                with open(path) as f:
                    text = f.read()
                with open(path, "w") as f:
                    f.write(text.replace(stage, final))
            with open(os.path.join(stage, _name(model_file) + ".json")) as f:
                export_report = json.load(f)
        report = app.write_folder(stage, labels=labels, palette=palette, export_report=export_report,
                                  source=os.path.abspath(given) if given else args.preset or args.weights)
    rt = report["runtime"]
    print(f"{folder}: web app ({len(report['files'])} files; {rt['package']}@{rt['version']} "
          f"vendored, sha256 of every file in {os.path.join(folder, app.REPORT)})")
    print(f"look: deeplab-keras serve {folder}")
    return 0
