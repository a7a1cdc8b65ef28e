"""Deploy-to-a-phone table: the shipped CamVid preset exported for each mobile runtime, every file
run by its own runtime on the whole CamVid val split (101 images, 480x360).

    python bench/mobile_camvid.py --threads 2

Files (all at the preset's input size; int8 ones calibrated on 16 CamVid *train* images, so val is held out):
TFLite float32 / float16 / int8 for MediaPipe (``target="mediapipe"``: logits + standard metadata),
the default int8 TFLite class map, ONNX float32 and int8 (onnxruntime static QDQ).

Per file: pixel agreement with the Keras argmax, val mIoU (deeplab_keras.evaluation.metrics, the
code `deeplab-keras evaluate` uses) and its delta to the Keras model's, latency (median of
interleaved rounds in one process, same thread count), size. MediaPipe rows run the .tflite in
MediaPipe Tasks' ImageSegmenter (category mask). Results: bench/results/mobile_camvid.md.
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from deeplab_keras.utils.io import write_text  # noqa: E402
SHARED = os.environ.get("DEEPLAB_KERAS_SHARED", os.path.join(os.path.dirname(HERE), "..", "shared"))
CAMVID = os.path.join(SHARED, "data", "camvid")
PRESET = "deeplabv3plus_mobilenetv2_camvid"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=15)
    p.add_argument("--limit", type=int, help="only the first N val images")
    p.add_argument("--num-calibration", type=int, default=16)
    p.add_argument("--workdir", default="/tmp/deeplab_keras_bench/mobile")
    p.add_argument("--output", default=os.path.join(HERE, "results", "mobile_camvid.md"))
    args = p.parse_args(argv)
    if not os.path.isdir(os.path.join(CAMVID, "val")):
        print(f"skipped: CamVid not found at {CAMVID}")
        return 0
    import numpy as np

    import deeplab_keras as dk
    from deeplab_keras import data
    from deeplab_keras.evaluation import evaluate
    from deeplab_keras.export import export_model, mediapipe_gate, profiling
    from deeplab_keras.inference import Segmenter, open_segmenter

    class MediaPipeSource(Segmenter):
        """MediaPipe's ImageSegmenter as a source of the segmenter layer: its category mask
        comes back at the image's size (MediaPipe resizes in and out itself)."""
        kind, output = "mediapipe", "classes"

        def __init__(self, segmenter, num_classes):
            self.segmenter, self.num_classes = segmenter, num_classes
            self.description = "MediaPipe ImageSegmenter"

        def __call__(self, image):
            return np.asarray(self.segmenter(image))

    os.makedirs(args.workdir, exist_ok=True)
    info = data.get_dataset_info("camvid")
    labels = dk.get_preset(PRESET)["labels"]
    model = dk.from_preset(PRESET)
    size = tuple(model.input_size)  # the preset's working size: what predict runs, what ships
    pairs = data.list_pairs("camvid", CAMVID, "val")[:args.limit]
    train = sorted(data.list_pairs("camvid", CAMVID, "train"))
    calib = [img for img, _ in train[::max(1, len(train) // args.num_calibration)][:args.num_calibration]]
    parity = [img for img, _ in pairs[:4]]

    t0 = time.time()
    keras_pred = []  # the Keras model's class maps, to count each file's agreement with them
    result = evaluate(model, pairs, dataset=info, input_size=size,
                      on_batch=lambda images, labels, pred: keras_pred.extend(pred))
    keras_miou = 100 * result["miou"]
    print(f"keras: mIoU {keras_miou:.2f} ({time.time() - t0:.0f}s)")

    specs = [("tflite", "none", "mediapipe"), ("tflite", "float16", "mediapipe"),
             ("tflite", "int8", "mediapipe"), ("tflite", "int8", None),
             ("onnx", "none", None), ("onnx", "int8", None)]
    files = {}
    for fmt, q, target in specs:
        name = f"camvid_{q}_{target or 'classes' if fmt == 'tflite' else 'logits'}.{fmt}"
        path = os.path.join(args.workdir, name)
        t = time.time()
        r = export_model(model, path, fmt, q, size, labels=labels, target=target,
                         output_mode=None if fmt == "tflite" else "logits",
                         calibration_data=calib, num_calibration=len(calib), parity_data=parity,
                         num_parity=4, report_dir=args.workdir)
        files[name] = (path, r)
        print(f"exported {name} in {time.time() - t:.0f}s: gate agreement {r['parity']['agreement']:.4f}")

    def score(source):
        """(agreement with the Keras maps, mIoU %) of a source through the library's evaluate."""
        agree = [0, 0]

        def count(images, labels, pred):
            for p in pred:
                agree[0] += int((p == keras_pred[agree[1]]).sum())
                agree[1] += 1
        r = evaluate(source, pairs, dataset=info, on_batch=count)
        return agree[0] / (agree[1] * keras_pred[0].size), 100 * r["miou"]

    rows = []
    arts = {}
    for name, (path, r) in files.items():
        fmt = name.rsplit(".", 1)[1]
        seg = open_segmenter(path, num_threads=args.threads)
        arts[name] = seg.artifact
        agreement, miou = score(seg)
        runtime = "LiteRT (ai-edge-litert)" if fmt == "tflite" else "onnxruntime CPU"
        rows.append([runtime, name, agreement, miou, path])
        print(rows[-1][:4])
        if r.get("target") == "mediapipe":
            with mediapipe_gate.Segmenter(path) as mp_seg:
                agreement, miou = score(MediaPipeSource(mp_seg, info.num_classes))
                ok = mp_seg.labels == labels
            rows.append([f"MediaPipe ImageSegmenter (labels {'match' if ok else 'DIFFER'})", name,
                         agreement, miou, path])
            print(rows[-1][:4])
    from deeplab_keras.layers.resize import resize
    first = dk.load_image(pairs[0][0])  # the files' fixed input: one val image at it
    lat = profiling.interleaved_latency(arts, resize(first, size, "half_pixel"), runs=args.runs)
    lines = ["# Deploy to a phone: CamVid preset files in their runtimes", "",
             f"`python bench/mobile_camvid.py --threads {args.threads} --runs {args.runs}"
             + (f" --limit {args.limit}" if args.limit else "") + "`", "",
             f"Model `{PRESET}` at {size[0]}x{size[1]}; CamVid val, {len(pairs)} images (480x360, 11 classes); "
             f"Keras float32 mIoU **{keras_miou:.2f}**. int8 files calibrated on {len(calib)} CamVid "
             "train images. Agreement = fraction of val pixels whose class equals the Keras argmax; "
             "mIoU delta = file - Keras, against the val labels. Latency: median ms, "
             f"{args.threads} threads, all files interleaved in one process (MediaPipe rows: same "
             "file as the LiteRT row above them; its latency is not timed here). The 2-core machine "
             "was shared with other jobs while this ran: compare ratios within the table, not "
             "absolute milliseconds.", "",
             "| runtime | file | agreement with Keras | val mIoU | mIoU delta | latency ms | size MB |",
             "|---|---|---|---|---|---|---|"]
    for runtime, name, agreement, miou, path in rows:
        ms = lat[name]["median_ms"] if runtime.startswith(("LiteRT", "onnx")) else None
        lines.append(f"| {runtime} | {name} | {agreement:.4f} | {miou:.2f} | {miou - keras_miou:+.2f} | "
                     f"{'%.1f' % ms if ms else '-'} | {os.path.getsize(path) / 2**20:.2f} |")
    fo, qo = lat["camvid_none_logits.onnx"]["median_ms"], lat["camvid_int8_logits.onnx"]["median_ms"]
    lines += ["", f"int8 ONNX / float ONNX latency: **{qo / fo:.2f}** (goal <= 0.60).", ""]
    text = "\n".join(lines) + "\n"
    write_text(args.output, text)
    write_text(os.path.splitext(args.output)[0] + ".json", json.dumps(
        {"keras_miou": keras_miou, "rows": [r[:4] for r in rows], "latency": lat}, indent=1) + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
