"""Bilinear (or nearest) resizing with selectable pixel-centre semantics.

``align_corners=True`` reproduces TF1 ``tf.image.resize_bilinear(..., align_corners=True)``, which
Google's DeepLab checkpoints and TFLite files use; the default is half-pixel centres (what
``tf.image.resize`` and PyTorch ``align_corners=False`` do). ``align_corners="asymmetric"`` is TF1's
legacy default (neither corners nor half-pixel centres: source = destination * in/out), which TFLite
files converted from TF1 graphs with ``align_corners=False`` use (MLPerf's DeepLab). The op lowers to TFLite
``RESIZE_BILINEAR`` and ONNX ``Resize`` with the matching coordinate transform.
"""
import tensorflow as tf

from deeplab_keras import frontend

_CLASSES = {}


def scaled_size(size, scale):
    """DeepLab's ``scale_dimension``: (size - 1) * scale + 1, truncated, for static or dynamic sizes."""
    if isinstance(size, int):
        return int((size - 1) * scale + 1)
    return tf.cast((tf.cast(size, tf.float32) - 1.0) * scale + 1.0, tf.int32)


def _make_resize_class(keras_module):
    base = keras_module.layers.Layer

    class Resize(base):
        """Resize ``x`` to the spatial size of ``reference`` (called on ``[x, reference]``),
        to a fixed ``size`` (h, w), or by ``scale``.

        Args:
            size: optional fixed (height, width).
            scale: optional scale factor (DeepLab's (n - 1) * scale + 1 rule).
            align_corners: True for corner-aligned sampling (TF1 / Google checkpoints), False for
                half-pixel centres, "asymmetric" for TF1's legacy mode (neither).
            half_pixel_centers: normally derived from ``align_corners``; stored in the config.
            interpolation: "bilinear" or "nearest".
        """

        def __init__(self, size=None, scale=None, align_corners=False, interpolation="bilinear",
                     half_pixel_centers=None, **kwargs):
            super().__init__(**kwargs)
            if isinstance(align_corners, str):
                if align_corners != "asymmetric":
                    raise ValueError(f"align_corners must be True, False or 'asymmetric', got "
                                     f"{align_corners!r}")
                align_corners, half_pixel_centers = False, False
            if interpolation not in ("bilinear", "nearest"):
                raise ValueError(f"interpolation must be 'bilinear' or 'nearest', got {interpolation!r}")
            if size is not None and scale is not None:
                raise ValueError("Give at most one of `size` and `scale`.")
            if size is not None:
                size = tuple(int(s) for s in size)
                if len(size) != 2 or min(size) < 1:
                    raise ValueError(f"size must be (height, width) with positive values, got {size}")
            if scale is not None and not float(scale) > 0:
                raise ValueError(f"scale must be positive, got {scale}")
            self.size = size
            self.scale = None if scale is None else float(scale)
            self.align_corners = bool(align_corners)
            self.half_pixel_centers = (not self.align_corners if half_pixel_centers is None
                                       else bool(half_pixel_centers))
            if self.align_corners and self.half_pixel_centers:
                raise ValueError("align_corners and half_pixel_centers cannot both be True")
            self.interpolation = interpolation

        def _target(self, inputs):
            if isinstance(inputs, (list, tuple)):
                if len(inputs) != 2:
                    raise ValueError("Resize takes x or [x, reference].")
                x, ref = inputs
                static = ref.shape[1:3]
                if static[0] is not None and static[1] is not None:
                    return x, (int(static[0]), int(static[1]))
                return x, tf.shape(ref)[1:3]
            x = inputs
            if self.size is not None:
                return x, self.size
            if self.scale is None:
                raise ValueError("Resize needs a reference tensor, `size` or `scale`.")
            static = x.shape[1:3]
            if static[0] is not None and static[1] is not None:
                return x, (scaled_size(int(static[0]), self.scale), scaled_size(int(static[1]), self.scale))
            dyn = tf.shape(x)[1:3]
            return x, scaled_size(dyn, self.scale)

        def call(self, inputs):
            x, target = self._target(inputs)
            x = tf.convert_to_tensor(x)
            static_in = tuple(x.shape[1:3])
            if isinstance(target, tuple) and static_in == target:
                return x  # identity resize: keep it out of the graph
            size = tf.convert_to_tensor(target, dtype=tf.int32)
            if self.interpolation == "nearest":
                y = tf.raw_ops.ResizeNearestNeighbor(
                    images=x, size=size, align_corners=self.align_corners,
                    half_pixel_centers=self.half_pixel_centers)
            else:
                y = tf.raw_ops.ResizeBilinear(
                    images=x, size=size, align_corners=self.align_corners,
                    half_pixel_centers=self.half_pixel_centers)
            return tf.cast(y, x.dtype)

        def compute_output_shape(self, input_shape):
            if isinstance(input_shape, (list, tuple)) and len(input_shape) == 2 and isinstance(
                    input_shape[0], (list, tuple)):
                x_shape, ref_shape = input_shape
                return (x_shape[0], ref_shape[1], ref_shape[2], x_shape[3])
            x_shape = input_shape
            if self.size is not None:
                return (x_shape[0], self.size[0], self.size[1], x_shape[3])
            h, w = x_shape[1], x_shape[2]
            if self.scale is not None:
                h = None if h is None else scaled_size(int(h), self.scale)
                w = None if w is None else scaled_size(int(w), self.scale)
            return (x_shape[0], h, w, x_shape[3])

        def get_config(self):
            config = super().get_config()
            config.update(size=self.size, scale=self.scale, align_corners=self.align_corners,
                          half_pixel_centers=self.half_pixel_centers, interpolation=self.interpolation)
            return config

    return Resize


def _register(keras_module, cls):
    if keras_module.__name__ == "keras":
        return keras_module.saving.register_keras_serializable(package="deeplab_keras")(cls)
    return keras_module.utils.register_keras_serializable(package="deeplab_keras")(cls)


def resize_class(keras_module=None):
    """The Resize layer class for a Keras module (Keras 3 by default, tf_keras for QAT)."""
    keras_module = keras_module or frontend.get()
    key = keras_module.__name__
    if key not in _CLASSES:
        _CLASSES[key] = _register(keras_module, _make_resize_class(keras_module))
    return _CLASSES[key]


Resize = resize_class()
