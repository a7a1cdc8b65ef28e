"""``deeplab-keras benchmark FILE... --threads N [--runs R]``: CPU latency (median, p90), file
size and peak memory of exported ``.tflite`` (ai-edge-litert) / ``.onnx`` (onnxruntime) files."""
from deeplab_keras.utils.io import write_json


def add_parser(subparsers):
    p = subparsers.add_parser("benchmark", help="latency / size / memory of exported artifacts")
    p.add_argument("files", nargs="+", metavar="FILE", help=".tflite, .onnx or SavedModel directory")
    p.add_argument("--threads", type=int, default=1, help="interpreter / intra-op threads (default 1)")
    p.add_argument("--runs", type=int, default=20, help="timed runs (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs first (default 3)")
    p.add_argument("--same-process", action="store_true",
                   help="measure every file in this process (default: a fresh process per file, "
                        "so the peak-memory figure of one file is not hidden by another's)")
    p.add_argument("--json", help="also write the results to this JSON file")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a --json file that deeplab-keras did not write")
    return p


def is_our_results(path):
    """A results JSON of ours: a list of benchmark records (their ``file`` and
    ``memory_method`` keys)."""
    import json

    with open(path) as f:
        data = json.load(f)
    return isinstance(data, list) and bool(data) and all(
        isinstance(r, dict) and {"file", "memory_method"} <= set(r) for r in data)


def run(args):
    import os

    from deeplab_keras.export.benchmark import benchmark, to_markdown

    if args.json:  # the writer policy (issue 27), before any work
        from deeplab_keras.utils.io import check_output_file
        check_output_file(args.json, is_our_results, inputs=args.files,
                          overwrite=args.overwrite, flag="--json", what="--json file")
    results = []
    for path in args.files:
        if not os.path.exists(path):
            raise FileNotFoundError(f"no such file: {path}")
        results.append(benchmark(path, threads=args.threads, runs=args.runs, warmup=args.warmup,
                                 isolate=not args.same_process))
    print(to_markdown(results))
    print(f"memory: {results[0]['memory_method']}")
    if args.json:
        write_json(args.json, results)
    return 0
