"""Does the TFLite Task Library (pip ``tflite-support``) run our MediaPipe-target files?

``tflite-support`` 0.4.4 (the last release) pins protobuf 3.20, which TensorFlow 2.20 cannot
import, so it cannot share the project's environment; it also needs the system library
``libusb-1.0`` (Debian: ``apt-get install libusb-1.0-0``). This script runs it from a separate
virtual environment and compares its category mask with MediaPipe ImageSegmenter's:

    python -m venv /tmp/tfls && /tmp/tfls/bin/pip install tflite-support
    python bench/task_library_check.py --task-python /tmp/tfls/bin/python \\
        /tmp/deeplab_keras_bench/mobile/camvid_*_mediapipe.tflite

Results: bench/results/task_library_check.md.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from deeplab_keras.utils.io import write_text  # noqa: E402
SHARED = os.environ.get("DEEPLAB_KERAS_SHARED", os.path.join(os.path.dirname(HERE), "..", "shared"))

TASK_SCRIPT = r"""
import json, sys
import numpy as np
from tflite_support.task import core, processor, vision
model, image, out = sys.argv[1:4]
opts = vision.ImageSegmenterOptions(
    base_options=core.BaseOptions(file_name=model),
    segmentation_options=processor.SegmentationOptions(output_type=processor.OutputType.CATEGORY_MASK))
seg = vision.ImageSegmenter.create_from_options(opts)
s = seg.segment(vision.TensorImage.create_from_file(image)).segmentations[0]
np.save(out, np.array(s.category_mask))
print(json.dumps([c.category_name for c in s.colored_labels]))
"""


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("files", nargs="+", help="MediaPipe-target .tflite files")
    p.add_argument("--task-python", required=True, help="python of a venv with tflite-support")
    p.add_argument("--images", type=int, default=4, help="CamVid val images to compare on")
    p.add_argument("--output", default=os.path.join(HERE, "results", "task_library_check.md"))
    args = p.parse_args(argv)
    import numpy as np
    from PIL import Image

    from deeplab_keras.export.mediapipe_gate import Segmenter
    images = sorted(glob.glob(os.path.join(SHARED, "data", "camvid", "val", "*.png")))[:args.images]
    if not images:
        print("skipped: CamVid val not found")
        return 0
    version = subprocess.run([args.task_python, "-c", "import importlib.metadata as m;"
                              "print(m.version('tflite-support'), m.version('protobuf'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "task.py")
        write_text(script, TASK_SCRIPT)
        for path in args.files:
            agree = total = 0
            labels_task = err = None
            with Segmenter(path) as seg:
                for i, img in enumerate(images):
                    # the Task Library resizes the image to the model input itself, MediaPipe too:
                    # give both the image at the model's size so neither resamples
                    h, w = seg_input = _input_size(path)
                    resized = os.path.join(tmp, f"{i}.png")
                    Image.open(img).convert("RGB").resize((w, h), Image.BILINEAR).save(resized)
                    npy = os.path.join(tmp, f"{i}.npy")
                    r = subprocess.run([args.task_python, script, path, resized, npy],
                                       capture_output=True, text=True)
                    if r.returncode:
                        err = r.stderr.strip().splitlines()[-1]
                        break
                    labels_task = json.loads(r.stdout.strip().splitlines()[-1])
                    mp_mask = seg(np.asarray(Image.open(resized).convert("RGB"), np.float32))
                    tl_mask = np.load(npy).reshape(mp_mask.shape)
                    agree += int((tl_mask == mp_mask).sum())
                    total += mp_mask.size
                labels_mp = seg.labels
            rows.append((os.path.basename(path), err or f"{agree / total:.4f}",
                         "-" if err else str(labels_task == labels_mp)))
            print(rows[-1])
    lines = ["# TFLite Task Library (tflite-support) on our MediaPipe-target files", "",
             f"`python bench/task_library_check.py --task-python VENV/bin/python --images {args.images} FILES`", "",
             f"tflite-support / protobuf in its venv: {version}. CamVid val images "
             f"(first {len(images)}), resized to the model input.", "",
             "| file | category-mask agreement Task Library vs MediaPipe | same labels |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    text = "\n".join(lines) + "\n"
    write_text(args.output, text)
    print(text)
    return 0


def _input_size(path):
    from deeplab_keras.inference.runtime import Artifact
    return Artifact(path).input_size


if __name__ == "__main__":
    sys.exit(main())
