"""int8 TFLite latency of the mobile presets, recorded in the preset files (``metrics.int8_latency_ms``
and ``metrics.int8_latency_source``: command, machine and threads) so ``deeplab-keras zoo list``
fills its ``int8 ms`` column and ``zoo show`` says how it was measured (issue 17).

    python bench/zoo_latency.py [PRESET ...] [--threads 2] [--runs 30] [--write]

Each preset is exported with ``deeplab-keras export --quantize int8`` at its own input size
(calibration: deterministic synthetic images unless ``--calibration DIR``; an existing file is
reused with ``--artifact PRESET=FILE``) and timed with ``deeplab_keras.export.benchmark`` (a
fresh child process; warm-up, then median of ``--runs`` invokes). Only presets whose weights are
available offline (shipped in zoo/weights or already in the cache) are measured; the others are
listed as skipped. ``--weights-dir DIR``: a folder holding presets' weight files (e.g.
../shared/reference); a file there is used when its sha256 matches the catalogue's pin.
"""
import json
import os
import platform
import sys

import benchlib

import deeplab_keras as dk
from deeplab_keras.export.benchmark import benchmark

MOBILE = ("mobilenet_v2", "mobilenet_v3")


def machine():
    """CPU model, vector extensions that matter to XNNPACK, and core count."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and ":" in line:
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and ":" in line:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    load = f", load average {os.getloadavg()[0]:.1f} when started" if hasattr(os, "getloadavg") \
        else ""
    return f"{model}, {vector}, {os.cpu_count()} CPUs{load}"


def mobile_presets():
    out = []
    for name in dk.list_presets():
        p = dk.get_preset(name)
        backbone = str((p.get("config") or {}).get("backbone", ""))
        if not p.get("backbone_only") and backbone.startswith(MOBILE):
            out.append(name)
    return out


def weights_offline(name):
    """True when the preset's weight file is on this machine: shipped in zoo/weights, or a file
    of its name already in the download cache (nothing is downloaded here)."""
    from deeplab_keras import download
    from deeplab_keras.hub import zoo
    entry = zoo.weight_entry(dk.get_preset(name))
    if entry.get("path"):
        return os.path.isfile(os.path.join(zoo.zoo_dir(), entry["path"]))
    cache = download.cache_dir()
    return any(entry.get("file") in names for _, _, names in os.walk(cache))


def local_weights(name, folder):
    """A file in ``folder`` whose sha256 matches the preset's pinned default weights (its
    catalogue name first, else any file of the pinned size), else None."""
    from deeplab_keras import download
    from deeplab_keras.hub import zoo
    entry = zoo.weight_entry(dk.get_preset(name))
    if not folder or not entry.get("sha256") or not os.path.isdir(folder):
        return None
    names = sorted(os.listdir(folder), key=lambda n: n != entry.get("file"))
    for candidate in (os.path.join(folder, n) for n in names):
        if not os.path.isfile(candidate) or (entry.get("size") and
                                             os.path.getsize(candidate) != entry["size"]):
            continue
        if download.file_hash(candidate, "sha256") == entry["sha256"].lower():
            return candidate
    return None


def main():
    p = benchlib.parser(__doc__, "zoo_latency.md", runs=30)
    p.add_argument("presets", nargs="*")
    p.add_argument("--calibration", help="folder of calibration images")
    p.add_argument("--artifact", action="append", default=[], metavar="PRESET=FILE",
                   help="time this existing int8 export of PRESET instead of exporting")
    p.add_argument("--write", action="store_true", help="record the figures in zoo/presets")
    p.add_argument("--weights-dir", help="folder of weight files (a file is used when its "
                   "sha256 matches the preset's pin)")
    args = p.parse_args()
    given = dict(a.split("=", 1) for a in args.artifact)
    names = args.presets or mobile_presets()
    where = machine()
    lines = ["# int8 TFLite latency of the mobile presets", "",
             f"`python bench/zoo_latency.py {' '.join(sys.argv[1:])}` on {where}; LiteRT "
             f"(XNNPACK) {args.threads} threads, median of {args.runs} invokes after warm-up in "
             "a fresh process.", "", "| preset | input | int8 ms (median) | p90 ms | file MB |",
             "|---|---|---|---|---|"]
    skipped = []
    os.makedirs(args.workdir, exist_ok=True)
    for name in names:
        preset = dk.get_preset(name)
        size = preset["preprocessing"]["input_size"]
        path = given.get(name)
        if path is None:
            local = local_weights(name, args.weights_dir)
            if local is None and not weights_offline(name):
                skipped.append(name)
                continue
            path = os.path.join(args.workdir, f"{name}_int8.tflite")
            model = dk.from_preset(name, weights=local or True, progress=False)
            from deeplab_keras.export.api import export_model
            export_model(model, path, "tflite", "int8", tuple(size), labels=model.labels,
                         calibration_data=args.calibration, overwrite=True)
            command = (f"deeplab-keras export --preset {name} --quantize int8 --input-size "
                       f"{size[0]}x{size[1]}" + (f" --weights {local}" if local else ""))
        else:
            command = (f"its int8 export at {size[0]}x{size[1]} ({os.path.basename(path)}, "
                       "deeplab-keras export --quantize int8)")
        r = benchmark(path, threads=args.threads, runs=args.runs, isolate=True)
        lines.append(f"| {name} | {size[0]}x{size[1]} | {r['median_ms']:.1f} | "
                     f"{r['p90_ms']:.1f} | {r['size_mb']:.2f} |")
        if args.write:
            file = os.path.join(benchlib.HERE, "..", "zoo", "presets", f"{name}.json")
            with open(file) as f:
                data = json.load(f)
            data.setdefault("metrics", {}).update(
                int8_latency_ms=round(r["median_ms"], 1),
                int8_latency_source=(f"python bench/zoo_latency.py: {command}, LiteRT XNNPACK "
                                     f"{args.threads} threads, median of {args.runs} invokes on "
                                     f"{where}"))
            benchlib.write_text(file, json.dumps(data, indent=1) + "\n")
    if skipped:
        lines += ["", "Skipped (weights not available offline on this machine; run the script "
                  "where they are downloaded): " + ", ".join(skipped)]
    return benchlib.publish(args.output, lines)


if __name__ == "__main__":
    sys.exit(main())
