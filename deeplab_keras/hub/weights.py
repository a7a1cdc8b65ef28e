"""The one path from weights to a model: :func:`load_weights` (``dk.load_weights``) and
:func:`from_preset` (``dk.from_preset``). The builders' ``weights=`` argument
(:mod:`deeplab_keras.builders`), ``train --init-weights`` / ``init_tflite`` and the command
line's ``--weights`` all come here; the models themselves never fetch or read weights.

A source is a preset name (see :mod:`deeplab_keras.hub.zoo`: download, verify, convert, cache
as ``.weights.h5``), a Keras ``.weights.h5`` or ``.keras`` file, a ``.tflite`` file, a TF1
checkpoint (tarball, directory or prefix), a keras.applications legacy ``.h5``, or an http(s)
URL of one of these (downloaded into the cache; unpinned, so it needs ``allow_unpinned=True``).
Every source is shape-checked: what does not fit is an error naming it, never skipped.
"""
import os
import urllib.parse
import warnings

import numpy as np

from deeplab_keras.hub import zoo
from deeplab_keras.hub.converted import converted_weights
from deeplab_keras.hub.preset import model_spec
from deeplab_keras.importers.formats import detect_format, import_weights, transfer
from deeplab_keras.importers.mapping import WeightMismatchError
from deeplab_keras.models.common import weighted_layers
from deeplab_keras.models.deeplab import _jsonable, config_of, parts

__all__ = ["load_weights", "from_preset", "WeightMismatchError", "WeightsFileError"]


class WeightsFileError(ValueError):
    """A weights file that cannot be read (corrupt, truncated, not HDF5); names the file."""


def _read_h5(model, path, **kwargs):
    """``model.load_weights(path)`` without Keras' per-layer warnings (one line per layer it
    skips: hundreds for another architecture, before our one-line error says what does not
    fit), and with a file that cannot be read named in the error."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model.load_weights(path, **kwargs)
        except OSError as err:
            reason = " ".join(str(err).split())
            raise WeightsFileError(
                f"cannot read the weights file {path}: {reason} (corrupt or truncated; save it "
                "again with model.save_weights(...) or fetch it again)") from None


def _classes(model):
    return int(model.outputs[0].shape[-1])


def load_weights(model, source, *, new_head=False, allow_unpinned=False, partial=False,
                 progress=True):
    """Load ``source`` (a preset name, a weights file or a URL) into ``model``; returns ``model``.

    Args:
        new_head: fine-tuning (``train --init-weights``): a source with another number of
            classes fills everything but the classifier, which keeps its fresh initialisation;
            with the same number of classes the classifier is copied too.
        allow_unpinned: allow downloads without a pinned checksum (their sha256 is printed).
        partial: head layers the source lacks keep their initialisation (e.g. a DeepLab v3
            ``.tflite`` into a v3+ model, whose decoder it lacks); every backbone layer must
            still be filled and every tensor of the source used.
    Raises:
        WeightMismatchError (a ValueError) naming what does not fit.
    """
    if isinstance(source, str) and zoo.is_preset(source):
        return _load_preset(model, source, new_head=new_head, allow_unpinned=allow_unpinned,
                            progress=progress)
    if isinstance(source, str) and urllib.parse.urlparse(source).scheme in ("http", "https"):
        from deeplab_keras import download
        name = os.path.basename(urllib.parse.urlparse(source).path) or "weights"
        source = download.fetch(source, name, allow_unpinned=allow_unpinned, progress=progress)
    if not isinstance(source, (str, os.PathLike)):
        raise ValueError(f"weights must be a preset name, a file path or a URL, got {source!r}")
    path = os.fspath(source)
    if not (os.path.exists(path) or os.path.exists(path + ".index")):
        raise ValueError(f"weights={path!r} is neither an existing file nor a known preset. "
                         f"Presets: {', '.join(zoo.list_presets())}")
    fmt = detect_format(path)
    if fmt == "keras_model":
        import keras
        loaded = keras.saving.load_model(path, compile=False)  # safe mode: reads this file only
        transfer(loaded, model, new_head=bool(new_head) and _classes(loaded) != _classes(model),
                 backbone_only=partial)
    elif fmt == "keras_weights_h5":
        _load_keras_weights(model, path, new_head=new_head)
    else:
        try:
            import_weights(model, path, fmt, backbone_only=partial)
        except ValueError:  # WeightMismatchError, the TFLite matcher's StructureMismatchError
            if not new_head:
                raise
            # another number of classes: everything but the classifier (a file that does not
            # fit elsewhere fails again, with the error naming what)
            import_weights(model, path, fmt, skip_classifier=True, backbone_only=partial)
    return model


def _load_keras_weights(model, path, *, new_head):
    """A Keras ``.weights.h5`` (saved by ``model.save_weights``; Keras matches it by structure,
    not names). With ``new_head`` and another number of classes, Keras' ``skip_mismatch`` is
    used, but checked: every non-classifier weight must have been loaded (each is set to NaN
    first). On any failure the model is restored as it was (Keras may have loaded part of the
    file before failing) and WeightMismatchError names what does not fit."""
    layers = list(weighted_layers(model))
    # copies: get_weights() may share the variables' buffers, which a load overwrites
    saved = {layer.name: [np.array(w, copy=True) for w in layer.get_weights()] for layer in layers}

    def restore():
        for layer in layers:
            layer.set_weights(saved[layer.name])

    try:
        _read_h5(model, path)
        return
    except WeightsFileError:
        restore()
        raise
    except ValueError as err:
        if not new_head:
            restore()
            reason = " ".join(str(err).split())  # Keras' message spans lines
            raise WeightMismatchError(
                f"{path} does not fit {model.name!r}: {reason[:400]} (another number of classes: "
                "dk.load_weights(..., new_head=True))") from None
    classifiers = set(parts(model)["classifier"])
    checked = [layer for layer in layers if layer.name not in classifiers]
    for layer in layers:
        layer.set_weights([np.full_like(w, np.nan) if layer.name not in classifiers
                           and np.issubdtype(w.dtype, np.floating) else w
                           for w in saved[layer.name]])
    try:  # Keras' warnings about each skipped layer are silenced: we check below
        _read_h5(model, path, skip_mismatch=True)
    except ValueError as err:
        skipped = [f"({' '.join(str(err).split())[:400]})"]
    else:
        skipped = [layer.name for layer in checked
                   if any(np.issubdtype(w.dtype, np.floating) and np.isnan(w).any()
                          for w in layer.get_weights())]
    if skipped:
        restore()
        raise WeightMismatchError(
            f"{path} does not fit {model.name!r} outside its classifier: not loaded "
            f"{', '.join(skipped[:12])}{' ...' if len(skipped) > 12 else ''}")
    for layer in layers:  # the new classifier keeps its initialisation
        if layer.name in classifiers:
            layer.set_weights(saved[layer.name])


#: builder arguments that change no weight (the input layer has none)
_NOT_WEIGHTS = ("input_shape",)


def same_architecture(model, preset):
    """Whether ``model`` is preset ``preset``'s own graph (same builder, same arguments with
    defaults filled in, the input size aside), so the preset's converted ``.weights.h5`` loads
    into it as it is."""
    if preset.get("backbone_only") or not getattr(model, "architecture", None):
        return False
    architecture, config = model_spec(preset)

    def weighted(config):
        return {k: v for k, v in config.items() if k not in _NOT_WEIGHTS}
    try:
        own = weighted(_jsonable(dict(model.config or {})))
        return model.architecture == architecture and \
            weighted(config_of(architecture, **config)) == own
    except (TypeError, ValueError):  # a preset config its builder does not take
        return False


def _load_preset(model, name, *, new_head=False, allow_unpinned=False, progress=True,
                 exact=None):
    """Preset ``name``'s converted weights into ``model``: loaded as they are when ``exact``
    (the model is the preset's own architecture; None: decided by :func:`same_architecture`),
    else copied by layer name from the preset's model, built for that (another head, a
    backbone preset, overridden arguments)."""
    path, preset = converted_weights(name, allow_unpinned=allow_unpinned, progress=progress)
    if exact is None:
        exact = same_architecture(model, preset)
    if exact:
        try:
            _read_h5(model, path)
            return model
        except WeightsFileError:
            raise
        except ValueError:  # Keras matched it by structure and failed: copy by name below
            pass
    own = zoo.conversion_classes(preset)
    source = zoo.build_preset_model(preset, num_classes=own)
    _read_h5(source, path)
    try:
        transfer(source, model, backbone_only=preset.get("backbone_only", False),
                 new_head=bool(new_head) and own != _classes(model))
    except WeightMismatchError as err:
        raise WeightMismatchError(
            f"preset {name!r} does not fit this model: {err}. For other classes use "
            f"deeplab_keras.from_preset({name!r}, num_classes=...)") from None
    return model


def from_preset(name, num_classes=None, *, weights=True, allow_unpinned=False, progress=True,
                **overrides):
    """Build preset ``name``'s model and load its weights. The model carries the preset's
    labels, palette, ignore label and input contract (kept by ``model.save("m.keras")``).

        import deeplab_keras as dk
        model = dk.from_preset("deeplabv3_mobilenetv2_dm05_voc")
        model = dk.from_preset("mobilenetv2_imagenet", num_classes=11)   # backbone + new head

    Args:
        num_classes: a different number of classes gets a new, freshly initialised classifier
            (backbone presets always need it).
        weights: True (the preset's own), False (the architecture only), or a path/URL of a
            weights file for this architecture (``.weights.h5``, ``.keras``, ``.tflite``, ...):
            loaded into it, or an error naming what does not fit - never ignored.
        allow_unpinned: allow weight files without a pinned checksum (prints their sha256).
        overrides: other builder arguments (``input_shape``, ``activation``, ...).
    """
    preset = zoo.get_preset(name)
    classes = num_classes if num_classes is not None else preset["config"].get("num_classes")
    if isinstance(weights, (str, os.PathLike)):
        if not str(weights).startswith(("http://", "https://")) and not os.path.exists(weights):
            raise FileNotFoundError(f"from_preset({name!r}, weights=...): no file {weights}")
    elif weights not in (True, False, None):
        raise TypeError(f"from_preset weights= takes True, False or a file path, got {weights!r}")
    model = zoo.build_preset_model(preset, num_classes=classes, **overrides)
    if isinstance(weights, (str, os.PathLike)):
        return load_weights(model, os.fspath(weights), allow_unpinned=allow_unpinned,
                            progress=progress)
    if weights:
        new_head = classes != zoo.conversion_classes(preset)
        _load_preset(model, name, new_head=new_head, allow_unpinned=allow_unpinned,
                     progress=progress)
    return model
