"""Training: losses, schedules, batch-norm handling, callbacks, strategies and ``train``.

    from deeplab_keras.training import train
    model, history = train("camvid_deeplabv3plus_mobilenetv2", epochs=2)
"""
from deeplab_keras.training.averaging import average_weights
from deeplab_keras.training.bn import freeze_batch_norm, recalibrate_batch_norm, synchronize_batch_norm
from deeplab_keras.training.callbacks import AtomicCheckpoint, EpochSnapshots, NaNGuard, TimeBudget
from deeplab_keras.training.config import DEFAULTS, load_recipe, make_config, parse_override
from deeplab_keras.training.losses import SegmentationLoss, median_frequency_weights
from deeplab_keras.training.schedules import PolyWarmup
from deeplab_keras.training.strategy import STRATEGIES, get_strategy
from deeplab_keras.training.trainer import train

__all__ = ["train", "SegmentationLoss", "median_frequency_weights", "PolyWarmup",
           "freeze_batch_norm", "recalibrate_batch_norm", "synchronize_batch_norm", "AtomicCheckpoint", "EpochSnapshots",
           "average_weights", "NaNGuard",
           "TimeBudget", "get_strategy", "STRATEGIES", "make_config", "load_recipe",
           "parse_override", "DEFAULTS"]
