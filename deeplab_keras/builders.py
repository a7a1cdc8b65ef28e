"""The public builders: ``dk.DeepLabV3(..., weights=...)``, ``dk.build_model`` and
``dk.BUILDERS``. Each is the architecture of :mod:`deeplab_keras.models` composed with
:func:`deeplab_keras.hub.weights.load_weights`: the models below never fetch or read weights
(like torchvision's builders, whose weights entry is resolved outside the model code).

    model = dk.DeepLabV3(num_classes=21, backbone="mobilenet_v2", weights="model.tflite")
"""
import functools
import inspect

from deeplab_keras import models
from deeplab_keras.hub.weights import load_weights


def with_weights(builder):
    """``builder`` (an architecture) plus ``weights=`` (preset name, file or URL; see
    :func:`~deeplab_keras.hub.weights.load_weights`) and ``allow_unpinned=``."""
    @functools.wraps(builder)
    def build(*args, weights=None, allow_unpinned=False, **kwargs):
        model = builder(*args, **kwargs)
        if weights is not None:
            load_weights(model, weights, allow_unpinned=allow_unpinned)
        return model

    params = list(inspect.signature(builder).parameters.values())
    extra = [inspect.Parameter("weights", inspect.Parameter.KEYWORD_ONLY, default=None),
             inspect.Parameter("allow_unpinned", inspect.Parameter.KEYWORD_ONLY, default=False)]
    at = next((i for i, p in enumerate(params) if p.kind is inspect.Parameter.VAR_KEYWORD),
              len(params))
    build.__signature__ = inspect.Signature(params[:at] + extra + params[at:])
    build.__doc__ = (builder.__doc__ or "") + (
        "\n    Weights (:func:`deeplab_keras.load_weights`): ``weights=`` a preset name, a weights "
        "file or a URL; ``allow_unpinned=True`` for downloads without a pinned checksum.\n")
    return build


#: architecture name -> public builder: a live view of the one registry,
#: :data:`deeplab_keras.models.BUILDERS`, each entry with ``weights=`` added (an architecture
#: registered later shows up here too)
BUILDERS = models.BUILDERS.view(with_weights)
DeepLabV1 = BUILDERS["deeplabv1"]
"""DeepLab v1 (LargeFOV): :func:`deeplab_keras.models.DeepLabV1` plus ``weights=``."""
DeepLabV2 = BUILDERS["deeplabv2"]
"""DeepLab v2: :func:`deeplab_keras.models.DeepLabV2` plus ``weights=``."""
DeepLabV3 = BUILDERS["deeplabv3"]
"""DeepLab v3: :func:`deeplab_keras.models.DeepLabV3` plus ``weights=``."""
DeepLabV3Plus = BUILDERS["deeplabv3plus"]
"""DeepLab v3+: :func:`deeplab_keras.models.DeepLabV3Plus` plus ``weights=``."""


def build_model(architecture, *, weights=None, allow_unpinned=False, **config):
    """Build from a config dict, e.g. ``build_model("deeplabv3", backbone="mobilenet_v2", ...)``,
    and load ``weights`` (preset name, file or URL) if given. The one ``build_model``: below
    this layer (models, importers, hub) an architecture is built with
    ``models.BUILDERS.build(architecture, **config)``."""
    return BUILDERS.lookup(architecture)(weights=weights, allow_unpinned=allow_unpinned, **config)
