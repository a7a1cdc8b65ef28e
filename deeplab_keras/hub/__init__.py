"""Getting weights into models, one level above :mod:`deeplab_keras.models`: the preset schema
(:mod:`.preset`) and catalogue (:mod:`.zoo`), the converted-weights cache (:mod:`.converted`) and
:func:`~deeplab_keras.hub.weights.load_weights` / ``from_preset`` (:mod:`.weights`), the only
path from a preset, a file or a URL to a model. Importing this package loads nothing else
(``zoo list`` stays TensorFlow-free)."""
