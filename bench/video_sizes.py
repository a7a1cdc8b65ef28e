"""Frames/s of the Keras preset path (VideoSegmenter(preset)) at the preset's default size and at
a faster one, on CamVid val frames (issue 28 item 6).

    python bench/video_sizes.py --frames 20 --rounds 5

Both segmenters are built once and warmed up (the compiled model traces once per size), then
timed in interleaved rounds on the same frames (the first ``--frames`` of the val clip, 480x360,
in name order): each round runs every size over all frames; the figure is the median of the
rounds' frames/s. ``segment`` returns the class map at the frame's size, so the resize back is
included. Shared CPUs: compare the two figures of one run, not figures across runs.
"""
import os
import statistics
import time

import numpy as np

import benchlib

CAMVID = os.path.join(benchlib.HERE, "..", "..", "shared", "data", "camvid")
PRESET = "deeplabv3plus_mobilenetv2_camvid"


def main():
    p = benchlib.parser(__doc__, "video_sizes.md", timing=False)
    p.add_argument("--data-root", default=CAMVID)
    p.add_argument("--frames", type=int, default=12)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--sizes", nargs="+", default=["default", "360x480"],
                   help="'default' (the preset's own size) or HxW")
    args = p.parse_args()
    val = os.path.join(args.data_root, "val")
    if benchlib.missing(val, "CamVid val frames"):
        return 0
    from PIL import Image

    import deeplab_keras as dk
    names = sorted(f for f in os.listdir(val) if f.endswith(".png"))[:args.frames]
    frames = [np.asarray(Image.open(os.path.join(val, n)).convert("RGB")) for n in names]
    segs = {}
    for size in args.sizes:
        hw = None if size == "default" else tuple(int(v) for v in size.lower().split("x"))
        seg = dk.VideoSegmenter(PRESET, input_size=hw)
        seg.segment(frames[0])  # warm-up: trace and compile at this size
        segs[f"{seg.input_size[0]}x{seg.input_size[1]}" + (" (default)" if hw is None else "")] = seg
    fps = {k: [] for k in segs}
    for _ in range(args.rounds):
        for k, seg in segs.items():
            t = time.perf_counter()
            for frame in frames:
                seg.segment(frame)
            fps[k].append(len(frames) / (time.perf_counter() - t))
    med = {k: statistics.median(v) for k, v in fps.items()}
    ref = next(iter(med.values()))
    lines = [f"# VideoSegmenter(\"{PRESET}\") frames/s by run size", "",
             f"{len(frames)} CamVid val frames ({frames[0].shape[1]}x{frames[0].shape[0]}), "
             f"{args.rounds} interleaved rounds, median; Keras on TensorFlow CPU, "
             f"{os.cpu_count()} CPUs seen ({benchlib.cpu_name()}), shared with other jobs.", "",
             "| run size | frames/s (median) | rounds | ratio to the first |", "|---|---|---|---|"]
    for k, v in med.items():
        lines.append(f"| {k} | {v:.2f} | {', '.join(f'{x:.2f}' for x in fps[k])} | {v / ref:.2f}x |")
    lines += ["", "Descriptions: " + "; ".join(s.describe() for s in segs.values())]
    return benchlib.publish(args.output, lines)


if __name__ == "__main__":
    raise SystemExit(main())
