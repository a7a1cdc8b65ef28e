"""Training callbacks that Keras does not ship in the form we need: atomic per-epoch/best
checkpoints, a NaN guard that stops with an explanation, and a wall-clock budget."""
import json
import math
import os
import time

import keras

from deeplab_keras.utils import io, versions


def atomic_save_weights(model, path):
    """``model.save_weights`` to a temp file in the same folder, then ``os.replace``."""
    with io.atomic_path(path, suffix=".weights.h5") as tmp:
        model.save_weights(tmp)


class AtomicCheckpoint(keras.callbacks.Callback):
    """Each epoch: write ``{directory}/last.weights.h5`` and, when ``monitor`` improves,
    ``best.weights.h5``; both atomically. ``history.json`` keeps every epoch's logs.
    Only the chief writes when ``is_chief`` is False (multi-worker). Put it before
    ``BackupAndRestore`` in the callback list, so an epoch is marked done in the backup only
    after its checkpoint and history are written."""

    def __init__(self, directory, monitor="val_mean_iou", mode="max", is_chief=True):
        super().__init__()
        self.directory = directory
        self.monitor = monitor
        self.mode = mode
        self.is_chief = is_chief
        self.best = None
        self.history = []
        self._started = False

    def on_train_begin(self, logs=None):
        self._started = False
        if self.is_chief:  # left by a run killed while saving: our temp names, dead PIDs only
            for name in ("last.weights.h5", "best.weights.h5", "history.json"):
                io.clean_stale_temps(os.path.join(self.directory, name))

    def on_epoch_begin(self, epoch, logs=None):
        if self._started:
            return
        # The first epoch tells whether BackupAndRestore resumed the run: keep the history of
        # the epochs it restored (not of epochs run after the backup, which run again).
        self._started = True
        path = os.path.join(self.directory, "history.json")
        self.history, self.best = [], None
        if epoch > 0 and os.path.isfile(path):
            with open(path) as f:
                self.history = [h for h in json.load(f) if h["epoch"] <= epoch]
            values = [h[self.monitor] for h in self.history if self.monitor in h]
            if values:
                self.best = max(values) if self.mode == "max" else min(values)

    def on_epoch_end(self, epoch, logs=None):
        if not self.is_chief:
            return
        logs = {k: float(v) for k, v in (logs or {}).items()}
        logs["epoch"] = epoch + 1
        logs["time"] = time.time()
        self.history = [h for h in self.history if h["epoch"] < epoch + 1] + [logs]
        atomic_save_weights(self.model, os.path.join(self.directory, "last.weights.h5"))
        value = logs.get(self.monitor)
        if value is None:  # multi-output models prefix metric names with the output's name
            suffix = self.monitor[4:] if self.monitor.startswith("val_") else self.monitor
            matches = [k for k in logs if k.endswith(suffix) and
                       k.startswith("val_") == self.monitor.startswith("val_")]
            value = logs[matches[0]] if matches else None
        if value is not None and (self.best is None or
                                  (value > self.best if self.mode == "max" else value < self.best)):
            self.best = value
            atomic_save_weights(self.model, os.path.join(self.directory, "best.weights.h5"))
        io.write_json(os.path.join(self.directory, "history.json"), self.history)


class EpochSnapshots(keras.callbacks.Callback):
    """Keep the weights of each of the last ``last`` epochs of a ``epochs``-epoch run as
    ``{directory}/epoch_NNN.weights.h5`` (atomically), e.g. to average them afterwards
    (stochastic weight averaging, :func:`deeplab_keras.training.average_weights`)."""

    def __init__(self, directory, epochs, last, is_chief=True):
        super().__init__()
        if not (isinstance(last, int) and 1 <= last <= epochs):
            raise ValueError(f"last must be an integer in [1, {epochs}] (the run's epochs), got {last!r}")
        self.directory, self.epochs, self.last, self.is_chief = directory, epochs, last, is_chief

    def on_epoch_end(self, epoch, logs=None):
        if self.is_chief and epoch + 1 > self.epochs - self.last:
            os.makedirs(self.directory, exist_ok=True)
            atomic_save_weights(self.model, os.path.join(self.directory, f"epoch_{epoch + 1:03d}.weights.h5"))


class ChiefBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``keras.callbacks.BackupAndRestore`` where only the chief writes (and deletes) the backup
    and every worker restores from it, as tf.keras did for multi-worker training: all workers
    then resume from the same epoch (per-worker backups can disagree by one epoch when a
    worker dies between two workers' saves, and the cluster would deadlock). ``backup_dir``
    must be on storage all workers see."""

    def __init__(self, backup_dir, is_chief=True, **kwargs):
        # overrides the private BackupAndRestore._save_model: check it is still there
        versions.guard("keras", "ChiefBackupAndRestore (training/callbacks.py)",
                       keras.callbacks.BackupAndRestore, ("_save_model", "on_train_end"))
        super().__init__(backup_dir, **kwargs)
        self.is_chief = is_chief

    def _save_model(self):
        if self.is_chief:
            super()._save_model()

    def on_train_end(self, logs=None):
        if self.is_chief:
            super().on_train_end(logs)


class Throughput(keras.callbacks.Callback):
    """Adds ``images_per_sec`` (training steps only, validation excluded) to each epoch's logs."""

    def __init__(self, batch_size):
        super().__init__()
        self.batch_size = batch_size

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self._steps, self._seconds = time.time(), 0, None

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1

    def on_test_begin(self, logs=None):
        if self._seconds is None and self._steps:
            self._seconds = time.time() - self._start

    def on_epoch_end(self, epoch, logs=None):
        seconds = self._seconds or (time.time() - self._start)
        if logs is not None and self._steps:
            logs["images_per_sec"] = self._steps * self.batch_size / seconds
            logs["train_seconds"] = seconds


class NaNGuard(keras.callbacks.Callback):
    """Stop training with a ``FloatingPointError`` that says what went wrong and what to try,
    as soon as the loss is NaN or infinite (Keras's TerminateOnNaN only prints one line)."""

    def __init__(self, checkpoint_dir=None):
        super().__init__()
        self.checkpoint_dir = checkpoint_dir
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        lr = getattr(self.model.optimizer, "learning_rate", None)
        try:
            lr = float(keras.ops.convert_to_numpy(lr))
        except Exception:  # schedules/unknown types: report as is
            pass
        where = f" Last good weights: {self.checkpoint_dir}" if self.checkpoint_dir else ""
        raise FloatingPointError(
            f"training stopped: loss became {float(loss)} at epoch {self._epoch + 1}, batch "
            f"{batch + 1} (learning rate {lr}). Usual causes: learning rate too high (lower it or "
            f"add warm-up), float16 overflow (use mixed_bfloat16 or float32), labels outside "
            f"0..num_classes-1 that are not the ignore label, or an all-ignored batch with "
            f"class weights of 0.{where}")


class TimeBudget(keras.callbacks.Callback):
    """Stop training at the end of the first batch after ``minutes`` of wall-clock time."""

    def __init__(self, minutes):
        super().__init__()
        self.seconds = float(minutes) * 60.0
        self.start = None
        self.stopped = False

    def on_train_begin(self, logs=None):
        self.start = time.time()

    def on_train_batch_end(self, batch, logs=None):
        if time.time() - self.start > self.seconds:
            self.stopped = True
            self.model.stop_training = True
