"""The DeepLab model class and the architecture registry.

Every builder (:func:`DeepLabV3`, ...) is registered with :func:`register` in :data:`BUILDERS`
(the package's one :class:`~deeplab_keras.utils.registry.Registry` kind) and returns a
:class:`DeepLab`: a Keras functional model that knows itself. Building by name is
``BUILDERS.build(architecture, **config)`` here; the public ``dk.build_model`` (with
``weights=``) is :func:`deeplab_keras.builders.build_model`, one level up.

* ``model.architecture`` and ``model.config`` are the builder and its arguments;
  ``model.get_config()`` returns them, and ``DeepLab.from_config`` calls the builder again, so
  ``model.save("m.keras")`` / ``keras.saving.load_model("m.keras")`` give the same model back.
* ``model.labels``, ``model.palette``, ``model.ignore_label`` and ``model.preprocessing`` (the
  input contract: the size the model is meant to run at and the resize semantics) travel with
  it through the ``.keras`` file.
* ``model.parts`` names the layers the rest of the package needs, recorded by the builder that
  made them: the final ``upsample`` layer, the ``classifier`` layers, the ``head`` layers (all
  weighted layers that are not backbone), the ``backbone_features`` (output stride -> layer) and
  the final ``probabilities`` activation (None for logits). Use :func:`parts` to read them.

Models built with ``frontend.use(tf_keras)`` (the QAT twin) are plain tf_keras models with the
same attributes set.
"""
import functools
import inspect
import warnings

import keras
import numpy as np

from deeplab_keras import frontend
from deeplab_keras.utils.registry import Registry
from deeplab_keras.utils.validate import check_labels


def _key(architecture):
    return architecture.lower().replace("_", "").replace("-", "").replace("+", "plus")


#: architecture name -> builder (``"DeepLab-V3+"`` finds ``"deeplabv3plus"``)
BUILDERS = Registry("architecture", normalize=_key)
#: keyword arguments of every builder that describe the model's use, not its graph
METADATA = ("labels", "palette", "ignore_label", "preprocessing")
#: builder arguments that are not part of the config (inputs of one build only; the name is
#: the model's own, in get_config()["name"])
_NOT_CONFIG = ("input_tensor", "name")


def canonical(architecture):
    """``"DeepLab-V3+"``, ``"deeplabv3plus"``, ... -> the registry key; ValueError if unknown."""
    return BUILDERS.canonical(architecture)


def check_metadata(num_classes, labels=None, palette=None, ignore_label=None, preprocessing=None):
    """Validated copies of the metadata arguments (ValueError naming the problem): the one
    check of labels, palette, ignore label and input size, for builders, saved models and
    preset files (:mod:`deeplab_keras.hub.preset`) alike."""
    labels = check_labels(labels, num_classes)
    if palette is not None:
        palette = [[int(v) for v in c] for c in palette]
        if len(palette) != num_classes:
            raise ValueError(f"{len(palette)} palette colours for a model with {num_classes} "
                             f"classes (palette must list {num_classes} entries)")
        if any(len(c) != 3 or min(c) < 0 or max(c) > 255 for c in palette):
            raise ValueError("palette colours must be [r, g, b] with values 0-255")
    if ignore_label is not None:
        if isinstance(ignore_label, bool) or not isinstance(ignore_label, (int, np.integer)):
            raise ValueError(f"ignore_label must be an integer, got {ignore_label!r}")
        ignore_label = int(ignore_label)
    if preprocessing is not None:
        if not isinstance(preprocessing, dict):
            raise ValueError(f"preprocessing must be a dict, got {preprocessing!r}")
        preprocessing = dict(preprocessing)
        size = preprocessing.get("input_size")
        if size is not None:
            if len(size) != 2 or min(int(s) for s in size) < 1:
                raise ValueError(f"preprocessing input_size must be [height, width], got {size!r}")
            preprocessing["input_size"] = [int(s) for s in size]
        norm = preprocessing.get("normalization")
        if isinstance(norm, dict) or hasattr(norm, "items"):
            try:
                norm = {"scale": _floats(norm["scale"]), "offset": _floats(norm["offset"])}
            except (KeyError, TypeError, ValueError):
                raise ValueError("preprocessing normalization must be a name or {'scale': s, "
                                 f"'offset': o}} (numbers or 3 per-channel numbers), got {norm!r}") from None
            preprocessing["normalization"] = norm
    return labels, palette, ignore_label, preprocessing


def _floats(value):
    if isinstance(value, (list, tuple)) or hasattr(value, "__len__"):
        values = [float(v) for v in value]
        if len(values) != 3:
            raise ValueError(value)
        return values
    return float(value)


def set_input_normalization(model, scale, offset):
    """Make ``model``'s in-graph preprocessing compute ``x * scale + offset`` on 0-255 RGB (per
    channel when 3 values are given). Builders apply ``preprocessing["normalization"]`` given
    as ``{"scale": ..., "offset": ...}`` this way, so it travels with ``.keras`` files."""
    name = parts(model).get("preprocessing")
    if name is None:
        raise ValueError(f"model {model.name!r} has no in-graph preprocessing "
                         "(include_preprocessing=False) to set a normalisation on")
    layer = model.get_layer(name)
    layer.scale, layer.offset = _floats(scale), _floats(offset)


def _jsonable(value):
    """Plain JSON types (tuples and Keras' tracked lists/dicts become lists/dicts)."""
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict) or hasattr(value, "items"):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def register(architecture):
    """Decorator registering a builder under ``architecture``. The registered function takes
    the builder's arguments plus the metadata (``labels``, ``palette``, ``ignore_label``,
    ``preprocessing``) and records them on the model it returns. Builders make architectures
    only: weights are loaded one level up (:mod:`deeplab_keras.hub.weights`)."""
    def decorate(builder):
        signature = inspect.signature(builder)
        var_kw = next((p.name for p in signature.parameters.values()
                       if p.kind is inspect.Parameter.VAR_KEYWORD), None)

        def bind(args, kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            arguments = dict(bound.arguments)
            config = {k: v for k, v in arguments.items() if k != var_kw and k not in _NOT_CONFIG}
            config.update(arguments.get(var_kw) or {})
            return bound, _jsonable(config)

        @functools.wraps(builder)
        def build(*args, labels=None, palette=None, ignore_label=None, preprocessing=None,
                  **kwargs):
            bound, config = bind(args, kwargs)
            check_labels(labels)  # before the build: a string of labels is refused at once
            model = builder(*bound.args, **bound.kwargs)
            meta = check_metadata(model.outputs[0].shape[-1], labels, palette, ignore_label,
                                  preprocessing)
            model.architecture = architecture
            model.config = config
            for key, value in zip(METADATA, meta):
                setattr(model, key, value)
            norm = (model.preprocessing or {}).get("normalization")
            if isinstance(norm, dict):
                set_input_normalization(model, norm["scale"], norm["offset"])
            return model

        build.architecture = architecture
        build.config_of = lambda **kwargs: bind((), kwargs)[1]
        return BUILDERS.register(architecture, build)
    return decorate


def config_of(architecture, **kwargs):
    """The ``model.config`` that ``BUILDERS.build(architecture, **kwargs)`` would record (every
    builder argument, defaults filled in), without building anything: whether two specs make
    the same graph (e.g. a preset's weights load as they are into a model built from them)."""
    kwargs = {k: v for k, v in kwargs.items() if k not in METADATA}
    return BUILDERS.lookup(architecture).config_of(**kwargs)


def parts(model):
    """``model``'s recorded parts (see the module docstring); ValueError for a model that was
    not built by deeplab_keras (or lost them, e.g. by ``keras.models.clone_model``)."""
    recorded = getattr(model, "parts", None)
    if not isinstance(recorded, dict) and not hasattr(recorded, "keys"):
        raise ValueError(f"model {model.name!r} is not a deeplab_keras model (it does not record "
                         "its logits, upsampling and backbone layers): build it with "
                         "deeplab_keras (a builder, from_preset or a saved .keras file of one)")
    return recorded


def resize_semantics(model):
    """How ``model`` resizes ("half_pixel", "align_corners" or "asymmetric"; see
    :mod:`deeplab_keras.layers.resize`), read from the one place that decides it: the model's own
    final upsampling layer. Inference and evaluation resize images and logits with it. A Keras
    model not built by deeplab_keras has none recorded: "half_pixel", Keras' own convention."""
    try:
        upsample = parts(model)["upsample"]
    except ValueError:
        return "half_pixel"
    return model.get_layer(upsample).semantics


@keras.saving.register_keras_serializable(package="deeplab_keras")
class DeepLab(keras.Model):
    """A DeepLab model (Keras 3 functional): see the module docstring. Build it with a builder
    (:func:`deeplab_keras.DeepLabV3`, ...), ``dk.build_model`` or ``from_preset``."""

    def __init__(self, inputs, outputs, *, parts=None, **kwargs):
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.parts = dict(parts or {})
        self.architecture, self.config = None, {}
        self.labels = self.palette = self.ignore_label = self.preprocessing = None

    def predict(self, x, *args, **kwargs):
        """``keras.Model.predict`` on a batch (N, H, W, 3); one (H, W, 3) image gets a clear
        error pointing to ``dk.segment`` (class map at the image's size) instead of Keras' shape
        error."""
        shape = getattr(x, "shape", None)
        if shape is not None and len(shape) == 3 and shape[-1] == 3:
            raise ValueError(f"model.predict takes a batch (N, H, W, 3); got one image of shape "
                             f"{tuple(shape)}. Use image[None] for a batch of one, or "
                             "dk.segment(model, image) for its class map at the image's size")
        return super().predict(x, *args, **kwargs)

    @property
    def num_classes(self):
        return int(self.outputs[0].shape[-1])

    @property
    def input_size(self):
        """The (height, width) the model is meant to run at: its fixed input shape, else the
        preset's ``preprocessing.input_size``, else None (any size)."""
        fixed = tuple(self.inputs[0].shape[1:3])
        if None not in fixed:
            return tuple(int(s) for s in fixed)
        size = (self.preprocessing or {}).get("input_size")
        return tuple(size) if size else None

    @property
    def output_stride(self):
        """Input pixels per output-stride feature (the builder's ``output_stride``), else None."""
        stride = (self.config or {}).get("output_stride")
        return int(stride) if stride else None

    @property
    def resize_semantics(self):
        """See :func:`resize_semantics`."""
        return resize_semantics(self)

    @property
    def align_corners(self):
        return self.resize_semantics == "align_corners"  # not "asymmetric" (TF1)

    def get_config(self):
        return _jsonable({"architecture": self.architecture, "config": self.config,
                          "labels": self.labels, "palette": self.palette,
                          "ignore_label": self.ignore_label, "preprocessing": self.preprocessing,
                          "name": self.name, "trainable": self.trainable})

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        if not config.get("architecture"):
            raise ValueError("a DeepLab config needs 'architecture' (and 'config', the builder "
                             "arguments): it comes from DeepLab.get_config()")
        kwargs = dict(config.get("config") or {})
        if "weights" in kwargs:
            # issue 19: loading a .keras file reads that file only (its own weights follow);
            # a weights source in its config would download, extract or read another file
            warnings.warn(f"ignored 'weights': {kwargs.pop('weights')!r} in the saved config of "
                          f"{config.get('name')!r}: a saved model loads its own weights and "
                          "never fetches or reads another file", stacklevel=2)
        kwargs["name"] = config.get("name")
        model = BUILDERS.build(config["architecture"], **kwargs,
                            **{k: config.get(k) for k in METADATA})
        model.trainable = config.get("trainable", True)
        return model


def finish(inputs, outputs, name, parts):
    """The model of a builder: :class:`DeepLab` (Keras 3) or a tf_keras functional model with the
    same ``parts`` attribute (QAT twin)."""
    if frontend.is_keras3():
        return DeepLab(inputs, outputs, name=name, parts=parts)
    model = frontend.get().Model(inputs, outputs, name=name)
    model.parts = dict(parts)
    return model
