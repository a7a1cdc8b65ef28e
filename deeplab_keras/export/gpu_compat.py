"""Can TFLite's GPU delegate run every op of a .tflite file (issue 28, item 5)?

Two sources, both recorded in the report:

- ``tf.lite.experimental.Analyzer.analyze(model_content=..., gpu_compatibility=True)``: its
  printed dump lists every op (``Op#7 ARG_MAX(T#10, T#3[-1]) -> [T#11]``) and, in builds that
  carry TFLite's GPU checker, a ``GPU COMPATIBILITY WARNING: <reason>`` line after each op the
  delegate rejects.
- the op list of that checker (tensorflow/lite/tools/versioning/gpu_compatibility.cc): an op
  outside it is "Not supported op X" there. The TensorFlow 2.20 pip wheel's analyzer prints
  "looks compatible" for any graph (its checker is not linked in: ARG_MAX passes), so an op
  outside the list is reported as incompatible from the list, with its source named.

This is an op-level check (per-op parameter limits, e.g. strides or broadcast shapes, come
only from the analyzer when it checks them); "compatible" here is necessary, not sufficient,
as the analyzer itself says.
"""
import contextlib
import io
import re

#: builtin ops the GPU delegate's compatibility check accepts in some form (its switch cases)
GPU_OPS = frozenset("""
ABS ADD ADD_N ATAN2 AVERAGE_POOL_2D BATCH_MATMUL CAST CEIL CONCATENATION CONV_2D COS CUMSUM
DENSIFY DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE DIV DYNAMIC_UPDATE_SLICE ELU EMBEDDING_LOOKUP
EQUAL EXP FLOOR FLOOR_DIV FLOOR_MOD FULLY_CONNECTED GATHER GELU GREATER GREATER_EQUAL HARD_SWISH
LEAKY_RELU LESS LESS_EQUAL LOG LOGICAL_AND LOGISTIC LSTM MAXIMUM MAX_POOL_2D MEAN MINIMUM
MIRROR_PAD MUL NEG NOT_EQUAL ONE_HOT PACK PAD PADV2 POW PRELU QUANTIZE REDUCE_MAX REDUCE_MIN
REDUCE_PROD RELU RELU6 RELU_N1_TO_1 RESHAPE RESIZE_BILINEAR RESIZE_NEAREST_NEIGHBOR RSQRT SELECT
SELECT_V2 SIGN SIN SLICE SOFTMAX SPACE_TO_DEPTH SPLIT SPLIT_V SQRT SQUARE SQUARED_DIFFERENCE
STABLEHLO_CLAMP STRIDED_SLICE SUB SUM TANH TILE TRANSPOSE TRANSPOSE_CONV
""".split())

_OP = re.compile(r"^\s*Op#(\d+) ([A-Za-z0-9_]+)\(")
_WARN = "GPU COMPATIBILITY WARNING: "


def analyzer_text(model_content):
    """What the TFLite analyzer prints for ``model_content`` (bytes) with the GPU check on."""
    import tensorflow as tf

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        tf.lite.experimental.Analyzer.analyze(model_content=model_content, gpu_compatibility=True)
    return buf.getvalue()


def parse(text):
    """``(ops, warnings)`` from the analyzer's dump: ``ops`` is ``[(subgraph, index, name)]``,
    ``warnings`` is ``{(subgraph, index): reason}`` for the ops it flagged."""
    ops, warnings, subgraph, last = [], {}, -1, None
    for line in text.splitlines():
        if line.startswith("Subgraph#"):
            subgraph, last = int(line[len("Subgraph#"):].split()[0]), None
            continue
        m = _OP.match(line)
        if m:
            last = (subgraph, int(m.group(1)))
            ops.append((subgraph, last[1], m.group(2)))
        if _WARN in line:
            reason = line.split(_WARN, 1)[1].strip()
            if last is not None and not reason.startswith("Subgraph#"):
                warnings[last] = reason  # the line after the op (or the op's own line)
        elif not m and line.strip() and not line.startswith(" "):
            last = None
    return ops, warnings


def check(path=None, model_content=None):
    """The report's ``gpu_delegate`` entry for a .tflite file: ``compatible``, the
    ``incompatible_ops`` (op, node, reason, source) and the analyzer's own verdict."""
    if model_content is None:
        with open(path, "rb") as f:
            model_content = f.read()
    text = analyzer_text(model_content)
    ops, warnings = parse(text)
    bad = []
    for sg, idx, name in ops:
        if (sg, idx) in warnings:
            bad.append({"op": name, "node": f"Subgraph#{sg} Op#{idx}",
                        "reason": warnings[(sg, idx)], "source": "analyzer"})
        elif name not in GPU_OPS:
            bad.append({"op": name, "node": f"Subgraph#{sg} Op#{idx}",
                        "reason": f"Not supported op {name}", "source": "gpu_compatibility.cc op list"})
    if not ops:
        return {"compatible": None, "incompatible_ops": [], "ops_checked": 0,
                "analyzer_verdict": None,
                "note": "the TFLite analyzer listed no ops; GPU compatibility not checked"}
    verdict = ("compatible" if "looks compatible with GPU delegate" in text else
               "incompatible" if _WARN in text else None)
    return {"compatible": not bad, "incompatible_ops": bad, "ops_checked": len(ops),
            "analyzer_verdict": verdict}


def summary(entry):
    """One line for the markdown report."""
    if not entry or entry.get("compatible") is None:
        return f"not checked ({(entry or {}).get('note', 'no TFLite file')})"
    if entry["compatible"]:
        return f"every op can run on TFLite's GPU delegate ({entry['ops_checked']} ops checked)"
    ops = sorted({b["op"] for b in entry["incompatible_ops"]})
    return (f"NOT every op runs on TFLite's GPU delegate: {', '.join(ops)} "
            f"({entry['incompatible_ops'][0]['reason']}); those ops fall back to the CPU")
