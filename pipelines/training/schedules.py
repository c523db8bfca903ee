"""Learning-rate schedules (Keras' own), made to follow a time budget, with a checkpointed
scale for NaN rollbacks."""

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


class BudgetedSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A step schedule that also advances with the elapsed fraction of a time budget.

    The schedule is evaluated at max(step, budget_fraction * total_steps): on a host fast
    enough to finish total_steps inside the budget nothing changes; on a slower one the rate
    warms up and anneals over the budget instead of being cut off at its peak.
    `budget_fraction` is a variable the training loop sets (0 without a budget).
    """

    def __init__(self, base, budget_fraction: tf.Variable, total_steps: int):
        self.base, self.budget_fraction, self.total_steps = base, budget_fraction, total_steps

    def __call__(self, step):
        fraction = tf.cast(self.budget_fraction, tf.float32)
        equivalent = tf.maximum(tf.cast(step, tf.float32), fraction * float(self.total_steps))
        return self.base(equivalent)

    def get_config(self):
        return {
            "base": keras.optimizers.schedules.serialize(self.base),
            "total_steps": self.total_steps,
        }


def learning_rate_schedule(config: ml_collections.ConfigDict):
    """Linear warm-up to config.learning_rate, then cosine decay to config.min_learning_rate."""
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if config.warmup_steps else config.learning_rate,
        decay_steps=max(1, config.decay_steps),
        alpha=config.min_learning_rate / config.learning_rate,
        warmup_target=config.learning_rate if config.warmup_steps else None,
        warmup_steps=config.warmup_steps,
    )


def budgeted_learning_rate_schedule(config: ml_collections.ConfigDict, budget_fraction):
    """`learning_rate_schedule` that follows config.max_train_minutes when one is set."""
    total_steps = max(1, config.warmup_steps + config.decay_steps)
    return BudgetedSchedule(learning_rate_schedule(config), budget_fraction, total_steps)
