"""Loading weights into a built model: a Keras weights file (``.weights.h5``), a full ``.keras``
model file, or (see :mod:`deeplab_keras.zoo`) a preset name."""
import os


def load_weights(model, weights):
    """Load ``weights`` (path or preset name) into ``model`` by layer name."""
    if isinstance(weights, (str, os.PathLike)) and os.path.exists(os.fspath(weights)):
        path = os.fspath(weights)
        if path.endswith(".keras"):
            import keras
            source = keras.saving.load_model(path, compile=False)
            copied = 0
            by_name = {layer.name: layer for layer in source.layers}
            for layer in model.layers:
                if layer.name in by_name and layer.weights:
                    layer.set_weights(by_name[layer.name].get_weights())
                    copied += 1
            if not copied:
                raise ValueError(f"{path}: no layer of {model.name!r} found in the saved model")
            return model
        model.load_weights(path)
        return model
    raise ValueError(f"weights={weights!r} is neither an existing file nor a known preset")
