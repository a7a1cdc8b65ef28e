"""Benchmark (b): our float32 export at 257x257 against Google's ``deeplabv3_257_mv_gpu.tflite``
(DeepLab v3 MobileNetV2-0.5, OS 8, float logits output), same interpreter, same run, same threads.

Our model: weights imported from Google's file; exported in the same contract (float32 logits
[1, 257, 257, 21], no ArgMax: ``--gpu-delegate`` graph) and with our default class-map output.
Google's file takes normalised input ((x - 127.5) / 127.5); ours takes 0-255 pixels and
normalises in-graph. Golden agreement as in /work/shared/README.md: the 513x513 bird image is
resized to 257x257, the class map is resized back (nearest) and compared with the mask.

    python bench/export_google_gpu.py --threads 2
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import benchlib  # noqa: E402
SHARED = os.environ.get("DEEPLAB_KERAS_SHARED", os.path.join(os.path.dirname(HERE), "..", "shared"))
REF = os.path.join(SHARED, "reference")
GOOGLE = os.path.join(REF, "deeplabv3_257_mv_gpu.tflite")


class NormalisedInput:
    """Google's GPU file wants (x - 127.5) / 127.5 as float input."""

    def __init__(self, artifact):
        self.artifact = artifact

    def prepare(self, image):
        return self.artifact.prepare((image - 127.5) / 127.5)

    def set_input(self, x):
        return self.artifact.set_input(x)

    def __call__(self, image):
        return self.artifact((image - 127.5) / 127.5)


def main(argv=None):
    p = benchlib.parser(__doc__, "export_google_gpu.md")
    args = p.parse_args(argv)
    if benchlib.missing(GOOGLE):
        return 0
    import numpy as np
    from PIL import Image

    from deeplab_keras.export import Artifact, export_model, golden, profiling
    from deeplab_keras.importers.tflite import from_tflite

    os.makedirs(args.workdir, exist_ok=True)
    bird, mask = golden.load_pair(os.path.join(REF, "bird_segmentation.bmp"),
                                  os.path.join(REF, "bird_segmentation_mask.bmp"), (513, 513))
    small = np.asarray(Image.fromarray(bird.astype(np.uint8)).resize((257, 257), Image.BILINEAR),
                       np.float32)

    def score(classes):
        back = Image.fromarray(np.asarray(classes, np.uint8).reshape(257, 257)).resize((513, 513), Image.NEAREST)
        return golden.agreement(np.asarray(back), mask)

    model = from_tflite(GOOGLE)
    paths = {"ours logits (GPU contract)": os.path.join(args.workdir, "ours_257_logits.tflite"),
             "ours class map": os.path.join(args.workdir, "ours_257_classes.tflite")}
    paths["ours int8 class map (PTQ)"] = os.path.join(args.workdir, "ours_257_int8.tflite")
    sys.path.insert(0, HERE)
    from export_google_quant import calibration_sets
    calib = calibration_sets()["camvid32+cityscapes"]
    parity = {}
    for (name, path), mode, quantize in zip(paths.items(), ("logits", "classes", "classes"),
                                            ("none", "none", "int8")):
        r = export_model(model, path, "tflite", quantize, 257, output_mode=mode,
                         gpu_delegate=(mode == "logits"), calibration_data=calib,
                         num_calibration=len(calib),
                         parity_data=[os.path.join(REF, "cityscapes_segmentation.bmp")],
                         num_parity=1, report_dir=os.path.join(args.workdir, "reports"))
        parity[name] = r["parity"]
    google = NormalisedInput(Artifact(GOOGLE, num_threads=args.threads))
    arts = {"google": google}
    arts.update({k: Artifact(v, num_threads=args.threads) for k, v in paths.items()})
    rows = [("Google deeplabv3_257_mv_gpu.tflite", score(np.argmax(google(small)[0], -1))),
            ("ours, Keras float32 (weights imported)", score(np.argmax(np.asarray(model(small[None]))[0], -1))),
            ("ours logits (GPU contract)", score(np.argmax(arts["ours logits (GPU contract)"](small)[0], -1))),
            ("ours class map", score(arts["ours class map"](small)[0])),
            ("ours int8 class map (PTQ, camvid32+cityscapes calibration)",
             score(arts["ours int8 class map (PTQ)"](small)[0]))]
    g_logits = google(small)[0]
    o_logits = arts["ours logits (GPU contract)"](small)[0]
    lat = profiling.interleaved_latency(arts, small, runs=args.runs)
    g = lat["google"]["median_ms"]
    lines = ["# Float DeepLab v3 MobileNetV2-0.5 257x257: ours vs Google's GPU TFLite", "",
             f"`python bench/export_google_gpu.py --threads {args.threads} --runs {args.runs}`", "",
             "| model | golden agreement |", "|---|---|"]
    lines += [f"| {n} | {a:.4f} |" for n, a in rows]
    lines += ["", f"Max |logit difference| ours vs Google's file on the bird image: "
              f"{float(np.abs(o_logits - g_logits).max()):.4g} (logit range "
              f"{float(g_logits.max() - g_logits.min()):.1f}); argmax agreement "
              f"{float((o_logits.argmax(-1) == g_logits.argmax(-1)).mean()):.4f}.", "",
              f"Latency, ai-edge-litert {args.threads} threads (XNNPACK), same process, interleaved:", "",
              "| graph | median ms | p90 ms | ratio to Google |", "|---|---|---|---|"]
    for k, v in lat.items():
        lines.append(f"| {k} | {v['median_ms']:.2f} | {v['p90_ms']:.2f} | {v['median_ms'] / g:.2f} |")
    lines += ["", f"Parity gate of our exports (vs Keras, Cityscapes reference image): "
              + "; ".join(f"{k}: agreement {v['agreement']:.4f}" for k, v in parity.items())]
    return benchlib.publish(args.output, lines)


if __name__ == "__main__":
    sys.exit(main())
