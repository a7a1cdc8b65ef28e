"""Import the weights of Google's DeepLab TFLite files into our Keras models, by name.

Google's TFLite DeepLab files keep TF-slim scopes in their tensor names
(``MobilenetV2/expanded_conv_3/depthwise/depthwise_weights``, or for the quantization-aware
``MobilenetV2/expanded_conv_3/depthwise/depthwise_Fold;...``). BatchNorm is folded into a conv
bias; we map it back onto our conv + BatchNorm pair as gamma=1, beta=bias, mean=0,
var=1-epsilon, which reproduces the folded conv exactly. Quantized (uint8/int8) weights and
int32 biases are dequantized with their own scales and zero points.
"""
import os

import numpy as np

from deeplab_keras.layers.conv import BN_SUFFIX, scope_to_name

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
    """Load a Google DeepLab TFLite file's weights into ``model`` by layer name.

    Every convolution of the file must find a layer of the same name and shape (else
    ValueError), and every layer of ``model`` with weights must be filled, unless
    ``allow_missing`` (e.g. a v3+ decoder that the file lacks). ``skip_classifier`` leaves the
    ``logits_semantic`` layer untouched (fine-tuning to other classes). Returns a report dict.
    """
    convs = read_tflite_convs(path)
    layers = {layer.name: layer for layer in model.layers}
    loaded, skipped = [], []
    for conv in convs:
        name = conv["layer"]
        if name == CLASSIFIER and skip_classifier:
            skipped.append(name)
            continue
        layer = layers.get(name)
        if layer is None:
            raise ValueError(f"{path}: tensor scope {conv['scope']!r} has no layer {name!r} in "
                             f"model {model.name!r} (architecture mismatch)")
        kernel_var = layer.weights[0]
        if tuple(kernel_var.shape) != conv["kernel"].shape:
            raise ValueError(f"{path}: {conv['scope']!r} kernel has shape {conv['kernel'].shape}, "
                             f"layer {name!r} expects {tuple(kernel_var.shape)}")
        bias = conv["bias"] if conv["bias"] is not None else np.zeros(conv["kernel"].shape[-2 if conv['op'] == 'DEPTHWISE_CONV_2D' else -1], np.float32)
        bn = layers.get(name + BN_SUFFIX)
        if len(layer.weights) == 2:  # conv with its own bias
            layer.set_weights([conv["kernel"], bias.reshape(layer.weights[1].shape)])
        elif bn is not None:
            layer.set_weights([conv["kernel"]])
            eps = float(bn.epsilon)
            ones = np.ones_like(bias)
            values = {"gamma": ones, "beta": bias, "moving_mean": np.zeros_like(bias),
                      "moving_variance": ones * (1.0 - eps)}
            bn.set_weights([values[_bn_slot(v)] for v in bn.weights])
            loaded.append(bn.name)
        else:
            raise ValueError(f"{path}: layer {name!r} has no bias and no BatchNorm to take the "
                             f"folded bias of {conv['scope']!r}")
        loaded.append(name)
    missing = sorted(layer.name for layer in model.layers
                     if layer.weights and layer.name not in loaded and layer.name not in skipped)
    if missing and not allow_missing:
        raise ValueError(f"{path}: {len(missing)} layers of {model.name!r} get no weights from "
                         f"the file: {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")
    return {"source": os.fspath(path), "tensors": len(convs), "layers_loaded": len(loaded),
            "skipped": skipped, "missing": missing}


def _bn_slot(variable):
    base = variable.path.split("/")[-1] if hasattr(variable, "path") else variable.name
    base = base.split(":")[0]
    for slot in ("gamma", "beta", "moving_mean", "moving_variance"):
        if base.endswith(slot):
            return slot
    raise ValueError(f"unexpected BatchNorm variable {variable.name!r}")


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
