"""Quantization-aware training with tfmot, which only accepts tf_keras (Keras 2) models.

1. :func:`tf_keras_twin` rebuilds the same architecture with tf_keras
   (``deeplab_keras.frontend.use(tf_keras)``) and copies the weights layer by layer (by name);
   :func:`max_abs_diff` verifies both give the same logits.
2. :func:`quantize` annotates every layer tfmot knows with its default 8-bit scheme. tfmot
   0.8 has no scheme for two weightless layers of ours: ``Resize`` (bilinear resize) gets a
   config that quantizes nothing (TFLite's int8 RESIZE_BILINEAR keeps its input's scale, so the
   producing layer's fake-quant already models it), and ``Rescaling`` (the in-graph input
   normalisation) gets an 8-bit output fake-quant. DepthwiseConv2D kernels are not
   fake-quantized (tfmot can only quantize them per tensor, which cost MobileNetV2 on CamVid
   0.93 argmax agreement at 0 steps); the converter quantizes them per channel as in PTQ
   (0.987 then), activations stay QAT-simulated.
3. :func:`fine_tune` trains with fake quantization for ``steps`` steps (labels, or the float
   model's own predictions as targets when only images are given: self-distillation).
Then :func:`deeplab_keras.export.export_model` with ``quantize="qat", qat_model=...`` converts.
"""
import numpy as np
import tensorflow as tf

from deeplab_keras import frontend
from deeplab_keras.utils import versions
from deeplab_keras.utils.backend import require_tensorflow
from deeplab_keras.layers.resize import resize_class


def _modules():
    try:
        import tf_keras
        import tensorflow_model_optimization as tfmot
    except ImportError as err:
        raise ImportError("QAT needs tf_keras and tensorflow-model-optimization "
                          "(pip install 'deeplab-keras[qat]')") from err
    return tf_keras, tfmot


def twin_spec(model, architecture=None, config=None):
    """``(architecture, builder config)`` of ``model``: its own ``get_config()`` (a
    deeplab_keras model knows them); explicit arguments win (older call sites pass them)."""
    if architecture is None or config is None:
        own = model.get_config() if getattr(model, "architecture", None) else {}
        if not own.get("architecture"):
            raise ValueError(f"model {model.name!r} does not record its architecture; build it "
                             "with deeplab_keras or pass architecture= and config=")
        architecture = architecture or own["architecture"]
        config = own["config"] if config is None else config
    return architecture, dict(config)


def tf_keras_twin(model, architecture=None, config=None, input_size=None):
    """The tf_keras version of ``model`` at a fixed input size, built from ``model.get_config()``
    (or ``build_model(architecture, **config)``), with ``model``'s weights copied by layer name."""
    from deeplab_keras.builders import build_model
    tf_keras, _ = _modules()
    if input_size is None:
        raise ValueError("tf_keras_twin needs input_size=(height, width)")
    architecture, config = twin_spec(model, architecture, config)
    config.pop("name", None)
    config.pop("weights", None)
    config["input_shape"] = (int(input_size[0]), int(input_size[1]), 3)
    with frontend.use(tf_keras):
        twin = build_model(architecture, **config)
    source = {layer.name: layer for layer in model.layers}
    missing = []
    for layer in twin.layers:
        if not layer.weights:
            continue
        if layer.name not in source:
            missing.append(layer.name)
            continue
        layer.set_weights(source[layer.name].get_weights())
    if missing:
        raise ValueError(f"tf_keras twin has layers missing from {model.name!r}: {missing[:5]}")
    return twin


def max_abs_diff(model, twin, images):
    """Largest |logit difference| between the Keras 3 model and its tf_keras twin."""
    worst = 0.0
    for img in images:
        x = np.asarray(img, np.float32)[None]
        a = np.asarray(model(x, training=False))
        b = np.asarray(twin(x, training=False))
        worst = max(worst, float(np.abs(a - b).max()))
    return worst


def _config_classes(tfmot):
    base = tfmot.quantization.keras.QuantizeConfig
    quantizers = tfmot.quantization.keras.quantizers

    class OutputQuantizeConfig(base):
        """For weightless layers tfmot has no scheme for. ``quantize_output=False`` (our
        ``Resize``): nothing is quantized and the output keeps the input's quantization, as
        TFLite's int8 RESIZE_BILINEAR requires. ``True`` (``Rescaling``, the in-graph input
        normalisation): an 8-bit moving-average fake-quant on the output."""

        def __init__(self, quantize_output=True):
            self.quantize_output = bool(quantize_output)

        def get_weights_and_quantizers(self, layer):
            return []

        def get_activations_and_quantizers(self, layer):
            return []

        def set_quantize_weights(self, layer, quantize_weights):
            pass

        def set_quantize_activations(self, layer, quantize_activations):
            pass

        def get_output_quantizers(self, layer):
            if not self.quantize_output:
                return []
            return [quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False,
                                                      symmetric=False, narrow_range=False)]

        def get_config(self):
            return {"quantize_output": self.quantize_output}

    return OutputQuantizeConfig


def quantize(twin, depthwise_per_channel=True):
    """tfmot's default 8-bit QAT model of a tf_keras DeepLab (see module docstring).

    Returns ``(qat_model, custom)``: ``custom`` maps the layer classes tfmot does not support
    to the config they got."""
    tf_keras, tfmot = _modules()
    qk = tfmot.quantization.keras
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry as registry_lib)
    versions.guard("tensorflow-model-optimization",
                   "the QAT annotation with tfmot's internal 8-bit registry (export/qat.py quantize)",
                   registry_lib, ("Default8BitQuantizeRegistry", "Default8BitQuantizeConfig"))
    registry = registry_lib.Default8BitQuantizeRegistry()
    Resize = resize_class(tf_keras)
    OutputQuantizeConfig = _config_classes(tfmot)
    custom = {}

    depthwise = {l.name for l in twin.layers if isinstance(l, tf_keras.layers.DepthwiseConv2D)}

    def annotate(layer):
        if isinstance(layer, tf_keras.layers.InputLayer):
            return layer
        if (depthwise_per_channel and isinstance(layer, tf_keras.layers.BatchNormalization)
                and layer.name[:-len("_BatchNorm")] in depthwise):
            # tfmot's depthwise + BN patterns need its default depthwise config; this BN then
            # only passes through (the following ReLU or the converter quantizes its output)
            return qk.quantize_annotate_layer(layer, quantize_config=OutputQuantizeConfig(False))
        if isinstance(layer, tf_keras.layers.DepthwiseConv2D) and depthwise_per_channel:
            # tfmot fake-quantizes depthwise kernels per tensor (its per-axis quantizer works on
            # the last axis, the depth multiplier): MobileNet's depthwise layers lose much there.
            # Leave their weights to the converter (per-channel, like PTQ); keep activations.
            custom["DepthwiseConv2D"] = "activations only (weights per-channel by the converter)"
            return qk.quantize_annotate_layer(layer, quantize_config=registry_lib.Default8BitQuantizeConfig(
                [], ["activation"], False))
        if registry.supports(layer) or layer.weights:
            # layers with weights (BatchNorm included) go through tfmot's own transforms
            # (conv + BN folding); quantize_apply raises if one cannot be quantized
            return qk.quantize_annotate_layer(layer)
        keep = isinstance(layer, Resize)
        custom[type(layer).__name__] = ("no quantizer (keeps input scale)" if keep
                                        else "8-bit output fake-quant")
        return qk.quantize_annotate_layer(layer, quantize_config=OutputQuantizeConfig(not keep))

    annotated = tf_keras.models.clone_model(twin, clone_function=annotate)
    annotated.set_weights(twin.get_weights())
    with qk.quantize_scope({"Resize": Resize, "OutputQuantizeConfig": OutputQuantizeConfig,
                            "Default8BitQuantizeConfig": registry_lib.Default8BitQuantizeConfig}):
        return qk.quantize_apply(annotated), custom


def wrapped_parts(twin, qat_model):
    """The twin's ``parts`` with each layer name replaced by the name of the layer that
    replaced it in ``qat_model`` (tfmot wraps layers as ``QuantizeWrapper``s named ``quant_<name>``)."""
    names = {layer.name for layer in qat_model.layers}

    def rename(name):
        if name is None or name in names:
            return name
        if "quant_" + name in names:
            return "quant_" + name
        raise ValueError(f"QAT model has no layer for {name!r} (tfmot naming changed?)")

    recorded = dict(twin.parts)
    return {"upsample": rename(recorded["upsample"]),
            "probabilities": rename(recorded.get("probabilities")),
            "classifier": [rename(n) for n in recorded["classifier"]],
            "backbone": list(recorded["backbone"]),
            "backbone_features": dict(recorded["backbone_features"])}


def freeze_batchnorm(qat_model):
    """BatchNorm (wrapped or not) in inference mode with fixed statistics: fine-tuning batches
    are small, and the folded conv + BN of the TFLite file must match what QAT saw."""
    tf_keras, _ = _modules()
    for layer in qat_model.layers:
        if isinstance(getattr(layer, "layer", layer), tf_keras.layers.BatchNormalization):
            layer.trainable = False
    return qat_model


def calibrate_ranges(qat_model, images, batch_size=8):
    """Initialise the activation fake-quant ranges from real data.

    tfmot starts every activation range at [-6, 6] and moves it by an EMA with decay 0.999, so
    a short fine-tuning leaves ranges that clip or waste levels. One forward pass in training
    mode with the EMA decay forced to 0 sets each range to the observed min/max of a batch of
    calibration images (weights' ranges are set from the weights in the same pass); BatchNorm
    must be frozen first (:func:`freeze_batchnorm`)."""
    from tensorflow_model_optimization.python.core.quantization.keras import quant_ops
    versions.guard("tensorflow-model-optimization",
                   "the activation range initialisation (export/qat.py calibrate_ranges)",
                   quant_ops, ("MovingAvgQuantize",))
    original = quant_ops.MovingAvgQuantize

    def last_value(*args, **kwargs):
        kwargs["ema_decay"] = 0.0
        return original(*args, **kwargs)

    quant_ops.MovingAvgQuantize = last_value
    try:
        x = np.stack([np.asarray(i, np.float32) for i in images[:batch_size]])
        qat_model(x, training=True)
    finally:
        quant_ops.MovingAvgQuantize = original
    return qat_model


def fine_tune(qat_model, data, steps, learning_rate=1e-5, teacher=None, ignore_label=None,
              batch_size=2):
    """Train ``qat_model`` for ``steps`` steps with fake quantization.

    ``data``: a tf.data pipeline of (image, label) batches, or a list/array of images (targets
    are then ``teacher``'s argmax - self-distillation from the float model)."""
    tf_keras, _ = _modules()
    if steps < 1:
        return qat_model
    if isinstance(data, tf.data.Dataset):
        ds = data
    else:
        if teacher is None:
            raise ValueError("fine-tuning on images without labels needs the float model as teacher")
        images = np.stack([np.asarray(i, np.float32) for i in data])
        labels = np.concatenate([np.argmax(np.asarray(teacher(images[i:i + 1], training=False)), -1)
                                 for i in range(len(images))]).astype(np.int32)
        ds = tf.data.Dataset.from_tensor_slices((images, labels)).shuffle(len(images), seed=0)
        ds = ds.batch(batch_size, drop_remainder=False)
    ds = ds.repeat()
    loss = tf_keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, ignore_class=ignore_label)
    qat_model.compile(optimizer=tf_keras.optimizers.Adam(learning_rate), loss=loss)
    qat_model.fit(ds, steps_per_epoch=int(steps), epochs=1, verbose=0)
    return qat_model


def quantization_aware_model(model, architecture=None, config=None, input_size=None, data=None, steps=0,
                             learning_rate=1e-5, check_images=None, ignore_label=None,
                             batch_size=2):
    """Twin + weight transfer (verified) + tfmot QAT (BatchNorm frozen, activation ranges
    initialised on images: ``data`` when it is a list of images, else ``check_images``) +
    ``steps`` of fine-tuning.

    Returns ``(qat_model, info)`` with info = {"transfer_max_abs_diff", "steps", ...}."""
    require_tensorflow("quantization-aware training (tfmot)")
    from deeplab_keras.export import calibration
    twin = tf_keras_twin(model, architecture, config, input_size)
    if check_images is None:
        check_images = calibration.synthetic_images(tuple(input_size), 2, seed=3)
    diff = max_abs_diff(model, twin, check_images)
    ref_scale = max(1.0, float(np.abs(np.asarray(model(np.asarray(check_images[0], np.float32)[None]))).max()))
    if diff > 1e-3 * ref_scale:
        raise ValueError(f"tf_keras twin differs from the Keras 3 model by {diff:.3g} (logits)")
    qat_model, custom = quantize(twin)
    qat_model.parts = wrapped_parts(twin, qat_model)
    freeze_batchnorm(qat_model)
    if isinstance(data, tf.data.Dataset):
        first = next(iter(data))
        calib = list(np.asarray(first[0] if isinstance(first, (tuple, list)) else first))
    else:
        calib = check_images if data is None else data
    calibrate_ranges(qat_model, calib)
    if steps:
        fine_tune(qat_model, data if data is not None else check_images, steps, learning_rate,
                  teacher=model, ignore_label=ignore_label, batch_size=batch_size)
    return qat_model, {"transfer_max_abs_diff": diff, "steps": int(steps),
                       "learning_rate": learning_rate, "custom_quantize_configs": custom,
                       "quantized_layers": sum(1 for l in qat_model.layers
                                               if type(l).__name__ == "QuantizeWrapperV2")}
