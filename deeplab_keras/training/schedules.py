"""DeepLab's "poly" learning rate with linear warm-up, as a serializable Keras schedule."""
import keras
from keras import ops


@keras.saving.register_keras_serializable(package="deeplab_keras")
class PolyWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """``lr = base * (1 - t / total)^power`` (floored at ``end_learning_rate``), after
    ``warmup_steps`` of linear ramp from ``warmup_start * base``.

    ``t`` counts from the end of the warm-up, so the poly decay spans ``total_steps -
    warmup_steps`` steps and reaches ``end_learning_rate`` at ``total_steps``."""

    def __init__(self, base_learning_rate, total_steps, power=0.9, warmup_steps=0,
                 warmup_start=0.0, end_learning_rate=0.0):
        if total_steps < 1 or warmup_steps < 0 or warmup_steps >= max(total_steps, 1):
            raise ValueError(f"need 0 <= warmup_steps < total_steps, got warmup_steps="
                             f"{warmup_steps}, total_steps={total_steps}")
        self.base_learning_rate = float(base_learning_rate)
        self.total_steps = int(total_steps)
        self.power = float(power)
        self.warmup_steps = int(warmup_steps)
        self.warmup_start = float(warmup_start)
        self.end_learning_rate = float(end_learning_rate)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        base = self.base_learning_rate
        decay_steps = float(self.total_steps - self.warmup_steps)
        t = ops.clip(step - self.warmup_steps, 0.0, decay_steps)
        poly = (base - self.end_learning_rate) * (1.0 - t / decay_steps) ** self.power \
            + self.end_learning_rate
        if not self.warmup_steps:
            return poly
        ramp = base * (self.warmup_start + (1.0 - self.warmup_start) * step / self.warmup_steps)
        return ops.where(step < self.warmup_steps, ramp, poly)

    def get_config(self):
        return {"base_learning_rate": self.base_learning_rate, "total_steps": self.total_steps,
                "power": self.power, "warmup_steps": self.warmup_steps,
                "warmup_start": self.warmup_start, "end_learning_rate": self.end_learning_rate}
