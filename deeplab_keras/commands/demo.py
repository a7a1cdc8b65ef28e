"""``deeplab-keras demo --output-dir DIR``: the offline main job. Builds the CamVid road-scene model
(preset ``deeplabv3plus_mobilenetv2_camvid`` when its weights ship with the package, or the
model of the usual model flags, :mod:`deeplab_keras.commands.loader`), segments a
synthetic road image drawn at run time, writes the class map and overlay, prints a summary.

The demo is a list of steps, each ``step(ctx) -> None`` reading and adding keys of a dict
``ctx`` (``args``, ``model``, ``preset``, ``image``, ``classes``, ``outputs``, ``summary``,
``export``), in the order of :data:`STEPS`.
"""
import os
import sys

import numpy as np

from deeplab_keras.commands import loader
from deeplab_keras.data.synthetic import road_scene

PRESET = "deeplabv3plus_mobilenetv2_camvid"


def _model_info(model):
    """What the later steps read of the model: its labels, palette and input contract."""
    return {"name": model.name, "labels": getattr(model, "labels", None),
            "palette": getattr(model, "palette", None),
            "preprocessing": (getattr(model, "preprocessing", None)
                              or {"input_size": None, "resize": "align_corners"})}


def build(ctx):
    from deeplab_keras.hub import zoo

    args = ctx["args"]
    if args.preset or args.weights:  # the user's model: errors are theirs to see
        ctx["model"] = loader.load_model(args)
        ctx["preset"], ctx["pretrained"] = _model_info(ctx["model"]), True
        print(f"model: {args.preset or args.weights}")
        return
    if zoo.is_preset(PRESET):
        try:
            args.preset = PRESET
            ctx["model"] = loader.load_model(args)
            ctx["preset"], ctx["pretrained"] = _model_info(ctx["model"]), True
            print(f"model: preset {PRESET} (trained weights)")
            return
        except (FileNotFoundError, ValueError, OSError) as err:
            reason = f"its weights could not be loaded ({err})"
    else:
        reason = f"preset {PRESET!r} is not in this catalogue yet"
    import deeplab_keras as dk
    from deeplab_keras.data import DATASETS

    print("=" * 78, file=sys.stderr)
    print(f"WARNING: {reason}.\nWARNING: using DeepLabV3Plus MobileNetV2 with RANDOM weights: "
          "the segmentation below is meaningless (a pipeline check only).", file=sys.stderr)
    print("=" * 78, file=sys.stderr)
    camvid = DATASETS["camvid"]
    ctx["model"] = dk.DeepLabV3Plus(num_classes=11, backbone="mobilenet_v2", alpha=args.alpha,
                                    output_stride=16, align_corners=True,
                                    labels=camvid.labels, palette=camvid.palette,
                                    ignore_label=camvid.ignore_label,
                                    preprocessing={"input_size": None, "resize": "align_corners"})
    ctx["preset"], ctx["pretrained"] = _model_info(ctx["model"]), False


def make_image(ctx):
    ctx["image"], ctx["drawn_classes"] = road_scene()


def segment(ctx):
    from deeplab_keras import inference

    prep = ctx["preset"].get("preprocessing") or {}
    ctx["classes"] = inference.predict_classes(ctx["model"], ctx["image"], prep.get("input_size"))


#: the pictures the demo writes in --output-dir, and the ``Software`` entry that marks them ours
PICTURES = ("demo_road.png", "demo_road_classes.png", "demo_road_overlay.png")
SOFTWARE = "deeplab-keras demo"


def check_pictures(args):
    """The writer policy (issue 27): a user's picture under one of :data:`PICTURES` is not
    replaced without --overwrite; ours (tagged) are."""
    from deeplab_keras.utils import io

    io.check_owned([os.path.join(args.output, name) for name in PICTURES], io.is_our_png,
                   overwrite=getattr(args, "overwrite", False))


def write_outputs(ctx):
    from deeplab_keras import inference

    out = ctx["args"].output
    os.makedirs(out, exist_ok=True)
    check_pictures(ctx["args"])  # again: the folder may have changed meanwhile
    palette = ctx["preset"]["palette"]
    if palette is None:
        palette = inference.default_palette(int(ctx["model"].output_shape[-1]))
    ctx["outputs"] = {
        "image": inference.save_png(ctx["image"], os.path.join(out, PICTURES[0]), SOFTWARE),
        # a palette PNG (viewable, still class indices) and an overlay with a legend (issue 12)
        "classes": inference.save_class_map(ctx["classes"],
                                            os.path.join(out, PICTURES[1]), palette,
                                            software=SOFTWARE),
        "overlay": inference.save_png(inference.overlay(ctx["image"], ctx["classes"], palette,
                                                        labels=ctx["preset"].get("labels"),
                                                        legend=True),
                                      os.path.join(out, PICTURES[2]), SOFTWARE),
    }


def summarize(ctx):
    classes, labels = ctx["classes"], ctx["preset"]["labels"] or []
    ids, counts = np.unique(classes, return_counts=True)
    share = ", ".join(f"{labels[i] if i < len(labels) else i} {c / classes.size:.0%}"
                      for i, c in sorted(zip(ids, counts), key=lambda t: -t[1]))
    agree = float(np.mean(classes == ctx["drawn_classes"]))
    ctx["summary"] = {"pixels": int(classes.size), "agreement_with_drawing": agree}
    print(f"segmented {classes.shape[1]}x{classes.shape[0]} synthetic road scene: {share}")
    print(f"pixel agreement with the drawn scene: {agree:.1%}"
          + ("" if ctx["pretrained"] else " (random weights)"))
    for key, path in ctx["outputs"].items():
        print(f"wrote {key}: {path}")


def export(ctx):
    """Verified int8 .tflite + .onnx of ``ctx["model"]`` in ``<output>/export``, calibrated on 8
    synthetic road scenes drawn by the demo and gated on 4 others; prints the parity and
    latency table."""
    if ctx["args"].no_export:
        return
    from deeplab_keras.export.verify import export_and_verify

    image = ctx["image"]
    prep = (ctx.get("preset") or {}).get("preprocessing") or {}
    size = tuple(prep.get("input_size") or image.shape[:2])
    calib = np.stack([road_scene(size[0], size[1], seed=1 + i)[0] for i in range(8)]).astype("float32")
    check = np.stack([road_scene(size[0], size[1], seed=100 + i)[0] for i in range(4)]).astype("float32")
    out = os.path.join(ctx["args"].output, "export")
    threshold = None
    if ctx.get("pretrained") is False:
        threshold = 0.0
        print("WARNING: random weights: the parity gate is reported but not enforced (int8 noise "
              "through random layers is not a deployment result)")
    print(f"exporting to {out} (int8 TFLite calibrated on 8 synthetic road scenes, ONNX float32; "
          "parity gate on 4 other scenes)")
    ctx["export"] = export_and_verify(ctx["model"], out, name="deeplab_demo", input_size=size,
                                      labels=(ctx.get("preset") or {}).get("labels"),
                                      calibration_data=calib, parity_data=check,
                                      num_calibration=8, num_parity=4, threshold=threshold)


STEPS = [build, make_image, segment, write_outputs, summarize, export]


def add_parser(subparsers):
    parser = subparsers.add_parser("demo", help="offline demo: segment a synthetic road scene")
    parser.add_argument("--output-dir", "--output", dest="output", required=True,
                        help="output directory (--output is the same flag)")
    loader.add_model_arguments(parser, num_classes_help="classes of the model (with --weights)")
    parser.add_argument("--alpha", type=float, default=1.0,
                        help="MobileNetV2 width when no trained preset is available")
    parser.add_argument("--no-export", action="store_true",
                        help="skip the verified int8 TFLite / ONNX export at the end")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace pictures in --output-dir that deeplab-keras did not write")
    return parser


def run(args):
    check_pictures(args)  # before any work
    ctx = {"args": args}
    for step in STEPS:
        step(ctx)
    return 0
