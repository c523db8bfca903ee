"""Choices that follow the epochs a run will last: projected once after the second epoch,
kept in the workdir, followed on resume (pipelines/training/budget_plan.py)."""

import json

import pytest

from configs import grid_lipnet
from pipelines.tasks import REGISTRY, register_task, task_for
from pipelines.tasks.lipreading import LipreadingTask
from pipelines.training import budget_plan
from pipelines.training.loop import train
from tests import tiny_task


class PlanningReverseTask(tiny_task.ReverseTask):
    """The reverse task with one budget-dependent choice; records what it was asked and
    which plan each epoch's batches were made under."""

    asked: list[float] = []
    epochs_seen: list[tuple[int, dict]] = []

    def plan_for_epochs(self, projected_epochs):
        PlanningReverseTask.asked.append(projected_epochs)
        return {"long_run": projected_epochs >= 2}

    def train_dataset(self, epoch, batch_size=None, shard=None):
        PlanningReverseTask.epochs_seen.append((epoch, dict(self.budget_plan)))
        return super().train_dataset(epoch, batch_size, shard)


@pytest.fixture
def planning_task():
    register_task("reverse", "tests.pipelines.training.test_budget_plan:PlanningReverseTask")
    PlanningReverseTask.asked.clear()
    PlanningReverseTask.epochs_seen.clear()
    yield
    REGISTRY.pop("reverse", None)


def test_the_plan_is_made_once_after_the_second_epoch_and_kept_on_resume(planning_task, tmp_path):
    config = tiny_task.get_config()
    config.data.prepared_dir = str(tmp_path / "data")
    config.eval_every = 0
    config.num_train_steps = 140  # 2,000 reversals in batches of 32: 63 steps an epoch
    task_for(config).prepare()
    summary = train(config, tmp_path / "train")

    # Without a time budget the projection is the step count: 2 + (140 - 126) / 63 epochs.
    assert PlanningReverseTask.asked == [pytest.approx(2 + 14 / 63)]
    choice = {"long_run": True}
    assert PlanningReverseTask.epochs_seen == [(0, {}), (1, {}), (2, choice)]
    plan = json.loads((tmp_path / "train" / budget_plan.PLAN_FILE).read_text())
    assert plan["choices"] == choice and plan["decided_at_epoch"] == 2
    assert plan["steps_per_epoch"] == 63 and plan["steps_per_second"] > 0
    assert summary["budget_plan"] == plan

    # A resume follows the recorded plan; it does not measure and choose again.
    PlanningReverseTask.epochs_seen.clear()
    config.num_train_steps = 200
    summary = train(config, tmp_path / "train")
    assert summary["final_step"] == 200
    assert len(PlanningReverseTask.asked) == 1
    assert PlanningReverseTask.epochs_seen == [(2, choice), (3, choice)]


def test_the_projection_follows_the_time_left_at_the_steady_rate(monkeypatch):
    # The first epoch (tracing, warm-up) ends at 30 s; the next two take 10 s each.
    clock = iter([30.0, 40.0, 50.0])
    monkeypatch.setattr(budget_plan.time, "monotonic", lambda: next(clock))
    rate = budget_plan.EpochRate()
    rate.epoch_done(step=20, steps_in_epoch=20)
    assert rate.projected_epochs(1, 20, 1000, None) is None
    rate.epoch_done(step=40, steps_in_epoch=20)
    rate.epoch_done(step=61, steps_in_epoch=21)
    assert rate.steps_per_second == pytest.approx(41 / 20)
    # 100 s left at 41/20 steps/s is 205 steps, under the 939 left to num_train_steps.
    assert rate.projected_epochs(3, 61, 1000, 100.0) == pytest.approx(3 + 205 / 21)
    assert rate.projected_epochs(3, 61, 1000, None) == pytest.approx(3 + 939 / 21)
    assert rate.projected_epochs(3, 61, 1000, -5.0) == pytest.approx(3.0)


def test_grid_windows_ramp_only_for_runs_of_few_epochs():
    task = LipreadingTask(grid_lipnet.get_config())
    assert task.crop_jitter_epochs == 30  # the first epoch, before any plan
    assert task.plan_for_epochs(52.0) == {"crop_jitter_epochs": 30}
    assert task.plan_for_epochs(150.0) == {"crop_jitter_epochs": 0}
    task.budget_plan = task.plan_for_epochs(150.0)
    assert task.crop_jitter_epochs == 0
    # short_budget ramps whatever the count; a config without a ramp has nothing to plan.
    assert LipreadingTask(grid_lipnet.get_config("short_budget")).plan_for_epochs(150.0) == {}
    plain = grid_lipnet.get_config()
    plain.data.crop_jitter_epochs = 0
    assert LipreadingTask(plain).plan_for_epochs(20.0) == {}
