"""``--strategy`` names -> ``tf.distribute`` strategies (TensorFlow's own distributed engine)."""
import json
import os

import tensorflow as tf

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
