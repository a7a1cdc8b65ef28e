"""Benchmark (c): CamVid val mIoU of the trained preset as Keras float32 vs TFLite float16 vs
post-training int8 vs QAT int8 (tfmot, fine-tuned with fake quantization on CamVid train).

    python bench/export_camvid.py --preset deeplabv3plus_mobilenetv2_camvid --qat-steps 300

Needs /work/shared/data/camvid (101 val images, 480x360, 11 classes, 11 = ignore) and the
preset's weights (or --weights FILE). Every export passes its parity gate on val images first.
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import benchlib  # noqa: E402

DEFAULT_OUTPUT = os.path.join(HERE, "results", "export_camvid.md")
SHARED = os.environ.get("DEEPLAB_KERAS_SHARED", os.path.join(os.path.dirname(HERE), "..", "shared"))
CAMVID = os.path.join(SHARED, "data", "camvid")
NUM_CLASSES, IGNORE = 11, 11


def miou(source, pairs, input_size="model"):
    """(mIoU, pixel accuracy) in percent of any source (a Keras model, an exported file) on
    CamVid pairs, through the library's evaluate: the segmenter layer and its one metric."""
    from deeplab_keras.evaluation import evaluate
    r = evaluate(source, pairs, dataset="camvid", input_size=input_size)
    return 100 * r["miou"], 100 * r["pixel_accuracy"]


def main(argv=None):
    p = benchlib.parser(__doc__, "export_camvid.md", runs=None)
    p.add_argument("--preset", default="deeplabv3plus_mobilenetv2_camvid")
    p.add_argument("--weights", help="weights file instead of the preset's own")
    p.add_argument("--architecture", help="with --config: a model of your own instead of a preset")
    p.add_argument("--config", help="builder kwargs as JSON (with --architecture)")
    p.add_argument("--qat-steps", type=int, default=300)
    p.add_argument("--qat-lr", type=float, default=1e-5)
    p.add_argument("--qat-batch", type=int, default=4)
    p.add_argument("--qat-targets", choices=("labels", "teacher"), default="teacher",
                   help="fine-tune QAT on CamVid labels (augmented crops), or on the float model's "
                        "own predictions for train images (self-distillation; default)")
    p.add_argument("--num-calibration", type=int, default=32)
    p.add_argument("--val-limit", type=int, default=None, help="evaluate on the first N val images")
    p.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"),
                   help="the size the model runs at and the files are exported at (default: the "
                        "preset's input size; 360 480 for --architecture)")
    args = p.parse_args(argv)
    from deeplab_keras.hub import zoo
    if not os.path.isdir(CAMVID):
        print(f"skipped: CamVid not found at {CAMVID}")
        return 0
    import json


    from deeplab_keras.data import list_pairs, make_dataset
    from deeplab_keras.export import benchmark, export_model, qat
    from deeplab_keras.inference import open_segmenter
    from deeplab_keras.builders import build_model
    from deeplab_keras.hub.weights import from_preset, load_weights

    if args.architecture:
        preset = {"labels": None}
        architecture, config = args.architecture, json.loads(args.config or "{}")
        model = build_model(architecture, **config)
        if args.weights:
            load_weights(model, args.weights)
        else:
            print("WARNING: no --weights: random initialisation (a pipeline smoke test, not a result)")
        source = f"--architecture {architecture} --config '{json.dumps(config)}'" + (
            f" --weights {args.weights}" if args.weights else "")
    elif not zoo.is_preset(args.preset):
        print(f"skipped: preset {args.preset!r} is not in the catalogue yet (helper 'train' publishes it)")
        return 0
    else:
        preset = zoo.get_preset(args.preset)
        source = f"--preset {args.preset}" + (f" --weights {args.weights}" if args.weights else "")
        architecture, config = preset["architecture"], dict(preset["config"])
        if args.weights:
            model = build_model(architecture, **config)
            load_weights(model, args.weights)
        else:
            model = from_preset(args.preset)
    train = list_pairs("camvid", CAMVID, "train")
    val = list_pairs("camvid", CAMVID, "val")[:args.val_limit]
    size = tuple(args.input_size or (preset.get("preprocessing") or {}).get("input_size") or (360, 480))
    os.makedirs(args.workdir, exist_ok=True)
    calib = [img for img, _ in train[::max(1, len(train) // args.num_calibration)][:args.num_calibration]]
    check = [img for img, _ in val[:4]]
    rows, t0 = [], time.time()
    f_miou, f_acc = miou(model, val, input_size=size)  # the Keras model as predict runs it
    rows.append(("Keras float32", f_miou, f_acc, None, None))
    exports = [("TFLite float16", "float16", None), ("TFLite int8 PTQ", "int8", None)]
    qat_info = None
    if args.qat_steps:
        if args.qat_targets == "labels":
            data = make_dataset(train, dataset_info="camvid", batch_size=args.qat_batch,
                                crop_size=size, training=True, seed=0, cache=True)
        else:
            from deeplab_keras.export.calibration import load_image
            data = [load_image(img, size) for img, _ in train[::3]]
        qat_model, qat_info = qat.quantization_aware_model(
            model, architecture, config, size, data=data, steps=args.qat_steps,
            learning_rate=args.qat_lr, ignore_label=IGNORE, batch_size=args.qat_batch)
        exports.append((f"TFLite int8 QAT ({args.qat_steps} steps)", "qat", qat_model))
    for name, quantize, qm in exports:
        path = os.path.join(args.workdir, f"camvid_{quantize}.tflite")
        report = export_model(model, path, "tflite", quantize, size, output_mode="classes",
                              calibration_data=calib, num_calibration=len(calib), parity_data=check,
                              qat_model=qm, labels=preset.get("labels"),
                              report_dir=os.path.join(args.workdir, "reports"))
        m, acc = miou(open_segmenter(path, num_threads=args.threads), val)  # as evaluate --artifact
        lat = benchmark(path, threads=args.threads, runs=10, isolate=True)
        rows.append((name, m, acc, lat, report["parity"]["agreement"]))
    lines = [f"# CamVid val ({len(val)} images, 480x360; model and files at {size[0]}x{size[1]}): "
             "float vs float16 vs int8 PTQ vs QAT", "",
             f"`python bench/export_camvid.py {source} --qat-steps {args.qat_steps} --qat-lr {args.qat_lr} "
             f"--qat-targets {args.qat_targets} "
             f"--qat-batch {args.qat_batch} --num-calibration {args.num_calibration} --threads {args.threads}"
             + (f" --val-limit {args.val_limit}" if args.val_limit else "")
             + (f" --input-size {size[0]} {size[1]}" if args.input_size else "")
             + (f" --output {os.path.relpath(args.output)}" if args.output != DEFAULT_OUTPUT else "") + "`", ""]
    trained_on = (preset.get("metrics") or {}).get("trained_on")
    from deeplab_keras.data import split_names
    if trained_on and not args.weights and "val" in split_names(trained_on):
        lines += [f"These weights trained on CamVid {trained_on}: val is part of their training data, so "
                  "the mIoU column is not held out; the deltas (export vs the same Keras model) are "
                  "what this table measures.", ""]
    lines += [
             "| model | mIoU | delta vs float | pixel acc | agreement vs Keras (4 val imgs) | median ms ({} thr) | size MB |".format(args.threads),
             "|---|---|---|---|---|---|---|"]
    for name, m, acc, lat, agree in rows:
        agree_s = "" if agree is None else f"{agree:.4f}"
        ms = "" if lat is None else f"{lat['median_ms']:.1f}"
        mb = "" if lat is None else f"{lat['size_mb']:.2f}"
        lines.append(f"| {name} | {m:.2f} | {m - f_miou:+.2f} | {acc:.2f} | {agree_s} | {ms} | {mb} |")
    if qat_info:
        lines += ["", f"QAT: tf_keras twin max |logit diff| {qat_info['transfer_max_abs_diff']:.3g}; "
                  f"{qat_info['steps']} steps, lr {qat_info['learning_rate']}, batch {args.qat_batch}, "
                  + ("random scale/crop/flip on CamVid train labels" if args.qat_targets == "labels" else
                     "targets = the float model's argmax on every 3rd CamVid train image (self-distillation)")
                  + f"; custom configs {qat_info['custom_quantize_configs']}."]
    lines.append(f"\nPTQ calibration: {len(calib)} CamVid train images. Total time {time.time() - t0:.0f} s.")
    return benchlib.publish(args.output, lines)


if __name__ == "__main__":
    sys.exit(main())
