"""Test-time inference on top of a model that outputs logits (or probabilities) at its input size:
multi-scale + flip averaging, sliding-window tiling for large images, and DenseCRF refinement.

    probs = predict_probabilities(model, image, scales=(0.5, 0.75, 1.0, 1.25, 1.5, 1.75), flip=True)
    mask = probs.argmax(-1)

Multi-scale / flip (DeepLab's ``eval_scales`` + ``add_flipped_images``): the image is resized to
each scale (of its own size, or of ``input_size``: the size a model works at, e.g. its preset's
``preprocessing.input_size`` as ``predict`` uses it; a DeepLab model's scaled sizes keep scale
1's remainder modulo its output stride), optionally mirrored, run through the model (directly or
window by window), the softmax probabilities are resized back to the input size (mirrored
back), and all are averaged.

Sliding window: the (scaled) image is covered with ``crop``-sized windows overlapping by
``overlap``; images smaller than a window are padded at the bottom/right with ``pad_value``
(127.5, mid-grey = 0 after the models' normalisation) and the padding is cut off again, so it never
reaches the output. Window probabilities are blended with ``"gaussian"`` weights (centre pixels
count most, which hides seams) or ``"uniform"`` ones. A model with a fixed input size is always
run this way, with windows of its input size.
"""
import weakref

import keras
import numpy as np

from deeplab_keras.layers.resize import SEMANTICS, aligned_scaled_size, resize, scaled_size
from deeplab_keras.utils.validate import check_size

WEIGHTINGS = ("gaussian", "uniform")
#: the scales a Predictor takes: below, a photo shrinks to a few pixels; above, the memory
#: check (:mod:`deeplab_keras.inference.bounds`) refuses most sizes anyway
MIN_SCALE, MAX_SCALE = 0.1, 8.0
_FUNCTIONS = weakref.WeakKeyDictionary()  # model -> its traced inference function


def _model_function(model):
    """One compiled function per model, kept while the model lives, so repeated calls (one
    :func:`predict_probabilities` per image) reuse its traces instead of re-tracing: a
    ``tf.function`` on TensorFlow, Keras' own ``predict_on_batch`` (jit) on other backends."""
    fn = _FUNCTIONS.get(model)
    if fn is None:
        ref = weakref.ref(model)
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            fn = tf.function(lambda x: ref()(x, training=False), reduce_retracing=True)
        else:
            fn = lambda x: ref().predict_on_batch(x)  # noqa: E731
        _FUNCTIONS[model] = fn
    return fn


def _softmax(y):
    e = np.exp(y - y.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def window_starts(size, crop, stride):
    """Start offsets of windows of ``crop`` covering ``size`` with step ``stride`` (last flush)."""
    if size <= crop:
        return [0]
    starts = list(range(0, size - crop, stride))
    return starts + [size - crop]


def window_weights(crop, weighting="gaussian", sigma_scale=0.25):
    """``(h, w)`` blending weights for one window: a Gaussian with sigma ``sigma_scale * crop``
    centred in the window, or ones."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    if weighting == "uniform":
        return np.ones(crop, np.float32)
    axes = []
    for n in crop:
        t = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
        axes.append(np.exp(-0.5 * (t / (sigma_scale * n)) ** 2))
    w = np.outer(axes[0], axes[1])
    return (w / w.max()).astype(np.float32)


class Predictor:
    """Reusable test-time inference for one model (traces the model once per input size).

    Args:
        model: a Keras model mapping ``(N, H, W, 3)`` 0-255 RGB to ``(N, H, W, C)`` logits (or
            probabilities: see ``from_logits``).
        scales: image scales to average over, e.g. ``(0.5, 0.75, 1.0, 1.25, 1.5, 1.75)``.
        input_size: ``(height, width)`` that scale 1 means (the model's working size: ``predict``
            passes its input contract, :func:`deeplab_keras.inference.input_contract`); None:
            the image's own size.
        flip: also average over horizontally mirrored inputs.
        sliding_window: window ``(height, width)`` (or one int) for tiled inference; None runs the
            whole (scaled) image at once, unless the model's input size is fixed.
        overlap: fraction of a window shared with its neighbour (0 <= overlap < 1).
        weighting: ``"gaussian"`` or ``"uniform"`` blending of overlapping windows.
        pad_value: pixel value for padding images smaller than a window.
        crf: None/False, True (DeepLab's settings, :data:`deeplab_keras.inference.crf.DEEPLAB_CRF`)
            or a dict of :func:`deeplab_keras.inference.crf.dense_crf` arguments.
        from_logits: None asks the model (a deeplab_keras model records its final softmax);
            True applies softmax.
        semantics: resize semantics for scaling ("half_pixel", "align_corners", "asymmetric");
            None: the model's own (:func:`deeplab_keras.models.resize_semantics`).
        batch_size: windows run per model call.
    """

    def __init__(self, model, scales=(1.0,), flip=False, sliding_window=None, overlap=1 / 3,
                 weighting="gaussian", pad_value=127.5, crf=None, from_logits=None,
                 semantics=None, batch_size=4, input_size=None):
        self.model = model
        self.scales = tuple(float(s) for s in (scales or (1.0,)))
        bad = [s for s in self.scales if not MIN_SCALE <= s <= MAX_SCALE]
        if bad:
            raise ValueError(f"scales must be between {MIN_SCALE:g} and {MAX_SCALE:g} (DeepLab "
                             f"averages 0.5-1.75), got {bad[0]!r}")
        self.input_size = None if input_size is None else check_size(input_size, "input_size")
        # a DeepLab model's scaled sizes keep scale 1's remainder modulo its output stride
        self.stride = getattr(model, "output_stride", None)
        self.flip = bool(flip)
        if not 0 <= float(overlap) < 1:
            raise ValueError(f"overlap must be in [0, 1), got {overlap!r}")
        self.overlap = float(overlap)
        self.weighting = weighting
        self.pad_value = float(pad_value)
        self.batch_size = max(1, int(batch_size))
        fixed = tuple(model.input_shape[1:3])
        self.fixed_size = fixed if None not in fixed else None
        if sliding_window is not None:
            sliding_window = check_size(sliding_window, "sliding_window")
            if self.fixed_size and sliding_window != self.fixed_size:
                raise ValueError(f"model input is fixed at {self.fixed_size}; sliding_window "
                                 f"{sliding_window} must equal it")
        self.window = sliding_window or self.fixed_size
        self.weights = None if self.window is None else window_weights(self.window, weighting)
        recorded = getattr(model, "parts", None) or {}
        if from_logits is None:
            from_logits = not recorded.get("probabilities")
        self.from_logits = bool(from_logits)
        if semantics is None:
            from deeplab_keras.models import resize_semantics
            semantics = resize_semantics(model)
        if semantics not in SEMANTICS:
            raise ValueError(f"resize semantics must be one of {SEMANTICS}, got {semantics!r}")
        self.semantics = semantics
        self.crf = _crf_params(crf)
        self.num_classes = int(model.output_shape[-1])
        if self.input_size is not None:  # before anything runs: the largest size asked for
            self.check_sizes(self.input_size)
        self._call = _model_function(model)

    def check_sizes(self, base):
        """ValueError (before any allocation) when the largest scale of ``base`` cannot fit in
        memory."""
        from deeplab_keras.inference.bounds import check_run_size

        top = max(self.scales)
        size = tuple(base) if top == 1.0 else self.scaled(base, top)
        check_run_size(size, self.num_classes, f"scale {top:g} of {base[0]}x{base[1]} runs at",
                       "smaller --scales / --input-size")

    def _outputs(self, x):
        """The model's outputs (logits or probabilities) for ``x`` (N, h, w, 3) -> numpy (N, h, w, C)."""
        y = self._call(np.asarray(x, np.float32))
        if isinstance(y, (list, tuple, dict)):
            raise ValueError("the model has several outputs; evaluation needs one (N, H, W, C) output")
        y = keras.ops.convert_to_numpy(y).astype(np.float32, copy=False)
        if y.ndim != 4 or tuple(y.shape[1:3]) != tuple(x.shape[1:3]):
            raise ValueError(f"model output {tuple(y.shape)} is not (N, H, W, C) at the input size "
                             f"{tuple(x.shape[1:3])}")
        return y

    def _probs(self, x):
        """Softmax probabilities of one model call on ``x`` (N, h, w, 3) -> numpy (N, h, w, C)."""
        y = self._outputs(x)
        return _softmax(y) if self.from_logits else y

    def _tiled(self, x):
        """Sliding-window probabilities for ``x`` (N, h, w, 3) numpy."""
        n, h, w, _ = x.shape
        ch, cw = self.window
        ph, pw = max(h, ch), max(w, cw)
        if (ph, pw) != (h, w):
            x = np.pad(x, ((0, 0), (0, ph - h), (0, pw - w), (0, 0)), constant_values=self.pad_value)
        stride = (max(1, int(np.ceil(ch * (1 - self.overlap)))), max(1, int(np.ceil(cw * (1 - self.overlap)))))
        boxes = [(y0, x0) for y0 in window_starts(ph, ch, stride[0])
                 for x0 in window_starts(pw, cw, stride[1])]
        total = None
        weight = np.zeros((ph, pw, 1), np.float32)
        for i in range(0, len(boxes), self.batch_size):
            chunk = boxes[i:i + self.batch_size]
            crops = np.concatenate([x[:, y0:y0 + ch, x0:x0 + cw] for y0, x0 in chunk])
            probs = self._probs(crops) * self.weights[None, :, :, None]
            if total is None:
                total = np.zeros((n, ph, pw, probs.shape[-1]), np.float32)
            for k, (y0, x0) in enumerate(chunk):
                total[:, y0:y0 + ch, x0:x0 + cw] += probs[k * n:(k + 1) * n]
                weight[y0:y0 + ch, x0:x0 + cw] += self.weights[:, :, None]
        return (total / weight)[:, :h, :w]

    def scaled(self, size, scale):
        """``(h, w)`` that ``scale`` runs ``size`` at: for a model with an output stride the
        nearest size with ``size``'s remainder modulo the stride
        (:func:`~deeplab_keras.layers.resize.aligned_scaled_size`: the network meets the image on
        the grid it was trained on), else DeepLab's ``scale_dimension`` (align_corners) or a
        rounded product."""
        if self.stride and self.stride > 1:
            return tuple(aligned_scaled_size(n, scale, self.stride) for n in size)
        if self.semantics == "align_corners":
            return tuple(scaled_size(n, scale) for n in size)
        return tuple(max(1, int(round(n * scale))) for n in size)

    def _at_scale(self, x, base, scale):
        """``x`` (N, h, w, 3) resized to what ``scale`` of the ``base`` size runs at."""
        size = tuple(base) if scale == 1.0 else self.scaled(base, scale)
        return x if size == tuple(x.shape[1:3]) else resize(x, size, self.semantics)

    def _single(self, x):
        return self._probs(x) if self.window is None else self._tiled(x)

    def __call__(self, image):
        """Probabilities ``(H, W, C)`` for an image ``(H, W, 3)`` (or ``(N, H, W, C)`` for a batch
        ``(N, H, W, 3)``) of 0-255 RGB values, averaged over scales and flips, then CRF-refined."""
        image = np.asarray(image)
        single = image.ndim == 3
        batch = image[None] if single else image
        if batch.ndim != 4 or batch.shape[-1] != 3:
            raise ValueError(f"image must be (H, W, 3) or (N, H, W, 3) RGB, got shape {image.shape}")
        n, h, w, _ = batch.shape
        base = self.input_size or (h, w)
        if self.input_size is None:
            self.check_sizes(base)
        x = batch.astype(np.float32)
        if len(self.scales) == 1 and not self.flip and self.window is None:
            # one pass: resize the logits, as predict (and DeepLab's predict_labels) does, so
            # evaluate scores exactly the class maps predict writes
            y = resize(self._outputs(self._at_scale(x, base, self.scales[0])), (h, w), self.semantics)
            probs = _softmax(y) if self.from_logits else y
            return self._refine(probs, batch, single)
        total = None
        for scale in self.scales:
            xs = self._at_scale(x, base, scale)
            for flipped in ((False, True) if self.flip else (False,)):
                p = self._single(xs[:, :, ::-1] if flipped else xs)
                if flipped:
                    p = p[:, :, ::-1]
                p = resize(p, (h, w), self.semantics)
                total = p if total is None else total + p
        return self._refine(total / (len(self.scales) * (2 if self.flip else 1)), batch, single)

    def _refine(self, probs, batch, single):
        """DenseCRF refinement (when asked) of ``probs`` (N, H, W, C) for the 0-255 ``batch``."""
        if self.crf is not None:
            from deeplab_keras.inference.crf import dense_crf
            rgb = np.clip(np.round(batch), 0, 255).astype(np.uint8)
            probs = np.stack([dense_crf(p, im, **self.crf) for p, im in zip(probs, rgb)])
        return probs[0] if single else probs


def _crf_params(crf):
    if crf is None or crf is False:
        return None
    from deeplab_keras.inference.crf import DEEPLAB_CRF, check_available
    check_available()
    if crf is True:
        return dict(DEEPLAB_CRF)
    if isinstance(crf, dict):
        unknown = sorted(set(crf) - set(DEEPLAB_CRF))
        if unknown:
            raise ValueError(f"unknown CRF settings {unknown}; known: {sorted(DEEPLAB_CRF)}")
        return {**DEEPLAB_CRF, **crf}
    raise ValueError(f"crf must be None, True or a dict of settings, got {crf!r}")


def predict_probabilities(model, image, scales=(1.0,), flip=False, sliding_window=None,
                          crf=None, **options):
    """Class probabilities ``(H, W, C)`` of ``image`` (``(H, W, 3)`` 0-255 RGB, or a batch).

    Args:
        scales: average over these image scales (e.g. ``(0.5, 0.75, 1.0, 1.25, 1.5, 1.75)``).
        flip: also average over the mirrored image.
        sliding_window: window size (int or (h, w)) for tiled inference of large images.
        crf: True for DenseCRF with DeepLab's settings, or a dict of
            :func:`deeplab_keras.inference.crf.dense_crf` arguments.
        options: other :class:`Predictor` arguments (``overlap``, ``weighting``, ``pad_value``,
            ``from_logits``, ``semantics``, ``batch_size``, ``input_size``).

    For many images build one :class:`Predictor` and call it per image (traces the model once).
    """
    return Predictor(model, scales=scales, flip=flip, sliding_window=sliding_window, crf=crf,
                     **options)(image)
