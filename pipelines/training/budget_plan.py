"""Choices a task makes from how many epochs a run will last, measured once after its second
epoch and kept in workdir/budget_plan.json so a resumed run follows the same plan.

The learning-rate schedule already follows the clock (schedules.BudgetedSchedule); some data
choices must follow it too. On two cores the same GRID recipe sees ~150 epochs in an hour on
one host and ~50 on another, and the crop windows' best reach differs between the two
(BUILD.md, learning efficiency): the count of epochs, not a config value, has to decide.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from absl import logging

from data_prep.atomic import write_json_atomic

PLAN_FILE = "budget_plan.json"


class EpochRate:
    """Steps a second between the ends of this invocation's epochs, from the end of its first
    on: that one pays for graph tracing and warm-up, and read about 0.7x the steady rate on
    GRID (a projection of 36 epochs for an hour that saw 52)."""

    def __init__(self):
        self._first_end: tuple[float, int] | None = None
        self._last_end: tuple[float, int] | None = None
        self.steps_per_epoch: int | None = None

    def epoch_done(self, step: int, steps_in_epoch: int) -> None:
        end = (time.monotonic(), step)
        if self._first_end is None:
            self._first_end = end
        else:
            self._last_end = end
            self.steps_per_epoch = steps_in_epoch

    @property
    def steps_per_second(self) -> float | None:
        if self._first_end is None or self._last_end is None:
            return None
        (start, first_step), (end, last_step) = self._first_end, self._last_end
        return (last_step - first_step) / max(end - start, 1e-9)

    def projected_epochs(
        self, epoch: int, step: int, num_train_steps: int, seconds_left: float | None
    ) -> float | None:
        """Epochs the whole run will have seen when it stops: at num_train_steps, or when the
        time budget (seconds_left of it; None without one) runs out at the measured rate.
        None until an epoch after the first has ended."""
        rate = self.steps_per_second
        if rate is None or not self.steps_per_epoch:
            return None
        steps_left = max(0, num_train_steps - step)
        if seconds_left is not None:
            steps_left = min(steps_left, max(0.0, seconds_left) * rate)
        return epoch + steps_left / self.steps_per_epoch


def load_plan(workdir: Path) -> dict | None:
    """The plan an earlier invocation of this run made, or None."""
    path = workdir / PLAN_FILE
    return json.loads(path.read_text()) if path.exists() else None


def make_plan(task, workdir: Path, *, projected_epochs: float, epoch: int, rate: EpochRate) -> dict:
    """Asks the task for its choices at `projected_epochs` (the rate is measured by then);
    writes them, when there are any, to workdir/budget_plan.json and returns the plan."""
    choices = task.plan_for_epochs(projected_epochs)
    plan = {
        "decided_at_epoch": epoch,
        "projected_epochs": round(projected_epochs, 1),
        "steps_per_second": round(rate.steps_per_second, 3),
        "steps_per_epoch": rate.steps_per_epoch,
        "choices": choices,
    }
    if choices:
        write_json_atomic(workdir / PLAN_FILE, plan)
        logging.info(
            "the run is projected to last %.0f epochs (%.2f steps/s, %d steps an epoch): %s",
            projected_epochs,
            plan["steps_per_second"],
            rate.steps_per_epoch,
            json.dumps(choices),
        )
    return plan


class BudgetPlanner:
    """The training loop's side of the plan: follows the plan of an earlier invocation of
    this run, or measures the epochs and makes the plan once the rate is known."""

    def __init__(self, task, workdir: Path):
        self.task, self.workdir = task, workdir
        self.rate = EpochRate()
        self.plan = load_plan(workdir)
        if self.plan:
            task.budget_plan = self.plan["choices"]
            logging.info(
                "following the plan made at epoch %d: %s", self.plan["decided_at_epoch"], self.plan
            )

    def before_epoch(
        self, epoch: int, step: int, num_train_steps: int, seconds_left: float | None
    ) -> None:
        """Makes the plan (and hands the task its choices) when none is made and the rate
        is measured."""
        if self.plan is not None:
            return
        projected = self.rate.projected_epochs(epoch, step, num_train_steps, seconds_left)
        if projected is not None:
            self.plan = make_plan(
                self.task, self.workdir, projected_epochs=projected, epoch=epoch, rate=self.rate
            )
            self.task.budget_plan = self.plan["choices"]

    def epoch_done(self, step: int, steps_in_epoch: int) -> None:
        self.rate.epoch_done(step, steps_in_epoch)
