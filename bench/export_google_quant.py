"""Benchmark (a): our int8 DeepLab v3 MobileNetV2-1.0 at 513x513 against Google's own
quantized file ``deeplabv3_mnv2_pascal_quant.tflite``, same interpreter (ai-edge-litert, XNNPACK),
same run, same threads.

Our model: weights imported from Google's file (dequantized), then post-training int8
quantization calibrated on a few real images (never the test image), exported with our deploy
graph (uint8 raw-pixel input, int32 class map at 513x513). Reported: Google's golden-mask
agreement on the bird image for both, and latency (median of interleaved rounds) with the
ratio ours / Google's. Where the time goes: both graphs are cut after the logits conv and
after the full-resolution resize and timed alike.

With mediapipe installed (the [mobile] extra) it also exports the MediaPipe file
(``target="mediapipe"``: uint8 logits [1, 513, 513, 21] + standard metadata with the VOC labels),
times it in the same LiteRT run, and scores both its LiteRT argmax and MediaPipe
ImageSegmenter's category mask against Google's golden mask.

    python bench/export_google_quant.py --threads 2
"""
import functools
import glob
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import benchlib  # noqa: E402
SHARED = os.environ.get("DEEPLAB_KERAS_SHARED", os.path.join(os.path.dirname(HERE), "..", "shared"))
REF = os.path.join(SHARED, "reference")
GOOGLE = os.path.join(REF, "deeplabv3_mnv2_pascal_quant.tflite")


def calibration_sets():
    camvid = sorted(glob.glob(os.path.join(SHARED, "data", "camvid", "train", "*.png")))
    city = [os.path.join(REF, "cityscapes_segmentation.bmp")]
    return {"camvid32+cityscapes": camvid[::11][:32] + city,  # the default
            "camvid64": camvid[::5][:64],
            "cityscapes only": city}


def cut_after(path, out, op_name, occurrence=-1):
    from deeplab_keras.export import profiling
    ops = [i for i, name, _ in profiling.tflite_ops(path) if name == op_name]
    return profiling.truncate_tflite(path, out, ops[occurrence])


def main(argv=None):
    p = benchlib.parser(__doc__, "export_google_quant.md")
    p.add_argument("--all-calibration-sets", action="store_true",
                   help="also export with the other calibration sets and report their agreement")
    p.add_argument("--qat-steps", type=int, default=0,
                   help="also export a QAT int8 model fine-tuned this many steps (self-distillation "
                        "on 8 of the default calibration images) and report it")
    p.add_argument("--no-mediapipe", action="store_true", help="skip the MediaPipe-target file")
    args = p.parse_args(argv)
    if benchlib.missing(GOOGLE):
        return 0
    from deeplab_keras.export import Artifact, export_model, golden, profiling
    from deeplab_keras.importers.tflite import from_tflite
    import numpy as np

    os.makedirs(args.workdir, exist_ok=True)
    image, mask = golden.load_pair(os.path.join(REF, "bird_segmentation.bmp"),
                                   os.path.join(REF, "bird_segmentation_mask.bmp"), (513, 513))
    model = from_tflite(GOOGLE)
    keras_agreement = golden.agreement(np.argmax(np.asarray(model(image[None]))[0], -1), mask)
    google = Artifact(GOOGLE, num_threads=args.threads)
    rows = [("Google deeplabv3_mnv2_pascal_quant.tflite (QAT, uint8)", golden.agreement(google(image)[0], mask))]
    rows.append(("ours, Keras float32 (weights imported from that file)", keras_agreement))
    sets = calibration_sets()
    names = list(sets) if args.all_calibration_sets else list(sets)[:1]
    ours_path = None
    for name in names:
        path = os.path.join(args.workdir, f"ours_int8_{len(rows)}.tflite")
        report = export_model(model, path, "tflite", "int8", 513, output_mode="classes",
                              calibration_data=sets[name], num_calibration=len(sets[name]),
                              parity_data=sets["cityscapes only"], num_parity=1,
                              report_dir=os.path.join(args.workdir, "reports"))
        agree = golden.agreement(Artifact(path)(image)[0], mask)
        rows.append((f"ours, PTQ int8 calibrated on {name} ({len(sets[name])} images); "
                     f"gate agreement vs Keras {report['parity']['agreement']:.4f}", agree))
        ours_path = ours_path or path
    qat_path = None
    if args.qat_steps:
        from deeplab_keras.export import calibration, qat
        default = sets[list(sets)[0]]
        images, _ = calibration.get_images(default, (513, 513), 8)
        qm, info = qat.quantization_aware_model(model, "deeplabv3", dict(
            backbone="mobilenet_v2", alpha=1.0, output_stride=16, atrous_rates=(), num_classes=21,
            align_corners=True), (513, 513), data=images, steps=args.qat_steps)
        qat_path = os.path.join(args.workdir, "ours_qat.tflite")
        report = export_model(model, qat_path, "tflite", "qat", 513, qat_model=qm,
                              calibration_data=default, num_calibration=len(default),
                              parity_data=sets["cityscapes only"], num_parity=1)
        rows.append((f"ours, QAT int8 ({args.qat_steps} steps, lr 1e-5, self-distillation on 8 "
                     f"images); gate agreement vs Keras {report['parity']['agreement']:.4f}",
                     golden.agreement(Artifact(qat_path)(image)[0], mask)))
    mp_path = None
    from deeplab_keras.export import mediapipe_gate
    if not args.no_mediapipe and mediapipe_gate.available():
        from deeplab_keras.hub import zoo
        voc = zoo.get_preset("deeplabv3_mobilenetv2_voc")["labels"]
        default = sets[list(sets)[0]]
        mp_path = os.path.join(args.workdir, "ours_int8_mediapipe.tflite")
        report = export_model(model, mp_path, "tflite", "int8", 513, target="mediapipe", labels=voc,
                              calibration_data=default, num_calibration=len(default),
                              parity_data=sets["cityscapes only"], num_parity=1,
                              report_dir=os.path.join(args.workdir, "reports"))
        m = report["parity"]
        rows.append((f"ours, MediaPipe file (PTQ int8, uint8 logits + metadata) run by LiteRT, argmax; "
                     f"gate agreement vs Keras {m['agreement']:.4f}",
                     golden.agreement(np.argmax(Artifact(mp_path)(image)[0], -1), mask)))
        with mediapipe_gate.Segmenter(mp_path) as seg:
            rows.append((f"ours, same file in MediaPipe ImageSegmenter (category mask; labels "
                         f"{'match' if seg.labels == voc else 'DIFFER'})", golden.agreement(seg(image), mask)))
    # where the time goes: cut both graphs after the logits conv and after the last resize
    variants = {"google": GOOGLE, "ours": ours_path}
    for who, path in list(variants.items()):
        variants[who + " no ArgMax"] = cut_after(path, os.path.join(args.workdir, who + "_noargmax.tflite"), "RESIZE_BILINEAR")
        variants[who + " low-res logits"] = cut_after(path, os.path.join(args.workdir, who + "_lowres.tflite"), "CONV_2D")
    if qat_path:
        variants["ours QAT"] = qat_path
    if mp_path:
        variants["ours MediaPipe file (logits)"] = mp_path
    arts = {k: Artifact(v, num_threads=args.threads) for k, v in variants.items()}
    lat = profiling.interleaved_latency(arts, image, runs=args.runs)
    g, o = lat["google"]["median_ms"], lat["ours"]["median_ms"]
    lines = [f"# Int8 DeepLab v3 MobileNetV2 513x513: ours vs Google's quantized TFLite", "",
             f"`python bench/export_google_quant.py --threads {args.threads} --runs {args.runs}"
             + (" --all-calibration-sets" if args.all_calibration_sets else "")
             + (f" --qat-steps {args.qat_steps}" if args.qat_steps else "")
             + (" --no-mediapipe" if args.no_mediapipe else "") + "`", "",
             "Golden-mask agreement (Google's segmentation test: bird image, common/(2N-common)):", "",
             "| model | agreement |", "|---|---|"]
    lines += [f"| {n} | {a:.4f} |" for n, a in rows]
    lines += benchlib.latency_lines(lat, "google", args.threads, args.runs, label="Google")
    cost = functools.partial(benchlib.time_split, lat)
    mp_line = (f" MediaPipe file / Google = {lat['ours MediaPipe file (logits)']['median_ms'] / g:.2f}."
               if mp_path else "")
    lines += ["", f"**Ours / Google = {o / g:.2f}** (target <= 0.60).{mp_line}",
              "The machine's 2 cores were shared with other jobs: compare ratios within this run, "
              "not absolute milliseconds.", "",
              f"Where the time goes (differences of the cuts): Google: {cost('google')}; "
              f"ours: {cost('ours')}.", "",
              f"Ops, Google: {', '.join(sorted(set(google.tflite_ops())))} (ArgMax output int64).  ",
              f"Ops, ours: {', '.join(sorted(set(arts['ours'].tflite_ops())))} (ArgMax output int32).",
              f"Sizes: Google {os.path.getsize(GOOGLE) / 2**20:.2f} MB, ours {os.path.getsize(ours_path) / 2**20:.2f} MB."]
    return benchlib.publish(args.output, lines)


if __name__ == "__main__":
    sys.exit(main())
