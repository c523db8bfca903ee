"""Learning-rate schedules (Keras' own), with a checkpointed scale for NaN rollbacks."""

import keras
import ml_collections
import tensorflow as tf


class ScaledSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A schedule times a checkpointed scale (lowered after a NaN/Inf rollback)."""

    def __init__(self, base, scale: tf.Variable):
        self.base, self.scale = base, scale

    def __call__(self, step):
        return self.base(step) * tf.cast(self.scale, tf.float32)

    def get_config(self):
        return {"base": keras.optimizers.schedules.serialize(self.base)}


def learning_rate_schedule(config: ml_collections.ConfigDict):
    """Linear warm-up to config.learning_rate, then cosine decay to config.min_learning_rate."""
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if config.warmup_steps else config.learning_rate,
        decay_steps=max(1, config.decay_steps),
        alpha=config.min_learning_rate / config.learning_rate,
        warmup_target=config.learning_rate if config.warmup_steps else None,
        warmup_steps=config.warmup_steps,
    )
