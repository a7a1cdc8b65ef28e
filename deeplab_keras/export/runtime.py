"""Run an exported artifact (``.tflite`` with ai-edge-litert, ``.onnx`` with onnxruntime, a
SavedModel directory with TensorFlow) on 0-255 RGB images, whatever its input dtype."""
import os

import numpy as np


def artifact_format(path):
    path = os.fspath(path)
    if os.path.isdir(path):
        return "saved_model"
    ext = os.path.splitext(path)[1].lower()
    if ext == ".tflite":
        return "tflite"
    if ext == ".onnx":
        return "onnx"
    raise ValueError(f"{path}: unknown artifact type (expected .tflite, .onnx or a SavedModel directory)")


class Artifact:
    """``Artifact(path, num_threads)(image)`` -> float/int numpy output of the first output.

    ``image`` is (H, W, 3) or (1, H, W, 3) RGB 0-255. A uint8 input gets the raw pixels (the
    convention of our int8 files, whose uint8 input has scale 1 / zero point 0, and of Google's
    quantized DeepLab, whose input quantization folds the normalisation); an int8 input gets
    ``round(x / scale) + zero_point`` (x - 128 for ours). Quantized outputs are dequantized."""

    def __init__(self, path, num_threads=None):
        if not os.path.exists(path):
            raise FileNotFoundError(f"artifact not found: {path}")
        self.path = os.fspath(path)
        self.format = artifact_format(self.path)
        self.num_threads = num_threads
        getattr(self, "_load_" + self.format)()

    # -- loaders ---------------------------------------------------------------------------
    def _load_tflite(self):
        from ai_edge_litert.interpreter import Interpreter
        self._it = Interpreter(model_path=self.path, num_threads=self.num_threads)
        self._it.allocate_tensors()
        self._in = self._it.get_input_details()[0]
        self._out = self._it.get_output_details()[0]
        self.input_shape = tuple(int(d) for d in self._in["shape"])
        self.input_dtype = np.dtype(self._in["dtype"])
        self.input_quantization = tuple(self._in["quantization"])
        self.output_dtype = np.dtype(self._out["dtype"])

    def _load_onnx(self):
        import onnxruntime as ort
        opts = ort.SessionOptions()
        if self.num_threads:
            opts.intra_op_num_threads = int(self.num_threads)
            opts.inter_op_num_threads = 1
        self._sess = ort.InferenceSession(self.path, opts, providers=["CPUExecutionProvider"])
        inp = self._sess.get_inputs()[0]
        self._in_name = inp.name
        self.input_shape = tuple(d if isinstance(d, int) else 1 for d in inp.shape)
        self.input_dtype = np.dtype({"tensor(float)": "float32", "tensor(uint8)": "uint8",
                                     "tensor(int8)": "int8"}.get(inp.type, "float32"))
        self.input_quantization = (0.0, 0)
        self.output_dtype = None

    def _load_saved_model(self):
        import tensorflow as tf
        self._sm = tf.saved_model.load(self.path)
        self._fn = self._sm.signatures["serving_default"]
        spec = self._fn.structured_input_signature[1]
        self._in_name, tspec = next(iter(spec.items()))
        self.input_shape = tuple(int(d) for d in tspec.shape)
        self.input_dtype = np.dtype(tspec.dtype.as_numpy_dtype)
        self.input_quantization = (0.0, 0)
        self.output_dtype = None

    # -- running ---------------------------------------------------------------------------
    def prepare(self, image):
        # uint8 pixels for a uint8 input go in as they are (no float round trip)
        raw = isinstance(image, np.ndarray) and image.dtype == np.uint8 and \
            self.input_dtype == np.uint8
        x = image if raw else np.asarray(image, dtype=np.float32)
        if x.ndim == 3:
            x = x[None]
        if tuple(x.shape) != self.input_shape:
            raise ValueError(f"{self.path}: expects input {self.input_shape}, got {tuple(x.shape)}")
        if raw:
            return np.ascontiguousarray(x)
        scale, zero = self.input_quantization
        if self.input_dtype.kind in "iu":
            if scale and self.input_dtype != np.uint8:
                x = np.round(x / scale) + zero
            info = np.iinfo(self.input_dtype)
            x = np.clip(x, info.min, info.max)
        return x.astype(self.input_dtype)

    def set_input(self, x):
        """Bind a prepared input (for timing loops); returns a no-arg callable running once."""
        if self.format == "tflite":
            self._it.set_tensor(self._in["index"], x)
            return self._it.invoke
        if self.format == "onnx":
            feed = {self._in_name: x}
            return lambda: self._sess.run(None, feed)
        import tensorflow as tf
        t = tf.constant(x)
        return lambda: self._fn(**{self._in_name: t})

    def __call__(self, image):
        return self.dequantize(*self.run_raw(image))

    @staticmethod
    def dequantize(y, quantization):
        """``y`` as float32 scores when ``quantization`` is ``(scale, zero_point)``, else as it is."""
        if quantization is None:
            return y
        scale, zero = quantization
        return (y.astype(np.float32) - zero) * scale

    def run_raw(self, image):
        """``(output, quantization)``: the output as the runtime returns it, and ``(scale,
        zero_point)`` when it is a quantized integer tensor (None otherwise). An argmax over
        quantized scores needs no dequantization: with a positive scale the order is kept."""
        x = self.prepare(image)
        if self.format == "tflite":
            self._it.set_tensor(self._in["index"], x)
            self._it.invoke()
            y = self._it.get_tensor(self._out["index"])
            scale, zero = self._out["quantization"]
            if scale and y.dtype.kind in "iu" and self._out["dtype"] in (np.int8, np.uint8, np.int16):
                return y, (scale, zero)
            return y, None
        return self._call_other(x), None

    def _call_other(self, x):
        if self.format == "onnx":
            return self._sess.run(None, {self._in_name: x})[0]
        out = self._fn(**{self._in_name: x})
        return next(iter(out.values())).numpy()

    def tflite_ops(self):
        """Op names of a .tflite artifact (for checks such as 'no ARG_MAX on the GPU path')."""
        if self.format != "tflite":
            return []
        return [op["op_name"] for op in self._it._get_ops_details()]

    def tflite_tensor_dtypes(self):
        if self.format != "tflite":
            return set()
        return {np.dtype(t["dtype"]).name for t in self._it.get_tensor_details()}
