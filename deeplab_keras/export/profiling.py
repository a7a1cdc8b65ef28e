"""Where the time goes in a TFLite graph, without an op profiler: cut the graph after a tensor
(``truncate_tflite``) and time the variants side by side (``interleaved_latency``), so the
difference between two cuts is the cost of the ops in between (e.g. the full-resolution resize,
the ArgMax)."""
import time

import numpy as np


def tflite_ops(path):
    """[(index, op name, output tensor names)] in execution order."""
    from tensorflow.lite.tools import flatbuffer_utils
    model = flatbuffer_utils.read_model(path)
    sg = model.subgraphs[0]
    out = []
    for i, op in enumerate(sg.operators):
        name = flatbuffer_utils.opcode_to_name(model, op.opcodeIndex)
        out.append((i, name, [sg.tensors[t].name.decode() for t in op.outputs]))
    return out


def truncate_tflite(path, output_path, last_op):
    """Write a copy of ``path`` that stops after operator ``last_op`` (index in execution order);
    its outputs become that operator's outputs. Ops after it are removed, so they do not run."""
    from tensorflow.lite.tools import flatbuffer_utils
    model = flatbuffer_utils.read_model(path)
    sg = model.subgraphs[0]
    if not 0 <= last_op < len(sg.operators):
        raise ValueError(f"last_op must be in [0, {len(sg.operators)}), got {last_op}")
    outputs = list(sg.operators[last_op].outputs)
    sg.operators = sg.operators[:last_op + 1]
    sg.outputs = outputs
    if model.signatureDefs:
        model.signatureDefs = []  # the signature names the removed outputs
    flatbuffer_utils.write_model(model, output_path)
    return output_path


def interleaved_latency(artifacts, image, runs=20, warmup=3, rounds=3):
    """Median / p90 ms per artifact, timed in alternating rounds so that load changes on a
    shared machine hit every variant alike. ``artifacts``: {name: Artifact}."""
    runners = {}
    for name, art in artifacts.items():
        runners[name] = art.set_input(art.prepare(image))
        for _ in range(warmup):
            runners[name]()
    times = {name: [] for name in artifacts}
    per_round = max(1, runs // rounds)
    for _ in range(rounds):
        for name, run in runners.items():
            for _ in range(per_round):
                t = time.perf_counter()
                run()
                times[name].append((time.perf_counter() - t) * 1000.0)
    return {name: {"median_ms": float(np.median(v)), "p90_ms": float(np.percentile(v, 90)),
                   "runs": len(v)} for name, v in times.items()}
