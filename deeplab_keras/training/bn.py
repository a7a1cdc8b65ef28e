"""Batch norm for small or distributed batches: freeze (use the stored statistics, no updates)
or synchronize statistics across replicas."""
import keras


def batch_norm_layers(model):
    return [layer for layer in _walk(model)
            if isinstance(layer, keras.layers.BatchNormalization)]


def _walk(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):  # nested models (DeepLabV2's multi-scale core)
            yield from _walk(layer)


def freeze_batch_norm(model, names=None):
    """``trainable=False`` on BatchNorm layers (all, or those in ``names``, or whose name
    starts with one of ``names`` when given as a tuple of prefixes): Keras 3 then runs them in
    inference mode, with their moving statistics, and does not update them. Returns the count."""
    count = 0
    for layer in batch_norm_layers(model):
        if names is None or layer.name in names or (isinstance(names, tuple)
                                                   and layer.name.startswith(names)):
            layer.trainable = False
            count += 1
    return count


def synchronize_batch_norm(model, enabled=True):
    """Compute batch statistics across all replicas (``BatchNormalization(synchronized=True)``).

    Keras reads the attribute at call time, so setting it on built layers takes effect in the
    next traced train step. Only meaningful with the TensorFlow backend under a distribution
    strategy. Returns the count of layers changed."""
    layers = batch_norm_layers(model)
    for layer in layers:
        layer.synchronized = bool(enabled)
    return len(layers)


def recalibrate_batch_norm(model, dataset, steps):
    """"Precise BN" (Wu & Johnson, 2021): re-estimate the moving mean/variance of the trainable
    BatchNorm layers as the plain average of their batch statistics over ``steps`` batches of
    ``dataset`` (images only are used), weights unchanged. Fixes moving statistics that lag
    behind the weights after a short run (momentum 0.99 averages over ~100 steps).
    Frozen (``trainable=False``) layers are left alone. Returns the layers updated."""
    layers = [layer for layer in batch_norm_layers(model) if layer.trainable]
    saved = [layer.momentum for layer in layers]
    try:
        for k, batch in enumerate(dataset.take(steps), start=1):
            images = batch[0] if isinstance(batch, (tuple, list)) else batch
            for layer in layers:  # running average: new = old*(k-1)/k + batch/k
                layer.momentum = (k - 1) / k
            model(images, training=True)  # eager call: momentum is read each call
    finally:
        for layer, momentum in zip(layers, saved):
            layer.momentum = momentum
    return layers
