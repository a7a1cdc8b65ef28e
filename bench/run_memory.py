"""Peak memory of one run of the CamVid preset at given sizes, per pixel: the figure behind
deeplab_keras.inference.bounds.BYTES_PER_PIXEL. Each size runs in its own process (peak RSS
is per process).

    python bench/run_memory.py 536x720 1072x1440
"""
import subprocess
import sys

CHILD = r"""
import resource, sys
import numpy as np
import deeplab_keras as dk
from deeplab_keras.inference import predict_classes
model = dk.from_preset("deeplabv3plus_mobilenetv2_camvid")
h, w = int(sys.argv[1]), int(sys.argv[2])
image = np.zeros((360, 480, 3), np.uint8)
predict_classes(model, image, (64, 64))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
predict_classes(model, image, (h, w))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"| {h}x{w} | {(peak - base) / 1024:.0f} MB | {(peak - base) * 1024 / (h * w):.0f} B |")
"""


def main(argv):
    print("| size | peak above a 64x64 run | per pixel |\n|---|---:|---:|")
    for size in argv or ["536x720", "1072x1440"]:
        h, w = size.lower().split("x")
        subprocess.run([sys.executable, "-c", CHILD, h, w], check=True)


if __name__ == "__main__":
    main(sys.argv[1:])
