"""Bilinear (or nearest) resizing with selectable pixel-centre semantics, on every Keras backend.

Three semantics (names as in a preset's ``preprocessing.resize``):

* ``"half_pixel"`` (the default; ``align_corners=False``): pixel centres at +0.5, what
  ``tf.image.resize`` and PyTorch ``align_corners=False`` do.
* ``"align_corners"`` (``align_corners=True``): TF1 ``tf.image.resize_bilinear(...,
  align_corners=True)``, which Google's DeepLab checkpoints and TFLite files use.
* ``"asymmetric"`` (``align_corners="asymmetric"``): TF1's legacy default, neither corners nor
  half-pixel centres (source = destination * in/out); TFLite files converted from TF1 graphs with
  ``align_corners=False`` use it (MLPerf's DeepLab).

:func:`resize` is the one resize of the package: the :class:`Resize` layer inside every model and
the image / logits resizing of inference and evaluation call it. On the TensorFlow backend it runs
``tf.raw_ops.ResizeBilinear`` / ``ResizeNearestNeighbor`` (fast, dynamic shapes, lowers to TFLite
``RESIZE_BILINEAR`` and ONNX ``Resize`` with the matching coordinate transform). On JAX and PyTorch
it runs the backend's own kernel where that has the semantics (:func:`resize_native`:
``torch.nn.functional.interpolate``, ``jax.image.scale_and_translate``), else :func:`resize_ops`,
two gathers and two lerps in ``keras.ops`` with TensorFlow's source coordinates computed in float32
exactly as TensorFlow's kernels do. tests/test_resize.py and tests/test_backends.py check every
path equal to TensorFlow's kernels.
"""
import numpy as np

import keras
from keras import ops

from deeplab_keras import frontend

_CLASSES = {}
#: resize semantics, by the name a preset's ``preprocessing.resize`` uses
SEMANTICS = ("half_pixel", "align_corners", "asymmetric")
METHODS = ("bilinear", "nearest")


def semantics_of(align_corners):
    """A builder's ``align_corners`` argument (True, False or "asymmetric") -> its semantics name."""
    if align_corners == "asymmetric":
        return "asymmetric"
    if isinstance(align_corners, (bool, np.bool_)):
        return "align_corners" if align_corners else "half_pixel"
    raise ValueError(f"align_corners must be True, False or 'asymmetric', got {align_corners!r}")


def align_corners_of(semantics):
    """The inverse of :func:`semantics_of`: a semantics name -> the builders' ``align_corners``."""
    _check_semantics(semantics)
    return {"half_pixel": False, "align_corners": True, "asymmetric": "asymmetric"}[semantics]


def _check_semantics(semantics):
    if semantics not in SEMANTICS:
        raise ValueError(f"resize semantics must be one of {SEMANTICS}, got {semantics!r}")


def scaled_size(size, scale):
    """DeepLab's ``scale_dimension``: (size - 1) * scale + 1, truncated, for static or dynamic sizes."""
    if isinstance(size, (int, np.integer)):
        return int((int(size) - 1) * scale + 1)
    return ops.cast((ops.cast(size, "float32") - 1.0) * scale + 1.0, "int32")


def aligned_scaled_size(size, scale, stride):
    """``size * scale`` rounded to the nearest size with ``size``'s remainder modulo ``stride``
    (a model's output stride), so the scaled image meets the network's stride grid as the
    unscaled one does (a DeepLab trained at 360x480 scores 5.6 mIoU less at 361x481 on CamVid
    val): 513 at 0.75 -> 385, as DeepLab's ``scale_dimension``; 360 at 1.25 -> 456 (not 449)."""
    size, stride = int(size), int(stride)
    if stride < 1:
        raise ValueError(f"stride must be a positive int, got {stride!r}")
    rest = size % stride
    return max(1, int(np.floor((size - rest) * float(scale) / stride + 0.5))) * stride + rest


def _scale(in_size, out_size, semantics):
    """TensorFlow's ``CalculateResizeScale`` in float32."""
    if semantics == "align_corners" and out_size > 1:
        return np.float32(in_size - 1) / np.float32(out_size - 1)
    return np.float32(in_size) / np.float32(out_size)


def source_indices(in_size, out_size, semantics, method="bilinear"):
    """Where each of ``out_size`` output pixels samples the ``in_size`` input pixels, as
    TensorFlow's kernels compute it (float32): bilinear -> (lower, upper, lerp), nearest -> index."""
    _check_semantics(semantics)
    scale = _scale(in_size, out_size, semantics)
    i = np.arange(out_size, dtype=np.float32)
    if method == "nearest":
        src = (i + np.float32(0.5)) * scale if semantics == "half_pixel" else i * scale
        if semantics == "align_corners":  # roundf: half away from zero (src >= 0)
            idx = np.floor(src)
            idx += (src - idx) >= np.float32(0.5)
        else:
            idx = np.floor(src)
        return np.clip(idx.astype(np.int64), 0, in_size - 1).astype("int32")
    if semantics == "half_pixel":
        src = (i + np.float32(0.5)) * scale - np.float32(0.5)
    else:
        src = i * scale
    floor = np.floor(src)
    lower = np.maximum(floor, 0).astype("int32")
    upper = np.minimum(np.ceil(src), in_size - 1).astype("int32")
    return lower, upper, (src - floor).astype("float32")


def resize_ops(x, size, semantics="half_pixel", method="bilinear"):
    """:func:`resize` in ``keras.ops`` (any backend) for a batch ``x`` (N, H, W, C) with a static
    spatial size: gathers along width then height, TensorFlow's lerp order
    (top = tl + (tr - tl) * dx; out = top + (bottom - top) * dy)."""
    in_h, in_w = (int(s) for s in ops.shape(x)[1:3])
    out_h, out_w = (int(s) for s in size)
    if method == "nearest":
        x = ops.take(x, source_indices(in_w, out_w, semantics, "nearest"), axis=2)
        return ops.take(x, source_indices(in_h, out_h, semantics, "nearest"), axis=1)
    dtype = x.dtype if "float" in str(x.dtype) else "float32"
    x = ops.cast(x, "float32")
    lo, hi, lerp = source_indices(in_w, out_w, semantics)
    left = ops.take(x, lo, axis=2)
    x = left + (ops.take(x, hi, axis=2) - left) * ops.reshape(ops.convert_to_tensor(lerp), (1, 1, -1, 1))
    lo, hi, lerp = source_indices(in_h, out_h, semantics)
    top = ops.take(x, lo, axis=1)
    x = top + (ops.take(x, hi, axis=1) - top) * ops.reshape(ops.convert_to_tensor(lerp), (1, -1, 1, 1))
    return x if dtype == "float32" else ops.cast(x, dtype)


def resize_native(x, size, semantics="half_pixel", method="bilinear"):
    """The JAX / PyTorch backend's own resize kernel where it has these semantics (4-10x faster
    than :func:`resize_ops` on CPU), else None; same contract as :func:`resize_ops`."""
    backend = keras.backend.backend()
    in_h, in_w = (int(s) for s in ops.shape(x)[1:3])
    out = tuple(int(s) for s in size)
    floating = "float" in str(x.dtype)
    if backend == "torch" and floating:
        import torch.nn.functional as F

        if method == "bilinear" and semantics != "asymmetric":
            mode, options = "bilinear", {"align_corners": semantics == "align_corners"}
        elif method == "nearest" and semantics != "align_corners":
            mode, options = ("nearest-exact" if semantics == "half_pixel" else "nearest"), {}
        else:
            return None
        y = F.interpolate(ops.cast(x, "float32").permute(0, 3, 1, 2), size=out, mode=mode, **options)
        return ops.cast(y.permute(0, 2, 3, 1), x.dtype if method == "nearest" else "float32")
    if backend == "jax" and method == "bilinear" and min(in_h, in_w, *out) > 1:
        import jax

        shape = (x.shape[0],) + out + (x.shape[3],)
        x = ops.cast(x, "float32")
        if semantics == "half_pixel":
            return jax.image.resize(x, shape, "linear", antialias=False)
        if semantics == "align_corners":  # sample o * (in - 1) / (out - 1)
            scale = jax.numpy.array([(out[0] - 1) / (in_h - 1), (out[1] - 1) / (in_w - 1)], "float32")
            return jax.image.scale_and_translate(x, shape, (1, 2), scale, 0.5 - 0.5 * scale,
                                                 "linear", antialias=False)
    return None


def resize_tf(x, size, semantics="half_pixel", method="bilinear"):
    """:func:`resize` with TensorFlow's kernels (static or dynamic ``size``); float32 for bilinear,
    the input dtype for nearest, as ``tf.raw_ops`` returns."""
    import tensorflow as tf

    op = tf.raw_ops.ResizeNearestNeighbor if method == "nearest" else tf.raw_ops.ResizeBilinear
    return op(images=x, size=tf.convert_to_tensor(size, dtype=tf.int32),
              align_corners=semantics == "align_corners", half_pixel_centers=semantics == "half_pixel")


def _use_tf():
    return keras.backend.backend() == "tensorflow"


def _resize_other(x, size, semantics, method):
    y = resize_native(x, size, semantics, method)
    return resize_ops(x, size, semantics, method) if y is None else y


def resize(x, size, semantics="half_pixel", method="bilinear"):
    """THE resize of deeplab_keras: ``x`` (H, W, C) or (N, H, W, C), a NumPy array or a tensor of
    the Keras backend, to ``size`` = (height, width) with the given ``semantics`` (one of
    :data:`SEMANTICS`; a model's own is ``dk.resize_semantics(model)``) and ``method``
    ("bilinear": float32 out, or "nearest": dtype kept). NumPy in -> NumPy out; a same-size resize
    returns ``x`` unchanged."""
    _check_semantics(semantics)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size must be (height, width) with positive values, got {size}")
    shape = tuple(x.shape)
    if len(shape) not in (3, 4):
        raise ValueError(f"resize takes (H, W, C) or (N, H, W, C), got shape {shape}")
    single, numpy_in = len(shape) == 3, isinstance(x, np.ndarray)
    if tuple(shape[-3:-1]) == size:
        return x
    y = x[None] if single else x
    y = resize_tf(y, size, semantics, method) if _use_tf() else _resize_other(
        ops.convert_to_tensor(y), size, semantics, method)
    y = y[0] if single else y
    return ops.convert_to_numpy(y) if numpy_in else y


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

        @property
        def semantics(self):
            """The layer's resize semantics name (see :data:`SEMANTICS`)."""
            if self.align_corners:
                return "align_corners"
            return "half_pixel" if self.half_pixel_centers else "asymmetric"

        def _target(self, x, ref):
            """The output (height, width): Python ints when static (always on JAX / PyTorch),
            else a TensorFlow size tensor (TensorFlow graphs of unknown input size)."""
            if ref is not None:
                static = tuple(ref.shape[1:3])
            elif self.size is not None:
                return self.size
            elif self.scale is None:
                raise ValueError("Resize needs a reference tensor, `size` or `scale`.")
            else:
                static = tuple(x.shape[1:3])
            if None not in static:
                static = tuple(int(s) for s in static)
                return static if ref is not None else tuple(scaled_size(s, self.scale) for s in static)
            import tensorflow as tf  # unknown sizes exist only in TensorFlow graphs

            dyn = tf.shape(ref if ref is not None else x)[1:3]
            return dyn if ref is not None else scaled_size(dyn, self.scale)

        def call(self, inputs):
            ref = None
            if isinstance(inputs, (list, tuple)):
                if len(inputs) != 2:
                    raise ValueError("Resize takes x or [x, reference].")
                inputs, ref = inputs
            x = inputs
            target = self._target(x, ref)
            if isinstance(target, tuple) and tuple(x.shape[1:3]) == target:
                return x  # identity resize: keep it out of the graph
            if keras_module is not keras or _use_tf():
                y = resize_tf(x, target, self.semantics, self.interpolation)
            else:
                y = _resize_other(x, target, self.semantics, self.interpolation)
            return ops.cast(y, x.dtype) if keras_module is keras else _tf_cast(y, x.dtype)

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


def _tf_cast(y, dtype):
    import tensorflow as tf

    return tf.cast(y, dtype)


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
