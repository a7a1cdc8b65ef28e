"""The one place runtime sessions are opened: an exported file (``.tflite`` with ai-edge-litert,
``.onnx`` with onnxruntime, a SavedModel directory with TensorFlow) run on 0-255 RGB images,
whatever its input dtype, layout (NHWC or NCHW) or shape (fixed, or dynamic height and width).

Everything that runs a file goes through :class:`Artifact`: the segmenter layer
(:mod:`deeplab_keras.inference.source`), export's parity gate and report, and the TFLite
importer's layer-by-layer comparison (``preserve_all_tensors``). One session is not re-entrant
(LiteRT's interpreter keeps references into its buffers), so each call holds the artifact's lock:
one ``Artifact`` may be shared by threads, which then take turns.
"""
import os
import threading
import warnings

import numpy as np

#: the runtime each format runs in, as reports and descriptions name it
RUNTIMES = {"tflite": "LiteRT (ai_edge_litert, XNNPACK)", "onnx": "onnxruntime CPU",
            "saved_model": "TensorFlow"}

#: onnxruntime tensor types -> NumPy dtype names
ONNX_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
              "tensor(uint8)": "uint8", "tensor(int8)": "int8", "tensor(int16)": "int16",
              "tensor(int32)": "int32", "tensor(int64)": "int64", "tensor(bool)": "bool"}


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


#: key of our JSON entry: the TFLite ``Model.metadata`` table, ONNX ``metadata_props``, and
#: ``assets.extra/deeplab_keras.json`` in a SavedModel
METADATA_NAME = "deeplab_keras"


def read_tflite_metadata(path):
    """Our JSON metadata from a ``.tflite`` file, or None."""
    import json

    from tensorflow.lite.tools import flatbuffer_utils
    model = flatbuffer_utils.read_model(os.fspath(path))
    for entry in model.metadata or []:
        name = entry.name.decode() if isinstance(entry.name, bytes) else entry.name
        if name == METADATA_NAME:
            return json.loads(bytes(model.buffers[entry.buffer].data).decode("utf-8"))
    return None


def read_onnx_metadata(path):
    """Our JSON metadata from an ``.onnx`` file, or None."""
    import json

    import onnx
    model = onnx.load(os.fspath(path), load_external_data=False)
    for prop in model.metadata_props:
        if prop.key == METADATA_NAME:
            return json.loads(prop.value)
    return None


def read_metadata(path):
    """Our metadata of an exported file (any format), or None: a foreign file, or one whose
    metadata cannot be parsed (it is then run as the runtime sees it)."""
    import json

    try:
        fmt = artifact_format(path)
        if fmt == "tflite":
            meta = read_tflite_metadata(path)
        elif fmt == "onnx":
            meta = read_onnx_metadata(path)
        else:
            extra = os.path.join(os.fspath(path), "assets.extra", METADATA_NAME + ".json")
            meta = None
            if os.path.isfile(extra):
                with open(extra) as f:
                    meta = json.load(f)
    except Exception:  # a foreign or damaged file: no metadata of ours
        return None
    return meta if isinstance(meta, dict) else None


def first_line(err):
    """``Type: first line`` of an exception's message (runtimes raise multi-line C++ dumps)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[0] if lines else ''}"[:300]


def _dim(d):
    """A static dimension as int, a dynamic one (-1, a symbolic name, None) as None."""
    return int(d) if isinstance(d, (int, np.integer)) and int(d) >= 0 else None


class Artifact:
    """``Artifact(path, num_threads)(image)`` -> float/int numpy output of the first output.

    ``image`` is (H, W, 3) or (1, H, W, 3) RGB 0-255. A uint8 input gets the raw pixels (the
    convention of our int8 files, whose uint8 input has scale 1 / zero point 0, and of Google's
    quantized DeepLab, whose input quantization folds the normalisation); an int8 input gets
    ``round(x / scale) + zero_point`` (x - 128 for ours). Quantized outputs are dequantized.

    ``input_shape`` is the file's own, NHWC or NCHW as ``layout`` says, with None for a dynamic
    dimension; ``input_size`` is ``(height, width)`` (None where dynamic: such a file runs at
    the size it is given). ``output_shape`` likewise (from the file's signature), of the first
    output; ``output_names`` names every output in the file's order (a class-map export of ours
    has a second one, its low-resolution logits: ``run_raw(image, output=1)``).
    """

    def __init__(self, path, num_threads=None, preserve_all_tensors=False):
        if not os.path.exists(path):
            raise FileNotFoundError(f"artifact not found: {path}")
        self.path = os.fspath(path)
        self.format = artifact_format(self.path)
        if num_threads is not None and (isinstance(num_threads, bool) or
                                        not isinstance(num_threads, (int, np.integer)) or
                                        num_threads < 1):
            raise ValueError(f"num_threads must be a positive integer or None, got {num_threads!r}")
        self.num_threads = None if num_threads is None else int(num_threads)
        self._lock = threading.RLock()
        self._bound = None  # the input shape a dynamic TFLite file is allocated for
        getattr(self, "_load_" + self.format)(preserve_all_tensors)
        shape = self.input_shape
        if len(shape) != 4:
            raise ValueError(f"{self.path}: input of rank {len(shape)} {list(shape)}; an image "
                             "model takes [1, H, W, 3] (or [1, 3, H, W])")
        if shape[-1] == 3:
            self.layout = "NHWC"
        elif shape[1] == 3:
            self.layout = "NCHW"
        else:
            raise ValueError(f"{self.path}: input {list(shape)} has no 3-channel axis (expected "
                             "[1, H, W, 3] or [1, 3, H, W] RGB)")
        self.input_size = tuple(shape[1:3] if self.layout == "NHWC" else shape[2:4])
        if None in self.input_size:
            self.input_size = None

    # -- loaders ---------------------------------------------------------------------------
    def _load_tflite(self, preserve):
        from ai_edge_litert.interpreter import Interpreter

        from deeplab_keras.utils.quiet import filtered_stderr
        options = {"experimental_preserve_all_tensors": True} if preserve else {}
        # LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate" on every load
        with filtered_stderr(), warnings.catch_warnings():
            # preserve_all_tensors is asked for on purpose (op-by-op comparisons): LiteRT's
            # "intended for debugging purposes only" warning tells the caller nothing new
            warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors",
                                    category=UserWarning)
            self._it = Interpreter(model_path=self.path, num_threads=self.num_threads, **options)
            self._it.allocate_tensors()
        self._in = self._it.get_input_details()[0]
        self._outs = self._it.get_output_details()
        self._out = self._outs[0]
        signature = self._in.get("shape_signature")
        if signature is None or not len(signature):
            signature = self._in["shape"]
        self.input_shape = tuple(_dim(d) for d in signature)
        out_sig = self._out.get("shape_signature")
        self.output_shape = tuple(_dim(d) for d in (out_sig if out_sig is not None and len(out_sig)
                                                    else self._out["shape"]))
        self.input_dtype = np.dtype(self._in["dtype"])
        self.input_quantization = tuple(self._in["quantization"])
        self.output_dtype = np.dtype(self._out["dtype"])
        self.input_name, self.output_name = self._in["name"], self._out["name"]
        self.output_names = tuple(d["name"] for d in self._outs)

    def _load_onnx(self, preserve):
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.log_severity_level = 3  # warnings about unused initializers are not the user's
        if self.num_threads:
            opts.intra_op_num_threads = int(self.num_threads)
            opts.inter_op_num_threads = 1
        self._sess = ort.InferenceSession(self.path, opts, providers=["CPUExecutionProvider"])
        inp, out = self._sess.get_inputs()[0], self._sess.get_outputs()[0]
        self._in_name = self.input_name = inp.name
        self.output_name = out.name
        self.output_names = tuple(o.name for o in self._sess.get_outputs())
        self.input_shape = tuple(_dim(d) for d in inp.shape)
        if self.input_shape and self.input_shape[0] is None:
            self.input_shape = (1,) + self.input_shape[1:]  # a dynamic batch runs one image
        self.output_shape = tuple(_dim(d) for d in out.shape)
        self.input_dtype = np.dtype(ONNX_TYPES.get(inp.type, "float32"))
        self.input_quantization = (0.0, 0)
        self.output_dtype = np.dtype(ONNX_TYPES[out.type]) if out.type in ONNX_TYPES else None
        self._types = (inp.type, out.type)

    def _load_saved_model(self, preserve):
        import tensorflow as tf
        self._sm = tf.saved_model.load(self.path)
        self._fn = self._sm.signatures["serving_default"]
        spec = self._fn.structured_input_signature[1]
        self._in_name, tspec = next(iter(spec.items()))
        self.input_name = self._in_name
        self.input_shape = tuple(_dim(d) if d is not None else None for d in tspec.shape)
        if self.input_shape and self.input_shape[0] is None:
            self.input_shape = (1,) + self.input_shape[1:]
        outputs = self._fn.structured_outputs
        names = list(outputs)
        primary = (read_metadata(self.path) or {}).get("output")
        if primary in outputs:  # a signature's outputs have no order: ours names its first
            names.remove(primary)
            names.insert(0, primary)
        out_name, out_spec = names[0], outputs[names[0]]
        self.output_name = out_name
        self.output_names = tuple(names)
        self.output_shape = tuple(_dim(d) if d is not None else None for d in out_spec.shape)
        self.input_dtype = np.dtype(tspec.dtype.as_numpy_dtype)
        self.input_quantization = (0.0, 0)
        self.output_dtype = np.dtype(out_spec.dtype.as_numpy_dtype)

    # -- the file's tensors --------------------------------------------------------------------
    def tensors(self):
        """``(input, output)`` descriptions read from the file: name, shape (-1 for a dynamic
        dimension), dtype and quantization ``{"scale", "zero_point"}`` or None."""
        def quant(details):
            scale, zero = details.get("quantization", (0.0, 0)) if details else (0.0, 0)
            return {"scale": float(scale), "zero_point": int(zero)} if scale else None

        shape = lambda s: [-1 if d is None else int(d) for d in s]  # noqa: E731
        inp = {"name": self.input_name, "shape": shape(self.input_shape),
               "dtype": self.input_dtype.name,
               "quantization": quant(getattr(self, "_in", None))}
        out = {"name": self.output_name, "shape": shape(self.output_shape),
               "dtype": self.output_dtype.name if self.output_dtype is not None else None,
               "quantization": quant(getattr(self, "_out", None))}
        return inp, out

    @property
    def interpreter(self):
        """The LiteRT interpreter of a ``.tflite`` file (for tensor-level comparisons)."""
        if self.format != "tflite":
            raise ValueError(f"{self.path} is not a .tflite file")
        return self._it

    # -- running ---------------------------------------------------------------------------
    def expected_shape(self, height, width):
        """The input shape this file is run with for an image of ``(height, width)``."""
        if self.layout == "NHWC":
            return (1, height, width, 3)
        return (1, 3, height, width)

    def prepare(self, image):
        # uint8 pixels for a uint8 input go in as they are (no float round trip)
        raw = isinstance(image, np.ndarray) and image.dtype == np.uint8 and \
            self.input_dtype == np.uint8
        x = image if raw else np.asarray(image, dtype=np.float32)
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or x.shape[0] != 1 or x.shape[-1] != 3:
            raise ValueError(f"{self.path}: expects one RGB image (H, W, 3), got shape "
                             f"{tuple(x.shape)}")
        h, w = int(x.shape[1]), int(x.shape[2])
        if self.input_size is not None and (h, w) != self.input_size:
            raise ValueError(f"{self.path}: expects a {self.input_size[0]}x{self.input_size[1]} "
                             f"image, got {h}x{w} (resize it first)")
        if self.layout == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        if raw:
            return np.ascontiguousarray(x)
        scale, zero = self.input_quantization
        if self.input_dtype.kind in "iu":
            if scale and self.input_dtype != np.uint8:
                x = np.round(x / scale) + zero
            info = np.iinfo(self.input_dtype)
            x = np.clip(x, info.min, info.max)
        return np.ascontiguousarray(x.astype(self.input_dtype))

    def _bind(self, x):
        """Set a prepared TFLite input, resizing a dynamic input tensor to its shape first."""
        if tuple(x.shape) != tuple(self._in["shape"]) or self._bound is None:
            if tuple(x.shape) != tuple(self._in["shape"]):
                self._it.resize_tensor_input(self._in["index"], list(x.shape), strict=True)
                self._it.allocate_tensors()
                self._in = self._it.get_input_details()[0]
                self._outs = self._it.get_output_details()
                self._out = self._outs[0]
            self._bound = tuple(x.shape)
        self._it.set_tensor(self._in["index"], x)

    def set_input(self, x):
        """Bind a prepared input (for timing loops); returns a no-arg callable running once."""
        if self.format == "tflite":
            with self._lock:
                self._bind(x)
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

    def run_raw(self, image, output=0):
        """``(output, quantization)``: the output (the first, or the one at index ``output``)
        as the runtime returns it, and ``(scale, zero_point)`` when it is a quantized integer
        tensor (None otherwise). An argmax over quantized scores needs no dequantization: with a
        positive scale the order is kept."""
        if not 0 <= output < len(self.output_names):
            raise ValueError(f"{self.path} has {len(self.output_names)} output(s), no output "
                             f"{output}")
        x = self.prepare(image)
        with self._lock:
            if self.format == "tflite":
                self._bind(x)
                self._it.invoke()
                details = self._outs[output]
                y = self._it.get_tensor(details["index"])  # a copy: safe after the lock
                scale, zero = details["quantization"]
                if scale and y.dtype.kind in "iu" and details["dtype"] in (np.int8, np.uint8,
                                                                           np.int16):
                    return y, (scale, zero)
                return y, None
            return self._call_other(x, output), None

    def _call_other(self, x, output=0):
        name = self.output_names[output]
        if self.format == "onnx":
            return self._sess.run([name], {self._in_name: x})[0]
        return self._fn(**{self._in_name: x})[name].numpy()

    def tflite_ops(self):
        """Op names of a .tflite artifact (for checks such as 'no ARG_MAX on the GPU path')."""
        if self.format != "tflite":
            return []
        return [op["op_name"] for op in self._it._get_ops_details()]

    def tflite_tensor_dtypes(self):
        if self.format != "tflite":
            return set()
        return {np.dtype(t["dtype"]).name for t in self._it.get_tensor_details()}
