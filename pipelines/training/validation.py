"""Periodic validation with the task's metric, the best checkpoint by it, and early stopping
after config.early_stopping_patience evaluations without a gain."""

import math
import time

from absl import logging

from pipelines.tasks import Task
from pipelines.tasks.base import Validator
from pipelines.training.checkpointing import RunCheckpoints
from pipelines.training.clock import BudgetClock
from pipelines.training.metrics import MetricsLog
from pipelines.training.progress import Progress


class Validation:
    """Runs the task's validator, logs the metric, keeps the best checkpoint and counts the
    evaluations without improvement (both checkpointed in Progress)."""

    def __init__(
        self,
        task: Task,
        validator: Validator | None,
        *,
        progress: Progress,
        checkpoints: RunCheckpoints,
        metrics: MetricsLog,
        clock: BudgetClock,
        patience: int,
    ):
        self.validate = validator  # Task.make_validator's
        self.metric, self.higher_is_better = task.metric, task.higher_is_better
        self.metric_name = f"val_{task.metric}"
        self.progress, self.checkpoints = progress, checkpoints
        self.metrics, self.clock, self.patience = metrics, clock, patience

    def improved(self, value: float) -> bool:
        best = float(self.progress.best_metric.numpy())
        if math.isnan(best):
            return True
        return value > best if self.higher_is_better else value < best

    def evaluate(self, step: int) -> float | None:
        """The metric on the validation split at `step` (None when the task has no validator)."""
        if self.validate is None:
            return None
        started = time.monotonic()
        value, example = self.validate()
        self.clock.account()
        self.metrics.write(step, **{self.metric_name: value}, **self.progress.position())
        logging.info(
            "step %d: validation %s %.2f (%.1fs); e.g. %r",
            step,
            self.metric.upper(),
            value,
            time.monotonic() - started,
            example,
        )
        if self.improved(value):
            self.progress.best_metric.assign(value)
            self.progress.evals_without_improvement.assign(0)
            self.checkpoints.save_best(step)
        else:
            self.progress.evals_without_improvement.assign_add(1)
        return value

    def early_stop_reason(self) -> str | None:
        """Why to stop now (patience spent), or None to go on."""
        waited = int(self.progress.evals_without_improvement.numpy())
        if self.patience and waited >= self.patience:
            return f"early stopping: no {self.metric.upper()} gain in {self.patience} evaluations"
        return None

    def best(self) -> float:
        return float(self.progress.best_metric.numpy())
