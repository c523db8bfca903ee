"""A run's position and counters, checkpointed beside the model and optimizer so a resume
carries on where the run stopped (data order, best metric, time spent, loss scale)."""

import math

import tensorflow as tf


def _variable(value, dtype=None) -> tf.Variable:
    return tf.Variable(value, dtype=dtype, trainable=False)


class Progress:
    """The checkpointed counters; create it in the strategy's scope.

    The attribute names are the checkpoint's keys: renaming one orphans it in old runs.
    """

    def __init__(self, loss_scaled: bool):
        self.epoch = _variable(0, tf.int64)
        self.batch_in_epoch = _variable(0, tf.int64)
        self.best_metric = _variable(math.nan, tf.float64)
        self.evals_without_improvement = _variable(0, tf.int64)
        self.lr_scale = _variable(1.0, tf.float64)  # lowered by each NaN rollback
        # Wall-clock seconds and examples of the whole run, resumes included: the time budget
        # and the learning curves against minutes and examples seen use them.
        self.train_seconds = _variable(0.0, tf.float64)
        self.examples_seen = _variable(0, tf.int64)
        # float16's dynamic loss scale (pipelines/training/step.py: LossScale).
        self.loss_scale = _variable(2.0**15 if loss_scaled else 1.0)
        self.good_steps = _variable(0, tf.int64)

    def checkpointed(self) -> dict[str, tf.Variable]:
        """{checkpoint key: variable}, for tf.train.Checkpoint(**...)."""
        return dict(vars(self))

    def position(self) -> dict:
        """Where the run stands in examples and minutes, for the metrics log."""
        return {
            "examples_seen": int(self.examples_seen.numpy()),
            "train_minutes": round(float(self.train_seconds.numpy()) / 60.0, 3),
        }
