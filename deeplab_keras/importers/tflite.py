"""Import DeepLab TFLite files into our Keras models, by graph structure
(:mod:`deeplab_keras.importers.tflite_match`): :func:`from_tflite` builds the model a file holds,
:func:`import_tflite` fills a model built by hand.

BatchNorm folded into a conv bias is mapped back onto our conv + BatchNorm pair as gamma=1,
beta=bias, mean=0, var=1-epsilon, which reproduces the folded conv exactly. Quantized
(uint8/int8) weights and int32 biases are dequantized with their own scales and zero points
(:func:`_dequantize` for tensors read through LiteRT, used by the parity check).
"""
import os

import numpy as np

from deeplab_keras.importers.tflite_describe import builder_config, describe
from deeplab_keras.importers.tflite_graph import read_graph
from deeplab_keras.importers.tflite_match import import_structural
from deeplab_keras.importers.tflite_reader import check_input_size


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


def from_tflite(path, *, input_shape=None, **overrides):
    """Build the Keras DeepLab model a TFLite file holds and import its weights by structure.

    Everything is read from the file's graph (see :func:`describe`); the model takes raw 0-255
    RGB like every other model of ours and outputs logits at the input size. ``input_shape``
    (e.g. ``(None, None, 3)``) and other builder keyword arguments override what the file says.
    """
    from deeplab_keras.models import BUILDERS

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
    model = BUILDERS.build(architecture, **kwargs)  # applies the normalisation
    import_structural(model, parsed)
    return model
