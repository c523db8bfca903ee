"""The optimizer and its learning-rate schedule: budgeted, and scaled down by NaN rollbacks."""

import keras
import ml_collections
import tensorflow as tf

from pipelines.training.schedules import ScaledSchedule, budgeted_learning_rate_schedule


def make_optimizer(config: ml_collections.ConfigDict, learning_rate) -> keras.optimizers.Optimizer:
    """Adam, or AdamW when config.weight_decay > 0 (the same slots, so checkpoints carry over
    between the two)."""
    weight_decay = float(config.weight_decay)
    if weight_decay <= 0.0:
        return keras.optimizers.Adam(learning_rate)
    optimizer = keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay)
    # Biases and batch-norm offsets and scales set levels, not features; decaying them to zero
    # would only fight the normalisation.
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return optimizer


def build_optimizer(
    config: ml_collections.ConfigDict,
    model: keras.Model,
    lr_scale: tf.Variable,
    budget_fraction: tf.Variable,
) -> keras.optimizers.Optimizer:
    """make_optimizer over the config's schedule, following the time budget's spent fraction
    and times the rollbacks' `lr_scale`, built for the model's variables (in the strategy's
    scope)."""
    schedule = budgeted_learning_rate_schedule(config, budget_fraction)
    optimizer = make_optimizer(config, ScaledSchedule(schedule, lr_scale))
    optimizer.build(model.trainable_variables)
    return optimizer
