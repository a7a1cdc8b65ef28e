"""Weight averaging after training: the mean of several checkpoints of one run (stochastic
weight averaging over the last epochs, kept by :class:`~.callbacks.EpochSnapshots`). The
moving average during training is the optimizer's (setting ``ema_momentum``)."""
import numpy as np


def average_weights(model, paths):
    """Load the mean of the weight files ``paths`` (all written from ``model``'s architecture)
    into ``model`` and return it. Every variable is averaged, BatchNorm statistics included;
    re-estimate those afterwards with :func:`~.bn.recalibrate_batch_norm` where they were
    trained."""
    paths = [str(p) for p in paths]
    if not paths:
        raise ValueError("average_weights needs at least one weight file")
    total = None
    for path in paths:
        model.load_weights(path)
        weights = [np.asarray(w, np.float64) for w in model.get_weights()]
        total = weights if total is None else [t + w for t, w in zip(total, weights)]
    model.set_weights([(t / len(paths)).astype(w.dtype) for t, w in zip(total, model.get_weights())])
    return model
