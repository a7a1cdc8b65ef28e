"""``import deeplab_keras`` registers its Keras classes (:class:`~deeplab_keras.models.DeepLab`)
for ``keras.saving.load_model``, without importing Keras (the command line's ``--help`` stays
TensorFlow-free): at once if Keras is already imported, else right after Keras' own import, by
a one-shot post-import hook on ``sys.meta_path``.

Keras resolves a saved ``"deeplab_keras>DeepLab"`` only through its registry of custom objects
(it imports no module named in a file, by design), so the class must be registered before a
file is loaded.
"""
import importlib.abc
import sys
import warnings

_KERAS = "keras"


def register():
    """Import the module whose decorator registers the DeepLab class (and its builders)."""
    from deeplab_keras.models import deeplab  # noqa: F401


def _importing_ours():
    """True while a deeplab_keras submodule is still executing its import: importing
    :mod:`deeplab_keras.models` then would meet that half-initialised module (a circular import)."""
    return any(getattr(getattr(m, "__spec__", None), "_initializing", False)
               for n, m in list(sys.modules.items()) if n.startswith("deeplab_keras."))


class _DeepLabOnFirstUse:
    """Registered as ``deeplab_keras>DeepLab`` when Keras finishes importing in the middle of a
    deeplab_keras import (registering the real class then would be a circular import): loading a
    file imports :mod:`deeplab_keras.models.deeplab` and builds the real class, whose own
    registration replaces this stand-in as soon as that module is imported."""

    def get_config(self):  # Keras registers only classes that have one
        raise NotImplementedError

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from deeplab_keras.models.deeplab import DeepLab

        return DeepLab.from_config(config)


def _register_quietly():
    try:
        if _importing_ours():
            import keras

            keras.saving.register_keras_serializable("deeplab_keras", "DeepLab")(_DeepLabOnFirstUse)
            return
        register()
    except Exception as err:  # never break the user's own ``import keras``
        warnings.warn(f"deeplab_keras could not register its Keras classes ({err}); import "
                      "deeplab_keras.models before keras.saving.load_model", stacklevel=3)


class _AfterKerasImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: the spec of ``keras`` comes from the other finders, its loader
    wrapped so that registration runs once Keras is fully imported; the hook then removes
    itself. (A spec asked for without an import, e.g. TensorFlow's
    ``importlib.util.find_spec("keras")``, is never executed: the hook stays until the import.)"""

    def find_spec(self, name, path=None, target=None):
        if name != _KERAS:
            return None
        spec = None
        for finder in [f for f in sys.meta_path if f is not self]:
            find = getattr(finder, "find_spec", None)
            spec = find(name, path, target) if find is not None else None
            if spec is not None:
                break
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_register(module):
            exec_module(module)
            remove_hook()
            _register_quietly()

        spec.loader.exec_module = exec_and_register
        return spec


_HOOK = _AfterKerasImport()


def remove_hook():
    if _HOOK in sys.meta_path:
        sys.meta_path.remove(_HOOK)


def install():
    """Register now if Keras is imported, else when it is (idempotent)."""
    module = sys.modules.get(_KERAS)
    if module is not None and getattr(getattr(module, "__spec__", None), "_initializing", False):
        return  # Keras is importing deeplab_keras itself: nothing to register yet
    if module is not None:
        _register_quietly()
    elif _HOOK not in sys.meta_path:
        sys.meta_path.insert(0, _HOOK)
