"""The training loop's pieces on their own: the budget clock, the NaN guard, the loss scale,
the front-end freeze, the batch questions the loop asks the task, and the checkpoints."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from models.seq2seq import build_model
from pipelines.training import clock as clock_module
from pipelines.training.batches import BatchIdLog, examples_in, step_inputs
from pipelines.training.checkpointing import RunCheckpoints
from pipelines.training.clock import BudgetClock
from pipelines.training.freeze import FrontendFreeze
from pipelines.training.metrics import MetricsLog
from pipelines.training.nan_guard import NanGuard, NonFiniteLossError
from pipelines.training.progress import Progress
from pipelines.training.step import GROWTH_INTERVAL, LossScale
from pipelines.training.validation import Validation
from tests.tiny_task import ReverseTask, get_config


class FakeTime:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def fake_time(monkeypatch):
    now = FakeTime()
    monkeypatch.setattr(clock_module.time, "monotonic", now)
    return now


def test_the_clock_counts_earlier_invocations_and_sets_the_budget_fraction(fake_time):
    seconds = tf.Variable(30.0, dtype=tf.float64)
    fraction = tf.Variable(0.0, dtype=tf.float64)
    clock = BudgetClock(seconds, fraction, max_train_minutes=1.0)
    fake_time.now += 15.0
    assert clock.run_seconds() == 45.0 and clock.invocation_seconds() == 15.0
    assert clock.seconds_left() == 15.0 and not clock.time_is_up()
    clock.account()
    assert float(seconds.numpy()) == 45.0 and float(fraction.numpy()) == 0.75
    fake_time.now += 20.0
    assert clock.time_is_up()
    clock.account()
    assert float(fraction.numpy()) == 1.0  # capped


def test_without_a_budget_time_is_never_up_and_the_fraction_stays_zero(fake_time):
    fraction = tf.Variable(0.0, dtype=tf.float64)
    clock = BudgetClock(tf.Variable(0.0, dtype=tf.float64), fraction, max_train_minutes=0.0)
    fake_time.now += 1e6
    clock.account()
    assert not clock.time_is_up() and clock.seconds_left() is None
    assert float(fraction.numpy()) == 0.0


def _model():
    config = get_config()
    keras.utils.set_random_seed(0)
    return build_model(config.model, 13, 13)


def _checkpoints(tmp_path, model=None):
    model = model or _model()
    optimizer = keras.optimizers.Adam(0.1)
    optimizer.build(model.trainable_variables)
    progress = Progress(loss_scaled=False)
    checkpoints = RunCheckpoints(
        model, optimizer, progress, workdir=tmp_path, shared_workdir=tmp_path, keep=2
    )
    return model, optimizer, progress, checkpoints


def _guard(tmp_path, checkpoints, progress, policy="rollback", max_rollbacks=2):
    return NanGuard(
        policy=policy,
        max_rollbacks=max_rollbacks,
        lr_factor=0.5,
        checkpoints=checkpoints,
        lr_scale=progress.lr_scale,
        metrics=MetricsLog(tmp_path),
        loss_scaled=False,
    )


def test_the_nan_guard_rolls_back_with_a_lower_rate_then_gives_up(tmp_path):
    model, optimizer, progress, checkpoints = _checkpoints(tmp_path)
    guard = _guard(tmp_path, checkpoints, progress)
    with pytest.raises(NonFiniteLossError, match="at step 3; .*none \\(no checkpoint"):
        guard.roll_back(math.nan, 3)
    optimizer.iterations.assign(5)
    progress.batch_in_epoch.assign(5)
    checkpoints.save(5)
    optimizer.iterations.assign(7)
    progress.batch_in_epoch.assign(7)
    assert guard.roll_back(math.nan, 7) == 5
    assert int(progress.batch_in_epoch.numpy()) == 5  # the data position comes back too
    assert float(progress.lr_scale.numpy()) == 0.5
    assert guard.roll_back(math.inf, 6) == 5
    # The scale is checkpointed: a second rollback to the same checkpoint restores its 1.0
    # before lowering it, so the factors compound only across newer checkpoints.
    assert float(progress.lr_scale.numpy()) == 0.5
    with pytest.raises(NonFiniteLossError, match="at step 6; .*ckpt-5"):
        guard.roll_back(math.nan, 6)
    rows = MetricsLog(tmp_path).read()
    assert [r["nan_rollback"] for r in rows] == [1, 2]


def test_the_stop_policy_never_rolls_back(tmp_path):
    _, _, progress, checkpoints = _checkpoints(tmp_path)
    checkpoints.save(1)
    guard = _guard(tmp_path, checkpoints, progress, policy="stop")
    with pytest.raises(NonFiniteLossError, match="nan_policy=rollback"):
        guard.roll_back(math.nan, 2)


def test_the_guard_checks_gradients_only_without_a_loss_scale(tmp_path):
    _, _, progress, checkpoints = _checkpoints(tmp_path)
    guard = _guard(tmp_path, checkpoints, progress)
    assert guard.step_is_finite(1.0, tf.constant(2.0))
    assert not guard.step_is_finite(1.0, tf.constant(math.inf))
    assert not guard.step_is_finite(math.nan, tf.constant(2.0))
    guard.loss_scaled = True  # overflowing float16 gradients are skipped by the step
    assert guard.step_is_finite(1.0, tf.constant(math.inf))


def test_the_loss_scale_halves_on_overflow_and_doubles_after_good_steps():
    scale = tf.Variable(8.0)
    good = tf.Variable(GROWTH_INTERVAL - 2, dtype=tf.int64)
    loss_scale = LossScale(scale, good, enabled=True)
    update = tf.function(loss_scale.update)
    update(tf.constant(1.0))
    assert float(scale.numpy()) == 8.0 and int(good.numpy()) == GROWTH_INTERVAL - 1
    update(tf.constant(1.0))
    assert float(scale.numpy()) == 16.0 and int(good.numpy()) == 0
    update(tf.constant(math.inf))
    assert float(scale.numpy()) == 8.0
    assert float(loss_scale.scale_loss(tf.constant(2.0))) == 16.0
    assert float(loss_scale.unscale([tf.constant(16.0)])[0]) == 2.0
    off = LossScale(tf.Variable(1.0), tf.Variable(0, dtype=tf.int64), enabled=False)
    off.update(tf.constant(math.inf))
    assert float(off.scale.numpy()) == 1.0
    assert float(off.scale_loss(tf.constant(2.0))) == 2.0


def test_the_freeze_holds_what_the_model_names_until_its_step():
    model = _model()
    frozen = {id(v) for v in model.frontend_variables()}
    assert frozen and frozen < {id(v) for v in model.trainable_variables}
    variables = model.trainable_variables
    gradients = [tf.ones_like(v) for v in variables]
    freeze = FrontendFreeze(model, steps=3)
    for step, held in ((2, True), (3, False)):
        out = freeze.hold(gradients, variables, tf.constant(step, tf.int64))
        for g, v in zip(out, variables, strict=True):
            expect = 0.0 if held and id(v) in frozen else 1.0
            assert np.all(g.numpy() == expect)
    assert FrontendFreeze(object(), steps=0).hold(gradients, variables, 0) is gradients


def test_the_task_says_how_many_examples_a_batch_holds_and_which(tmp_path):
    task = ReverseTask(get_config())
    batch = {
        "labels": tf.zeros([3, 5], tf.int32),
        "inputs": tf.zeros([3, 4], tf.int32),
        "id": tf.constant([b"a", b"b", b"c"]),
    }
    assert int(task.batch_examples(batch)) == 3
    strategy = tf.distribute.get_strategy()
    assert examples_in(task, strategy, batch) == 3
    assert set(step_inputs(batch, ("inputs", "labels"))) == {"inputs", "labels"}
    BatchIdLog(task, strategy, tmp_path, on=False).write(1, batch)
    assert not (tmp_path / "batch_ids.jsonl").exists()
    BatchIdLog(task, strategy, tmp_path, on=True).write(7, batch)
    assert (tmp_path / "batch_ids.jsonl").read_text() == '{"step": 7, "ids": ["a", "b", "c"]}\n'


def test_validation_keeps_the_best_and_stops_when_patience_is_spent(tmp_path, fake_time):
    _, _, progress, checkpoints = _checkpoints(tmp_path)
    scores = iter([50.0, 60.0, 55.0, 58.0])
    task = ReverseTask(get_config())
    validation = Validation(
        task,
        lambda: (next(scores), "e.g."),
        progress=progress,
        checkpoints=checkpoints,
        metrics=MetricsLog(tmp_path),
        clock=BudgetClock(progress.train_seconds, tf.Variable(0.0, tf.float64), 0.0),
        patience=2,
    )
    for step in (10, 20, 30):
        validation.evaluate(step)
        assert validation.early_stop_reason() is None
    assert validation.best() == 60.0
    assert checkpoints.best.latest_checkpoint.endswith("ckpt-20")
    validation.evaluate(40)
    assert validation.early_stop_reason() == "early stopping: no ACCURACY gain in 2 evaluations"
    assert [r["val_accuracy"] for r in MetricsLog(tmp_path).read()] == [50.0, 60.0, 55.0, 58.0]
