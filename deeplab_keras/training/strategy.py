"""``--strategy`` names -> ``tf.distribute`` strategies (TensorFlow's own distributed engine)."""
import json
import os

import tensorflow as tf

from deeplab_keras.utils import versions

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def get_strategy(name="default", tpu=None):
    """``default``: one device; ``mirrored``: all local GPUs; ``multi_worker``:
    ``MultiWorkerMirroredStrategy`` configured by ``TF_CONFIG``; ``tpu``: ``TPUStrategy``
    (``tpu`` = TPU name/address, default from the environment)."""
    if name in (None, "default"):
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        config = os.environ.get("TF_CONFIG")
        if not config:
            raise ValueError("--strategy multi_worker needs the TF_CONFIG environment variable "
                             '(e.g. {"cluster": {"worker": ["host1:port", "host2:port"]}, '
                             '"task": {"type": "worker", "index": 0}})')
        try:
            json.loads(config)
        except ValueError as err:
            raise ValueError(f"TF_CONFIG is not valid JSON: {err}") from None
        _fix_keras_multi_worker_reduce()
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}")


def worker_info():
    """``(task_index, is_chief)`` from ``TF_CONFIG`` (``(0, True)`` without it)."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task", {})
    index = int(task.get("index", 0))
    kind = task.get("type", "worker")
    has_chief = "chief" in config.get("cluster", {})
    is_chief = kind == "chief" or (kind == "worker" and index == 0 and not has_chief)
    return index, is_chief


def fix_multi_worker_build(model, strategy):
    """Work around keras-team/keras#20585: Keras 3's ``fit`` builds metrics/optimizer from a
    first batch that it ``strategy.reduce``s, which ``MultiWorkerMirroredStrategy`` cannot do
    for a nested (image, label) batch. Build from this worker's local batch instead (only
    shapes matter for the build)."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return model
    versions.guard("keras", "the multi-worker build fix (training/strategy.py)", model,
                   ("_symbolic_build", "_maybe_symbolic_build"))

    def local(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def maybe_symbolic_build(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, it in iterator:
                data_batch = tf.nest.map_structure(local, next(it))
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    model._maybe_symbolic_build = maybe_symbolic_build
    return model


def _fix_keras_multi_worker_reduce():
    """Work around keras-team/keras#20585 (second half): under ``MultiWorkerMirroredStrategy``
    Keras 3 averages each step's logs with ``strategy.reduce("MEAN", v, axis=0)``, which fails
    for scalar losses/metrics. Average them over replicas with ``axis=None`` instead; every
    other case goes to Keras unchanged."""
    from keras.src.backend.tensorflow import trainer as tf_trainer
    if getattr(tf_trainer.reduce_per_replica, "_deeplab_keras_fix", False):
        return
    versions.guard("keras", "the multi-worker log reduction fix (training/strategy.py)", tf_trainer,
                   ("reduce_per_replica", "_collective_all_reduce_multi_worker"))
    original = tf_trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and tf_trainer._collective_all_reduce_multi_worker(strategy):
            return tf.nest.map_structure(
                lambda v: strategy.reduce("MEAN", v, axis=None if v.shape.rank == 0 else 0), values)
        return original(values, strategy, reduction)

    reduce_per_replica._deeplab_keras_fix = True
    tf_trainer.reduce_per_replica = reduce_per_replica
