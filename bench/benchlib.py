"""What the bench scripts share: their common flags, the skip when shared material is absent,
and writing + printing the markdown result."""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from deeplab_keras.utils.io import write_text  # noqa: E402


def cpu_name():
    """The CPU's model name (what a figure was measured on)."""
    import platform
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def parser(doc, result_name, *, runs=30, workdir="/tmp/deeplab_keras_bench", timing=True):
    """An ArgumentParser described by ``doc``'s first line, with ``--output`` (default
    bench/results/RESULT_NAME) and, for timing benchmarks, ``--threads``/``--runs``/``--workdir``."""
    p = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    if timing:
        p.add_argument("--threads", type=int, default=2)
        if runs is not None:
            p.add_argument("--runs", type=int, default=runs)
        p.add_argument("--workdir", default=workdir)
    p.add_argument("--output", default=os.path.join(HERE, "results", result_name))
    return p


def missing(path, what="shared material"):
    """True (after saying so) when ``path`` is absent: the benchmark is skipped, not failed."""
    if os.path.exists(path):
        return False
    print(f"skipped: {path} not found ({what})")
    return True


def publish(output, lines):
    """Write the result (a list of markdown lines) to ``output``, print it; exit status 0."""
    text = "\n".join(lines) + "\n"
    write_text(output, text)
    print(text)
    return 0


def latency_lines(lat, reference, threads, runs, where="", label=None):
    """Markdown table of ``profiling.interleaved_latency``'s result, each graph's median as a
    ratio to ``reference``'s."""
    ref = lat[reference]["median_ms"]
    lines = ["", f"Latency, ai-edge-litert {threads} threads (XNNPACK), {runs} runs "
             f"interleaved in 3 rounds, same process{where}:", "",
             f"| graph | median ms | p90 ms | ratio to {label or reference} full |", "|---|---|---|---|"]
    return lines + [f"| {k} | {v['median_ms']:.2f} | {v['p90_ms']:.2f} | {v['median_ms'] / ref:.2f} |"
                    for k, v in lat.items()]


def time_split(lat, who):
    """Where ``who``'s time goes, from the differences of its graph cuts (``who``,
    ``who no ArgMax``, ``who low-res logits``)."""
    full, noarg, low = (lat[who]["median_ms"], lat[who + " no ArgMax"]["median_ms"],
                        lat[who + " low-res logits"]["median_ms"])
    return f"network {low:.1f} ms, full-res resize {noarg - low:.1f} ms, ArgMax {full - noarg:.1f} ms"
