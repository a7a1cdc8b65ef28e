"""Where an imported model and its TFLite file differ, op by op.

:func:`compare_with_file` runs the file (LiteRT, every intermediate tensor kept) and the Keras
model on the same raw RGB images and reports, for every convolution the structural matcher
paired with a layer, the difference between the layer's output (after its BatchNorm and
activation, which the file folds and fuses into the op) and the op's output tensor, dequantized:

* ``relative_error``: RMS difference / standard deviation of the file's tensor;
* ``steps``: RMS difference in quantization steps of that tensor (0 for float tensors). Rounding
  alone gives about 0.3; an import that mis-reads a weight or a resize gives tens.
* ``local_steps``: the same, when the layer chain is fed the file's own input tensor of that op
  instead of our previous layer's output: the error one op adds by itself. Near 0.3 everywhere
  means every op computes what the file computes and the remaining difference is the file's
  accumulated activation rounding.

Per image it reports the class-map agreement, and the agreement on *decided* pixels: those
where the file's own logits put the top class ahead of the runner-up by more than
``decided_steps`` quantization steps of its logits tensor. A float network cannot reproduce the
file's choice between two classes whose logits are closer than the file's own rounding, so a
post-training-quantized file (int8 activations) disagrees with the exact float network it stores
on near-tie pixels; how many there are depends on the image, not on the import.
"""
import os

import numpy as np

from deeplab_keras.importers.tflite import _dequantize
from deeplab_keras.importers.tflite_describe import describe
from deeplab_keras.importers.tflite_graph import read_graph
from deeplab_keras.importers.tflite_match import match

_FOLLOWERS = ("BatchNormalization", "ReLU", "Activation")


def _chain(model, name):
    """The layers of the (zero padding ->) conv -> BatchNorm -> activation chain at ``name``."""
    layer = model.get_layer(name)
    chain = [layer]
    parents = [t._keras_history.operation for node in layer._inbound_nodes[:1]
               for t in node.input_tensors if hasattr(t, "_keras_history")]
    if len(parents) == 1 and type(parents[0]).__name__ == "ZeroPadding2D":
        chain.insert(0, parents[0])
    while True:
        nxt = list({id(n.operation): n.operation for n in layer._outbound_nodes}.values())
        if len(nxt) != 1 or type(nxt[0]).__name__ not in _FOLLOWERS or nxt[0] not in model.layers:
            return chain
        layer = nxt[0]
        chain.append(layer)


def _local(chain, x, ref, scale):
    """RMS error (in steps of ``ref``, or absolute for float tensors) of ``chain`` run on the
    file's own input ``x`` of the op; NaN when the op's input is not the chain's (e.g. a
    dilated conv the converter wrapped in SPACE_TO_BATCH_ND)."""
    y = x
    try:
        for layer in chain:
            y = layer(y, training=False) if type(layer).__name__ == "BatchNormalization" else layer(y)
    except Exception:  # noqa: BLE001 - shapes the chain cannot take
        return float("nan")
    y = np.asarray(y)
    if y.shape != ref.shape:
        return float("nan")
    rms = float(np.sqrt(np.mean((y - ref) ** 2)))
    return rms / scale if scale else rms


def file_input(graph, config, image):
    """The tensor the file expects for one raw 0-255 RGB image of the file's input size."""
    detail_type = graph.dtype(graph.inputs[0])
    x = np.asarray(image, np.float32)[None]
    if detail_type == "FLOAT32":
        norm = config["input_normalization"]
        if str(norm.get("source", "")).startswith("assumed"):  # normalisation outside the file
            return (x * np.asarray(norm["scale"], np.float32) + np.asarray(norm["offset"], np.float32))
        return x
    if detail_type == "UINT8":
        return np.clip(np.rint(x), 0, 255).astype(np.uint8)
    if detail_type == "INT8":
        return (np.clip(np.rint(x), 0, 255) - 128).astype(np.int8)
    raise ValueError(f"{graph.path}: input of type {detail_type}; supported: FLOAT32, UINT8, INT8")


def _logits_tensor(graph):
    """The file's class scores: the input of its ArgMax, else its (4-D) output."""
    for kind, ins, _, _ in graph.ops:
        if kind == "ARG_MAX":
            return ins[0]
    out = graph.outputs[0]
    if len(graph.shape(out)) != 4:
        raise ValueError(f"{graph.path}: no ArgMax and a {len(graph.shape(out))}-D output; "
                         "cannot find the class scores")
    return out


def compare_with_file(model, path, images, *, decided_steps=2.0, num_threads=2):
    """Compare ``model`` (imported from ``path``) with the file on ``images`` (raw RGB arrays at
    the file's input size). Returns ``{"layers": [...], "images": [...], "logit_step": s}``;
    layer rows average over the images."""
    import keras

    from deeplab_keras.inference.runtime import Artifact

    path = os.fspath(path)
    graph, convs = read_graph(path)
    config = describe((graph, convs))
    pairs, _, _ = match(model, convs, origin=path)
    chains = {node.index: _chain(model, name) for node, name, _ in pairs}
    targets = [(node, chains[node.index][-1]) for node, _, _ in pairs]
    probe = keras.Model(model.inputs, [layer.output for _, layer in targets] + [model.outputs[0]])
    interpreter = Artifact(path, num_threads=num_threads, preserve_all_tensors=True).interpreter
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

    def tensor(t):  # activations are per-tensor: one scale (0.0 for a float tensor)
        return _dequantize(interpreter, details[t]), float(details[t]["quantization"][0])

    logits_t = _logits_tensor(graph)
    sums = {}
    per_image = []
    for image in images:
        image = np.asarray(image)
        if image.shape[:2] != tuple(inp["shape"][1:3]):
            raise ValueError(f"image of size {image.shape[:2]}; the file takes "
                             f"{tuple(int(d) for d in inp['shape'][1:3])} (resize it first)")
        interpreter.set_tensor(inp["index"], file_input(graph, config, image))
        interpreter.invoke()
        theirs = interpreter.get_tensor(out["index"])[0]
        theirs = theirs.argmax(-1) if theirs.ndim == 3 else theirs
        outputs = probe.predict(image[None].astype(np.float32), verbose=0)
        for (node, layer), ours in zip(targets, outputs[:-1]):
            ref, scale = tensor(graph.ops[node.index][2][0])
            if ref.shape != ours.shape:  # e.g. a 1x1 pooled branch broadcast differently
                continue
            rms = float(np.sqrt(np.mean((ours - ref) ** 2)))
            row = sums.setdefault(node.index, {"op": node.index, "kind": node.kind, "layer": layer.name,
                                               "relative_error": 0.0, "steps": 0.0, "local_steps": 0.0,
                                               "n": 0})
            row["relative_error"] += rms / (float(ref.std()) + 1e-12)
            row["steps"] += rms / scale if scale else 0.0
            row["local_steps"] += _local(chains[node.index], tensor(graph.ops[node.index][1][0])[0],
                                         ref, scale)
            row["n"] += 1
        logits, step = tensor(logits_t)
        logits = logits[0]
        ours = outputs[-1][0]
        ours_map = ours.argmax(-1)
        top2 = np.sort(logits, -1)[..., -2:]
        decided = (top2[..., 1] - top2[..., 0]) > decided_steps * step
        agree = ours_map == theirs
        per_image.append({"agreement": float(agree.mean()),
                          "decided_fraction": float(decided.mean()),
                          "decided_agreement": float(agree[decided].mean()) if decided.any() else 1.0,
                          "logits_rms_steps": (float(np.sqrt(np.mean((ours - logits) ** 2))) / step
                                               if step and ours.shape == logits.shape else None)})
    layers = []
    for row in sums.values():
        n = row.pop("n")
        layers.append(dict(row, relative_error=row["relative_error"] / n, steps=row["steps"] / n,
                           local_steps=row["local_steps"] / n))
    return {"layers": sorted(layers, key=lambda r: r["op"]), "images": per_image,
            "logit_step": float(details[logits_t]["quantization"][0]), "decided_steps": decided_steps}
