"""Video: VideoSegmenter vs MediaPipe VIDEO mode, predict --artifact end to end vs a bare LiteRT
loop, live with effects vs plain live (frames dropped, latency), CPU per stage per frame,
temporal smoothing (flicker and mIoU), the Keras video path vs a tf.function, in one run.

    python bench/video.py --int8 runs/video/camvid_int8.tflite \
        --mediapipe runs/video/camvid_int8_mediapipe.tflite

On CamVid's val clip (../shared/data/camvid/val: the 101 frames of sequence 0016E5 in name order,
15 fps, 480x360, labels in valannot). The two files are ``deeplab-keras export --preset
deeplabv3plus_mobilenetv2_camvid --quantize int8 --input-size 360x480 --calibration
../shared/data/camvid/train`` with ``--format tflite`` (class-map output) and ``--target
mediapipe`` (logits + MediaPipe metadata). The clip is written twice, at 15 fps (predict) and at
30 fps (live, which plays a file at its own rate as a camera delivers it). Every figure is a ratio of two measurements taken in
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


def check_ours(path):
    """ValueError unless ``path`` is absent or a file a deeplab-keras run wrote (a tagged
    video or PNG): the bench never replaces a user's file in the --workdir they chose."""
    from deeplab_keras.utils.io import check_output_file, is_our_png
    from deeplab_keras.video.io import is_our_video
    ours = is_our_png if path.lower().endswith(".png") else is_our_video
    check_output_file(path, ours, flag="--workdir file", what="bench file")
    return path


def write_clip(frames, path, fps=FPS):
    from deeplab_keras.video import VideoWriter
    check_ours(path)
    writer = VideoWriter(path, frames[0].shape[:2], fps)
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
    run.close = seg.close  # closed by the caller: MediaPipe's __del__ at exit raises
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
        lines.append(smoothing_row(f"{name} ({seg.describe().split('; smoothing ')[1]})", m, base))
    return lines


def smoothing_row(label, m, base):
    """One row of a smoothing table: flicker, mIoU, moving-pixel accuracy of ``m`` against the
    unsmoothed ``base`` (both from :func:`flicker_and_miou`)."""
    return (f"| {label} | {m['flicker']:.4f} | {(m['flicker'] / base['flicker'] - 1) * 100:+.1f}% | "
            f"{m['miou'] * 100:.2f} | {(m['miou'] - base['miou']) * 100:+.2f} | "
            f"{m['moving_acc'] * 100:.2f} |")


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


def predict_end_to_end(artifact, clip, out_dir, threads=None):
    """``deeplab-keras predict --artifact`` on the clip in a child process (its default threads
    unless ``threads``): its reported frames/s after start-up, and its summary line."""
    cmd = [sys.executable, "-m", "deeplab_keras", "predict", "--artifact", artifact,
           "--no-progress", "--output-dir", out_dir, clip]
    cmd += ["--threads", str(threads)] if threads else []
    env = dict(os.environ, PYTHONPATH=os.path.dirname(benchlib.HERE))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    found = re.search(r"([\d.]+) frames/s after start-up", proc.stdout)
    if proc.returncode != 0 or not found:
        raise RuntimeError(f"predict failed: {proc.stdout[-1000:]} {proc.stderr[-2000:]}")
    return float(found.group(1)), proc.stdout.strip().splitlines()[-1]


def _cpu():
    """(this process's CPU seconds, all threads; its waited-for children's CPU seconds)."""
    t = os.times()
    return time.process_time(), t.children_user + t.children_system


def stage_table(artifact, clip, threads, workdir, image_background):
    """CPU milliseconds per frame of each stage of the video path (``predict`` and ``live``),
    each stage run alone over the whole clip, one after the other, so that a stage's CPU is its
    own: the process's CPU (all threads: a runtime's workers, spinning or not) plus its ffmpeg
    child's (counted once the child has exited). Returns ``(rows, wall)``: ``{stage: (cpu ms,
    wall ms)}`` per frame, and the frame count."""
    import deeplab_keras as dk
    from deeplab_keras.inference import overlay
    from deeplab_keras.inference.draw import Background
    from deeplab_keras.inference.source import resize
    from deeplab_keras.video import VideoReader, VideoWriter

    rows = {}

    def timed(name, fn):
        (c0, k0), w0 = _cpu(), time.perf_counter()
        result = fn()
        (c1, k1), w1 = _cpu(), time.perf_counter()
        rows[name] = [(c1 - c0) + (k1 - k0), w1 - w0]
        return result

    reader = VideoReader(clip)  # its frame count (a stream copy by ffmpeg) is not decoding
    frames = timed("decode (ffmpeg to RGB, pipe read)", lambda: list(reader))
    n = len(frames)
    seg = dk.VideoSegmenter(artifact, num_threads=threads)
    size = seg.source.run_size(frames[0].shape[:2])
    inputs = timed("resize (frame to the model's input)",
                   lambda: [resize(f, size, seg.source.semantics) for f in frames])
    classes = timed("runtime (invoke + class map)", lambda: [seg.segment(x) for x in inputs])
    if tuple(size) != frames[0].shape[:2]:
        classes = [seg.segment(f) for f in frames]
    smooth = dk.VideoSegmenter(artifact, smoothing=True, num_threads=threads)
    timed("runtime + smoothing (smoothing=True)", lambda: [smooth.segment(x) for x in inputs])
    drawn = timed("overlay with legend (predict)", lambda: [
        overlay(f, c, seg.palette, labels=seg.labels, legend=True) for f, c in zip(frames, classes)])
    timed("overlay, no legend (live)", lambda: [
        overlay(f, c, seg.palette, labels=seg.labels) for f, c in zip(frames, classes)])
    keep = [seg.labels.index("Car"), seg.labels.index("Road")]
    picture = dk.load_image(image_background)
    for name, background in (("blur", "blur"), ("color", (0, 177, 64)), ("image", picture)):
        effect = Background(keep, background)
        timed(f"background {name} (live)", lambda: [effect(f, c) for f, c in zip(frames, classes)])
    writer = VideoWriter(check_ours(os.path.join(workdir, "stages.mp4")), frames[0].shape[:2],
                         FPS)
    w0, write = time.perf_counter(), [0.0, 0.0]
    k0 = _cpu()[1]
    for f in drawn:
        t, w = time.process_time(), time.perf_counter()
        writer.write(f)
        write[0] += time.process_time() - t
        write[1] += time.perf_counter() - w
    writer.close()  # the encoder exits: its CPU is now the children's
    k1, w1 = _cpu()[1], time.perf_counter()
    rows["write (pipe to ffmpeg)"] = write
    rows["encode (ffmpeg: RGB to YUV, x264)"] = [k1 - k0, (w1 - w0) - write[1]]
    return {k: (v[0] * 1000 / n, v[1] * 1000 / n) for k, v in rows.items()}, n


def stage_lines(stages, n, what):
    runtime = stages["runtime (invoke + class map)"][0]
    lines = [f"## CPU per stage per frame ({what})", "",
             f"Each stage run alone over the {n} frames, one after the other (CPU of this "
             "process, all threads, plus its ffmpeg child's; wall time of the stage alone). "
             "predict's path: decode, resize, runtime, overlay with legend, write, encode; "
             "live's: the same with an effect or the overlay without legend.", "",
             "| stage | CPU ms / frame | wall ms / frame | CPU vs runtime |", "|---|---|---|---|"]
    lines += [f"| {k} | {c:.2f} | {w:.2f} | {c / runtime:.2f} |" for k, (c, w) in stages.items()]
    predict = [k for k in stages if k.startswith(("decode", "resize", "runtime (", "overlay with",
                                                  "write", "encode"))]
    cpu = sum(stages[k][0] for k in predict)
    lines += ["", f"predict's path: {cpu:.1f} ms of CPU a frame, {runtime:.1f} of them the "
              f"runtime's ({(cpu - runtime) / cpu:.0%} the pipeline's own work).", ""]
    return lines


LIVE_LINE = re.compile(r"(\d+) frames processed in ([\d.]+)s \(([\d.]+) frames/s\), (\d+) of "
                       r"(\d+) received frames dropped(?:, latency median (\d+) ms, p90 (\d+) ms)?")


def live_run(artifact, clip, out, extra, threads=None):
    """``deeplab-keras live --source CLIP --artifact ... --no-window --output OUT [extra]`` in a
    child process: {fps, processed, dropped, received, median_ms, p90_ms} from its summary."""
    cmd = [sys.executable, "-m", "deeplab_keras", "live", "--source", clip, "--artifact",
           artifact, "--no-window", "--output", out] + list(extra)
    cmd += ["--threads", str(threads)] if threads else []
    env = dict(os.environ, PYTHONPATH=os.path.dirname(benchlib.HERE))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    found = LIVE_LINE.search(proc.stdout)
    if proc.returncode != 0 or not found:
        raise RuntimeError(f"live failed: {proc.stdout[-1000:]} {proc.stderr[-2000:]}")
    g = found.groups()
    return {"fps": float(g[2]), "processed": int(g[0]), "dropped": int(g[3]),
            "received": int(g[4]), "median_ms": float(g[5]) if g[5] else None,
            "p90_ms": float(g[6]) if g[6] else None, "line": found.group(0)}


LIVE_EFFECTS = [("plain (overlay)", []),
                ("--background blur --keep Car Road (no smoothing)",
                 ["--background", "blur", "--keep", "Car", "Road"]),
                ("--smoothing --background blur --keep Car Road",
                 ["--smoothing", "--background", "blur", "--keep", "Car", "Road"]),
                ("--smoothing --background color --keep Car Road",
                 ["--smoothing", "--background", "color", "--keep", "Car", "Road"]),
                ("--smoothing --background IMAGE --keep Car Road",
                 ["--smoothing", "--background", "IMAGE", "--keep", "Car", "Road"])]


def live_table(artifact, clip30, workdir, image_background, rounds, threads=None):
    """Markdown lines: live's rate, dropped frames and latency, plain vs each effect, the
    commands alternating each round (medians of the rounds)."""
    runs = {name: [] for name, _ in LIVE_EFFECTS}
    for r in range(rounds):
        for i, (name, extra) in enumerate(LIVE_EFFECTS):
            extra = [image_background if e == "IMAGE" else e for e in extra]
            runs[name].append(live_run(artifact, clip30, os.path.join(
                workdir, f"live_{i}_{r}.mp4"), extra, threads))  # ours: replaced, no flag
    med = lambda name, key: float(np.median([x[key] for x in runs[name]]))  # noqa: E731
    plain = med(LIVE_EFFECTS[0][0], "fps")
    lines = ["## Live: effects vs plain", "",
             f"`deeplab-keras live --source clip30.mp4 --artifact {artifact} --no-window --output "
             "o.mp4 [effects]` in a child process (the clip played at its own 30 fps as a camera "
             f"delivers it; frames that arrive while one is processed are dropped), {rounds} "
             "rounds alternating the commands, medians; latency: a frame's arrival to its "
             "result written (glass to glass), median and p90 of each run's frames.", "",
             "| command | frames/s | ratio to plain | dropped of received | latency median ms | "
             "latency p90 ms |", "|---|---|---|---|---|---|"]
    for name, _ in LIVE_EFFECTS:
        drops = ", ".join(f"{x['dropped']} of {x['received']}" for x in runs[name])
        lines.append(f"| {name} | {med(name, 'fps'):.1f} | {med(name, 'fps') / plain:.2f} | "
                     f"{drops} | {med(name, 'median_ms'):.0f} | {med(name, 'p90_ms'):.0f} |")
    lines += ["", f"Summary line of the last blur run: `{runs[LIVE_EFFECTS[2][0]][-1]['line']}`",
              ""]
    return lines, runs


def keras_vs_tf_function(frames, rounds):
    import tensorflow as tf

    import deeplab_keras as dk
    model = dk.from_preset("deeplabv3plus_mobilenetv2_camvid", progress=False)
    fn = tf.function(lambda x: model(x, training=False))
    # the same work on both sides: the frame's own size (the preset's working size, 536x720,
    # is 2.2x the work of these 360x480 frames, which the tf.function runs at)
    seg = dk.VideoSegmenter(model, input_size=frames[0].shape[:2])

    def traced(frame):
        return np.asarray(fn(tf.constant(frame[None], tf.float32)))
    return interleaved({"VideoSegmenter(Keras model)": seg.segment,
                        "tf.function forward": traced}, frames, rounds)


def background_image(path, size):
    """A synthetic background picture (a colour gradient) for ``--background IMAGE``."""
    from deeplab_keras.inference import save_png
    h, w = size
    y, x = np.mgrid[0:h, 0:w]
    image = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1),
                      np.full_like(x, 128)], -1).astype(np.uint8)
    return save_png(image, check_ours(path), software="deeplab-keras bench")


SECTIONS = ("segmenter", "predict", "live", "stages", "smoothing", "keras")


def main():
    p = benchlib.parser(__doc__, "video.md", runs=None, workdir="/tmp/deeplab_keras_bench_video")
    p.add_argument("--int8", required=True, help="int8 .tflite (class-map output)")
    p.add_argument("--mediapipe", required=True, help="the --target mediapipe .tflite")
    p.add_argument("--data-root", default=CAMVID)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--keras-frames", type=int, default=21,
                   help="frames per round for the (slow) float Keras comparison")
    p.add_argument("--only", nargs="+", choices=SECTIONS, default=SECTIONS,
                   help="run only these sections (default: all; the issue's table needs all)")
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
    clip30 = write_clip(frames, os.path.join(args.workdir, "camvid_val_0016E5_30fps.mp4"),
                        fps=30.0)
    back = background_image(os.path.join(args.workdir, "background.png"), frames[0].shape[:2])
    t, only = args.threads, set(args.only)
    lines = ["# Video: real-time path on CamVid's val clip", "",
             f"`python bench/video.py --int8 {args.int8} --mediapipe {args.mediapipe}"
             + ("" if only == set(SECTIONS) else f" --only {' '.join(args.only)}") + "` "
             f"({len(frames)} frames of CamVid val in name order, {frames[0].shape[1]}x"
             f"{frames[0].shape[0]}, as a {FPS:g} fps clip and a 30 fps one; {t} runtime threads "
             f"where a figure says 'bare' or calls the library, the commands' own default "
             f"otherwise; {args.rounds} interleaved rounds, medians; CPU: {benchlib.cpu_name()}, "
             f"{os.cpu_count()} CPUs seen, shared with other work). Every figure is a ratio of "
             "measurements taken in this one run.", ""]
    table = []  # the table: (what, measured, goal)

    # 1. VideoSegmenter on the artifact vs MediaPipe ImageSegmenter VIDEO mode
    if "segmenter" in only:
        methods = {"bare LiteRT invoke (int8 classes file)": bare_invoke(args.int8, t),
                   "VideoSegmenter(int8 classes file)": dk.VideoSegmenter(
                       args.int8, num_threads=t).segment,
                   "VideoSegmenter(int8 classes file, smoothing=True)": dk.VideoSegmenter(
                       args.int8, smoothing=True, num_threads=t).segment,
                   "bare LiteRT invoke (mediapipe file)": bare_invoke(args.mediapipe, t),
                   "VideoSegmenter(mediapipe file)": dk.VideoSegmenter(
                       args.mediapipe, num_threads=t).segment,
                   "VideoSegmenter(mediapipe file, smoothing=True)": dk.VideoSegmenter(
                       args.mediapipe, smoothing=True, num_threads=t).segment,
                   "MediaPipe ImageSegmenter VIDEO (mediapipe file)":
                       mediapipe_video(args.mediapipe)}
        ms, _ = interleaved(methods, frames, args.rounds)
        methods["MediaPipe ImageSegmenter VIDEO (mediapipe file)"].close()
        mp_ms = ms["MediaPipe ImageSegmenter VIDEO (mediapipe file)"]
        lines += ["## Frames per second, per-frame calls", "",
                  "| path | ms / frame | frames/s | ratio to MediaPipe VIDEO |",
                  "|---|---|---|---|"]
        lines += [f"| {k} | {v:.1f} | {1000 / v:.1f} | {mp_ms / v:.2f} |" for k, v in ms.items()]
        lines += ["", "MediaPipe's ImageSegmenter sets its own LiteRT thread count (its options "
                  "have none); its category mask is computed at the frame's size from the "
                  "logits.", ""]
        plain, smoothed = (ms["VideoSegmenter(int8 classes file)"],
                           ms["VideoSegmenter(int8 classes file, smoothing=True)"])
        table += [("`VideoSegmenter(int8 file)` vs MediaPipe ImageSegmenter VIDEO, frames/s",
                   f"{1000 / plain:.1f} vs {1000 / mp_ms:.1f}: **{mp_ms / plain:.2f}x**",
                   ">= 2x"),
                  ("the default int8 export, frames/s smoothed vs not",
                   f"{1000 / smoothed:.1f} vs {1000 / plain:.1f}: **{plain / smoothed:.2f}x**",
                   ">= 0.8x")]

    # 2. predict --artifact end to end (its default threads) vs the bare invoke rate
    # (interleaved: bare, predict, ...)
    if "predict" in only:
        rates, bare = [], []
        out_dir = os.path.join(args.workdir, "predict_out")
        for r in range(args.rounds):
            bare.append(1000 / per_frame_ms(bare_invoke(args.int8, t), frames))
            rate, summary = predict_end_to_end(args.int8, clip, out_dir + str(r))
            rates.append(rate)
        e2e, b = float(np.median(rates)), float(np.median(bare))
        from deeplab_keras.video import VideoReader
        made = VideoReader(os.path.join(out_dir + "0", "camvid_val_0016E5_overlay.mp4"))
        lines += ["## End to end: `deeplab-keras predict --artifact` on the clip", "",
                  f"`deeplab-keras predict --artifact {args.int8} --output-dir OUT clip.mp4` "
                  "(its default threads; decode, segment, draw the overlay with legend, encode "
                  "H.264; its own 'frames/s after start-up' figure), in a child process, "
                  f"alternating with a bare LiteRT loop ({t} threads) on the same file:", "",
                  f"- predict end to end: {e2e:.1f} frames/s (rounds: "
                  f"{', '.join(f'{x:.1f}' for x in rates)})",
                  f"- bare LiteRT invoke: {b:.1f} frames/s (rounds: "
                  f"{', '.join(f'{x:.1f}' for x in bare)})",
                  f"- **ratio {e2e / b:.2f}** (goal >= 0.7 on AVX-512, >= 0.8 on AVX2)",
                  f"- overlay video: **{made.frames} frames of {made.size[1]}x{made.size[0]}** "
                  f"at {made.fps:g} fps (source: {len(frames)} frames of {frames[0].shape[1]}x"
                  f"{frames[0].shape[0]})", f"- its summary line: `{summary.split(' -> ')[0]}`",
                  ""]
        made.close()
        table.append(("`predict --artifact clip.mp4` after start-up vs a bare LiteRT invoke loop",
                      f"{e2e:.1f} vs {b:.1f} fps: **{e2e / b:.2f}x**",
                      ">= 0.8x on AVX2, >= 0.7x on AVX-512"))

    # 3. live with effects vs plain live, dropped frames and latency
    if "live" in only:
        live_lines, runs = live_table(args.int8, clip30, args.workdir, back, args.rounds)
        lines += live_lines
        med = lambda name, key: float(np.median([x[key] for x in runs[name]]))  # noqa: E731
        plain = LIVE_EFFECTS[0][0]
        for name, _ in LIVE_EFFECTS[1:]:
            drops = "/".join(str(x["dropped"]) for x in runs[name])
            table.append((f"`live ... {name}` vs the same without effects",
                          f"{med(name, 'fps'):.1f} vs {med(plain, 'fps'):.1f} fps: "
                          f"**{med(name, 'fps') / med(plain, 'fps'):.2f}x**, {drops} of "
                          f"{runs[name][0]['received']} frames dropped; latency median "
                          f"{med(name, 'median_ms'):.0f} ms, p90 {med(name, 'p90_ms'):.0f} ms "
                          f"(plain: {med(plain, 'median_ms'):.0f} / {med(plain, 'p90_ms'):.0f})",
                          ">= 0.9x, <= 10% dropped" if "--smoothing" in name else
                          "(the effect alone, for contrast)"))

    # 4. CPU per stage per frame
    if "stages" in only:
        stages, n = stage_table(args.int8, clip, t, args.workdir, back)
        lines += stage_lines(stages, n, f"int8 classes file, {t} runtime threads")

    # 5. smoothing: flicker and mIoU with and without, on the default int8 export and, for
    # contrast, the int8 logits file
    if "smoothing" in only:
        smooth = smoothing_table(args.int8, "int8 classes file: the default export",
                                 SMOOTHING[:2], frames, labels, t)
        lines += smooth + [""] + smoothing_table(
            args.mediapipe, "int8 logits file (the mediapipe export)", SMOOTHING, frames,
            labels, t) + [""]
        flicker, miou = (smooth[-1].split(" | ")[2], smooth[-1].split(" | ")[4])
        table.insert(1 if table else 0, ("`smoothing=True` on the default int8 export: "
                                         "flicker, mIoU change", f"**{flicker}**, {miou}",
                                         "-25% at <= 0.5 mIoU drop"))

    # 6. the Keras video path vs a tf.function of the same model
    if "keras" in only:
        kms, _ = keras_vs_tf_function(frames[:args.keras_frames], args.rounds)
        k, f = kms["VideoSegmenter(Keras model)"], kms["tf.function forward"]
        lines += ["## Keras model: the video path vs a tf.function", "",
                  f"Float Keras `deeplabv3plus_mobilenetv2_camvid` on the first "
                  f"{args.keras_frames} frames per round, both at the frames' 360x480: "
                  "`dk.VideoSegmenter(model, input_size=(360, 480)).segment` "
                  "(Keras' compiled `predict_on_batch`, argmax, class map) vs "
                  "`tf.function(model)` forward only.", "",
                  f"- VideoSegmenter(Keras model): {1000 / k:.2f} frames/s",
                  f"- tf.function forward: {1000 / f:.2f} frames/s",
                  f"- **ratio {f / k:.2f}** (goal >= 0.8)", ""]
    head = ["## Issue 28's table, this run", "", "| what | measured | goal |", "|---|---|---|"]
    head += [f"| {a} | {b} | {c} |" for a, b, c in table]
    return benchlib.publish(args.output, lines[:4] + head + [""] + lines[4:])


if __name__ == "__main__":
    sys.exit(main())
