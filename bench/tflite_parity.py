"""Op-by-op parity of DeepLab TFLite files imported with ``dk.from_tflite``
(``deeplab_keras.importers.tflite_parity``): for each file, the error each op adds by itself
(layer fed the file's own input tensor), the accumulated error, and class-map agreement per
image, overall and on the pixels the file decides by more than 2 steps of its logits.

    python bench/tflite_parity.py            # the three files in ../shared/reference
    python bench/tflite_parity.py FILE.tflite --images a.png b.png
"""
import glob
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import benchlib  # noqa: E402

REF = os.path.join(os.path.dirname(HERE), "..", "shared", "reference")
FILES = ["mlperf_deeplabv3_mnv2_ade20k_int8.tflite", "deeplabv3_mnv2_pascal_quant.tflite",
         "deeplabv3_257_mv_gpu.tflite"]


def default_images(num_camvid):
    camvid = sorted(glob.glob(os.path.join(REF, "..", "data", "camvid", "val", "*.png")))[:num_camvid]
    return [os.path.join(REF, "bird_segmentation.bmp"), os.path.join(REF, "cityscapes_segmentation.bmp")] + camvid


def main(argv=None):
    p = benchlib.parser(__doc__, "tflite_parity.md", timing=False)
    p.add_argument("files", nargs="*", help="TFLite files (default: the three shared reference files)")
    p.add_argument("--images", nargs="*", help="RGB images (default: bird, Cityscapes, CamVid val)")
    p.add_argument("--camvid", type=int, default=4, help="CamVid val images in the default set")
    args = p.parse_args(argv)
    files = args.files or [os.path.join(REF, f) for f in FILES]
    images = args.images or default_images(args.camvid)
    if any(benchlib.missing(f) for f in files + images):
        return 0
    import numpy as np
    from PIL import Image

    import deeplab_keras as dk
    from deeplab_keras.importers.tflite_parity import compare_with_file

    names = [os.path.splitext(os.path.basename(i))[0] for i in images]
    lines = ["# Imported TFLite files, op by op", "",
             f"`python bench/tflite_parity.py{' ' + ' '.join(argv) if argv else ''}`", "",
             "Each conv op of the file vs the Keras layer chain `dk.from_tflite` matched to it (conv + "
             "BatchNorm + activation), errors as RMS in quantization steps of the op's output tensor "
             "(pure rounding: 1/sqrt(12) = 0.29). *Alone*: the layer fed the file's own input tensor of "
             "that op. *Accumulated*: the whole Keras network vs the whole file. Decided pixels: the "
             "file's own top-2 logit margin exceeds 2 steps of its logits tensor.", "",
             "| file | ops | alone: median / max steps | accumulated: max steps, max rel. error | "
             "logits RMS steps (mean) |", "|---|---:|---|---|---:|"]
    per_image = []
    for path in files:
        model = dk.from_tflite(path)
        h, w = model.input_shape[1:3]
        arrays = [np.array(Image.open(i).convert("RGB").resize((w, h), Image.BILINEAR)) for i in images]
        r = compare_with_file(model, path, arrays)
        L = r["layers"]
        local = np.array([x["local_steps"] for x in L], np.float64)
        rms = [i["logits_rms_steps"] for i in r["images"] if i["logits_rms_steps"] is not None]
        name = os.path.basename(path)
        if r["logit_step"]:
            lines.append(f"| {name} | {len(L)} | {np.nanmedian(local):.2f} / {np.nanmax(local):.2f} | "
                         f"{max(x['steps'] for x in L):.2f}, {max(x['relative_error'] for x in L):.3f} | "
                         f"{np.mean(rms):.2f} |")
        else:
            lines.append(f"| {name} (float) | {len(L)} | - (float: max abs {np.nanmax(local):.2g}) | "
                         f"-, {max(x['relative_error'] for x in L):.2g} | - |")
        per_image.append((name, r["images"]))
    lines += ["", "Class-map agreement with each file, per image (all pixels / decided pixels, decided share):", "",
              "| file | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for name, rows in per_image:
        lines.append(f"| {name} | " + " | ".join(f"{i['agreement']:.4f} / {i['decided_agreement']:.4f} "
                                                 f"({i['decided_fraction']:.2f})" for i in rows) + " |")
    return benchlib.publish(args.output, lines)


if __name__ == "__main__":
    sys.exit(main())
