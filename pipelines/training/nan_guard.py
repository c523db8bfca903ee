"""What a run does when its loss (or, in float32, its gradient norm) stops being finite:
stop with the last good checkpoint named, or (config.nan_policy="rollback") go back to that
checkpoint with a lower learning rate, at most config.max_nan_rollbacks times."""

import math

import tensorflow as tf
from absl import logging

from pipelines.training.checkpointing import RunCheckpoints
from pipelines.training.metrics import MetricsLog


class NonFiniteLossError(RuntimeError):
    """Raised when the training loss becomes NaN or Inf."""


class NanGuard:
    """The NaN/Inf policy of one run.

    Args:
        policy: "stop" or "rollback".
        max_rollbacks: rollbacks allowed in this invocation before stopping after all.
        lr_factor: what each rollback multiplies the learning rate's scale by.
        lr_scale: the checkpointed learning-rate scale (Progress.lr_scale).
        loss_scaled: float16 with a loss scale, whose overflowing gradients are expected
            (the step skips them and halves the scale), so only the loss is checked.
    """

    def __init__(
        self,
        *,
        policy: str,
        max_rollbacks: int,
        lr_factor: float,
        checkpoints: RunCheckpoints,
        lr_scale: tf.Variable,
        metrics: MetricsLog,
        loss_scaled: bool,
    ):
        self.policy, self.max_rollbacks, self.lr_factor = policy, max_rollbacks, lr_factor
        self.checkpoints, self.lr_scale, self.metrics = checkpoints, lr_scale, metrics
        self.loss_scaled = loss_scaled
        self.rollbacks = 0

    def step_is_finite(self, loss: float, grad_norm: tf.Tensor) -> bool:
        gradients_ok = self.loss_scaled or math.isfinite(float(grad_norm))
        return math.isfinite(loss) and gradients_ok

    def roll_back(self, loss: float, step: int) -> int:
        """Returns to the last checkpoint with a lower learning rate; returns its step.

        Raises:
            NonFiniteLossError: the policy is "stop", the rollbacks are spent, or there is
                no checkpoint yet.
        """
        latest = self.checkpoints.latest
        can_roll_back = self.policy == "rollback" and self.rollbacks < self.max_rollbacks and latest
        if not can_roll_back:
            raise NonFiniteLossError(
                f"training loss became {loss} at step {step}; the last good checkpoint "
                f"is {latest or 'none (no checkpoint written yet)'}; "
                "lower --config.learning_rate, check the data, or set "
                "--config.nan_policy=rollback"
            )
        step = self.checkpoints.roll_back()
        self.lr_scale.assign(self.lr_scale * self.lr_factor)
        self.rollbacks += 1
        logging.warning(
            "non-finite loss: rolled back to %s (step %d), learning rate scaled by %.3g",
            latest,
            step,
            float(self.lr_scale.numpy()),
        )
        self.metrics.write(step, nan_rollback=self.rollbacks, lr_scale=float(self.lr_scale.numpy()))
        return step
