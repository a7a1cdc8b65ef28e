"""Assign external weights onto a model by layer name, failing loudly.

Importers turn their source into ``{layer_name: {weight_name: array}}`` with Keras weight names
(``kernel``, ``bias``, ``gamma``, ``beta``, ``moving_mean``, ``moving_variance``) and call
:func:`assign`, which refuses a source with missing, unused or mis-shaped tensors. Which layers
are the classifier and which the head (not backbone) the model itself says
(:func:`deeplab_keras.models.parts`).
"""
import numpy as np

from deeplab_keras.models.common import head_layer_names, weighted_layers
from deeplab_keras.models.deeplab import parts


class WeightMismatchError(ValueError):
    """The source weights do not fit the model (missing, unused or mis-shaped tensors)."""


def _list(items, limit=12):
    items = sorted(items)
    more = f" ... and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def assign(model, source, *, skip_classifier=False, backbone_only=False, origin="source"):
    """Set ``model``'s weights from ``source`` ({layer: {weight: array}}).

    Args:
        skip_classifier: leave the classifier (the model's ``parts["classifier"]``) as initialised and
            ignore the source's (a new head for a different number of classes).
        backbone_only: the source holds a backbone only: head layers of the model may be missing
            from it (they keep their initialisation); every backbone layer must be there.
    Returns:
        a report dict: ``assigned`` (layer names), ``kept`` (layers left as initialised).
    Raises:
        WeightMismatchError listing every missing, unused and mis-shaped tensor.
    """
    missing, shapes, assigned, kept = [], [], [], []
    used = set()
    recorded = parts(model)
    classifiers = set(recorded["classifier"])
    head = set(head_layer_names(model, recorded)) if backbone_only else set()
    for layer in weighted_layers(model):
        skip = (skip_classifier and layer.name in classifiers)
        if skip or (layer.name in head and layer.name not in source):
            kept.append(layer.name)
            continue
        tensors = source.get(layer.name)
        if tensors is None:
            missing.append(layer.name)
            continue
        values = []
        for w in layer.weights:
            key = weight_key(w)
            if key not in tensors:
                missing.append(f"{layer.name}/{key}")
                continue
            value = np.asarray(tensors[key])
            if tuple(value.shape) != tuple(w.shape):
                shapes.append(f"{layer.name}/{key}: {origin} {tuple(value.shape)} vs model "
                              f"{tuple(w.shape)}")
            values.append(value)
            used.add((layer.name, key))
        if len(values) == len(layer.weights):
            assigned.append((layer, values))
    unused = [f"{layer}/{key}" for layer, tensors in source.items() for key in tensors
              if (layer, key) not in used and not (skip_classifier and layer in classifiers)]
    if missing or unused or shapes:
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing in the {origin}: {_list(missing)}")
        if unused:
            problems.append(f"{len(unused)} unused {origin} tensors (no such layer/weight in "
                            f"{model.name!r}): {_list(unused)}")
        if shapes:
            problems.append(f"{len(shapes)} mis-shaped: {_list(shapes)}")
        hint = ""
        if any(s.split("/")[0] in classifiers for s in shapes):
            hint = " (for a different number of classes pass skip_classifier=True / num_classes=...)"
        raise WeightMismatchError(f"weights from {origin} do not fit {model.name!r}: "
                                  + "; ".join(problems) + hint)
    for layer, values in assigned:
        layer.set_weights([v.astype(np.asarray(w).dtype) for v, w in zip(values, layer.get_weights())])
    return {"assigned": [layer.name for layer, _ in assigned], "kept": kept}


def weight_key(variable):
    """Keras 3 and tf_keras agree on these names except the depthwise kernel."""
    key = variable.name.split("/")[-1].split(":")[0]
    return "kernel" if key == "depthwise_kernel" else key


def model_weights(model):
    """The inverse: ``{layer: {weight: array}}`` of ``model`` (for transfers between models)."""
    return {layer.name: {weight_key(w): np.asarray(v)
                         for w, v in zip(layer.weights, layer.get_weights())}
            for layer in weighted_layers(model)}
