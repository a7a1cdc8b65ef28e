"""Which export works for which architecture: every (architecture, target) pair is exported from
a small random-weight model at 65x65 and run through its parity gate, reporting agreement or the
exact error. Random weights: the int8/QAT agreement measures noise through random blocks, not
deployment quality (see bench/export_google_quant.py for real weights), so the gate threshold is
reported, not enforced, here (--enforce to enforce it).

    python bench/export_matrix.py [--only deeplabv3plus_xception41] [--size 65]
"""
import argparse
import os
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from deeplab_keras.utils.io import write_text  # noqa: E402

MODELS = {
    "deeplabv1_vgg16": ("deeplabv1", dict(num_classes=5, fc_filters=64)),
    "deeplabv2_resnet50": ("deeplabv2", dict(num_classes=5, backbone="resnet50")),
    "deeplabv3_mobilenetv2_aspp": ("deeplabv3", dict(num_classes=5, backbone="mobilenet_v2", alpha=0.35)),
    "deeplabv3_resnet50": ("deeplabv3", dict(num_classes=5, backbone="resnet50")),
    "deeplabv3plus_mobilenetv2": ("deeplabv3plus", dict(num_classes=5, backbone="mobilenet_v2", alpha=0.35)),
    "deeplabv3plus_xception41": ("deeplabv3plus", dict(num_classes=5, backbone="xception41")),
}
TARGETS = [("saved_model", "none"), ("tflite", "none"), ("tflite", "float16"),
           ("tflite", "dynamic"), ("tflite", "int8"), ("tflite", "qat"), ("onnx", "none")]


def calibrate_batchnorm(model, images):
    """Data-dependent init: BatchNorm moving stats from ``images`` and a classifier scaled to
    logits within ±8, so a random model is not near-constant (see tests/test_export.py)."""
    import keras
    import numpy as np
    x = np.stack(images)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            h = np.asarray(keras.Model(model.inputs, layer.input)(x))
            g, b, _, _ = layer.get_weights()
            layer.set_weights([g, b, h.mean((0, 1, 2)), h.var((0, 1, 2)) + 1e-3])
    names = {l.name for l in model.layers}
    clf = model.get_layer("fc8" if "fc8" in names else "logits_semantic" if "logits_semantic" in names else "aspp_l_c0")
    w = clf.get_weights()
    peak = float(np.abs(np.asarray(model(x))).max())
    clf.set_weights([w[0] * (8.0 / max(peak, 1e-12))] + w[1:])
    return model


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", nargs="*", default=None)
    p.add_argument("--size", type=int, default=65)
    p.add_argument("--enforce", action="store_true")
    p.add_argument("--output", default=os.path.join(HERE, "results", "export_matrix.md"))
    args = p.parse_args(argv)
    import keras

    from deeplab_keras.export import calibration, export_model, qat
    from deeplab_keras.builders import build_model

    size = (args.size, args.size)
    images = calibration.synthetic_images(size, 2, seed=5)
    rows = []
    for key, (arch, cfg) in MODELS.items():
        if args.only and key not in args.only:
            continue
        keras.utils.set_random_seed(0)
        cfg = dict(cfg, input_shape=(args.size, args.size, 3))
        model = calibrate_batchnorm(build_model(arch, **cfg), images)
        cells = []
        for fmt, quantize in TARGETS:
            t = time.time()
            with tempfile.TemporaryDirectory() as tmp:
                out = os.path.join(tmp, "m" + {"tflite": ".tflite", "onnx": ".onnx"}.get(fmt, ""))
                try:
                    qm, note = None, ""
                    if quantize == "qat":
                        qm, info = qat.quantization_aware_model(model, arch, cfg, size, steps=2)
                        note = f" (transfer diff {info['transfer_max_abs_diff']:.1g})"
                    r = export_model(model, out, fmt, quantize, size, output_mode="logits",
                                     qat_model=qm, threshold=None if args.enforce else 0.0)
                    m = r["parity"]
                    cells.append(f"ok {m['agreement']:.3f}{note}")
                except Exception as err:  # report the exact blocker
                    last = traceback.format_exception_only(type(err), err)[-1].strip()
                    cells.append("FAIL: " + last[:160].replace("|", "/"))
            print(key, fmt, quantize, cells[-1], f"{time.time() - t:.0f}s", flush=True)
        rows.append((key, cells))
    head = ["model"] + [f"{f} {q}" for f, q in TARGETS]
    lines = ["# Export matrix: every architecture x target (random weights, 65x65, logits output)", "",
             f"`python bench/export_matrix.py --size {args.size}`", "",
             "Cells: `ok <argmax agreement with Keras>` on 4 synthetic images, or the error.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join([k] + c) + " |" for k, c in rows]
    text = "\n".join(lines) + "\n"
    if not args.only:
        write_text(args.output, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
