"""Latency / size / memory of an exported artifact on this CPU.

Latency: ``warmup`` untimed runs, then ``runs`` timed ``invoke()`` calls (the input bound once,
as an app does per frame); median and 90th percentile in milliseconds.
Peak memory: the process's peak resident set (``VmHWM`` in ``/proc/self/status``) is reset
(``echo 5 > /proc/self/clear_refs``) just before the artifact is loaded; the figure is
peak RSS while loading + running minus the RSS before loading (interpreter, arena, weights).
With ``isolate=True`` (the CLI default) each file is measured in a fresh child process, so
memory freed by a previous artifact and reused by the allocator does not hide this one's.
"""
import os
import time

import numpy as np

from deeplab_keras.export.runtime import Artifact


def _status_kb(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def benchmark(path, threads=1, runs=20, warmup=3, image=None, isolate=False):
    """Dict with median_ms, p90_ms, mean_ms, size_bytes, peak_rss_delta_mb (or None), ..."""
    if isolate:
        if image is not None:
            raise ValueError("isolate=True measures on its own random image; pass image=None")
        return _in_child(path, threads, runs, warmup)
    if runs < 1 or warmup < 0:
        raise ValueError(f"runs must be >= 1 and warmup >= 0, got runs={runs}, warmup={warmup}")
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    rss0 = _status_kb("VmRSS")
    reset = _reset_peak()
    art = Artifact(path, num_threads=threads)
    if image is None:
        rng = np.random.default_rng(0)
        image = rng.integers(0, 256, size=art.input_shape[1:], dtype=np.uint8).astype(np.float32)
    run = art.set_input(art.prepare(image))
    for _ in range(warmup):
        run()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        run()
        times.append((time.perf_counter() - t) * 1000.0)
    peak = _status_kb("VmHWM")
    size = (os.path.getsize(path) if os.path.isfile(path) else
            sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs))
    return {"file": os.fspath(path), "format": art.format, "threads": threads, "runs": runs,
            "median_ms": float(np.median(times)), "p90_ms": float(np.percentile(times, 90)),
            "mean_ms": float(np.mean(times)), "min_ms": float(np.min(times)),
            "size_bytes": size, "size_mb": size / 2**20,
            "peak_rss_delta_mb": (peak - rss0) / 1024.0 if (reset and peak and rss0) else None,
            "memory_method": ("peak RSS (VmHWM, reset via /proc/self/clear_refs) minus RSS before load"
                              if reset else "unavailable (no /proc/self/clear_refs)"),
            "input": f"{list(art.input_shape)} {art.input_dtype.name}"}


def _in_child(path, threads, runs, warmup):
    """Run :func:`benchmark` in a fresh interpreter (``python -m deeplab_keras.export.benchmark``)."""
    import json
    import subprocess
    import sys
    cmd = [sys.executable, "-m", "deeplab_keras.export.benchmark", os.fspath(path),
           str(threads), str(runs), str(warmup)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark of {path} failed in its child process: {proc.stderr[-2000:]}")
    return json.loads(lines[-1])


def to_markdown(results):
    lines = ["| file | format | threads | median ms | p90 ms | size MB | peak RSS delta MB |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        mem = "n/a" if r["peak_rss_delta_mb"] is None else f"{r['peak_rss_delta_mb']:.1f}"
        lines.append(f"| {os.path.basename(r['file'])} | {r['format']} | {r['threads']} | "
                     f"{r['median_ms']:.2f} | {r['p90_ms']:.2f} | {r['size_mb']:.2f} | {mem} |")
    return "\n".join(lines)


if __name__ == "__main__":  # the child process of benchmark(..., isolate=True)
    import json
    import sys
    _path, _threads, _runs, _warmup = sys.argv[1], *map(int, sys.argv[2:5])
    print(json.dumps(benchmark(_path, _threads, _runs, _warmup)))
