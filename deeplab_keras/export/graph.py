"""The deploy graph: a fixed-size ``tf.function`` from raw RGB pixels to the chosen output.

Output modes (all at batch 1, input ``[1, H, W, 3]`` float32 0-255; the TFLite int8 converter
turns the input into uint8/int8 raw pixels):

* ``classes``: ``[1, H, W]`` int32 class map at the input size (ArgMax with int32 output, never
  int64), and a second output, :data:`VIDEO_OUTPUT` (``lowres_logits``): the logits before the
  final upsampling (``[1, H/s, W/s, C]`` at output stride ``s``, 90x120x11 for CamVid at
  360x480), the tensor the class map is computed from. The class map stays the first output (what
  every consumer reads); video smoothing averages the low-resolution scores over time, then
  upsamples once (:mod:`deeplab_keras.video.smoothing`), MediaPipe's own convention of scores at
  the model's output resolution;
* ``logits``: ``[1, H, W, C]`` float logits at the input size;
* ``probabilities``: softmax of the above;
* ``lowres_logits``: the classifier output before the final upsampling (``[1, h, w, C]``).

``gpu_delegate=True`` refuses ``classes`` (ArgMax does not run on the TFLite GPU delegate): the
artifact then returns float logits/probabilities and the argmax is left to the caller.
"""
import tensorflow as tf

from deeplab_keras import frontend
from deeplab_keras.models.deeplab import parts, resize_semantics

OUTPUT_MODES = ("classes", "logits", "probabilities", "lowres_logits")
#: name of the second output of a class-map export (low-resolution logits, for video)
VIDEO_OUTPUT = "lowres_logits"


def parse_size(size):
    """``513``, ``"513"``, ``"257x385"`` or ``(h, w)`` -> ``(h, w)`` positive ints."""
    if isinstance(size, str):
        parts = size.lower().replace(",", "x").split("x")
        try:
            parts = [int(p) for p in parts]
        except ValueError:
            raise ValueError(f"input size must be N or HxW, got {size!r}") from None
        size = parts
    if isinstance(size, int):
        size = (size, size)
    size = tuple(int(s) for s in size)
    if len(size) == 1:
        size = size * 2
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"input size must be N or HxW with positive values, got {size!r}")
    return size


def check_output_mode(output_mode, gpu_delegate=False):
    if output_mode not in OUTPUT_MODES:
        raise ValueError(f"output_mode must be one of {', '.join(OUTPUT_MODES)}, got {output_mode!r}")
    if gpu_delegate and output_mode == "classes":
        raise ValueError("gpu_delegate mode has no ArgMax (the TFLite GPU delegate cannot run it): "
                         "use output_mode 'logits', 'probabilities' or 'lowres_logits'")
    return output_mode


def logits_model(model, low_resolution=False):
    """``model`` cut at its logits: at the input size (the output of the final upsampling the
    model records in ``parts["upsample"]``) or before it. Works for Keras 3 and tf_keras
    functional models (the QAT model records its wrapped layer)."""
    layer = model.get_layer(parts(model)["upsample"])
    target = layer.input[0] if low_resolution else layer.output
    if target is model.outputs[0] and len(model.outputs) == 1:
        return model
    return type(model)(model.inputs, target, name=model.name + ("_lowres" if low_resolution else "_logits"))


def check_input_size(model, size):
    static = tuple(model.inputs[0].shape[1:3])
    for got, want in zip(static, size):
        if got is not None and int(got) != want:
            raise ValueError(f"model {model.name!r} was built for input {static}, cannot export at {size}")


def serving_function(model, input_size, output_mode="classes", gpu_delegate=False):
    """A ``tf.function`` ``image [1, H, W, 3] float32 (0-255 RGB) -> {output_mode: tensor}``."""
    size = parse_size(input_size)
    check_output_mode(output_mode, gpu_delegate)
    check_input_size(model, size)
    if output_mode == "classes":  # the class map and the low-resolution logits it comes from
        layer = model.get_layer(parts(model)["upsample"])
        core = type(model)(model.inputs, [layer.output, layer.input[0]], name=model.name + "_video")
    else:
        core = logits_model(model, low_resolution=(output_mode == "lowres_logits"))
    spec = tf.TensorSpec([1, size[0], size[1], 3], tf.float32, name="image")

    @tf.function(input_signature=[spec], autograph=False)
    def serve(image):
        y = core(image, training=False)
        if output_mode == "classes":
            y, low = y
            classes = tf.argmax(tf.cast(y, tf.float32), axis=-1, output_type=tf.int32)
            return {"classes": tf.identity(classes, name="classes"),
                    VIDEO_OUTPUT: tf.identity(tf.cast(low, tf.float32), name=VIDEO_OUTPUT)}
        y = tf.cast(y, tf.float32)
        if output_mode == "probabilities":
            y = tf.nn.softmax(y, axis=-1)
        return {output_mode: tf.identity(y, name=output_mode)}

    serve.output_mode = output_mode
    serve.video_output = None
    if output_mode == "classes":  # what the file's metadata records about its second output
        low = serve.get_concrete_function().structured_outputs[VIDEO_OUTPUT].shape
        try:
            semantics = resize_semantics(model)
        except AttributeError:  # a QAT model wraps its layers (its float twin's plan records it)
            semantics = None
        serve.video_output = {"name": VIDEO_OUTPUT, "shape": [int(d) for d in low],
                              "resize": semantics}
    serve.core = core
    serve.input_size = size
    serve.keras_module = "keras" if frontend.is_keras3() else "tf_keras"
    return serve
