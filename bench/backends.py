"""CPU latency of the CamVid preset on each Keras backend (TensorFlow, JAX, PyTorch) at 360x480.

    python bench/backends.py --runs 20      # writes bench/results/backends.md

Each backend runs in its own child process (``--worker BACKEND``; KERAS_BACKEND set before Keras
loads) on the same images: the first CamVid val images from ../shared when present, else
deterministic synthetic ones. Timed: ``model.predict_on_batch`` on one (1, 360, 480, 3) image,
Keras' compiled predict function on every backend (tf.function / jax.jit / torch eager), after
warm-up calls; median and 90th percentile over --runs calls. The class maps of each backend are
compared with TensorFlow's (fraction of equal pixels) so a fast wrong answer shows.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchlib import HERE, parser, publish

PRESET = "deeplabv3plus_mobilenetv2_camvid"
BACKENDS = ("tensorflow", "jax", "torch")
SIZE = (360, 480)
CAMVID_VAL = os.path.join(os.path.dirname(HERE), "..", "shared", "data", "camvid", "val")


def images(count):
    """(count, 360, 480, 3) uint8 and where they come from."""
    from PIL import Image

    if os.path.isdir(CAMVID_VAL):
        files = sorted(f for f in os.listdir(CAMVID_VAL) if f.endswith(".png"))[:count]
        arrays = [np.asarray(Image.open(os.path.join(CAMVID_VAL, f)).convert("RGB")) for f in files]
        if all(a.shape[:2] == SIZE for a in arrays) and len(arrays) == count:
            return np.stack(arrays), f"the first {count} CamVid val images (../shared)"
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (count,) + SIZE + (3,), dtype=np.uint8), "synthetic images"


def worker(backend, data, runs, warmup, out):
    os.environ["KERAS_BACKEND"] = backend
    import keras

    import deeplab_keras as dk

    assert keras.backend.backend() == backend, keras.backend.backend()
    x = np.load(data)["x"].astype(np.float32)
    start = time.perf_counter()
    model = dk.from_preset(PRESET)
    load_s = time.perf_counter() - start
    first = time.perf_counter()
    model.predict_on_batch(x[:1])
    first_s = time.perf_counter() - first
    for i in range(warmup):
        model.predict_on_batch(x[i % len(x)][None])
    times = []
    for i in range(runs):
        t = time.perf_counter()
        model.predict_on_batch(x[i % len(x)][None])
        times.append(time.perf_counter() - t)
    classes = np.stack([np.asarray(model.predict_on_batch(im[None]))[0].argmax(-1) for im in x])
    np.save(out + ".npy", classes.astype(np.uint8))
    with open(out, "w") as f:
        json.dump({"backend": backend, "version": _version(backend), "load_s": load_s,
                   "first_call_s": first_s, "times_s": times}, f)


def _version(backend):
    module = __import__(backend)
    return getattr(module, "__version__", "?")


def installed(backend):
    import importlib.util
    return importlib.util.find_spec(backend) is not None


def main():
    p = parser(__doc__, "backends.md", runs=20)
    p.add_argument("--images", type=int, default=4)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--worker", choices=BACKENDS)
    p.add_argument("--data")
    p.add_argument("--out")
    args = p.parse_args()
    if args.worker:
        return worker(args.worker, args.data, args.runs, args.warmup, args.out)
    x, source = images(args.images)
    os.makedirs(args.workdir, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=args.workdir)
    data = os.path.join(tmp, "images.npz")
    np.savez(data, x=x)
    threads = str(args.threads)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS="cpu",
               OMP_NUM_THREADS=threads, TF_NUM_INTRAOP_THREADS=threads,
               TF_NUM_INTEROP_THREADS="1")
    results, skipped = {}, []
    for backend in BACKENDS:
        if not installed(backend):
            skipped.append(backend)
            continue
        out = os.path.join(tmp, backend + ".json")
        subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", backend,
                        "--data", data, "--out", out, "--runs", str(args.runs),
                        "--warmup", str(args.warmup), "--threads", threads], check=True, env=env)
        with open(out) as f:
            results[backend] = json.load(f)
        results[backend]["classes"] = np.load(out + ".npy")
    ref = results["tensorflow"]
    ref_ms = statistics.median(ref["times_s"]) * 1000
    load = os.getloadavg()
    lines = ["# CPU latency of the CamVid preset per Keras backend", "",
             f"`python bench/backends.py --runs {args.runs} --images {args.images} --threads "
             f"{args.threads}` ({PRESET}, 1 x {SIZE[0]} x {SIZE[1]} x 3, `model.predict_on_batch`, "
             f"{args.warmup} warm-up calls, {args.runs} timed calls on {source}; "
             f"{os.cpu_count()} CPUs, {args.threads} threads asked, load average after the run "
             f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}).", "",
             "| backend | version | median ms | p90 ms | vs TensorFlow | first call s | preset load s "
             "| class maps = TensorFlow's |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for backend, r in results.items():
        times = sorted(r["times_s"])
        median = statistics.median(times) * 1000
        p90 = times[min(len(times) - 1, int(round(0.9 * (len(times) - 1))))] * 1000
        agree = float(np.mean(r["classes"] == ref["classes"]))
        lines.append(f"| {backend} | {r['version']} | {median:.0f} | {p90:.0f} | "
                     f"{median / ref_ms:.2f}x | {r['first_call_s']:.1f} | {r['load_s']:.1f} | "
                     f"{agree:.5f} |")
    if skipped:
        lines += ["", f"Not installed (skipped): {', '.join(skipped)}."]
    return publish(args.output, lines)


if __name__ == "__main__":
    sys.exit(main())
