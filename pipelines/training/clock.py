"""The time budget (config.max_train_minutes) of a run, resumes included."""

import time

import tensorflow as tf


class BudgetClock:
    """Training seconds of the whole run, against a budget (0 minutes: none).

    Args:
        train_seconds: the checkpointed seconds of the run so far (Progress.train_seconds);
            `account` brings it up to date.
        budget_fraction: the share of the budget spent, which the learning-rate schedule
            follows (schedules.BudgetedSchedule); stays 0 without a budget.
        max_train_minutes: the budget.
    """

    def __init__(
        self, train_seconds: tf.Variable, budget_fraction: tf.Variable, max_train_minutes: float
    ):
        self.train_seconds, self.budget_fraction = train_seconds, budget_fraction
        self.max_train_minutes = max_train_minutes
        self.budget_seconds = 60.0 * max_train_minutes
        self.seconds_before = float(train_seconds.numpy())
        self.started = time.monotonic()

    def run_seconds(self) -> float:
        """Training seconds of the whole run so far (earlier invocations included)."""
        return self.seconds_before + time.monotonic() - self.started

    def invocation_seconds(self) -> float:
        """Seconds since this invocation's clock started."""
        return time.monotonic() - self.started

    def seconds_left(self) -> float | None:
        """Seconds of the budget left (negative once spent), or None without a budget."""
        return self.budget_seconds - self.run_seconds() if self.budget_seconds else None

    def time_is_up(self) -> bool:
        return bool(self.budget_seconds) and self.run_seconds() >= self.budget_seconds

    def account(self) -> None:
        """Writes the seconds spent to the checkpointed counter and the schedule's fraction."""
        self.train_seconds.assign(self.run_seconds())
        if self.budget_seconds:
            self.budget_fraction.assign(min(1.0, self.run_seconds() / self.budget_seconds))
