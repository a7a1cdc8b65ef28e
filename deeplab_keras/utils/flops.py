"""Parameters and multiply-adds of a built Keras functional model, from its layers' output shapes.

What is counted (one multiply-add = one multiply + one add, the convention of the DeepLab and
MobileNet papers; FLOPs are about twice this):
* ``Conv2D``: out_h * out_w * out_c * k_h * k_w * in_c / groups per image. Dilation does not change
  the count (the kernel still has k_h * k_w taps); padded positions count like any other.
* ``DepthwiseConv2D``: out_h * out_w * out_c * k_h * k_w (out_c = in_c * depth multiplier).
* ``SeparableConv2D``: its depthwise part + a 1x1 pointwise conv.
* ``Dense``: in_features * units per output position.
Biases, BatchNorm, activations, pooling, additions, concatenations and resizes are not counted:
they are a fraction of a percent of a DeepLab model. Parameters are ``model.count_params()``
(every weight, BatchNorm moving statistics included) and, separately, the weights of the counted
layers. Nested functional models (DeepLab v2's multi-scale core) are counted once per call, at the
shape of that call. The model must have a static input size (e.g. ``input_shape=(513, 513, 3)``).
"""
import dataclasses

import keras

COUNTED = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense")


@dataclasses.dataclass
class Count:
    params: int  # every weight of the model (count_params)
    counted_params: int  # weights of the counted (conv/dense) layers
    mult_adds: int  # multiply-adds for one image
    per_layer: dict  # layer name -> multiply-adds (summed over calls)

    def __str__(self):
        return f"{self.params / 1e6:.2f}M params, {self.mult_adds / 1e9:.2f}B multiply-adds"


def _prod(values):
    out = 1
    for v in values:
        out *= int(v)
    return out


def _static(shape, what):
    if any(d is None for d in shape[1:]):
        raise ValueError(f"{what} has a dynamic shape {tuple(shape)}: build the model with a "
                         "static input_shape, e.g. (513, 513, 3), to count multiply-adds")
    return shape


def layer_mult_adds(layer, input_shape, output_shape):
    """Multiply-adds of one call of ``layer`` for one image (0 for layers not counted)."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kh, kw = layer.kernel_size
        return _prod(output_shape[1:]) * kh * kw
    if isinstance(layer, keras.layers.SeparableConv2D):
        kh, kw = layer.kernel_size
        in_c = input_shape[-1]
        positions = _prod(output_shape[1:-1])
        return positions * in_c * layer.depth_multiplier * (kh * kw + output_shape[-1])
    if isinstance(layer, keras.layers.Conv2D):
        kh, kw = layer.kernel_size
        return _prod(output_shape[1:]) * kh * kw * input_shape[-1] // layer.groups
    if isinstance(layer, keras.layers.Dense):
        return _prod(output_shape[1:]) * input_shape[-1]
    return 0


def _is_functional(layer):
    return isinstance(layer, keras.Model) and hasattr(layer, "_nodes_by_depth")


def _count_graph(model, per_layer):
    total = 0
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            layer = node.operation
            outputs = node.outputs
            if not node.input_tensors:
                continue
            in_shape = _static(node.input_tensors[0].shape, f"input of layer {layer.name!r}")
            out_shape = _static(outputs[0].shape, f"output of layer {layer.name!r}")
            if _is_functional(layer):
                # re-trace the nested model at this call's static shape, reusing its layers
                inp = keras.Input(batch_shape=tuple(in_shape))
                traced = keras.models.clone_model(layer, input_tensors=inp,
                                                  clone_function=lambda l: l)
                total += _count_graph(traced, per_layer)
                continue
            macs = layer_mult_adds(layer, in_shape, out_shape)
            if macs:
                per_layer[layer.name] = per_layer.get(layer.name, 0) + macs
                total += macs
    return total


def _counted_params(model):
    n = 0
    for layer in model._flatten_layers(include_self=False):
        if type(layer).__name__ in COUNTED or isinstance(
                layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.Dense)):
            n += sum(_prod(w.shape) for w in layer.weights)
    return n


def count(model):
    """:class:`Count` of a built Keras 3 functional model with a static input size."""
    if not _is_functional(model):
        raise ValueError("count() needs a Keras functional model (e.g. from deeplab_keras builders)")
    per_layer = {}
    macs = _count_graph(model, per_layer)
    return Count(params=int(model.count_params()), counted_params=_counted_params(model),
                 mult_adds=int(macs), per_layer=per_layer)
