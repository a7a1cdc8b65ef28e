"""``deeplab-keras demo --output DIR``: the offline main job. Builds the CamVid road-scene model
(preset ``deeplabv3plus_mobilenetv2_camvid`` when its weights ship with the package), segments a
synthetic road image drawn at run time, writes the class map and overlay, prints a summary.

The demo is a list of steps, each ``step(ctx) -> None`` reading and adding keys of a dict
``ctx`` (``args``, ``model``, ``preset``, ``image``, ``classes``, ``outputs``, ``summary``).
Later stages (e.g. export + parity) add themselves with :func:`register_step`.
"""
import os
import sys

import numpy as np

PRESET = "deeplabv3plus_mobilenetv2_camvid"


def road_scene(height=360, width=480, seed=0):
    """A synthetic CamVid-like road scene (RGB uint8) and its drawn class map."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (width, height))
    lab = Image.new("L", (width, height))
    d, m = ImageDraw.Draw(img), ImageDraw.Draw(lab)
    horizon = int(height * 0.45)

    def shape(kind, xy, colour, label):
        getattr(d, kind)(xy, fill=colour)
        getattr(m, kind)(xy, fill=label)

    for y in range(horizon):  # sky gradient
        c = int(150 + 80 * y / horizon)
        d.line([(0, y), (width, y)], fill=(c - 20, c, 235))
    shape("rectangle", [0, horizon, width, height], (170, 160, 150), 4)  # pavement
    x = 0
    while x < width:  # buildings along the horizon
        w, h = int(rng.integers(40, 90)), int(rng.integers(60, 150))
        tone = int(rng.integers(90, 160))
        shape("rectangle", [x, horizon - h, x + w, horizon + 20], (tone, tone - 30, tone - 40), 1)
        x += w + int(rng.integers(0, 10))
    shape("polygon", [(width * 0.42, horizon + 20), (width * 0.58, horizon + 20), (width, height),
                      (0, height)], (95, 90, 100), 3)  # road
    for i in range(5):  # lane markings (road)
        y0 = horizon + 30 + i * (height - horizon) // 5
        d.rectangle([width // 2 - 2 - i, y0, width // 2 + 2 + i, y0 + 12], fill=(230, 230, 230))
    for cx, cy, r in ((60, horizon - 10, 45), (width - 70, horizon - 5, 50)):  # trees
        shape("ellipse", [cx - r, cy - r, cx + r, cy + r], (60, 120, 40), 5)
    shape("rectangle", [int(width * 0.3), horizon - 60, int(width * 0.3) + 5, horizon + 60],
          (200, 200, 180), 2)  # pole
    for x0, y0, w, h, colour in ((int(width * 0.2), int(height * 0.7), 110, 60, (180, 20, 30)),
                                 (int(width * 0.6), int(height * 0.58), 70, 40, (20, 40, 160))):
        shape("rectangle", [x0, y0, x0 + w, y0 + h], colour, 8)  # cars
    noise = rng.normal(0, 4, (height, width, 3))
    image = np.clip(np.asarray(img, np.float32) + noise, 0, 255).astype(np.uint8)
    return image, np.asarray(lab)


def build(ctx):
    from deeplab_keras import zoo

    args = ctx["args"]
    if zoo.is_preset(PRESET):
        try:
            ctx["model"] = zoo.from_preset(PRESET, progress=False)
            ctx["preset"] = zoo.get_preset(PRESET)
            ctx["pretrained"] = True
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
    ctx["model"] = dk.DeepLabV3Plus(num_classes=11, backbone="mobilenet_v2", alpha=args.alpha,
                                    output_stride=16)
    camvid = DATASETS["camvid"]
    ctx["preset"] = {"name": None, "labels": list(camvid.labels),
                     "palette": [list(c) for c in camvid.palette],
                     "preprocessing": {"input_size": None, "resize": "align_corners"}}
    ctx["pretrained"] = False


def make_image(ctx):
    ctx["image"], ctx["drawn_classes"] = road_scene()


def segment(ctx):
    from deeplab_keras import inference

    prep = ctx["preset"].get("preprocessing") or {}
    ctx["classes"] = inference.predict_classes(
        ctx["model"], ctx["image"], prep.get("input_size"),
        prep.get("resize", "align_corners") == "align_corners")


def write_outputs(ctx):
    from deeplab_keras import inference

    out = ctx["args"].output
    os.makedirs(out, exist_ok=True)
    palette = ctx["preset"]["palette"]
    ctx["outputs"] = {
        "image": inference.save_png(ctx["image"], os.path.join(out, "demo_road.png")),
        "classes": inference.save_png(ctx["classes"], os.path.join(out, "demo_road_classes.png")),
        "overlay": inference.save_png(inference.overlay(ctx["image"], ctx["classes"], palette),
                                      os.path.join(out, "demo_road_overlay.png")),
    }


def summarize(ctx):
    classes, labels = ctx["classes"], ctx["preset"]["labels"]
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
    """Verified int8 .tflite + .onnx of the model, with the parity and latency table."""
    if ctx["args"].no_export:
        return
    from deeplab_keras.export.verify import demo_step

    demo_step(ctx)


STEPS = [build, make_image, segment, write_outputs, summarize, export]


def register_step(step, after=None):
    """Add ``step(ctx)`` to the demo (at the end, or after the step named ``after``)."""
    if after is None:
        STEPS.append(step)
    else:
        STEPS.insert([s.__name__ for s in STEPS].index(after) + 1, step)


def add_parser(subparsers):
    parser = subparsers.add_parser("demo", help="offline demo: segment a synthetic road scene")
    parser.add_argument("--output", required=True, help="output directory")
    parser.add_argument("--alpha", type=float, default=1.0,
                        help="MobileNetV2 width when no trained preset is available")
    parser.add_argument("--no-export", action="store_true",
                        help="skip the verified int8 TFLite / ONNX export at the end")
    return parser


def run(args):
    ctx = {"args": args}
    for step in STEPS:
        step(ctx)
    return 0
