"""Parameters and multiply-adds of every DeepLab version at 513x513, beside the published figures.

    python bench/architecture.py            # prints the table, writes bench/results/architecture.md

Counting rules: deeplab_keras/utils/flops.py (conv/dense multiply-adds from layer output shapes;
BN, activations, pooling and resizes not counted). Each model is built in a fresh child process
(``--one`` mode) so memory stays flat however many models are listed.
"""
import argparse
import json
import os
import subprocess
import sys
import time

SIZE = 513
# (version, backbone label, builder, config, published multiply-adds in B or None, source)
ROWS = [
    ("v1 LargeFOV", "VGG-16", "deeplabv1", dict(output_stride=8), None, ""),
    ("v2 ASPP-L", "ResNet-101", "deeplabv2", dict(backbone="resnet101", output_stride=8), None, ""),
    ("v2 ASPP-L, MSC 1/0.75/0.5", "ResNet-101", "deeplabv2",
     dict(backbone="resnet101", output_stride=8, multi_scale=True), None, ""),
    ("v3", "ResNet-50", "deeplabv3", dict(backbone="resnet50", output_stride=16), None, ""),
    ("v3", "ResNet-50", "deeplabv3", dict(backbone="resnet50", output_stride=8), None, ""),
    ("v3", "ResNet-101", "deeplabv3", dict(backbone="resnet101", output_stride=16), None, ""),
    ("v3", "ResNet-101", "deeplabv3", dict(backbone="resnet101", output_stride=8), None, ""),
    ("v3", "Xception-65", "deeplabv3", dict(backbone="xception65", output_stride=16), None, ""),
    ("v3 mobile head", "MobileNetV2 1.0", "deeplabv3",
     dict(backbone="mobilenet_v2", alpha=1.0, output_stride=16, atrous_rates=()), 2.75,
     "Google's DeepLab model zoo (mobilenetv2_coco_voc_trainaug, eval OS 16)"),
    ("v3 mobile head", "MobileNetV2 1.0", "deeplabv3",
     dict(backbone="mobilenet_v2", alpha=1.0, output_stride=8, atrous_rates=()), None, ""),
    ("v3 mobile head", "MobileNetV2 0.5", "deeplabv3",
     dict(backbone="mobilenet_v2", alpha=0.5, output_stride=16, atrous_rates=()), None, ""),
    ("v3 mobile head", "MobileNetV2 0.5", "deeplabv3",
     dict(backbone="mobilenet_v2", alpha=0.5, output_stride=8, atrous_rates=()), None, ""),
    ("v3+ (separable ASPP + decoder)", "Xception-65", "deeplabv3plus",
     dict(backbone="xception65", output_stride=16), 54.17, "v3+ paper; Google's model zoo (xception_coco_voc_trainaug, eval OS 16)"),
    ("v3+ (separable ASPP + decoder)", "Xception-65", "deeplabv3plus",
     dict(backbone="xception65", output_stride=8), None, ""),
    ("v3+ (separable ASPP + decoder)", "ResNet-101", "deeplabv3plus",
     dict(backbone="resnet101", output_stride=16), None, ""),
    ("v3+ (plain 3x3 ASPP + decoder)", "ResNet-101", "deeplabv3plus",
     dict(backbone="resnet101", output_stride=16, separable=False), 101.28,
     "v3+ paper (ResNet-101 encoder + decoder, eval OS 16)"),
    ("v3+ (plain 3x3 ASPP + decoder)", "ResNet-101 beta stem", "deeplabv3plus",
     dict(backbone="resnet101_beta", output_stride=16, separable=False), 101.28,
     "v3+ paper (ResNet-101 encoder + decoder, eval OS 16)"),
    ("v3+ (separable ASPP + decoder)", "MobileNetV2 1.0", "deeplabv3plus",
     dict(backbone="mobilenet_v2", output_stride=16), None, ""),
    # Google's Cityscapes models (19 classes, full 1025x2049 frames), same model zoo table
    ("v3 mobile head, 1025x2049", "MobileNetV2 1.0", "deeplabv3",
     dict(backbone="mobilenet_v2", output_stride=16, atrous_rates=(), num_classes=19,
          input_shape=(1025, 2049, 3)), 21.27,
     "Google's DeepLab model zoo (mobilenetv2_coco_cityscapes_trainfine, eval OS 16)"),
    ("v3+ (separable ASPP + decoder), 1025x2049", "Xception-65", "deeplabv3plus",
     dict(backbone="xception65", output_stride=16, num_classes=19, input_shape=(1025, 2049, 3)),
     418.64, "Google's DeepLab model zoo (xception_cityscapes_trainfine, eval OS 16)"),
]


def measure(arch, config):
    import keras

    import deeplab_keras as dk
    from deeplab_keras.utils.flops import count

    config = dict(dict(num_classes=21, input_shape=(SIZE, SIZE, 3)), **config)
    model = dk.build_model(arch, weights=None, **config)
    c = count(model)
    keras.backend.clear_session()
    return dict(params=c.params, counted_params=c.counted_params, mult_adds=c.mult_adds)


def config_text(config):
    skip = {"backbone", "alpha", "num_classes", "input_shape"}
    parts = [f"{k}={tuple(v) if isinstance(v, list) else v}" for k, v in config.items() if k not in skip]
    return ", ".join(parts)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                      "architecture.md"))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child mode: JSON [arch, config]
    args = parser.parse_args(argv)
    if args.one:
        arch, config = json.loads(args.one)
        print(json.dumps(measure(arch, config)))
        return 0

    lines = [f"Parameters and multiply-adds at {SIZE}x{SIZE}, 21 classes unless the row says "
             "otherwise (`python bench/architecture.py`; counting rules in "
             "deeplab_keras/utils/flops.py: conv/dense multiply-adds only).",
             "",
             "| version | backbone | settings | params (M) | multiply-adds (B) | published (B) | source |",
             "|---|---|---|---:|---:|---:|---|"]
    start = time.time()
    for version, backbone, arch, config, published, source in ROWS:
        out = subprocess.run([sys.executable, __file__, "--one", json.dumps([arch, config])],
                             capture_output=True, text=True, check=False)
        if out.returncode != 0:
            print(out.stderr[-2000:], file=sys.stderr)
            raise SystemExit(f"measuring {arch} {config} failed")
        r = json.loads(out.stdout.strip().splitlines()[-1])
        pub = f"{published:.2f}" if published is not None else ""
        row = (f"| {version} | {backbone} | {config_text(config)} | {r['params'] / 1e6:.2f} | "
               f"{r['mult_adds'] / 1e9:.2f} | {pub} | {source} |")
        lines.append(row)
        print(row, flush=True)
    text = "\n".join(lines) + "\n"
    from deeplab_keras.utils.io import write_text

    write_text(args.out, text)
    print(f"\n{text}\nwritten to {args.out} in {time.time() - start:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
