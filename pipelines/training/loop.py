"""The training loop shared by every task.

    summary = train(config, workdir, strategy)

Resumes automatically from the latest checkpoint in `workdir`, including the position in the
data order (epoch and batch). Writes TensorBoard scalars, metrics.jsonl, training_curves.png,
periodic validation with the task's metric, and keeps the best checkpoint by that metric in
workdir/best. The task (config.task) supplies the model, the batches and the metric; the
model supplies its loss (`loss_terms`).

The pieces, each in its own module here: the step (step.py: the replica and distributed
step, float16's loss scale), the front-end freeze (freeze.py), the budget clock (clock.py),
the NaN guard (nan_guard.py), checkpoints (checkpointing.py), validation with the best
checkpoint and early stopping (validation.py), the batches of an epoch and the batch-id log
(batches.py), the every-log_every report (throughput.py) and the budget plan
(budget_plan.py). `_train` assembles them; `_Run` drives them epoch by epoch.
"""

import enum
import json
import os
from collections.abc import Callable
from pathlib import Path

import keras
import ml_collections
import tensorflow as tf
from absl import logging

from data_prep.atomic import write_json_atomic
from pipelines.artifacts.runs import load_initial_weights, save_config
from pipelines.plots import plot_training_curves
from pipelines.runtime import ONEDNN_ENV
from pipelines.tasks import Task, task_for
from pipelines.training.batches import BatchIdLog, epoch_batches, examples_in, step_inputs
from pipelines.training.budget_plan import BudgetPlanner
from pipelines.training.checkpointing import RunCheckpoints, run_workdir
from pipelines.training.clock import BudgetClock
from pipelines.training.distribute import is_chief
from pipelines.training.freeze import FrontendFreeze
from pipelines.training.metrics import MetricsLog
from pipelines.training.nan_guard import NanGuard, NonFiniteLossError
from pipelines.training.optimizer import build_optimizer
from pipelines.training.precision import KERAS_POLICIES, compute_dtype, keras_policy
from pipelines.training.progress import Progress
from pipelines.training.step import LossScale, make_train_step
from pipelines.training.throughput import ThroughputLog
from pipelines.training.validation import Validation

__all__ = ["NonFiniteLossError", "train"]


def train(
    config: ml_collections.ConfigDict,
    workdir: str | Path,
    strategy: tf.distribute.Strategy | None = None,
) -> dict:
    """Runs (or resumes) training; returns a summary dict (also written to workdir).

    config.mixed_precision (pipelines/training/precision.py) picks the compute type; variables
    stay float32. In float16 a dynamic loss scale guards the gradients: overflowing steps are
    skipped and halve the scale, 2000 good steps double it. bfloat16 has float32's range and
    needs no scale.

    With a distribution strategy the global batch (config.batch_size) is split over the
    replicas, every input pipeline reads its own shard of the records, gradients are summed
    over replicas before global-norm clipping, and only the chief writes the shared outputs
    (other workers checkpoint under workdir/workers/<id>, as collective saves require).
    """
    dtype = compute_dtype(config.mixed_precision)
    with keras_policy(KERAS_POLICIES[dtype]):
        return _train(config, Path(workdir), strategy or tf.distribute.get_strategy(), dtype)


def _train(config, workdir: Path, strategy: tf.distribute.Strategy, dtype: str) -> dict:
    run = _set_up(config, workdir, strategy, dtype)
    start_step = run.step
    stop_reason = run.run()
    run.finish()
    summary = _summary(run, start_step, stop_reason, dtype)
    write_json_atomic(run.run_dir / "train_summary.json", summary)
    plot_training_curves(run.metrics.read(), run.run_dir / "training_curves.png")
    logging.info("training finished (%s): %s", stop_reason, json.dumps(summary))
    return summary


def _set_up(config, workdir: Path, strategy: tf.distribute.Strategy, dtype: str) -> "_Run":
    """The task, the run's directory, model, optimizer and checkpoints (resumed or
    initialised), the compiled step, and the pieces around it."""
    # The task reads its prepared data first: missing data fails before the workdir is made.
    task = task_for(config)
    task.check_prepared()
    run_dir = _open_run_dir(config, workdir, strategy)
    _seed(config)
    logging.info(
        "training computes in %s (config.mixed_precision=%r)", dtype, config.mixed_precision
    )
    loss_scaled = dtype == "float16"
    with strategy.scope():
        model = task.build_model()
        progress = Progress(loss_scaled)
        budget_fraction = tf.Variable(0.0, dtype=tf.float64, trainable=False)
        optimizer = build_optimizer(config, model, progress.lr_scale, budget_fraction)
    checkpoints = RunCheckpoints(
        model,
        optimizer,
        progress,
        workdir=run_dir,
        shared_workdir=workdir,
        keep=config.keep_checkpoints,
    )
    _resume_or_initialise(config, model, checkpoints)
    train_step = make_train_step(
        model,
        optimizer,
        strategy,
        LossScale(progress.loss_scale, progress.good_steps, enabled=loss_scaled),
        FrontendFreeze(model, int(config.freeze_frontend_steps)),
        label_smoothing=config.label_smoothing,
        clip_norm=config.clip_norm,
        batch_signature=task.batch_signature(),
    )
    return _Run(
        config,
        task,
        strategy,
        model,
        optimizer,
        train_step,
        progress,
        checkpoints,
        run_dir=run_dir,
        budget_fraction=budget_fraction,
        loss_scaled=loss_scaled,
    )


def _open_run_dir(config, workdir: Path, strategy: tf.distribute.Strategy) -> Path:
    """Makes this process's directory of the run; the chief writes the config there."""
    run_dir = run_workdir(workdir, strategy)
    run_dir.mkdir(parents=True, exist_ok=True)
    if is_chief(strategy):
        save_config(config, run_dir)
    return run_dir


def _seed(config) -> None:
    """Seeds Python, NumPy and TF (config.seed); op determinism with config.deterministic."""
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()


def _resume_or_initialise(config, model, checkpoints: RunCheckpoints) -> None:
    """Resumes from the run's latest checkpoint; a new run starts from config.init_from's
    weights when given (a single stream's with config.init_stream)."""
    if checkpoints.resume() or not config.init_from:
        return
    stream = config.init_stream
    source = load_initial_weights(model, config.init_from, stream)
    logging.info("initialised the %s from %s", f"{stream} stream" if stream else "model", source)


class _Next(enum.Enum):
    """What the run does after a step or an epoch."""

    GO_ON = enum.auto()
    RESTART = enum.auto()  # rolled back: start again from the restored position
    STOP = enum.auto()  # _Run.stop_reason says why


class _Run:
    """One invocation's training, epoch by epoch: the pieces around the step, and the step
    count in Python (it runs ahead of optimizer.iterations when float16 skips a step)."""

    def __init__(
        self,
        config: ml_collections.ConfigDict,
        task: Task,
        strategy: tf.distribute.Strategy,
        model: keras.Model,
        optimizer: keras.optimizers.Optimizer,
        train_step: Callable,
        progress: Progress,
        checkpoints: RunCheckpoints,
        *,
        run_dir: Path,
        budget_fraction: tf.Variable,
        loss_scaled: bool,
    ):
        self.config, self.task, self.strategy = config, task, strategy
        self.optimizer, self.train_step, self.progress = optimizer, train_step, progress
        self.checkpoints, self.run_dir = checkpoints, run_dir
        self.metrics = MetricsLog(run_dir)
        validator = task.make_validator(model)
        # The clock starts after the set-up.
        self.clock = BudgetClock(progress.train_seconds, budget_fraction, config.max_train_minutes)
        self.validation = Validation(
            task,
            validator,
            progress=progress,
            checkpoints=checkpoints,
            metrics=self.metrics,
            clock=self.clock,
            patience=config.early_stopping_patience,
        )
        self.nan_guard = NanGuard(
            policy=config.nan_policy,
            max_rollbacks=config.max_nan_rollbacks,
            lr_factor=config.nan_rollback_lr_factor,
            checkpoints=checkpoints,
            lr_scale=progress.lr_scale,
            metrics=self.metrics,
            loss_scaled=loss_scaled,
        )
        self.throughput = ThroughputLog(
            self.metrics, self.clock, progress, num_train_steps=config.num_train_steps
        )
        self.batch_log = BatchIdLog(task, strategy, run_dir, on=bool(config.record_batch_ids))
        self.planner = BudgetPlanner(task, run_dir)
        self.step_keys = tuple(task.batch_signature())
        self.step = int(optimizer.iterations.numpy())
        self.stop_reason = ""
        self.last_eval_step = self.last_save_step = -1

    def run(self) -> str:
        """Trains epoch by epoch until a stopping rule holds; returns which."""
        self.clock.account()
        if self.clock.time_is_up():
            return f"reached max_train_minutes={self.config.max_train_minutes} before this run"
        while self.step < self.config.num_train_steps and not self.clock.time_is_up():
            if self._epoch() is _Next.STOP:
                return self.stop_reason
        # The clock can run out between an epoch's last step and the next epoch's start.
        if self.step < self.config.num_train_steps:
            return f"reached max_train_minutes={self.config.max_train_minutes}"
        return "reached num_train_steps"

    def _epoch(self) -> _Next:
        """The rest of the checkpointed epoch, up to its end, a stop or a rollback."""
        epoch = int(self.progress.epoch.numpy())
        self.planner.before_epoch(
            epoch, self.step, self.config.num_train_steps, self.clock.seconds_left()
        )
        skip = int(self.progress.batch_in_epoch.numpy())
        batches_seen = 0
        for batch in epoch_batches(self.task, self.strategy, self.config.batch_size, epoch, skip):
            batches_seen += 1
            after = self._train_on(batch)
            if after is not _Next.GO_ON:
                return after
        self._end_epoch(batches_seen)
        return _Next.GO_ON

    def _end_epoch(self, batches_seen: int) -> None:
        steps_in_epoch = int(self.progress.batch_in_epoch.numpy())
        if batches_seen == 0 and steps_in_epoch == 0:
            raise ValueError(
                f"the {self.config.data.train_split!r} split in {self.task.prepared_dir} "
                "yields no batches"
            )
        self.planner.epoch_done(self.step, steps_in_epoch)
        self.progress.epoch.assign_add(1)
        self.progress.batch_in_epoch.assign(0)

    def _train_on(self, batch: dict) -> _Next:
        """One step on `batch`, with its NaN check and its report."""
        self.clock.account()
        loss, num_tokens, grad_norm = self.train_step(step_inputs(batch, self.step_keys))
        examples = examples_in(self.task, self.strategy, batch)
        self.step += 1
        self.progress.batch_in_epoch.assign_add(1)
        self.progress.examples_seen.assign_add(examples)
        loss = float(loss)
        if not self.nan_guard.step_is_finite(loss, grad_norm):
            self.step = self.nan_guard.roll_back(loss, self.step)
            return _Next.RESTART
        self.batch_log.write(self.step, batch)
        self.throughput.add(loss, float(num_tokens), examples)
        if self.step % self.config.log_every == 0:
            learning_rate = float(self.optimizer.learning_rate)
            self.throughput.report(self.step, learning_rate, float(grad_norm))
        return self._save_validate_or_stop()

    def _save_validate_or_stop(self) -> _Next:
        """The end of a step: the periodic checkpoint and validation, the stopping rules."""
        config, step = self.config, self.step
        # Validation first: the checkpoint of this step then holds its best metric and
        # patience, so a resume from it goes on exactly as the run would have.
        if config.eval_every and step % config.eval_every == 0:
            self.validation.evaluate(step)
            self.last_eval_step = step
        if step % config.checkpoint_every == 0:
            self.checkpoints.save(step)
            self.last_save_step = step
        if self.last_eval_step == step and (reason := self.validation.early_stop_reason()):
            return self._stop(reason)
        if step >= config.num_train_steps:
            return self._stop("reached num_train_steps")
        if self.clock.time_is_up():
            return self._stop(f"reached max_train_minutes={config.max_train_minutes}")
        return _Next.GO_ON

    def _stop(self, reason: str) -> _Next:
        self.stop_reason = reason
        return _Next.STOP

    def finish(self) -> None:
        """The last step's checkpoint and validation, unless the loop just wrote them."""
        self.clock.account()
        # With a time budget the final seconds must reach the checkpoint too, or a rerun of
        # the same command would train past the budget from an earlier save of this step.
        if self.last_eval_step != self.step:
            self.validation.evaluate(self.step)
        if self.last_save_step != self.step or self.clock.budget_seconds:
            self.checkpoints.save(self.step)


def _summary(run: _Run, start_step: int, stop_reason: str, dtype: str) -> dict:
    """train_summary.json: where the run stopped and why, its time, examples and best metric."""
    progress = run.progress
    return {
        "workdir": str(run.run_dir),
        "start_step": start_step,
        "final_step": run.step,
        "stop_reason": stop_reason,
        "train_minutes": run.clock.invocation_seconds() / 60.0,
        "run_train_minutes": float(progress.train_seconds.numpy()) / 60.0,
        "examples_seen": int(progress.examples_seen.numpy()),
        "epoch": int(progress.epoch.numpy()),
        "compute_dtype": dtype,
        "budget_plan": run.planner.plan,
        # This setting alone made a 2.7x difference on AVX2 hosts (pipelines/runtime.py).
        ONEDNN_ENV.lower(): os.environ.get(ONEDNN_ENV, "unset"),
        f"best_{run.validation.metric_name}": run.validation.best(),
        "latest_checkpoint": run.checkpoints.latest,
        "best_checkpoint": run.checkpoints.best.latest_checkpoint,
    }
