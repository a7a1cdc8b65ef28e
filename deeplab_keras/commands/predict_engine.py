"""The ``predict`` command's engine: image files, folders and globs to class maps and overlays
in an output folder, and videos to overlay videos (CLI code: progress bars, summaries, stderr)."""
import os

import numpy as np

from deeplab_keras.inference import (as_rgb8, default_palette, load_image, overlay,
                                     predict_classes, save_class_map, save_png)
from deeplab_keras.utils.io import atomic_path


def segment_file(model, image_path, output_dir, palette=None, input_size=None,
                 align_corners=True, labels=None, stem=None, side_by_side=False, legend=True):
    """Segment one image file; writes ``<stem>_classes.png`` (class indices as a palette PNG at
    the image's size), ``<stem>_overlay.png`` (with a legend of the classes present) and, with
    ``side_by_side``, ``<stem>_side.png`` (image | overlay). ``stem``: default the file name
    without extension; it may hold sub-folders. Returns a dict with the paths and per-class
    pixel fractions."""
    image = load_image(image_path)
    classes = predict_classes(model, image, input_size, align_corners)
    if palette is None:
        palette = default_palette(int(model.output_shape[-1]))
    stem = stem or os.path.splitext(os.path.basename(image_path))[0]
    os.makedirs(os.path.dirname(os.path.join(output_dir, stem)) or output_dir, exist_ok=True)
    class_path = save_class_map(classes, os.path.join(output_dir, f"{stem}_classes.png"), palette)
    vis = overlay(image, classes, palette, labels=labels, legend=legend)
    overlay_path = save_png(vis, os.path.join(output_dir, f"{stem}_overlay.png"))
    result = {"image": image_path, "classes": class_path, "overlay": overlay_path}
    if side_by_side:
        gap = np.full((image.shape[0], max(2, image.shape[1] // 100), 3), 255, np.uint8)
        result["side_by_side"] = save_png(np.concatenate([image, gap, vis], axis=1),
                                          os.path.join(output_dir, f"{stem}_side.png"))
    ids, counts = np.unique(classes, return_counts=True)
    name = (lambda i: labels[i] if labels and i < len(labels) else str(i))
    result.update(fractions={name(int(i)): float(c) / classes.size for i, c in zip(ids, counts)},
                  size=classes.shape)
    return result


# --- Batches: folders, globs, bad files (issue 11) ---------------------------------------------

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                    ".pgm")


def expand_inputs(inputs):
    """``(files, problems)``: image files from files, folders (searched recursively for
    ``IMAGE_EXTENSIONS``) and glob patterns (``**`` allowed), each file once; ``problems`` is a
    list of ``(argument, message)`` for arguments that name nothing usable."""
    import glob

    files, problems, seen = [], [], set()

    def add(path):
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            files.append(path)

    for arg in inputs:
        arg = os.fspath(arg)
        if os.path.isdir(arg):
            found = sorted(os.path.join(d, f) for d, _, names in os.walk(arg) for f in names
                           if f.lower().endswith(IMAGE_EXTENSIONS))
            if not found:
                problems.append((arg, f"folder {arg} holds no image files "
                                      f"({', '.join(IMAGE_EXTENSIONS)})"))
            for f in found:
                add(f)
        elif os.path.exists(arg):
            add(arg)
        elif glob.has_magic(arg):
            found = sorted(f for f in glob.glob(arg, recursive=True) if os.path.isfile(f))
            if not found:
                problems.append((arg, f"no file matches {arg}"))
            for f in found:
                add(f)
        else:
            problems.append((arg, f"image not found: {arg}"))
    return files, problems


def output_stems(files):
    """One output stem per file: its path below the files' common folder, without the
    extension, so same-named files from different folders never collide (``a/x.png`` ->
    ``a/x``, ``b/x.png`` -> ``b/x``); ``x.png`` beside ``x.jpg`` become ``x_png`` / ``x_jpg``."""
    if not files:
        return []
    absolute = [os.path.abspath(f) for f in files]
    root = os.path.commonpath([os.path.dirname(a) for a in absolute])
    stems = [os.path.splitext(os.path.relpath(a, root))[0] for a in absolute]
    clash = {s for s in stems if stems.count(s) > 1}
    out, used = [], set()
    for a, s in zip(absolute, stems):
        if s in clash:
            s = f"{s}_{os.path.splitext(a)[1].lstrip('.').lower() or 'noext'}"
        base, n = s, 1
        while s.lower() in used:  # x.PNG and x.png; case-insensitive file systems
            n += 1
            s = f"{base}_{n}"
        used.add(s.lower())
        out.append(s)
    return out


def segment_files(model, inputs, output_dir, palette=None, input_size=None, align_corners=True,
                  labels=None, on_result=None, side_by_side=False, files=None):
    """Segment every image of ``inputs`` (files, folders, globs) into ``output_dir``, keeping
    their relative folders (see :func:`output_stems`). A file that fails does not stop the
    others. Returns ``(results, failures)``, failures a list of ``(path, message)``.
    ``on_result(result_or_None)`` is called after each file (None for a failed one)."""
    if files is None:
        files, failures = expand_inputs(inputs)
    else:
        failures = []
    results = []
    for path, stem in zip(files, output_stems(files)):
        try:
            result = segment_file(model, path, output_dir, palette, input_size, align_corners,
                                  labels, stem=stem, side_by_side=side_by_side)
        except Exception as err:  # one bad file must not lose the rest of the batch
            failures.append((path, str(err) or type(err).__name__))
            result = None
        else:
            results.append(result)
        if on_result is not None:
            on_result(result)
    return results, failures


VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")


def segment_video(model, path, output_path, palette=None, input_size=None, align_corners=True,
                  labels=None, progress=True, legend=True):
    """Overlay video of a video file (imageio + its ffmpeg plugin, the ``video`` extra): every
    frame segmented and blended as :func:`overlay` does, written (atomically) at the source's
    frame rate as H.264 MP4. Returns ``{"video", "overlay", "frames", "seconds", "fps"}``
    (``fps``: frames segmented per second)."""
    import time

    try:
        import imageio.v2 as imageio
    except ImportError:
        raise ValueError(f"{path}: video needs imageio with its ffmpeg plugin: "
                         "pip install 'deeplab-keras[video]'") from None
    if palette is None:
        palette = default_palette(int(model.output_shape[-1]))
    try:
        reader = imageio.get_reader(path, format="FFMPEG")
    except Exception as err:  # imageio raises several kinds for unreadable files
        raise ValueError(f"cannot read video {path}: {err}") from None
    start, frames = time.time(), 0
    try:
        meta = reader.get_meta_data()
        fps = float(meta.get("fps") or 25.0)
        total = meta.get("nframes")
        total = int(total) if isinstance(total, (int, float)) and total != float("inf") else None
        bar = None
        if progress:
            import keras
            bar = keras.utils.Progbar(total, unit_name="frame")
        os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
        with atomic_path(output_path, suffix=".mp4") as tmp:
            writer = imageio.get_writer(tmp, format="FFMPEG", fps=fps, codec="libx264",
                                        quality=7, macro_block_size=2)
            try:
                for frame in reader:
                    frame = as_rgb8(frame)
                    classes = predict_classes(model, frame, input_size, align_corners)
                    writer.append_data(overlay(frame, classes, palette, labels=labels,
                                               legend=legend))
                    frames += 1
                    if bar is not None:
                        bar.update(min(frames, total) if total else frames)
            finally:
                writer.close()
            if not frames:
                raise ValueError(f"{path}: no frames could be read")
    finally:
        reader.close()
    seconds = time.time() - start
    return {"video": path, "overlay": output_path, "frames": frames, "seconds": seconds,
            "fps": frames / seconds if seconds > 0 else float("nan"), "source_fps": fps}


LABELS_FILE = "labels.json"


def write_labels(output_dir, labels, palette, ignore_label=None):
    """``<output_dir>/labels.json``: index -> name and colour of the class maps beside it.
    A labels.json we did not write (no ``"written_by"``) is not overwritten (ValueError)."""
    import json

    from deeplab_keras.utils.io import write_json

    path = os.path.join(output_dir, LABELS_FILE)
    if os.path.exists(path):
        try:
            with open(path) as f:
                ours = json.load(f).get("written_by") == "deeplab-keras"
        except (ValueError, OSError, AttributeError):
            ours = False
        if not ours:
            raise ValueError(f"{path} exists and was not written by deeplab-keras; choose another "
                             "--output-dir (it is left as it is)")
    entries = [{"index": i, "name": str(name), "color": [int(v) for v in palette[i]]}
               for i, name in enumerate(labels)]
    write_json(path, {"written_by": "deeplab-keras", "classes": entries,
                      "ignore_label": ignore_label})
    return path


def predict_batch(model, inputs, output_dir, palette=None, input_size=None, align_corners=True,
                  labels=None, side_by_side=False, progress=True):
    """The ``predict`` command's loop: :func:`segment_files` with a progress bar (n/N, time
    per image), ``labels.json`` beside the class maps, a summary line and, at the end, every
    failure on stderr. Returns the exit status (1 if any input failed)."""
    import sys
    import time

    files, problems = expand_inputs(inputs)
    videos = [f for f in files if f.lower().endswith(VIDEO_EXTENSIONS)]
    files = [f for f in files if not f.lower().endswith(VIDEO_EXTENSIONS)]
    num_classes = int(model.output_shape[-1])
    if palette is None:
        palette = default_palette(num_classes)
    names = list(labels) if labels else [f"class_{i}" for i in range(num_classes)]
    os.makedirs(output_dir, exist_ok=True)
    labels_path = write_labels(output_dir, names, palette, getattr(model, "ignore_label", None))
    bar = None
    if progress and files:
        import keras
        bar = keras.utils.Progbar(len(files), unit_name="image")
    done = [0]

    def step(result):
        done[0] += 1
        if bar is not None:
            bar.update(done[0])

    start = time.time()
    results, failures = segment_files(model, None, output_dir, palette, input_size, align_corners,
                                      labels, on_result=step, side_by_side=side_by_side,
                                      files=files)
    failures = problems + failures
    seconds = time.time() - start
    for video, stem in zip(videos, output_stems(videos)):
        try:
            v = segment_video(model, video, os.path.join(output_dir, f"{stem}_overlay.mp4"),
                              palette, input_size, align_corners, labels, progress=progress)
        except Exception as err:  # one bad file must not lose the rest
            failures.append((video, str(err) or type(err).__name__))
            continue
        print(f"{video}: {v['frames']} frames in {v['seconds']:.1f}s ({v['fps']:.2f} frames/s; "
              f"source {v['source_fps']:g} fps) -> {v['overlay']}")
    rate = f", {len(results) / seconds:.2f} images/s" if results and seconds > 0 else ""
    if files or not videos:
        print(f"segmented {len(results)}/{len(files)} image(s) in {seconds:.1f}s{rate} -> "
              f"{output_dir} (class maps *_classes.png, overlays *_overlay.png"
              + (", *_side.png" if side_by_side else "") + f"; names and colours: {labels_path})")
    if len(results) == 1:
        top = sorted(results[0]["fractions"].items(), key=lambda kv: -kv[1])[:4]
        print(f"{results[0]['image']}: " + ", ".join(f"{k} {v:.0%}" for k, v in top))
    if failures:
        print(f"deeplab-keras predict: {len(failures)} input(s) failed, "
              f"{len(results)} image(s) segmented:", file=sys.stderr)
        for path, message in failures:
            print(f"  {path}: {message}", file=sys.stderr)
        return 1
    return 0
