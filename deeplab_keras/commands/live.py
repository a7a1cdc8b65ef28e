"""``deeplab-keras live --source CAMERA_INDEX|URL|FILE (--preset|--weights|--artifact)``: live
segmentation with real-time pacing. The newest frame is segmented; frames that arrive meanwhile
are dropped and counted (a file source is played at its own frame rate, as a camera delivers).
Shown in a window when a display exists, else written to ``--output FILE.mp4``. Effects:
``--background blur|color|IMAGE --keep CLASS...`` (e.g. ``--keep person`` with a VOC preset);
otherwise the colour overlay. Frame rate and dropped frames while running and at the end."""
from deeplab_keras.commands import loader
from deeplab_keras.commands.predict import RECOMMENDED


def add_parser(subparsers):
    p = subparsers.add_parser("live", help="live segmentation of a camera, stream or file with "
                              "real-time pacing")
    p.add_argument("--source", required=True,
                   help="camera index (0 = /dev/video0), stream URL or video file")
    loader.add_model_arguments(p)
    loader.add_input_size(p, help="run the Keras model at this size: N, H W or HxW")
    p.add_argument("--artifact", help="an exported .tflite / .onnx file to run instead")
    p.add_argument("--threads", type=int, help="runtime threads for --artifact (default: one "
                   "per core)")
    p.add_argument("--output", help="write the processed frames to this video file: .mp4, "
                   ".m4v, .mov or .mkv (required without a display)")
    p.add_argument("--no-window", action="store_true", help="never open a window")
    p.add_argument("--background", help="replace the background: blur, color (green), "
                   "color:#RRGGBB, or an image file")
    p.add_argument("--keep", nargs="+", metavar="CLASS",
                   help="classes kept in front of --background (names or indices)")
    p.add_argument("--smoothing", nargs="?", type=float, const=RECOMMENDED, default=None,
                   metavar="STRENGTH", help="temporal smoothing (recommended, or a strength)")
    p.add_argument("--speed", type=float, default=1.0,
                   help="play a file source at this multiple of its frame rate")
    p.add_argument("--max-frames", type=int, help="stop after this many processed frames")
    p.add_argument("--stall-timeout", type=float, default=10.0,
                   help="seconds without a frame (the first one included) before a stream "
                   "counts as stopped")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an --output file that deeplab-keras did not write")
    return p


def _background(text):
    if text is None:
        return None
    if text == "blur":
        return "blur"
    if text == "color":
        return (0, 177, 64)  # broadcast green
    if text.startswith("color:"):
        value = text[len("color:"):].lstrip("#")
        if len(value) != 6 or any(c not in "0123456789abcdefABCDEF" for c in value):
            raise ValueError(f"--background color:#RRGGBB takes 6 hex digits, got {text!r}")
        return tuple(int(value[i:i + 2], 16) for i in (0, 2, 4))
    from deeplab_keras.inference import load_image
    return load_image(text)


def _keep_ids(keep, labels, num_classes):
    ids = []
    for item in keep:
        if str(item).isdigit() and int(item) < num_classes:
            ids.append(int(item))
        elif labels and item in labels:
            ids.append(list(labels).index(item))
        else:
            known = ", ".join(labels) if labels else f"indices 0..{num_classes - 1}"
            raise ValueError(f"--keep {item!r} is not a class of this model ({known})")
    return ids


def _display():
    import os
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        return None
    from deeplab_keras.inference.draw import opencv
    return opencv()


def check_flags(args):
    """The flags' values, checked before the model loads (one line naming the flag)."""
    from deeplab_keras.commands.predict import smoothing_option
    from deeplab_keras.utils.validate import check_number

    check_number("--speed", args.speed, low=0, low_open=True)
    check_number("--stall-timeout", args.stall_timeout, low=0, low_open=True)
    check_number("--max-frames", args.max_frames, kind=int, low=1, allow_none=True)
    if args.threads is not None:
        check_number("--threads", args.threads, kind=int, low=1)
    smoothing_option(args.smoothing)
    if args.output:
        _check_output(args)


def _check_output(args):
    """``--output``: a video name (.mp4 ...), not a folder, not the source, and not a user's
    file (a video of ours, tagged when written, is replaced; anything else needs --overwrite)."""
    import os

    from deeplab_keras.utils.io import check_output_file
    from deeplab_keras.video.io import check_output_extension, is_our_video

    if os.path.isdir(args.output):
        raise ValueError(f"--output {args.output!r} is a folder; name a video file, for example "
                         f"{os.path.join(args.output, 'live.mp4')}")
    check_output_extension(args.output)
    source = str(args.source)
    inputs = [source] if os.path.exists(source) else []
    check_output_file(args.output, is_our_video, inputs=inputs, overwrite=args.overwrite,
                      flag="--output", what="--output")


def run(args):
    import sys
    import time

    import numpy as np

    from deeplab_keras.commands.predict import smoothing_option
    from deeplab_keras.commands.predict_engine import Runner
    from deeplab_keras.inference import overlay
    from deeplab_keras.inference.draw import Background
    from deeplab_keras.video.io import VideoWriter
    from deeplab_keras.video.live import (LiveFrames, StreamStalled, latency_summary, open_live,
                                          segmented)
    from deeplab_keras.video.pipeline import leave_cores_to_runtime, runtime_threads

    check_flags(args)
    leave_cores_to_runtime()
    background = _background(args.background)
    if (background is None) != (args.keep is None):
        raise ValueError("--background and --keep go together: --background blur --keep person")
    window = None if args.no_window else _display()
    if window is None and not args.output:
        raise ValueError("no display here: give --output FILE.mp4 to write the live result")
    if args.artifact:
        runner = Runner(artifact=loader.check_artifact(args),
                        threads=runtime_threads(args.threads),
                        smoothing=smoothing_option(args.smoothing),  # refuses --input-size
                        input_size=loader.parse_input_size(args.input_size))
    else:
        model = loader.load_model(args)
        runner = Runner(model, smoothing=smoothing_option(args.smoothing), threads=args.threads,
                        input_size=loader.parse_input_size(args.input_size))
    keep = _keep_ids(args.keep, runner.labels, runner.num_classes) if args.keep else None
    effect = Background(keep, background) if keep is not None else None
    segmenter = runner.video_segmenter()
    if args.output:
        _check_output(args)  # again: the folder may have changed while the model loaded
    print(f"live: {segmenter.describe()}", file=sys.stderr, flush=True)  # the size it runs at
    reader, live = open_live(args.source, timeout=args.stall_timeout)
    if getattr(reader, "fps_guessed", False) and args.output:
        print(f"live: {args.source} announces no frame rate; {args.output} is written at "
              f"{reader.fps:g} fps", file=sys.stderr)
    frames = LiveFrames(reader, live=live, speed=args.speed, stall_timeout=args.stall_timeout)
    writer, processed, start, last_report = None, 0, time.perf_counter(), 0.0
    latencies = []  # glass to glass: a frame's arrival to its result written or shown
    stalled, progress = None, [False]
    try:
        try:
            # the model segments the next frame while this one is drawn and written
            for frame, classes, arrival in segmented(frames, segmenter.infer, finish=segmenter.finish):
                out = (effect(frame, classes) if effect is not None
                       else overlay(frame, classes, runner.palette, labels=runner.labels))
                if args.output:
                    if writer is None:
                        writer = VideoWriter(args.output, out.shape[:2], reader.fps,
                                             comment="deeplab-keras live")
                    if out.shape[:2] != writer.size:  # the source changed size mid-stream
                        from PIL import Image
                        out = np.asarray(Image.fromarray(out).resize(writer.size[::-1]))
                    writer.write(out)
                if window is not None:
                    window.imshow("deeplab-keras live", out[..., ::-1])
                    if window.waitKey(1) & 0xFF in (ord("q"), 27):
                        break
                processed += 1
                now = time.perf_counter()
                latencies.append(now - arrival)
                if now - last_report >= 1.0:
                    last_report, progress[0] = now, True
                    print(f"\rlive: {processed} frames, {processed / (now - start):.1f} "
                          f"frames/s, {frames.dropped} dropped", end="", file=sys.stderr,
                          flush=True)
                if args.max_frames and processed >= args.max_frames:
                    break
        except StreamStalled as err:  # the frames processed so far are kept
            stalled = err
        if writer is not None:
            writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        frames.close()
        if window is not None:
            window.destroyAllWindows()
        if progress[0]:
            print(file=sys.stderr)  # end the progress line, whatever happened
    seconds = time.perf_counter() - start
    wrote = f" -> {args.output}" if writer is not None else ""
    print(f"live: {processed} frames processed in {seconds:.1f}s ({processed / seconds:.1f} "
          f"frames/s), {frames.dropped} of {frames.received} received frames dropped"
          + (f", {latency_summary(latencies)}" if latencies else "")
          + f" (source {reader.fps:g} fps; {segmenter.describe()})" + wrote)
    if stalled is not None:
        print(f"deeplab-keras live: {stalled}; {processed} frames were processed"
              + (f" and written to {args.output}" if writer is not None else ""),
              file=sys.stderr)
        return 1
    return 0
