"""Artifact writers: SavedModel, TFLite (float32 / float16 / dynamic / int8 / QAT) and ONNX
(tf2onnx). Each writes to the exact path it is given (the caller passes a temporary path and
moves it into place only after the parity gate passes)."""
import json
import os

import tensorflow as tf

from deeplab_keras.inference.runtime import (METADATA_NAME, read_onnx_metadata,  # noqa: F401
                                             read_tflite_metadata)

QUANTIZE_MODES = ("none", "float16", "dynamic", "int8", "qat")
IO_DTYPES = {"uint8": tf.uint8, "int8": tf.int8}


def _converter(serve):
    cf = serve.get_concrete_function()
    # without trackable_obj: the converter then freezes the captured variables itself (passing
    # the Keras model here produced wrong outputs in TF 2.20, caught by the parity gate)
    return tf.lite.TFLiteConverter.from_concrete_functions([cf])


def to_tflite(serve, path, quantize="none", representative=None, io_dtype="uint8",
              metadata=None):
    """Convert ``serve`` (see :func:`graph.serving_function`) to a ``.tflite`` file."""
    if quantize not in QUANTIZE_MODES:
        raise ValueError(f"quantize must be one of {', '.join(QUANTIZE_MODES)}, got {quantize!r}")
    if io_dtype not in IO_DTYPES:
        raise ValueError(f"io_dtype must be one of {', '.join(IO_DTYPES)}, got {io_dtype!r}")
    conv = _converter(serve)
    if quantize == "float16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif quantize == "dynamic":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantize in ("int8", "qat"):
        if representative is None:
            raise ValueError(f"quantize={quantize!r} needs calibration images")
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = IO_DTYPES[io_dtype]
        if serve.output_mode != "classes":  # the class map is int32 already
            conv.inference_output_type = IO_DTYPES[io_dtype]
    data = conv.convert()
    if metadata is not None:
        data = add_tflite_metadata(data, metadata)
    with open(path, "wb") as f:
        f.write(data)
    return path


def add_tflite_metadata(data, metadata):
    """Embed ``metadata`` (labels, output mode...) as JSON in the flatbuffer's ``Model.metadata``
    table under the name ``deeplab_keras`` (read back with :func:`read_tflite_metadata`)."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(data))
    _name_io_tensors(model, metadata.get("output"), metadata.get("video_output"))
    buf = schema.BufferT()
    buf.data = list(json.dumps(metadata).encode("utf-8"))
    model.buffers.append(buf)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = (model.metadata or []) + [entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _name_io_tensors(model, output_name, video_output=None):
    """Same I/O tensor names as the ONNX file: input ``image``, output = the output mode
    (the converter names the output ``Identity``). A class-map file's second output (the
    low-resolution logits, ``video_output``) is put second and named after it: the class map is
    output 0, what every reader of the first output gets."""
    if not output_name:
        return
    sg = model.subgraphs[0]
    if len(sg.inputs) == 1:
        sg.tensors[sg.inputs[0]].name = b"image"
    outputs = list(sg.outputs)
    if video_output is not None and len(outputs) == 2:
        ranks = [len(sg.tensors[i].shape) for i in outputs]
        if sorted(ranks) != [3, 4]:
            raise ValueError(f"class-map graph has outputs of ranks {ranks}, expected a [1, H, W] "
                             "class map and [1, h, w, C] low-resolution logits")
        outputs.sort(key=lambda i: len(sg.tensors[i].shape))  # the class map (rank 3) first
        sg.outputs = outputs
        sg.tensors[outputs[1]].name = video_output["name"].encode()
        _reorder_signature(model, outputs)
    elif len(outputs) != 1:
        return
    sg.tensors[sg.outputs[0]].name = output_name.encode()


def _reorder_signature(model, outputs):
    """Keep the signature runner's output list in the subgraph's order."""
    for sig in model.signatureDefs or []:
        if sig.outputs:
            sig.outputs.sort(key=lambda t: outputs.index(t.tensorIndex)
                             if t.tensorIndex in outputs else len(outputs))


def to_saved_model(serve, path, metadata=None):
    module = tf.Module()
    module.serve = serve
    # track the model's variables so the signature's captures are saved
    module.model_variables = [getattr(v, "value", v) for v in serve.core.weights]
    tf.saved_model.save(module, path, signatures={"serving_default": serve})
    if metadata is not None:
        os.makedirs(os.path.join(path, "assets.extra"), exist_ok=True)
        with open(os.path.join(path, "assets.extra", "deeplab_keras.json"), "w") as f:
            json.dump(metadata, f, indent=1)
    return path


def to_onnx(serve, path, opset=17, metadata=None):
    """tf2onnx conversion of ``serve``; the ONNX graph is checked by ``onnx.checker``."""
    import onnx
    import tf2onnx
    spec = serve.input_signature
    model_proto, _ = tf2onnx.convert.from_function(serve, input_signature=spec, opset=int(opset))
    resize_by_sizes(model_proto)
    if metadata is not None:
        onnx.helper.set_model_props(model_proto, {METADATA_NAME: json.dumps(metadata)})
    onnx.checker.check_model(model_proto)
    with open(path, "wb") as f:
        f.write(model_proto.SerializeToString())
    return path


def resize_by_sizes(model_proto):
    """Give every ``Resize`` node that tf2onnx wrote with float ``scales`` its exact output
    ``sizes`` instead (in place). A static TensorFlow resize to 134 rows from 34 becomes scale
    134/34 = 3.9411764 in float32, and onnxruntime's floor(34 * 3.9411764) is 133: the graph then
    fails to load (the v3+ decoder's concat at 536x720) or runs at a wrong size. The sizes are
    round(input dim * scale), the sizes TensorFlow resized to. Returns the number of nodes changed;
    the caller checks the graph (:func:`to_onnx`)."""
    import numpy as np
    from onnx import numpy_helper, shape_inference

    inits = {i.name: i for i in model_proto.graph.initializer}
    inferred = shape_inference.infer_shapes(model_proto)
    shapes = {}
    for info in list(inferred.graph.value_info) + list(inferred.graph.input):
        dims = info.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") and d.dim_value > 0 for d in dims):
            shapes[info.name] = [d.dim_value for d in dims]
    changed, replaced = 0, set()
    for node in model_proto.graph.node:
        if node.op_type != "Resize" or len(node.input) < 3 or node.input[2] not in inits:
            continue
        if len(node.input) > 3 and node.input[3]:
            continue  # already by sizes
        scales = numpy_helper.to_array(inits[node.input[2]]).astype(np.float64)
        shape = shapes.get(node.input[0])
        if shape is None or len(shape) != len(scales):
            continue  # unknown input size: nothing to compute the sizes from
        sizes = np.array([int(round(d * s)) for d, s in zip(shape, scales)], np.int64)
        name = f"{node.name}__sizes"
        model_proto.graph.initializer.append(numpy_helper.from_array(sizes, name))
        replaced.add(node.input[2])
        inputs = list(node.input[:2]) + ["", name]
        del node.input[:]
        node.input.extend(inputs)
        changed += 1
    used = {i for node in model_proto.graph.node for i in node.input}
    keep = [i for i in model_proto.graph.initializer if i.name in used or i.name not in replaced]
    if len(keep) != len(model_proto.graph.initializer):
        del model_proto.graph.initializer[:]
        model_proto.graph.initializer.extend(keep)
    return changed
