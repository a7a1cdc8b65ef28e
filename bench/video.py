"""Video: VideoSegmenter vs MediaPipe VIDEO mode, predict --artifact end to end vs a bare LiteRT
loop, temporal smoothing (flicker and mIoU), the Keras video path vs a tf.function, in one run.

    python bench/video.py --int8 runs/video/camvid_int8.tflite \
        --mediapipe runs/video/camvid_int8_mediapipe.tflite

On CamVid's val clip (../shared/data/camvid/val: the 101 frames of sequence 0016E5 in name order,
15 fps, 480x360, labels in valannot). The two files are ``deeplab-keras export --preset
deeplabv3plus_mobilenetv2_camvid --quantize int8 --input-size 360x480 --calibration
../shared/data/camvid/train`` with ``--format tflite`` (class-map output) and ``--target
mediapipe`` (logits + MediaPipe metadata). Every figure is a ratio of two measurements taken in
this run, interleaved in rounds (the medians of the rounds), since these machines' CPUs differ
several-fold and are shared.
"""
import os
import re
import subprocess
import sys
import time

import numpy as np

import benchlib

from deeplab_keras.inference import Segmenter

CAMVID = os.path.join(benchlib.HERE, "..", "..", "shared", "data", "camvid")
FPS = 15.0
SMOOTHING = [("off", False), ("recommended", True), ("strength 0.6", 0.6)]


def load_clip(root, limit=None):
    from PIL import Image
    names = sorted(f for f in os.listdir(os.path.join(root, "val")) if f.endswith(".png"))
    names = names[:limit] if limit else names
    frames = [np.asarray(Image.open(os.path.join(root, "val", n)).convert("RGB")) for n in names]
    labels = [np.asarray(Image.open(os.path.join(root, "valannot", n))) for n in names]
    return names, frames, labels


def write_clip(frames, path):
    from deeplab_keras.video import VideoWriter
    writer = VideoWriter(path, frames[0].shape[:2], FPS)
    for f in frames:
        writer.write(f)
    writer.close()
    return path


def per_frame_ms(fn, frames):
    """Milliseconds per frame of ``fn`` over ``frames``, the first call (warm-up) excluded."""
    fn(frames[0])
    t = time.perf_counter()
    for f in frames[1:]:
        fn(f)
    return (time.perf_counter() - t) * 1000.0 / max(len(frames) - 1, 1)


def interleaved(methods, frames, rounds):
    """{name: median ms per frame over ``rounds`` passes}, the methods alternating each round."""
    times = {name: [] for name in methods}
    for _ in range(rounds):
        for name, fn in methods.items():
            times[name].append(per_frame_ms(fn, frames))
    return {name: float(np.median(v)) for name, v in times.items()}, times


def bare_invoke(path, threads):
    """A bare LiteRT loop on ``path``: set the frame, invoke, read the output (the app's minimum)."""
    from deeplab_keras.export.runtime import Artifact
    art = Artifact(path, num_threads=threads)

    def run(frame):
        art.set_input(art.prepare(frame))()
        return art._it.get_tensor(art._out["index"])
    return run


def mediapipe_video(path):
    import mediapipe as mp
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions
    opts = vision.ImageSegmenterOptions(base_options=BaseOptions(model_asset_path=path),
                                        running_mode=vision.RunningMode.VIDEO,
                                        output_category_mask=True, output_confidence_masks=False)
    seg = vision.ImageSegmenter.create_from_options(opts)
    clock = [0]

    def run(frame):
        clock[0] += int(1000 / FPS)
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(frame))
        return seg.segment_for_video(image, clock[0]).category_mask.numpy_view()
    return run


class InOrder(Segmenter):
    """A :class:`~deeplab_keras.VideoSegmenter` as a source of the segmenter layer, so the
    library's evaluate scores its frames (in order: the smoothing state carries over)."""
    kind = "video"

    def __init__(self, video, num_classes):
        self.video, self.num_classes = video, num_classes
        self.description = video.describe()

    def segment(self, image):
        return self.video.segment(np.asarray(image, np.uint8))


def flicker_and_miou(segmenter, frames, labels, num_classes, ignore):
    """Flicker (share of pixels whose predicted class changes between consecutive frames), mIoU
    (the library's evaluate), and accuracy on pixels whose label changes between consecutive
    frames (moving objects and boundaries: where smoothing would smear)."""
    from deeplab_keras import data
    from deeplab_keras.evaluation import evaluate

    segmenter.reset()
    counts = {"changed": 0, "right": 0, "total": 0, "prev": None, "prev_label": None}

    def motion(images, batch_labels, preds):
        for label, pred in zip(batch_labels, preds):
            if counts["prev"] is not None:
                counts["changed"] += int((pred != counts["prev"]).sum())
                prev_label = counts["prev_label"]
                moving = (label != prev_label) & (label != ignore) & (prev_label != ignore)
                counts["total"] += int(moving.sum())
                counts["right"] += int((pred[moving] == label[moving]).sum())
            counts["prev"], counts["prev_label"] = pred, label

    result = evaluate(InOrder(segmenter, num_classes), list(zip(frames, labels)),
                      dataset=data.custom_info(num_classes, ignore), on_batch=motion)
    pixels = frames[0].shape[0] * frames[0].shape[1] * (len(frames) - 1)
    return {"flicker": counts["changed"] / pixels, "miou": result["miou"],
            "moving_acc": counts["right"] / max(counts["total"], 1)}


def smoothing_table(path, what, settings, frames, labels, threads):
    """Markdown lines: flicker, mIoU and moving-pixel accuracy of ``path`` with each setting."""
    import deeplab_keras as dk
    lines = [f"## Temporal smoothing ({what}, all {len(frames)} labelled frames)", "",
             "Flicker: share of pixels whose class changes between consecutive frames. "
             "Moving-pixel accuracy: pixel accuracy where the ground truth itself changes "
             "between consecutive frames (moving objects and boundaries: what smoothing could "
             "smear). CamVid's 11 classes, ignore label 11.", "",
             "| smoothing | flicker | flicker change | mIoU | mIoU change | moving-pixel acc |",
             "|---|---|---|---|---|---|"]
    base = None
    for name, option in settings:
        seg = dk.VideoSegmenter(path, smoothing=option, num_threads=threads)
        m = flicker_and_miou(seg, frames, labels, 11, 11)
        base = base or m
        lines.append(f"| {name} ({seg.describe().split('; smoothing ')[1]}) | {m['flicker']:.4f} | "
                     f"{(m['flicker'] / base['flicker'] - 1) * 100:+.1f}% | "
                     f"{m['miou'] * 100:.2f} | {(m['miou'] - base['miou']) * 100:+.2f} | "
                     f"{m['moving_acc'] * 100:.2f} |")
    return lines


def smoothing_only(args, frames, labels):
    """``--smoothing-only``: the smoothing table on both files, with more settings (a separate
    result file: bench/results/video_smoothing.md)."""
    from deeplab_keras.video import TemporalSmoother
    settings = [("off", False)] + [
        (f"s {s:g} m {m:g} g {g:g}", TemporalSmoother(s, m, g))
        for s in (0.3, 0.4, 0.5) for m in (0.12, 0.2, 0.3) for g in (0.2, 0.25, 0.3)] + [
        ("hysteresis only", TemporalSmoother(0.0, None, 0.3)),
        ("average only", TemporalSmoother(0.6, 0.12, 0.0))]
    lines = ["# Video: temporal smoothing settings on CamVid's val clip", "",
             f"`python bench/video.py --smoothing-only --int8 {args.int8} --mediapipe "
             f"{args.mediapipe}` ({len(frames)} frames of CamVid val in name order; the int8 "
             "class-map file smooths one-hot votes, the MediaPipe file (logits, same model and "
             "quantization) smooths softmax probabilities). Settings compared on this clip "
             "itself: there is no held-out clip.", ""]
    lines += smoothing_table(args.int8, "int8 classes file", SMOOTHING, frames, labels,
                             args.threads)
    lines += [""] + smoothing_table(args.mediapipe, "int8 logits file (the mediapipe export)",
                                    settings, frames, labels, args.threads)
    return benchlib.publish(os.path.join(os.path.dirname(args.output), "video_smoothing.md"),
                            lines)


def predict_end_to_end(artifact, clip, out_dir, threads):
    """``deeplab-keras predict --artifact`` on the clip in a child process: its reported
    frames/s after start-up, and the overlay video it wrote."""
    cmd = [sys.executable, "-m", "deeplab_keras", "predict", "--artifact", artifact,
           "--threads", str(threads), "--no-progress", "--output-dir", out_dir, clip]
    env = dict(os.environ, PYTHONPATH=os.path.dirname(benchlib.HERE))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    found = re.search(r"([\d.]+) frames/s after start-up", proc.stdout)
    if proc.returncode != 0 or not found:
        raise RuntimeError(f"predict failed: {proc.stdout[-1000:]} {proc.stderr[-2000:]}")
    return float(found.group(1)), proc.stdout.strip().splitlines()[-1]


def keras_vs_tf_function(frames, rounds):
    import tensorflow as tf

    import deeplab_keras as dk
    model = dk.from_preset("deeplabv3plus_mobilenetv2_camvid", progress=False)
    fn = tf.function(lambda x: model(x, training=False))
    seg = dk.VideoSegmenter(model)

    def traced(frame):
        return np.asarray(fn(tf.constant(frame[None], tf.float32)))
    return interleaved({"VideoSegmenter(Keras model)": seg.segment,
                        "tf.function forward": traced}, frames, rounds)


def main():
    p = benchlib.parser(__doc__, "video.md", runs=None, workdir="/tmp/deeplab_keras_bench_video")
    p.add_argument("--int8", required=True, help="int8 .tflite (class-map output)")
    p.add_argument("--mediapipe", required=True, help="the --target mediapipe .tflite")
    p.add_argument("--data-root", default=CAMVID)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--keras-frames", type=int, default=21,
                   help="frames per round for the (slow) float Keras comparison")
    p.add_argument("--smoothing-only", action="store_true",
                   help="only the smoothing settings, on both files (video_smoothing.md)")
    args = p.parse_args()
    if benchlib.missing(args.data_root, "CamVid"):
        return 0
    import deeplab_keras as dk
    names, frames, labels = load_clip(args.data_root)
    if args.smoothing_only:
        return smoothing_only(args, frames, labels)
    os.makedirs(args.workdir, exist_ok=True)
    clip = write_clip(frames, os.path.join(args.workdir, "camvid_val_0016E5.mp4"))
    t = args.threads
    lines = ["# Video: real-time path on CamVid's val clip", "",
             f"`python bench/video.py --int8 {args.int8} --mediapipe {args.mediapipe}` "
             f"({len(frames)} frames of CamVid val in name order, {frames[0].shape[1]}x"
             f"{frames[0].shape[0]}, as a {FPS:g} fps clip; {t} runtime threads; "
             f"{args.rounds} interleaved rounds, medians; {os.cpu_count()} CPUs seen, shared "
             "with other work). Every figure is a ratio of measurements taken in this one run.",
             ""]

    # 1. VideoSegmenter on the artifact vs MediaPipe ImageSegmenter VIDEO mode
    methods = {"bare LiteRT invoke (int8 classes file)": bare_invoke(args.int8, t),
               "VideoSegmenter(int8 classes file)": dk.VideoSegmenter(args.int8,
                                                                      num_threads=t).segment,
               "bare LiteRT invoke (mediapipe file)": bare_invoke(args.mediapipe, t),
               "VideoSegmenter(mediapipe file)": dk.VideoSegmenter(args.mediapipe,
                                                                   num_threads=t).segment,
               "VideoSegmenter(mediapipe file, smoothing=True)": dk.VideoSegmenter(
                   args.mediapipe, smoothing=True, num_threads=t).segment,
               "MediaPipe ImageSegmenter VIDEO (mediapipe file)": mediapipe_video(args.mediapipe)}
    ms, _ = interleaved(methods, frames, args.rounds)
    mp_ms = ms["MediaPipe ImageSegmenter VIDEO (mediapipe file)"]
    lines += ["## Frames per second, per-frame calls", "",
              "| path | ms / frame | frames/s | ratio to MediaPipe VIDEO |", "|---|---|---|---|"]
    lines += [f"| {k} | {v:.1f} | {1000 / v:.1f} | {mp_ms / v:.2f} |" for k, v in ms.items()]
    lines += ["", "MediaPipe's ImageSegmenter sets its own LiteRT thread count (its options have "
              "none); its category mask is computed at the frame's size from the logits.", ""]

    # 2. predict --artifact end to end vs the bare invoke rate (interleaved: bare, predict, ...)
    rates, bare = [], []
    out_dir = os.path.join(args.workdir, "predict_out")
    for r in range(args.rounds):
        bare.append(1000 / per_frame_ms(bare_invoke(args.int8, t), frames))
        rate, summary = predict_end_to_end(args.int8, clip, out_dir + str(r), t)
        rates.append(rate)
    e2e, b = float(np.median(rates)), float(np.median(bare))
    from deeplab_keras.video import VideoReader
    made = VideoReader(os.path.join(out_dir + "0", "camvid_val_0016E5_overlay.mp4"))
    lines += ["## End to end: `deeplab-keras predict --artifact` on the clip", "",
              f"`deeplab-keras predict --artifact {args.int8} --threads {t} --output-dir OUT "
              "clip.mp4` (decode, segment, draw the overlay with legend, encode H.264; its "
              "own 'frames/s after start-up' figure), in a child process, alternating with a "
              "bare LiteRT loop on the same file:", "",
              f"- predict end to end: {e2e:.1f} frames/s (rounds: "
              f"{', '.join(f'{x:.1f}' for x in rates)})",
              f"- bare LiteRT invoke: {b:.1f} frames/s (rounds: "
              f"{', '.join(f'{x:.1f}' for x in bare)})",
              f"- **ratio {e2e / b:.2f}** (goal >= 0.8)",
              f"- overlay video: **{made.frames} frames of {made.size[1]}x{made.size[0]}** at "
              f"{made.fps:g} fps (source: {len(frames)} frames of {frames[0].shape[1]}x"
              f"{frames[0].shape[0]})", f"- its summary line: `{summary.split(' -> ')[0]}`", ""]
    made.close()

    # 3. smoothing: flicker and mIoU with and without, on the int8 logits file (smoothing
    # works on probabilities) and, for contrast, on the class-map file (one-hot votes)
    lines += smoothing_table(args.mediapipe, "int8 logits file (the mediapipe export)",
                             SMOOTHING, frames, labels, t)
    lines += [""] + smoothing_table(args.int8, "int8 classes file", SMOOTHING[:2], frames,
                                    labels, t)

    # 4. the Keras video path vs a tf.function of the same model
    kms, _ = keras_vs_tf_function(frames[:args.keras_frames], args.rounds)
    k, f = kms["VideoSegmenter(Keras model)"], kms["tf.function forward"]
    lines += ["", "## Keras model: the video path vs a tf.function", "",
              f"Float Keras `deeplabv3plus_mobilenetv2_camvid` on the first {args.keras_frames} "
              "frames per round: `dk.VideoSegmenter(model).segment` (Keras' compiled "
              "`predict_on_batch`, argmax, class map) vs `tf.function(model)` forward only.", "",
              f"- VideoSegmenter(Keras model): {1000 / k:.2f} frames/s",
              f"- tf.function forward: {1000 / f:.2f} frames/s",
              f"- **ratio {f / k:.2f}** (goal >= 0.8)"]
    return benchlib.publish(args.output, lines)


if __name__ == "__main__":
    sys.exit(main())
