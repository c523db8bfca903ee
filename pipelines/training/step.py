"""One training step: the model's loss over the (possibly distributed) batch, gradients summed
over replicas, the front-end freeze, global-norm clipping and the update; float16's loss scale.

    train_step = make_train_step(model, optimizer, strategy, loss_scale, freeze, ...)
    loss, target_tokens, grad_norm = train_step(batch)
"""

from collections.abc import Callable

import keras
import tensorflow as tf

from pipelines.training.freeze import FrontendFreeze

# Good float16 steps after which the loss scale doubles.
GROWTH_INTERVAL = 2000


class LossScale:
    """float16's dynamic loss scale: the loss is multiplied by it before the gradients and
    they are divided by it after; a step whose gradients overflow is skipped and halves it,
    GROWTH_INTERVAL good steps in a row double it. Without `enabled` it does nothing.

    Args:
        scale, good_steps: the checkpointed variables (Progress.loss_scale, .good_steps).
    """

    def __init__(self, scale: tf.Variable, good_steps: tf.Variable, enabled: bool):
        self.scale, self.good_steps, self.enabled = scale, good_steps, enabled

    def scale_loss(self, loss: tf.Tensor) -> tf.Tensor:
        return loss * self.scale if self.enabled else loss

    def unscale(self, gradients: list) -> list:
        if not self.enabled:
            return gradients
        return [tf.convert_to_tensor(g) / self.scale for g in gradients]

    def update(self, grad_norm: tf.Tensor) -> None:
        """After a step (in graph): grows or halves the scale by whether grad_norm is finite."""
        if not self.enabled:
            return
        if tf.math.is_finite(grad_norm):
            self.good_steps.assign_add(1)
            if self.good_steps >= GROWTH_INTERVAL:
                self.scale.assign(self.scale * 2.0)
                self.good_steps.assign(0)
        else:
            self.scale.assign(tf.maximum(self.scale / 2.0, 1.0))
            self.good_steps.assign(0)


def replica_loss(model, batch, label_smoothing: float):
    """The model's weighted loss terms on this replica's batch, each normalised by its count
    over the whole global batch (so replica losses add up); returns (loss, terms)."""
    context = tf.distribute.get_replica_context()
    outputs = model(batch, training=True)
    terms = model.loss_terms(batch, outputs, label_smoothing)
    loss = 0.0
    for term in terms:
        count = context.all_reduce(tf.distribute.ReduceOp.SUM, term.count)
        loss += term.weight * term.total / tf.maximum(count, 1.0)
    return loss, terms


def apply_gradients(optimizer, gradients: list, variables: list, finite: tf.Tensor) -> None:
    """Applies the step's gradients unless they are non-finite: the weights then stay at the
    last good step."""
    replicas = tf.distribute.get_replica_context().num_replicas_in_sync
    if replicas == 1:
        if finite:
            optimizer.apply_gradients(zip(gradients, variables, strict=True))
    else:
        # A cross-replica update cannot sit inside tf.cond: zero non-finite gradients
        # instead. The optimizer sums over replicas again, so each hands in its share.
        shares = [tf.where(finite, g / replicas, tf.zeros_like(g)) for g in gradients]
        optimizer.apply_gradients(zip(shares, variables, strict=True))


def make_replica_step(
    model: keras.Model,
    optimizer: keras.optimizers.Optimizer,
    loss_scale: LossScale,
    freeze: FrontendFreeze,
    label_smoothing: float,
    clip_norm: float,
) -> Callable:
    """The step one replica runs: batch -> (loss, target tokens, gradient global norm)."""
    variables = model.trainable_variables

    def replica_step(batch):
        context = tf.distribute.get_replica_context()
        with tf.GradientTape() as tape:
            loss, terms = replica_loss(model, batch, label_smoothing)
            scaled_loss = loss_scale.scale_loss(loss)
        gradients = loss_scale.unscale(tape.gradient(scaled_loss, variables))
        if context.num_replicas_in_sync > 1:
            gradients = [tf.convert_to_tensor(g) for g in gradients]  # IndexedSlices too
            gradients = context.all_reduce(tf.distribute.ReduceOp.SUM, gradients)
        gradients = freeze.hold(gradients, variables, optimizer.iterations)
        gradients, grad_norm = tf.clip_by_global_norm(gradients, clip_norm)
        apply_gradients(optimizer, gradients, variables, tf.math.is_finite(grad_norm))
        return loss, terms[0].count, grad_norm

    return replica_step


def make_train_step(
    model: keras.Model,
    optimizer: keras.optimizers.Optimizer,
    strategy: tf.distribute.Strategy,
    loss_scale: LossScale,
    freeze: FrontendFreeze,
    *,
    label_smoothing: float,
    clip_norm: float,
    batch_signature: dict,
) -> Callable:
    """The compiled step over a whole (distributed) batch: returns (loss summed over replicas,
    target tokens summed over replicas, mean gradient norm)."""
    replica_step = make_replica_step(
        model, optimizer, loss_scale, freeze, label_smoothing, clip_norm
    )
    total = tf.distribute.ReduceOp.SUM

    def distributed_step(batch):
        loss, num_tokens, grad_norm = strategy.run(replica_step, args=(batch,))
        grad_norm = strategy.reduce(tf.distribute.ReduceOp.MEAN, grad_norm, axis=None)
        loss_scale.update(grad_norm)
        return (
            strategy.reduce(total, loss, axis=None),
            strategy.reduce(total, num_tokens, axis=None),
            grad_norm,
        )

    if strategy.num_replicas_in_sync == 1:
        return tf.function(distributed_step, input_signature=[batch_signature])
    return tf.function(distributed_step, reduce_retracing=True)
