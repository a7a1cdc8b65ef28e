"""The ``predict`` command's engine: image files, folders and globs to class maps and overlays
in an output folder, and videos to overlay videos through a pipelined decode / segment / encode
pass (CLI code: progress bars, summaries, stderr). Inputs and names: :mod:`.predict_inputs`."""
import os

import numpy as np

from deeplab_keras.commands.predict_inputs import (IMAGE_EXTENSIONS, INDEX_FILE,
                                                   OUTPUT_SUFFIXES, check_not_inputs,
                                                   expand_inputs, output_stems)
from deeplab_keras.inference import (default_palette, load_image, overlay, save_class_map,
                                     save_png)
from deeplab_keras.inference.draw import class_counts
from deeplab_keras.utils.io import check_output_file, is_our_png
from deeplab_keras.video.io import VIDEO_EXTENSIONS, is_our_video

#: the ``Software`` entry of predict's PNGs and the ``comment`` tag of its videos: how a later
#: run knows a file in the output folder is ours to replace (issue 27: not by its name)
SOFTWARE = "deeplab-keras predict"


def is_our_output(path):
    """Did a deeplab-keras command write ``path`` (a tagged PNG or video)?"""
    if path.lower().endswith(".png"):
        return is_our_png(path)
    return is_our_video(path)


def check_outputs(paths, overwrite=False):
    """The writer policy for predict's outputs, before any work and again before writing:
    never a user's file (unless ``overwrite``). That no output is an input is
    :func:`check_not_inputs`' (one set of real paths for a whole batch)."""
    for path in paths:
        check_output_file(path, is_our_output, overwrite=overwrite, flag="output",
                          what="output file")


class Runner:
    """What ``predict`` runs: one segmenter of the segmenter layer
    (:func:`deeplab_keras.inference.open_segmenter`) for a Keras model (images at its input
    contract, or averaged over ``scales`` / ``flip``, as ``evaluate`` does) or an exported
    ``artifact`` (``.tflite`` / ``.onnx``), images and videos alike; the layer refuses what does
    not apply to the source (``--scales`` for a fixed-size file, ``--threads`` for Keras)."""

    def __init__(self, model=None, artifact=None, *, input_size=None, semantics=None,
                 scales=(1.0,), flip=False, smoothing=False, threads=None, num_classes=None):
        from deeplab_keras.inference.source import open_segmenter

        self.smoothing = smoothing
        self.source = open_segmenter(artifact if artifact is not None else model,
                                     input_size=input_size, semantics=semantics,
                                     scales=scales, flip=flip, num_threads=threads,
                                     num_classes=num_classes)
        if self.source.num_classes is None:
            raise ValueError(f"{artifact} outputs a class map and records no class count "
                             "(no labels in its metadata, no export report beside it): "
                             "give --num-classes")
        self.num_classes, self.labels = self.source.num_classes, self.source.labels
        self.palette, self.ignore_label = self.source.palette, self.source.ignore_label
        if self.palette is None:
            self.palette = default_palette(self.num_classes)

    def classify(self, image):
        """(H, W) class map of one RGB uint8 image: the segmenter layer's one call."""
        return self.source.segment(image)

    def video_segmenter(self, smoothing=None):
        from deeplab_keras.video import VideoSegmenter

        return VideoSegmenter(self.source, self.smoothing if smoothing is None else smoothing)


def segment_file(runner, image_path, output_dir, stem=None, side_by_side=False, legend=True,
                 inputs=(), overwrite=False):
    """Segment one image file; writes ``<stem>_classes.png`` (class indices as a palette PNG at
    the image's size), ``<stem>_overlay.png`` (with a legend of the classes present) and, with
    ``side_by_side``, ``<stem>_side.png`` (image | overlay). ``stem``: default the file name
    without extension; it may hold sub-folders. None of them may replace one of ``inputs``.
    Returns a dict with the paths and per-class pixel fractions."""
    stem = stem or os.path.splitext(os.path.basename(image_path))[0]
    paths = {k: os.path.join(output_dir, stem + suffix)
             for k, suffix in zip(("classes", "overlay", "side_by_side"), OUTPUT_SUFFIXES)}
    check_not_inputs(paths.values(), list(inputs) + [image_path])  # one set of real paths
    written = [paths["classes"], paths["overlay"]] + ([paths["side_by_side"]] if side_by_side
                                                      else [])
    check_outputs(written, overwrite)
    image = load_image(image_path)
    classes = runner.classify(image)
    palette, labels = runner.palette, runner.labels
    os.makedirs(os.path.dirname(paths["classes"]) or output_dir, exist_ok=True)
    check_outputs(written, overwrite)  # again: the folder may have changed meanwhile
    class_path = save_class_map(classes, paths["classes"], palette, software=SOFTWARE)
    vis = overlay(image, classes, palette, labels=labels, legend=legend)
    result = {"image": image_path, "classes": class_path,
              "overlay": save_png(vis, paths["overlay"], software=SOFTWARE)}
    if side_by_side:
        gap = np.full((image.shape[0], max(2, image.shape[1] // 100), 3), 255, np.uint8)
        result["side_by_side"] = save_png(np.concatenate([image, gap, vis], axis=1),
                                          paths["side_by_side"], software=SOFTWARE)
    counts = class_counts(classes)  # a block of rows at a time, as the legend counts them
    ids = np.flatnonzero(counts)
    name = (lambda i: labels[i] if labels and i < len(labels) else str(i))
    result.update(fractions={name(int(i)): float(counts[i]) / classes.size for i in ids},
                  size=classes.shape)
    return result


def segment_files(runner, files, output_dir, on_result=None, side_by_side=False,
                  overwrite=False):
    """Segment every image of ``files`` into ``output_dir``, keeping their relative folders (see
    :func:`output_stems`). A file that fails does not stop the others. Returns ``(results,
    failures)``, failures a list of ``(path, message)``. ``on_result(result_or_None)`` is
    called after each file (None for a failed one)."""
    results, failures = [], []
    for path, stem in zip(files, output_stems(files)):
        try:
            result = segment_file(runner, path, output_dir, stem=stem,
                                  side_by_side=side_by_side, inputs=files, overwrite=overwrite)
        except Exception as err:  # one bad file must not lose the rest of the batch
            failures.append((path, str(err) or type(err).__name__))
            result = None
        else:
            results.append(result)
        if on_result is not None:
            on_result(result)
    return results, failures


def segment_video(runner, path, output_path, progress=True, legend=True, inputs=(),
                  overwrite=False):
    """Overlay video of a video file: decoded, segmented (compiled Keras model or artifact,
    smoothed with ``runner.smoothing``) and encoded in a pipeline at the source's frame size,
    frame count and frame rate, its audio kept, written atomically. Returns the
    :func:`deeplab_keras.video.process_video` summary plus ``video`` and ``overlay``."""
    from deeplab_keras.video import VideoReader, process_video

    check_not_inputs([output_path], list(inputs) + [path])
    check_outputs([output_path], overwrite)
    reader = VideoReader(path)
    segmenter = runner.video_segmenter()
    bar = None
    if progress:
        import keras
        bar = keras.utils.Progbar(reader.frames, unit_name="frame")

    def draw(frame, classes):
        return overlay(frame, classes, runner.palette, labels=runner.labels, legend=legend)

    def step(n, total):
        if bar is not None:
            bar.update(n)

    result = process_video(segmenter.segment, path, output_path, draw, on_frame=step,
                           reader=reader, comment=SOFTWARE)
    result.update(video=path, overlay=output_path, segmenter=segmenter.describe())
    return result


LABELS_FILE = "labels.json"


def _check_ours(path):
    """ValueError if ``path`` exists and is not a JSON file we wrote (``"written_by"``)."""
    import json

    if os.path.exists(path):
        try:
            with open(path) as f:
                ours = json.load(f).get("written_by") == "deeplab-keras"
        except (ValueError, OSError, AttributeError):
            ours = False
        if not ours:
            raise ValueError(f"{path} exists and was not written by deeplab-keras; choose another "
                             "--output-dir (it is left as it is)")


def write_labels(output_dir, labels, palette, ignore_label=None):
    """``<output_dir>/labels.json``: index -> name and colour of the class maps beside it.
    A labels.json we did not write (no ``"written_by"``) is not overwritten (ValueError)."""
    from deeplab_keras.utils.io import write_json

    path = os.path.join(output_dir, LABELS_FILE)
    _check_ours(path)
    entries = [{"index": i, "name": str(name), "color": [int(v) for v in palette[i]]}
               for i, name in enumerate(labels)]
    write_json(path, {"written_by": "deeplab-keras", "classes": entries,
                      "ignore_label": ignore_label})
    return path


def write_index(output_dir, entries):
    """``<output_dir>/index.json``: each input and the files written for it, relative to
    ``output_dir`` (which output came from which input, also when names were disambiguated;
    later runs skip these files when they search the folder for inputs)."""
    from deeplab_keras.utils.io import write_json

    import json

    path = os.path.join(output_dir, INDEX_FILE)
    _check_ours(path)
    entries = [{"input": e["input"],
                "outputs": {k: os.path.relpath(v, output_dir) for k, v in e["outputs"].items()}}
               for e in entries]
    if os.path.exists(path):  # keep what earlier runs wrote for other inputs
        with open(path) as f:
            done = {e["input"] for e in entries}
            entries = [e for e in json.load(f).get("inputs", []) if e.get("input") not in done] \
                + entries
    return write_json(path, {"written_by": "deeplab-keras", "inputs": entries})


def predict_batch(runner, inputs, output_dir, side_by_side=False, progress=True,
                  overwrite=False):
    """The ``predict`` command's loop: images with a progress bar (n/N, time per image), videos
    through :func:`segment_video`, ``labels.json`` and ``index.json`` beside the outputs, a
    summary line and, at the end, every failure on stderr. Returns the exit status (1 if any
    input failed)."""
    import sys
    import time

    files, problems, skipped = expand_inputs(inputs, IMAGE_EXTENSIONS + VIDEO_EXTENSIONS,
                                             output_dir)
    for path in skipped:
        print(f"skipped {path}: an earlier predict wrote it (see index.json in {output_dir})",
              file=sys.stderr)
    stems = dict(zip(files, output_stems(files)))
    videos = [f for f in files if f.lower().endswith(VIDEO_EXTENSIONS)]
    files = [f for f in files if not f.lower().endswith(VIDEO_EXTENSIONS)]
    names = list(runner.labels) if runner.labels else [f"class_{i}"
                                                        for i in range(runner.num_classes)]
    os.makedirs(output_dir, exist_ok=True)
    _check_ours(os.path.join(output_dir, INDEX_FILE))  # before any work
    planned = [os.path.join(output_dir, stems[f] + suffix) for f in files
               for suffix in OUTPUT_SUFFIXES[:3 if side_by_side else 2]]
    planned += [os.path.join(output_dir, f"{stems[v]}_overlay.mp4") for v in videos]
    inputs = {os.path.realpath(f) for f in files + videos}  # named per input, below
    check_outputs([p for p in planned if os.path.realpath(p) not in inputs], overwrite)
    labels_path = write_labels(output_dir, names, runner.palette, runner.ignore_label)
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
    results, failures = segment_files(runner, files, output_dir, on_result=step,
                                      side_by_side=side_by_side, overwrite=overwrite)
    failures = problems + failures
    seconds = time.time() - start
    index = [{"input": r["image"], "outputs": {k: r[k] for k in ("classes", "overlay",
                                                                 "side_by_side") if k in r}}
             for r in results]
    for video in videos:
        out = os.path.join(output_dir, f"{stems[video]}_overlay.mp4")
        try:
            v = segment_video(runner, video, out, progress=progress, inputs=videos + files,
                              overwrite=overwrite)
        except Exception as err:  # one bad file must not lose the rest
            failures.append((video, str(err) or type(err).__name__))
            continue
        index.append({"input": video, "outputs": {"overlay": out}})
        steady = f"; {v['steady_fps']:.2f} frames/s after start-up" if v["steady_fps"] else ""
        print(f"{video}: {v['frames']} frames in {v['seconds']:.1f}s ({v['fps']:.2f} frames/s; "
              f"source {v['source_fps']:g} fps, {v['size'][1]}x{v['size'][0]}"
              f"{', audio kept' if v['audio'] else ''}{steady}) -> {v['overlay']}")
    write_index(output_dir, index)
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
