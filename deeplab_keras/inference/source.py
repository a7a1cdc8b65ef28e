"""The segmenter layer: anything a user holds, opened once, its contract read and checked once,
then one call from an image to its class map.

    seg = open_segmenter("camvid_int8.tflite")   # or a Keras model, a preset, a .keras, .onnx
    classes = seg.segment(image)                   # (H, W) class map at the image's size

A source is a Keras model (a model object, a preset name, a ``.keras`` file) or an exported file
(``.tflite`` with LiteRT, ``.onnx`` with onnxruntime, a SavedModel folder with TensorFlow; a
MediaPipe-target ``.tflite`` too). Its contract: the size it runs at (a fixed input size, a
preset's working size, or None: the image's own), its output (``"scores"`` (h, w, C) or a
``"classes"`` map), the class count, labels and palette, and the resize semantics. A file that is
not an image segmenter (a classifier, a detector) is refused here, in one line, for every path
that runs a model: ``dk.segment``, ``predict``, ``evaluate``, ``VideoSegmenter``, ``live``.

Every path reaches the runtime through :class:`Segmenter` (files through
:class:`deeplab_keras.inference.runtime.Artifact`), so they give the same class map, pixel for
pixel, for the same file and image.
"""
import os

import numpy as np

from deeplab_keras.inference.bounds import check_run_size
from deeplab_keras.inference.image import as_rgb8
from deeplab_keras.inference.predict import input_contract, predict_classes
from deeplab_keras.inference.runtime import RUNTIMES, Artifact, first_line, read_metadata
from deeplab_keras.utils import validate


def resize(*args, **kwargs):
    """:func:`deeplab_keras.layers.resize.resize`, imported on first use (it imports Keras:
    ``import deeplab_keras.inference`` stays light for the command line's start-up)."""
    from deeplab_keras.layers.resize import resize as _resize
    return _resize(*args, **kwargs)

#: extensions of exported files a segmenter opens (and SavedModel folders)
FILE_EXTENSIONS = (".tflite", ".onnx")
#: output modes our exports record (export --output-mode)
OUTPUT_MODES = ("classes", "logits", "probabilities", "lowres_logits")
#: the size a dynamic-shape file is probed at when it is opened
PROBE_SIZE = (64, 64)


def check_labels(labels, count=None, origin="labels"):
    """``labels`` as a list of class names (:func:`deeplab_keras.utils.validate.check_labels`:
    a string, a dict or entries that are not names are refused), or ValueError when they are
    not ``count`` names for ``origin``'s classes."""
    labels = validate.check_labels(labels, name="labels")
    if labels is not None and count is not None and len(labels) != count:
        raise ValueError(f"{origin} has {count} classes but {len(labels)} labels were given")
    return labels


def _image(image):
    """One RGB uint8 image (H, W, 3) from what a user holds, refusing an empty one."""
    image = as_rgb8(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {image.shape}")
    if min(image.shape[:2]) < 1:
        raise ValueError(f"empty image ({image.shape[0]}x{image.shape[1]} pixels): nothing to "
                         "segment")
    return image


class Segmenter:
    """What every source shares. Subclasses set the contract attributes and :meth:`__call__`."""

    kind = None
    #: (height, width) the source runs at, or None: each image's own size
    input_size = None
    semantics = "half_pixel"
    #: "scores" ((h, w, C) float32 from :meth:`__call__`) or "classes" ((h, w) map)
    output = "scores"
    num_classes = None
    labels = None
    palette = None
    ignore_label = None
    #: (h, w) of the scores when they do not depend on the image (a fixed-size file), else None
    scores_size = None
    #: a class-map file's low-resolution logits, when it has them (:meth:`FileSegmenter.lowres_scores`):
    #: ``{"index", "size", "resize"}``, else None
    video_output = None
    description = ""

    def run_size(self, image_size):
        """The (height, width) an image of ``image_size`` is run at."""
        return tuple(self.input_size) if self.input_size else tuple(image_size)

    def __call__(self, image):
        """Raw output for an RGB uint8 image (H, W, 3) at the source's own resolution."""
        raise NotImplementedError

    def raw_classes(self, image):
        """The class map at the output's resolution (the argmax of :meth:`__call__`)."""
        y = self(image)
        return y if self.output == "classes" else y.argmax(-1)

    def segment(self, image):
        """(H, W) class map of ``image`` at its own size: uint8, int32 beyond 256 classes.
        Scores are resized bilinearly (with the source's semantics) before the argmax, a
        class map by nearest neighbour."""
        image = _image(image)
        size = image.shape[:2]
        if self.scores_size == size:  # scores at the image's size: the argmax, no copies
            return self.check_classes(self.raw_classes(image))
        out = self(image)
        if out.ndim == 3:
            if out.shape[:2] != size:
                out = resize(out, size, self.semantics)
            out = out.argmax(-1)
        elif out.shape != size:
            out = resize(out[:, :, None], size, "half_pixel", "nearest")[:, :, 0]
        return self.check_classes(out)

    def check_classes(self, out):
        """``out`` as uint8 (int32 beyond 256 classes), or ValueError when it names a class the
        source does not have."""
        n = self.num_classes
        top = int(out.max(initial=0))
        if n is not None and top >= n:
            raise ValueError(f"{self.description} predicts class {top} but has {n} classes")
        return out.astype(np.uint8 if (n or top + 1) <= 256 else np.int32)


class KerasSegmenter(Segmenter):
    """A Keras model, run at its input contract: ``input_size``, else its preset's working size
    (``preprocessing.input_size``), else each image's own. Single scale runs the model compiled
    (``predict_on_batch``, one trace per size) and resizes the logits to the image a few classes
    at a time; ``scales`` / ``flip`` average softmax probabilities through the
    :class:`~deeplab_keras.inference.multiscale.Predictor` (scale 1 is the working size)."""

    kind = "keras"

    def __init__(self, model, input_size=None, semantics=None, scales=(1.0,), flip=False,
                 labels=None):
        self.model = model
        size, self.semantics = input_contract(model, validate.check_size(input_size), semantics)
        fixed = tuple(model.input_shape[1:3])
        self.input_size = fixed if None not in fixed else size
        if len(model.outputs) != 1 or len(model.output_shape) != 4:
            raise ValueError(f"Keras model {model.name}: output {model.output_shape} is not one "
                             "(N, H, W, C) segmentation output")
        self.num_classes = int(model.output_shape[-1])
        self.labels = check_labels(labels, self.num_classes, f"Keras model {model.name}") \
            if labels is not None else (
            list(getattr(model, "labels", None) or []) or None)
        self.palette = getattr(model, "palette", None)
        self.ignore_label = getattr(model, "ignore_label", None)
        self.scales = tuple(float(s) for s in (scales or (1.0,)))
        self.flip = bool(flip)
        self.predictor = None
        if self.scales != (1.0,) or self.flip:
            from deeplab_keras.inference.multiscale import Predictor
            self.predictor = Predictor(model, scales=self.scales, flip=self.flip,
                                       semantics=self.semantics, input_size=self.input_size)
        if self.input_size:
            check_run_size(self.input_size, self.num_classes, "input size",
                           "a smaller --input-size / input_size")
        runs = (f"at {self.input_size[0]}x{self.input_size[1]}" if self.input_size
                else "at each image's size")
        extra = (f", scales {list(self.scales)}{' + flip' if self.flip else ''}"
                 if self.predictor is not None else "")
        self.description = f"Keras model {model.name} ({runs}{extra})"

    def __call__(self, image):
        """Logits (h, w, C) float32 at the size the model runs at (single scale)."""
        image = _image(image)
        size = self._checked_size(image)
        x = resize(image[None], size, self.semantics)  # uint8 in, float32 out: no float copy
        y = self.model.predict_on_batch(np.asarray(x, np.float32))
        if isinstance(y, (list, tuple)):
            y = y[0]
        return np.asarray(y, np.float32)[0]

    def segment(self, image):
        image = _image(image)
        if self.predictor is not None:
            probs = self.predictor(image)
            return self.check_classes(probs.argmax(-1))
        return self.check_classes(predict_classes(self.model, image, self._checked_size(image),
                                                  self.semantics))

    def _checked_size(self, image):
        """The size ``image`` runs at; checked against memory here only when it is the image's
        own (a fixed or working size was checked once, when the segmenter was made)."""
        if self.input_size:
            return tuple(self.input_size)
        size = tuple(image.shape[:2])
        check_run_size(size, self.num_classes, "image size", "a smaller image or --input-size")
        return size


def _report_beside(path):
    """The export report of ``path`` (``deeplab-keras export --report-dir``) when it lies beside
    the file as ``<name>.json`` and names this file, else None."""
    from deeplab_keras.utils.io import read_json_dict

    data = read_json_dict(os.path.splitext(os.fspath(path))[0] + ".json")
    if data is None or os.path.basename(str(data.get("output", ""))) != \
            os.path.basename(os.fspath(path)):
        return None  # another file's report (or not a report)
    return data


class FileSegmenter(Segmenter):
    """An exported file (``.tflite``, ``.onnx``, SavedModel folder). Its input size, dtype and
    layout come from the file (a dynamic height and width run at each image's size); its output
    kind and labels from the metadata we embed at export, else the export report beside it, else
    the output's rank. Opening it runs it once, so a file that cannot run, or whose output is
    not a segmentation map, is refused here."""

    kind = "file"

    def __init__(self, path, num_threads=None, labels=None, num_classes=None):
        path = os.fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"artifact not found: {path}")
        try:
            self.artifact = Artifact(path, num_threads=num_threads)
        except FileNotFoundError:
            raise
        except Exception as err:  # the runtimes raise ValueError / RuntimeError / their own
            if isinstance(err, ValueError) and str(err).startswith(path):
                raise  # the runtime loaded it: Artifact says why its input is not an image's
            raise ValueError(f"the runtime cannot load {path} ({first_line(err)}); is it a "
                             "complete .tflite / .onnx / SavedModel export?") from None
        art = self.artifact
        self.path, self.format, self.num_threads = path, art.format, art.num_threads
        self.input_size = art.input_size
        meta = read_metadata(path) or {}
        report = _report_beside(path) or {}
        mode = meta.get("output") or report.get("output_mode")
        if mode is not None and mode not in OUTPUT_MODES:
            mode = None  # a metadata of another writer: decided from the output below
        probe = self.input_size or PROBE_SIZE
        y = self._nhwc(self._run(np.zeros(probe + (3,), np.uint8)))  # also checks it runs
        if y.ndim not in (3, 4) or y.shape[0] != 1 or min(y.shape[1:3]) < 2:
            raise ValueError(f"{path}: output shape {list(y.shape)} is not a segmentation map "
                             "([1, H, W] classes or [1, H, W, C] scores): not a segmentation "
                             "model (a classifier?)")
        if mode is None:
            mode = "classes" if y.ndim == 3 else "logits"
        if (mode == "classes") != (y.ndim == 3):
            raise ValueError(f"{path}: its metadata says output {mode!r} but the output is "
                             f"{list(y.shape)}; re-export it")
        self.mode = mode
        self.output = "classes" if mode == "classes" else "scores"
        if self.output == "scores" and self.input_size is not None:
            self.scores_size = tuple(int(d) for d in y.shape[1:3])
        count = None if self.output == "classes" else int(y.shape[-1])
        if self.output == "classes" and meta.get("video_output") is not None:
            self.video_output = self._video_output(meta["video_output"], probe, y.shape[1:3])
            count = self.video_output["classes"]
        file_labels = meta.get("labels")
        count = count or report.get("num_classes") or (len(file_labels) if file_labels else None)
        if file_labels is not None:
            try:
                file_labels = check_labels(file_labels, count, path)
            except ValueError as err:
                raise ValueError(f"{err} in its own metadata; re-export it") from None
        if labels is not None:
            file_labels = check_labels(labels, count, path)
        self.labels = list(file_labels) if file_labels else None
        count = count or (len(self.labels) if self.labels else None)
        if num_classes is not None and count is not None and int(num_classes) != count:
            raise ValueError(f"{path} has {count} classes, not {num_classes}")
        self.num_classes = count or (int(num_classes) if num_classes else None)
        self.semantics = "half_pixel"  # a file records no semantics: tf.image.resize's
        runtime = RUNTIMES[self.format]
        runs = (f"input {self.input_size[0]}x{self.input_size[1]}" if self.input_size
                else "input at each image's size")
        self.description = (f"{os.path.basename(path.rstrip(os.sep))} ({runtime}, "
                            f"{num_threads or 'default'} threads, {runs} "
                            f"{art.input_dtype.name}, output {mode})")

    def _video_output(self, recorded, probe, map_size):
        """The low-resolution logits a class-map export records in its metadata
        (``video_output``), checked against the file: ``{"index", "size", "resize",
        "classes"}``; ValueError (re-export it) when the file does not have what it records."""
        from deeplab_keras.layers.resize import SEMANTICS

        art, path = self.artifact, self.path
        name = recorded.get("name") if isinstance(recorded, dict) else None
        if name not in art.output_names:
            raise ValueError(f"{path}: its metadata records a low-resolution output {name!r} "
                             f"but the file's outputs are {list(art.output_names)}; re-export it")
        if recorded.get("resize") not in SEMANTICS:
            raise ValueError(f"{path}: its metadata records low-resolution output resize "
                             f"{recorded.get('resize')!r}, not one of {SEMANTICS}; re-export it")
        index = art.output_names.index(name)
        y = self._nhwc(self._run(np.zeros(probe + (3,), np.uint8), output=index))
        if (y.ndim != 4 or y.shape[0] != 1 or y.shape[-1] < 2 or
                list(y.shape) != list(recorded.get("shape") or []) or
                not all(1 <= a <= b for a, b in zip(y.shape[1:3], map_size))):
            raise ValueError(f"{path}: low-resolution output {name!r} is {list(y.shape)}, not "
                             f"the [1, h, w, C] logits its metadata records "
                             f"({recorded.get('shape')}) below the {list(map_size)} class map; "
                             "re-export it")
        return {"index": index, "size": tuple(int(d) for d in y.shape[1:3]),
                "resize": recorded["resize"], "classes": int(y.shape[-1])}

    def _run(self, x, raw=False, output=0):
        try:
            y, quantization = self.artifact.run_raw(x, output=output)
        except ValueError:
            raise
        except Exception as err:  # LiteRT / onnxruntime / TensorFlow errors while running
            raise ValueError(f"{self.path}: the runtime failed running it ({first_line(err)}); "
                             "is it a complete export of a segmentation model?") from None
        y = np.asarray(y)
        if raw:
            return y, quantization
        return np.asarray(self.artifact.dequantize(y, quantization))

    def _input(self, image):
        image = _image(image)
        size = self.run_size(image.shape[:2])
        if self.input_size is None:
            check_run_size(size, self.num_classes, f"{self.path}: image size",
                           "a smaller image")
        return resize(image, size, self.semantics)

    def _nhwc(self, y):
        """The runtime's 4-D output channels-last (an NCHW file's is channels-first)."""
        return y.transpose(0, 2, 3, 1) if y.ndim == 4 and self.artifact.layout == "NCHW" else y

    def _shape(self, y):
        """The output as (h, w, C) scores or an (h, w) map, from the runtime's tensor (its
        rank was checked when the file was opened)."""
        y = self._nhwc(y)
        return y.reshape(y.shape[-2:] if self.output == "classes" else y.shape[-3:])

    def __call__(self, image):
        y = self._shape(self._run(self._input(image)))
        return y if self.output == "classes" else y.astype(np.float32, copy=False)

    def lowres_scores(self, image):
        """A class-map file's low-resolution logits ``(h, w, C)`` float32 for ``image`` (the
        tensor its class map is upsampled from; ``video_output`` says where and how), for
        temporal smoothing at the output stride. ValueError for a file without them."""
        if self.video_output is None:
            raise ValueError(f"{self.path} has no low-resolution scores (exported before they "
                             "were added, or not a class-map export); re-export it")
        y = self._nhwc(self._run(self._input(image), output=self.video_output["index"]))
        return y.reshape(y.shape[-3:]).astype(np.float32, copy=False)

    def raw_classes(self, image):
        """The class map at the output's resolution without dequantizing: the argmax of the raw
        output (quantized scores with a positive scale keep their order), or the class map."""
        y, quantization = self._run(self._input(image), raw=True)
        if self.output == "classes":
            return self._shape(y)
        if quantization is not None and not quantization[0] > 0:
            y = self.artifact.dequantize(y, quantization)
        return self._shape(y).argmax(-1)


def is_model_file(path):
    """True for a path a :class:`FileSegmenter` opens (by extension, or a SavedModel folder)."""
    text = os.fspath(path)
    return (text.lower().endswith(FILE_EXTENSIONS) or
            (os.path.isdir(text) and os.path.isfile(os.path.join(text, "saved_model.pb"))))


def open_segmenter(source, *, input_size=None, num_threads=None, labels=None, num_classes=None,
                   scales=(1.0,), flip=False, semantics=None):
    """A :class:`Segmenter` for ``source``: a Keras model, a preset name, a ``.keras`` file, a
    ``.tflite`` / ``.onnx`` file or SavedModel folder, or a segmenter itself. Settings that do
    not apply to the source are refused in one line, not ignored: ``input_size``, ``scales``,
    ``flip`` and ``semantics`` need a Keras model (a file runs at its own input size), and
    ``num_threads`` a file (a Keras model runs on TensorFlow's own threads)."""
    scales = tuple(scales or (1.0,))
    from deeplab_keras.layers.resize import SEMANTICS

    if semantics is not None and semantics not in SEMANTICS:
        raise ValueError(f"resize semantics must be one of {SEMANTICS}, got {semantics!r}")
    if isinstance(source, Segmenter):
        return source
    if isinstance(source, (str, os.PathLike)) and is_model_file(source):
        text = os.fspath(source)
        if input_size is not None:
            raise ValueError(f"{text} runs at its own fixed input size: drop --input-size / "
                             "input_size (it applies to Keras models: a preset, a .keras file)")
        if scales != (1.0,) or flip:
            raise ValueError(f"{text} runs at its fixed input size: --scales/--flip need a "
                             "Keras model (a preset, a .keras file); drop them")
        if semantics is not None:
            raise ValueError(f"{text}: resize semantics apply to Keras models only")
        return FileSegmenter(text, num_threads=num_threads, labels=labels,
                             num_classes=num_classes)
    if num_threads is not None:
        raise ValueError("num_threads / --threads sets the runtime threads of a .tflite / .onnx "
                         "file; a Keras model runs on TensorFlow's threads (set "
                         "TF_NUM_INTRAOP_THREADS before starting Python)")
    model = source
    if not hasattr(source, "predict_on_batch"):
        if not isinstance(source, (str, os.PathLike)):
            raise ValueError("source must be a Keras model, a preset name, a .keras file or a "
                             f".tflite / .onnx file, got {type(source).__name__}")
        text = os.fspath(source)
        if text.lower().endswith(".keras"):
            import keras
            if not os.path.isfile(text):
                raise FileNotFoundError(f"model file not found: {text}")
            model = keras.saving.load_model(text, compile=False)
        elif os.path.exists(text):
            raise ValueError(f"{text}: not a model file (expected .keras, .tflite, .onnx or a "
                             "SavedModel folder, or a preset name)")
        else:
            from deeplab_keras.hub.weights import from_preset
            model = from_preset(text)
    if num_classes is not None and int(model.output_shape[-1]) != int(num_classes):
        raise ValueError(f"the model predicts {model.output_shape[-1]} classes, not {num_classes}")
    return KerasSegmenter(model, input_size=input_size, semantics=semantics, scales=scales,
                          flip=flip, labels=labels)


def segment(source, image, input_size=None, semantics=None, **options):
    """Class map(s) at the image's own size, for any source.

    ``source``: a Keras model, a preset name, a ``.keras`` file, an exported ``.tflite`` /
    ``.onnx`` file or SavedModel folder, or a :class:`Segmenter` (open it once with
    :func:`open_segmenter` to segment many images). ``image``: one image (a path, a PIL image,
    an (H, W, 3) uint8 / 0-255 float array) -> an (H, W) uint8 class map; a batch (a list of
    images, or an (N, H, W, 3) array) -> a list of maps (images may differ in size).

    A Keras model runs at ``input_size``, else its preset's ``preprocessing.input_size``, else
    the image's size, with its own resize ``semantics`` unless given; ``options``:
    ``scales``, ``flip`` (Keras), ``num_threads``, ``labels``, ``num_classes``
    (:func:`open_segmenter`). A file runs at its own input size.

        import deeplab_keras as dk
        classes = dk.segment("deeplabv3plus_mobilenetv2_camvid", "street.png")
        classes = dk.segment("camvid_int8.tflite", "street.png")
    """
    seg = open_segmenter(source, input_size=input_size, semantics=semantics, **options)
    if isinstance(image, (list, tuple)) or (hasattr(image, "ndim") and image.ndim == 4):
        return [seg.segment(im) for im in image]
    return seg.segment(image)
