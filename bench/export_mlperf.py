"""Benchmark (c): MLPerf Mobile's int8 DeepLab v3+ MobileNetV2 (ADE20K-Top31, 512x512) imported
with ``dk.from_tflite`` and re-exported with our int8 path, against MLPerf's own int8 file, same
interpreter (ai-edge-litert, XNNPACK), same run, same threads.

Our model: architecture and weights read from MLPerf's file by structure (dequantized), then
post-training int8 quantization calibrated on the same images as benchmark (a) (CamVid train +
the Cityscapes reference image; see ``bench/export_google_quant.py``), exported with our deploy
graph (uint8 raw-pixel input, int32 class map at 512x512). Reported: pixel agreement of the class
maps with MLPerf's file on the bird and Cityscapes reference images and CamVid val images (none
used for calibration), for our Keras float model and our int8 file; latency (median of
interleaved rounds) with the ratio ours / MLPerf's, and cuts after the logits conv and after the
full-resolution resize to show where the time goes.

    python bench/export_mlperf.py --threads 2
"""
import functools
import glob
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from export_google_quant import REF, SHARED, calibration_sets, cut_after  # noqa: E402

import benchlib  # noqa: E402

MLPERF = os.path.join(REF, "mlperf_deeplabv3_mnv2_ade20k_int8.tflite")
SIZE = 512


def test_images(num_camvid):
    from PIL import Image
    import numpy as np

    paths = [os.path.join(REF, "bird_segmentation.bmp"), os.path.join(REF, "cityscapes_segmentation.bmp")]
    paths += sorted(glob.glob(os.path.join(SHARED, "data", "camvid", "val", "*.png")))[:num_camvid]
    return paths, np.stack([np.array(Image.open(p).convert("RGB").resize((SIZE, SIZE), Image.BILINEAR))
                            for p in paths]).astype(np.float32)


def main(argv=None):
    p = benchlib.parser(__doc__, "export_mlperf.md", workdir="/tmp/deeplab_keras_bench_mlperf")
    p.add_argument("--camvid", type=int, default=16, help="CamVid val images in the agreement set")
    args = p.parse_args(argv)
    if benchlib.missing(MLPERF):
        return 0
    import numpy as np

    import deeplab_keras as dk
    from deeplab_keras.export import Artifact, export_model, profiling
    from deeplab_keras.importers.tflite_describe import describe
    from deeplab_keras.utils.flops import count

    os.makedirs(args.workdir, exist_ok=True)
    config = describe(MLPERF)
    model = dk.from_tflite(MLPERF)
    paths, images = test_images(args.camvid)
    mlperf = Artifact(MLPERF, num_threads=args.threads)
    theirs = np.stack([mlperf(x)[0] for x in images])
    keras_maps = np.asarray(model.predict(images, batch_size=1, verbose=0)).argmax(-1)
    calib = calibration_sets()["camvid32+cityscapes"]
    ours_path = os.path.join(args.workdir, "ours_int8.tflite")
    report = export_model(model, ours_path, "tflite", "int8", SIZE, output_mode="classes",
                          calibration_data=calib, num_calibration=len(calib),
                          parity_data=calibration_sets()["cityscapes only"], num_parity=1,
                          report_dir=os.path.join(args.workdir, "reports"))
    ours = Artifact(ours_path, num_threads=args.threads)
    int8_maps = np.stack([ours(x)[0] for x in images])

    def agree(a):
        per = (a == theirs).reshape(len(images), -1).mean(1)
        return per.mean(), per.min(), per[0], per[1], per[2:].mean()

    rows = [("ours, Keras float32 (dk.from_tflite: weights dequantized from MLPerf's file)", agree(keras_maps)),
            (f"ours, PTQ int8 calibrated on camvid32+cityscapes ({len(calib)} images); gate "
             f"agreement vs Keras {report['parity']['agreement']:.4f}", agree(int8_maps))]
    variants = {"mlperf": MLPERF, "ours": ours_path}
    for who, path in list(variants.items()):
        variants[who + " no ArgMax"] = cut_after(path, os.path.join(args.workdir, who + "_noargmax.tflite"), "RESIZE_BILINEAR")
        variants[who + " low-res logits"] = cut_after(path, os.path.join(args.workdir, who + "_lowres.tflite"), "CONV_2D")
    arts = {k: Artifact(v, num_threads=args.threads) for k, v in variants.items()}
    lat = profiling.interleaved_latency(arts, images[0], runs=args.runs)
    m, o = lat["mlperf"]["median_ms"], lat["ours"]["median_ms"]
    counted = count(model)
    decoder = sum(v for k, v in counted.per_layer.items() if k.startswith("decoder_"))
    lines = ["# Int8 DeepLab v3+ MobileNetV2 512x512 (ADE20K-Top31): ours vs MLPerf Mobile's int8 TFLite", "",
             f"`python bench/export_mlperf.py --threads {args.threads} --runs {args.runs} --camvid {args.camvid}`", "",
             "Architecture read from the file by `dk.from_tflite`: "
             + ", ".join(f"{k}={v}" for k, v in config.items() if k != "input_normalization")
             + f"; input normalisation x * {config['input_normalization']['scale']:.6g} + "
               f"{config['input_normalization']['offset']:.6g} ({config['input_normalization']['source']}).", "",
             f"Class-map agreement with MLPerf's own file (pixels equal), on {len(images)} images at "
             f"{SIZE}x{SIZE}: bird + Cityscapes reference images and the first {args.camvid} CamVid val "
             "images (sorted by name); none is a calibration image:", "",
             "| model | mean | worst image | bird | cityscapes | CamVid val mean |", "|---|---|---|---|---|---|"]
    lines += [f"| {n} | {a[0]:.4f} | {a[1]:.4f} | {a[2]:.4f} | {a[3]:.4f} | {a[4]:.4f} |" for n, a in rows]
    lines += benchlib.latency_lines(lat, "mlperf", args.threads, args.runs, ", bird image", "MLPerf")
    cost = functools.partial(benchlib.time_split, lat)
    lines += ["", f"**Ours / MLPerf = {o / m:.2f}** (goal <= 0.70).", "",
              f"Where the time goes (differences of the cuts): MLPerf: {cost('mlperf')}; ours: {cost('ours')}.", "",
              f"Multiply-adds at {SIZE}x{SIZE} (deeplab_keras.utils.flops): {counted.mult_adds / 1e9:.2f} B "
              f"in all; without the decoder {(counted.mult_adds - decoder) / 1e9:.2f} B (MLPerf Mobile "
              "publishes 2.7 B for this network).", "",
              f"Ops, MLPerf: {', '.join(sorted(set(mlperf.tflite_ops())))}.  ",
              f"Ops, ours: {', '.join(sorted(set(ours.tflite_ops())))}.  ",
              f"Sizes: MLPerf {os.path.getsize(MLPERF) / 2**20:.2f} MB, ours {os.path.getsize(ours_path) / 2**20:.2f} MB."]
    return benchlib.publish(args.output, lines)


if __name__ == "__main__":
    sys.exit(main())
