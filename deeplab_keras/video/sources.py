"""What a :class:`~deeplab_keras.video.VideoSegmenter` runs: a Keras model (compiled, through
Keras' own ``predict_on_batch``) or an exported artifact (``.tflite`` with LiteRT / XNNPACK,
``.onnx`` with onnxruntime, through :class:`deeplab_keras.export.runtime.Artifact`).

Each source maps one RGB uint8 frame to its raw output at the source's own resolution: scores
``(h, w, C)`` float32 (logits or probabilities) or a class map ``(h, w)``. Its contract (input
size, classes, labels, output kind) comes from the model or from the artifact file itself (our
embedded metadata, else its export report beside it, else the output's rank), never guessed.
"""
import json
import os

import numpy as np

from deeplab_keras.layers.resize import resize

ARTIFACT_EXTENSIONS = (".tflite", ".onnx")


class KerasSource:
    """A Keras model run compiled: ``model.predict_on_batch`` (Keras' traced predict function, on
    any backend), one trace per input size. Frames are resized to the model's input contract
    (its preset's ``input_size``, else the frame's own size)."""

    kind = "keras"

    def __init__(self, model, input_size=None):
        from deeplab_keras.inference import input_contract

        self.model = model
        size, self.semantics = input_contract(model, input_size)
        fixed = tuple(model.input_shape[1:3])
        self.input_size = fixed if None not in fixed else size
        self.num_classes = int(model.output_shape[-1])
        self.labels = list(getattr(model, "labels", None) or []) or None
        self.palette = getattr(model, "palette", None)
        self.output = "scores"
        self.description = f"Keras model {model.name} (compiled predict_on_batch)"

    def __call__(self, frame):
        size = self.input_size or frame.shape[:2]
        x = resize(frame[None].astype(np.float32), size, self.semantics)
        y = self.model.predict_on_batch(x)
        if isinstance(y, (list, tuple)):
            y = y[0]
        return np.asarray(y, np.float32)[0]


def _artifact_report(path):
    """The export report of ``path`` (``deeplab-keras export --report-dir``) when it lies beside
    the file as ``<name>.json``, else None."""
    report = os.path.splitext(os.fspath(path))[0] + ".json"
    if not os.path.isfile(report):
        return None
    try:
        with open(report) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or os.path.basename(str(data.get("output", ""))) != \
            os.path.basename(os.fspath(path)):
        return None  # another file's report (or not a report)
    return data


class ArtifactSource:
    """An exported ``.tflite`` / ``.onnx`` file. Its input size and dtype come from the file,
    its output kind (``classes`` or scores) and labels from the metadata we embed at export
    (else the export report beside it, else the output's rank)."""

    kind = "artifact"

    def __init__(self, path, num_threads=None, labels=None, num_classes=None):
        from deeplab_keras.export.artifact_eval import output_mode
        from deeplab_keras.export.runtime import Artifact

        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"artifact not found: {path}")
        try:
            self.artifact = Artifact(path, num_threads=num_threads)
        except FileNotFoundError:
            raise
        except Exception as err:  # the runtimes raise ValueError / RuntimeError / their own
            raise ValueError(f"cannot load {path} as a {os.path.splitext(path)[1]} model: "
                             f"{str(err).strip().splitlines()[0] if str(err).strip() else err}") \
                from None
        self.path, self.format = path, self.artifact.format
        self.input_size = tuple(int(d) for d in self.artifact.input_shape[1:3])
        meta = _embedded_metadata(path, self.format) or {}
        report = _artifact_report(path) or {}
        mode = output_mode(path, self.format) or report.get("output_mode")
        file_labels = meta.get("labels")
        y = self.artifact(np.zeros(self.input_size + (3,), np.uint8))  # also checks it runs
        if mode is None:
            mode = "classes" if np.asarray(y).ndim == 3 else "logits"
        self.output = "classes" if mode == "classes" else "scores"
        count = None if self.output == "classes" else int(np.asarray(y).shape[-1])
        #: the scores' (h, w) (None for a class-map output)
        self.scores_size = None if self.output == "classes" else tuple(np.shape(y)[-3:-1])
        count = count or report.get("num_classes") or (len(file_labels) if file_labels else None)
        if file_labels and count and len(file_labels) != count:
            raise ValueError(f"{path}: its metadata names {len(file_labels)} labels for "
                             f"{count} output classes; re-export it")
        if labels is not None:
            if count is not None and len(labels) != count:
                raise ValueError(f"{path} has {count} classes but {len(labels)} labels were "
                                 "given; pass the labels it was exported with (or none: the "
                                 "file's own are used)")
            file_labels = list(labels)
        self.labels = list(file_labels) if file_labels else None
        count = count or (len(self.labels) if self.labels else None)
        if num_classes is not None and count is not None and int(num_classes) != count:
            raise ValueError(f"{path} has {count} classes, not {num_classes}")
        self.num_classes = count or (int(num_classes) if num_classes else None)
        self.palette = None
        self.semantics = "half_pixel"  # scores upsample as evaluate --artifact does
        self.num_threads = num_threads
        runtime = {"tflite": "LiteRT (XNNPACK)", "onnx": "onnxruntime CPU"}.get(self.format,
                                                                             self.format)
        self.description = (f"{os.path.basename(path)} ({runtime}, {num_threads or 'default'} "
                            f"threads, input {self.input_size[0]}x{self.input_size[1]} "
                            f"{self.artifact.input_dtype.name}, output {mode})")

    def __call__(self, frame):
        size = self.input_size
        x = resize(frame, size, self.semantics)
        y = np.asarray(self.artifact(x))
        if self.output == "classes":
            return y.reshape(size)
        return y.reshape(y.shape[-3:]).astype(np.float32, copy=False)

    def classes(self, frame):
        """The class map at the output's resolution without dequantizing: the argmax of the raw
        output (quantized scores with a positive scale keep their order), or the class map."""
        y, quantization = self.artifact.run_raw(resize(frame, self.input_size, self.semantics))
        y = np.asarray(y)
        if self.output == "classes":
            return y.reshape(self.input_size)
        if quantization is not None and not quantization[0] > 0:
            y = self.artifact.dequantize(y, quantization)
        return y.reshape(y.shape[-3:]).argmax(-1)


def _embedded_metadata(path, fmt):
    from deeplab_keras.export import convert
    try:
        return (convert.read_tflite_metadata(path) if fmt == "tflite" else
                convert.read_onnx_metadata(path) if fmt == "onnx" else None)
    except Exception:  # a foreign file without our metadata
        return None


def open_source(source, *, num_threads=None, input_size=None, labels=None):
    """A source for ``source``: a Keras model, a preset name, a ``.keras`` file, a ``.tflite`` /
    ``.onnx`` artifact, or a source object itself (ValueError naming what is wrong otherwise)."""
    if isinstance(source, (KerasSource, ArtifactSource)):
        return source
    if hasattr(source, "predict_on_batch"):
        return KerasSource(source, input_size)
    if not isinstance(source, (str, os.PathLike)):
        raise ValueError(f"source must be a Keras model, a preset name, a .keras file or a "
                         f".tflite / .onnx file, got {type(source).__name__}")
    text = os.fspath(source)
    ext = os.path.splitext(text)[1].lower()
    if ext in ARTIFACT_EXTENSIONS:
        if input_size is not None:
            raise ValueError(f"{text} has a fixed input size; input_size applies to Keras "
                             "models only")
        return ArtifactSource(text, num_threads, labels)
    if ext == ".keras":
        import keras
        if not os.path.isfile(text):
            raise FileNotFoundError(f"model file not found: {text}")
        return KerasSource(keras.saving.load_model(text, compile=False), input_size)
    if os.path.exists(text):
        raise ValueError(f"{text}: not a model file (expected .keras, .tflite or .onnx)")
    from deeplab_keras.hub.weights import from_preset
    return KerasSource(from_preset(text), input_size)
