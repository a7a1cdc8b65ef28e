"""Import DeepLab TFLite files into our Keras models (structural matching since issue 9;
:func:`read_tflite_convs` / :func:`describe_google_tflite` still read Google's TF-slim names).

Google's TFLite DeepLab files keep TF-slim scopes in their tensor names
(``MobilenetV2/expanded_conv_3/depthwise/depthwise_weights``, or for the quantization-aware
``MobilenetV2/expanded_conv_3/depthwise/depthwise_Fold;...``). BatchNorm is folded into a conv
bias; we map it back onto our conv + BatchNorm pair as gamma=1, beta=bias, mean=0,
var=1-epsilon, which reproduces the folded conv exactly. Quantized (uint8/int8) weights and
int32 biases are dequantized with their own scales and zero points.
"""
import os

import numpy as np

from deeplab_keras.importers.tflite_describe import builder_config, describe
from deeplab_keras.importers.tflite_graph import read_graph
from deeplab_keras.importers.tflite_match import import_structural
from deeplab_keras.importers.tflite_reader import check_input_size
from deeplab_keras.layers.conv import scope_to_name

_SUFFIXES = ("weights", "depthwise_weights", "Conv2D_Fold", "depthwise_Fold", "Conv2D")
_PREFIXES = ("MobilenetV2/",)
CLASSIFIER = "logits_semantic"


def _interpreter(path):
    from ai_edge_litert.interpreter import Interpreter

    if not os.path.isfile(path):
        raise FileNotFoundError(f"TFLite file not found: {path}")
    try:
        interpreter = Interpreter(model_path=os.fspath(path))
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as err:
        raise ValueError(f"{path}: not a readable TFLite model ({err})") from err
    return interpreter


def _dequantize(interpreter, detail):
    value = np.array(interpreter.get_tensor(detail["index"]))
    if np.issubdtype(value.dtype, np.floating):
        return value.astype(np.float32)
    q = detail["quantization_parameters"]
    scales, zero_points = np.asarray(q["scales"], np.float64), np.asarray(q["zero_points"], np.float64)
    if scales.size == 0:
        raise ValueError(f"tensor {detail['name']!r} is {value.dtype} without quantization parameters")
    if scales.size > 1:  # per-channel
        shape = [1] * value.ndim
        shape[q["quantized_dimension"]] = -1
        scales, zero_points = scales.reshape(shape), zero_points.reshape(shape)
    return ((value.astype(np.float64) - zero_points) * scales).astype(np.float32)


def _scope(tensor_name):
    """'MobilenetV2/expanded_conv/depthwise/depthwise_Fold;...' -> 'expanded_conv/depthwise'."""
    name = tensor_name.split(";")[0]
    parts = name.split("/")
    if len(parts) > 1 and parts[-1] in _SUFFIXES:
        parts.pop()
    scope = "/".join(parts)
    for prefix in _PREFIXES:
        if scope.startswith(prefix):
            scope = scope[len(prefix):]
    return scope


def read_tflite_convs(path):
    """Every CONV_2D / DEPTHWISE_CONV_2D of a TFLite file as an ordered list of dicts:
    ``{"scope", "layer", "op", "kernel" (Keras layout), "bias", "input_shape", "output_shape"}``."""
    interpreter = _interpreter(path)
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    convs = []
    for op in interpreter._get_ops_details():
        if op["op_name"] not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            continue
        inputs = [i for i in op["inputs"] if i >= 0]
        if len(inputs) < 2:
            raise ValueError(f"{path}: {op['op_name']} #{op['index']} has no weight tensor")
        w_detail = details[inputs[1]]
        kernel = _dequantize(interpreter, w_detail)
        bias = _dequantize(interpreter, details[inputs[2]]) if len(inputs) > 2 else None
        if op["op_name"] == "CONV_2D":  # [out, kh, kw, in] -> [kh, kw, in, out]
            kernel = kernel.transpose(1, 2, 3, 0)
        else:  # [1, kh, kw, channels] -> [kh, kw, channels, 1]
            kernel = kernel.reshape(kernel.shape[1], kernel.shape[2], -1, 1)
        scope = _scope(w_detail["name"])
        convs.append({"scope": scope, "layer": scope_to_name(scope), "op": op["op_name"],
                      "kernel": kernel, "bias": bias,
                      "input_shape": tuple(int(s) for s in details[inputs[0]]["shape"]),
                      "output_shape": tuple(int(s) for s in details[op["outputs"][0]]["shape"])})
    if not convs:
        raise ValueError(f"{path}: no convolution found; is this a DeepLab TFLite file?")
    return convs


def import_tflite(model, path, skip_classifier=False, allow_missing=False):
    """Load a DeepLab TFLite file's weights into ``model``, matched by graph structure.

    Names are hints only (see :mod:`deeplab_keras.importers.tflite_match`): files from any
    converter (TF-slim scopes, ``BatchNorm/FusedBatchNormV3`` scopes, stripped names), float32,
    float16 (``DEQUANTIZE``), int8 per-channel and uint8 per-tensor weights import alike. Every
    convolution of the file must find its layer (else ValueError naming the first op that does
    not fit and what was expected), and every layer of ``model`` with weights must be filled,
    unless ``allow_missing`` (e.g. a v3+ decoder that the file lacks). ``skip_classifier``
    leaves the final classifier (``logits_semantic``) untouched (fine-tuning to other classes).
    Returns a report dict.
    """
    return import_structural(model, path, skip_classifier=skip_classifier,
                             allow_missing=allow_missing)


def describe_google_tflite(path):
    """Architecture settings of a Google DeepLab MobileNetV2 TFLite file, read from its tensors."""
    convs = read_tflite_convs(path)
    by_scope = {c["scope"]: c for c in convs}
    if "Conv" not in by_scope or "logits/semantic" not in by_scope:
        raise ValueError(f"{path}: not a DeepLab MobileNetV2 file (no MobilenetV2/Conv or logits)")
    first = by_scope["Conv"]
    alpha = first["kernel"].shape[-1] / 32.0
    height = first["input_shape"][1]
    feature = by_scope["logits/semantic"]["input_shape"][1]
    output_stride = int(round((height - 1) / max(feature - 1, 1)))
    rates = []
    i = 1
    while f"aspp{i}" in by_scope or f"aspp{i}_depthwise" in by_scope:
        i += 1
        rates.append(None)  # rates are not recoverable from the weights; see below
    if rates:
        raise ValueError(f"{path}: ASPP atrous branches found; only the mobile head is supported")
    return {"architecture": "deeplabv3", "backbone": "mobilenet_v2", "alpha": alpha,
            "output_stride": output_stride, "atrous_rates": (),
            "num_classes": int(by_scope["logits/semantic"]["kernel"].shape[-1]),
            "input_shape": (height, first["input_shape"][2], 3), "align_corners": True}


def load_google_tflite(path, **overrides):
    """Build the DeepLab v3 MobileNetV2 that matches a Google TFLite file and import its weights.

    ``overrides`` go to :func:`deeplab_keras.DeepLabV3` (e.g. ``input_shape=(None, None, 3)``)."""
    from deeplab_keras.models import DeepLabV3

    config = describe_google_tflite(path)
    config.pop("architecture")
    config.update(overrides)
    model = DeepLabV3(weights=None, **config)
    import_tflite(model, path)
    return model


def from_tflite(path, *, input_shape=None, **overrides):
    """Build the Keras DeepLab model a TFLite file holds and import its weights by structure.

    Everything is read from the file's graph (see :func:`describe`); the model takes raw 0-255
    RGB like every other model of ours and outputs logits at the input size. ``input_shape``
    (e.g. ``(None, None, 3)``) and other builder keyword arguments override what the file says.
    """
    from deeplab_keras.models import build_model

    if input_shape is not None:
        check_input_size(path, *tuple(input_shape)[:2], what="input_shape")
    parsed = read_graph(path)
    config = describe(parsed)
    architecture, kwargs = builder_config(config)
    if input_shape is not None:
        kwargs["input_shape"] = tuple(input_shape)
    kwargs.update(overrides)
    kwargs.setdefault("name", os.path.splitext(os.path.basename(os.fspath(path)))[0].replace(".", "_"))
    norm = config["input_normalization"]
    kwargs.setdefault("preprocessing", {"normalization": {"scale": norm["scale"],
                                                          "offset": norm["offset"]}})
    model = build_model(architecture, weights=None, **kwargs)  # applies the normalisation
    import_structural(model, parsed)
    return model
