"""The training loop shared by every task.

    summary = train(config, workdir, strategy)

Resumes automatically from the latest checkpoint in `workdir`, including the position in the
data order (epoch and batch). Writes TensorBoard scalars, metrics.jsonl, training_curves.png,
periodic validation with the task's metric, and keeps the best checkpoint by that metric in
workdir/best. The task (config.task) supplies the model, the batches and the metric; the
model supplies its loss (`loss_terms`).
"""

import json
import math
import os
import time
from pathlib import Path

import keras
import ml_collections
import tensorflow as tf
from absl import logging

from data_prep.atomic import write_json_atomic
from pipelines.artifacts.runs import load_initial_weights, save_config
from pipelines.plots import plot_training_curves
from pipelines.runtime import ONEDNN_ENV
from pipelines.tasks import task_for
from pipelines.training.budget_plan import EpochRate, load_plan, make_plan
from pipelines.training.distribute import global_batch_size, is_chief, local_replicas
from pipelines.training.metrics import MetricsLog, format_duration
from pipelines.training.precision import KERAS_POLICIES, compute_dtype, keras_policy
from pipelines.training.schedules import ScaledSchedule, budgeted_learning_rate_schedule


class NonFiniteLossError(RuntimeError):
    """Raised when the training loss becomes NaN or Inf."""


def make_optimizer(config: ml_collections.ConfigDict, learning_rate) -> keras.optimizers.Optimizer:
    """Adam, or AdamW when config.weight_decay > 0 (the same slots, so checkpoints carry over
    between the two)."""
    weight_decay = float(config.get("weight_decay", 0.0))
    if weight_decay <= 0.0:
        return keras.optimizers.Adam(learning_rate)
    optimizer = keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay)
    # Biases and batch-norm offsets and scales set levels, not features; decaying them to zero
    # would only fight the normalisation.
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return optimizer


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
    dtype = compute_dtype(config.get("mixed_precision", ""))
    with keras_policy(KERAS_POLICIES[dtype]):
        return _train(config, workdir, strategy, dtype)


def _train(config, workdir, strategy, dtype: str) -> dict:
    strategy = strategy or tf.distribute.get_strategy()
    chief = is_chief(strategy)
    # The task reads its prepared data first: missing data fails before the workdir is made.
    task = task_for(config)
    task.check_prepared()
    workdir = Path(workdir)
    shared_workdir = workdir
    if not chief:
        workdir = workdir / "workers" / str(strategy.cluster_resolver.task_id)
    workdir.mkdir(parents=True, exist_ok=True)
    if chief:
        save_config(config, workdir)
    keras.utils.set_random_seed(config.seed)
    if config.get("deterministic", False):
        tf.config.experimental.enable_op_determinism()

    logging.info(
        "training computes in %s (config.mixed_precision=%r)",
        dtype,
        config.get("mixed_precision", ""),
    )
    mixed = dtype == "float16"  # the loss-scaled type
    with strategy.scope():
        model = task.build_model()
        lr_scale = tf.Variable(1.0, dtype=tf.float64, trainable=False)
        budget_fraction = tf.Variable(0.0, dtype=tf.float64, trainable=False)
        schedule = budgeted_learning_rate_schedule(config, budget_fraction)
        optimizer = make_optimizer(config, ScaledSchedule(schedule, lr_scale))
        optimizer.build(model.trainable_variables)
        progress = {
            "epoch": tf.Variable(0, dtype=tf.int64, trainable=False),
            "batch_in_epoch": tf.Variable(0, dtype=tf.int64, trainable=False),
            "best_metric": tf.Variable(math.nan, dtype=tf.float64, trainable=False),
            "evals_without_improvement": tf.Variable(0, dtype=tf.int64, trainable=False),
            "lr_scale": lr_scale,
            # Wall-clock seconds and examples of the whole run, resumes included: the time
            # budget and the learning curves against minutes and examples seen use them.
            "train_seconds": tf.Variable(0.0, dtype=tf.float64, trainable=False),
            "examples_seen": tf.Variable(0, dtype=tf.int64, trainable=False),
            "loss_scale": tf.Variable(2.0**15 if mixed else 1.0, trainable=False),
            "good_steps": tf.Variable(0, dtype=tf.int64, trainable=False),
        }
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, **progress)
    manager = tf.train.CheckpointManager(
        checkpoint, str(workdir / "checkpoints"), max_to_keep=config.keep_checkpoints
    )
    best_manager = tf.train.CheckpointManager(checkpoint, str(workdir / "best"), max_to_keep=1)
    if not chief and not manager.latest_checkpoint:
        shared = tf.train.CheckpointManager(checkpoint, str(shared_workdir / "checkpoints"), 1)
        if shared.latest_checkpoint:
            manager = shared  # a worker joining a run resumes from the chief's checkpoint
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        logging.info(
            "resumed from %s at step %d (epoch %d, batch %d)",
            manager.latest_checkpoint,
            int(optimizer.iterations.numpy()),
            int(progress["epoch"].numpy()),
            int(progress["batch_in_epoch"].numpy()),
        )
    elif config.get("init_from"):
        stream = config.get("init_stream", "")
        source = load_initial_weights(model, config.init_from, stream)
        logging.info(
            "initialised the %s from %s", f"{stream} stream" if stream else "model", source
        )

    variables = model.trainable_variables
    # Variables held still for the first config.freeze_frontend_steps steps (adaptation).
    frozen_steps = int(config.get("freeze_frontend_steps", 0))
    frontend_ids = {id(v) for v in model.frontend.trainable_variables} if frozen_steps else set()
    signature_keys = tuple(task.batch_signature())

    def replica_step(batch):
        context = tf.distribute.get_replica_context()
        with tf.GradientTape() as tape:
            outputs = model(batch, training=True)
            terms = model.loss_terms(batch, outputs, config.label_smoothing)
            loss = 0.0
            for term in terms:
                # Normalised by the count of the whole global batch, so replica losses add up.
                count = context.all_reduce(tf.distribute.ReduceOp.SUM, term.count)
                loss += term.weight * term.total / tf.maximum(count, 1.0)
            scaled_loss = loss * loss_scale if mixed else loss
        gradients = tape.gradient(scaled_loss, variables)
        replicas = context.num_replicas_in_sync
        if mixed:
            gradients = [tf.convert_to_tensor(g) / loss_scale for g in gradients]
        if replicas > 1:
            gradients = [tf.convert_to_tensor(g) for g in gradients]  # IndexedSlices too
            gradients = context.all_reduce(tf.distribute.ReduceOp.SUM, gradients)
        if frontend_ids:
            frozen = optimizer.iterations < frozen_steps
            gradients = [
                tf.where(frozen, tf.zeros_like(g), g) if id(v) in frontend_ids else g
                for g, v in zip(gradients, variables, strict=True)
            ]
        gradients, grad_norm = tf.clip_by_global_norm(gradients, config.clip_norm)
        finite = tf.math.is_finite(grad_norm)
        if replicas == 1:
            # Non-finite gradients are never applied: the weights stay at the last good step.
            if finite:
                optimizer.apply_gradients(zip(gradients, variables, strict=True))
        else:
            # A cross-replica update cannot sit inside tf.cond: zero non-finite gradients
            # instead. The optimizer sums over replicas again, so each hands in its share.
            shares = [tf.where(finite, g / replicas, tf.zeros_like(g)) for g in gradients]
            optimizer.apply_gradients(zip(shares, variables, strict=True))
        return loss, terms[0].count, grad_norm

    loss_scale, good_steps = progress["loss_scale"], progress["good_steps"]

    def distributed_step(batch):
        loss, num_tokens, grad_norm = strategy.run(replica_step, args=(batch,))
        total = tf.distribute.ReduceOp.SUM
        grad_norm = strategy.reduce(tf.distribute.ReduceOp.MEAN, grad_norm, axis=None)
        if mixed:
            if tf.math.is_finite(grad_norm):
                good_steps.assign_add(1)
                if good_steps >= 2000:
                    loss_scale.assign(loss_scale * 2.0)
                    good_steps.assign(0)
            else:
                loss_scale.assign(tf.maximum(loss_scale / 2.0, 1.0))
                good_steps.assign(0)
        return (
            strategy.reduce(total, loss, axis=None),
            strategy.reduce(total, num_tokens, axis=None),
            grad_norm,
        )

    if strategy.num_replicas_in_sync == 1:
        train_step = tf.function(distributed_step, input_signature=[task.batch_signature()])
    else:
        train_step = tf.function(distributed_step, reduce_retracing=True)

    replicas_here = local_replicas(strategy)

    def epoch_batches(epoch: int, skip_steps: int):
        if strategy.num_replicas_in_sync == 1:
            return task.train_dataset(epoch).skip(skip_steps)

        def dataset_fn(context: tf.distribute.InputContext):
            per_replica = context.get_per_replica_batch_size(config.batch_size)
            dataset = task.train_dataset(
                epoch,
                batch_size=per_replica,
                shard=(context.num_input_pipelines, context.input_pipeline_id),
            )
            return dataset.skip(skip_steps * replicas_here)

        return strategy.distribute_datasets_from_function(dataset_fn)

    metrics = MetricsLog(workdir)
    validate = task.make_validator(model)
    metric_name = f"val_{task.metric}"

    def improved(value: float) -> bool:
        best = float(progress["best_metric"].numpy())
        if math.isnan(best):
            return True
        return value > best if task.higher_is_better else value < best

    def evaluate(step: int) -> float | None:
        if validate is None:
            return None
        started = time.monotonic()
        value, example = validate()
        account_time()
        metrics.write(step, **{metric_name: value}, **position())
        logging.info(
            "step %d: validation %s %.2f (%.1fs); e.g. %r",
            step,
            task.metric.upper(),
            value,
            time.monotonic() - started,
            example,
        )
        if improved(value):
            progress["best_metric"].assign(value)
            progress["evals_without_improvement"].assign(0)
            best_manager.save(checkpoint_number=step)
        else:
            progress["evals_without_improvement"].assign_add(1)
        return value

    step = int(optimizer.iterations.numpy())
    start_step = step
    rollbacks = 0
    restart = False
    record_batch_ids = bool(config.get("record_batch_ids", False))
    started = time.monotonic()
    window = {"time": time.monotonic(), "tokens": 0.0, "sentences": 0, "loss": 0.0, "steps": 0}
    stop_reason = "reached num_train_steps"
    last_eval_step = last_save_step = -1

    seconds_before = float(progress["train_seconds"].numpy())
    budget_seconds = 60.0 * config.max_train_minutes

    def run_seconds() -> float:
        """Training seconds of the whole run so far (earlier invocations included)."""
        return seconds_before + time.monotonic() - started

    def time_is_up() -> bool:
        return bool(budget_seconds) and run_seconds() >= budget_seconds

    def account_time() -> None:
        progress["train_seconds"].assign(run_seconds())
        if budget_seconds:
            budget_fraction.assign(min(1.0, run_seconds() / budget_seconds))

    def position() -> dict:
        return {
            "examples_seen": int(progress["examples_seen"].numpy()),
            "train_minutes": round(float(progress["train_seconds"].numpy()) / 60.0, 3),
        }

    rate = EpochRate()
    plan = load_plan(workdir)
    if plan:
        task.budget_plan = plan["choices"]
        logging.info("following the plan made at epoch %d: %s", plan["decided_at_epoch"], plan)

    account_time()
    if time_is_up():
        stop_reason = f"reached max_train_minutes={config.max_train_minutes} before this run"
    while step < config.num_train_steps and not time_is_up():
        epoch = int(progress["epoch"].numpy())
        if plan is None:
            seconds_left = budget_seconds - run_seconds() if budget_seconds else None
            projected = rate.projected_epochs(epoch, step, config.num_train_steps, seconds_left)
            if projected is not None:
                plan = make_plan(task, workdir, projected_epochs=projected, epoch=epoch, rate=rate)
                task.budget_plan = plan["choices"]
        dataset = epoch_batches(epoch, int(progress["batch_in_epoch"].numpy()))
        batches_seen = 0
        for batch in dataset:
            batches_seen += 1
            account_time()
            loss, num_tokens, grad_norm = train_step({k: batch[k] for k in signature_keys})
            sentences = global_batch_size(strategy, batch["labels"])
            step += 1
            progress["batch_in_epoch"].assign_add(1)
            progress["examples_seen"].assign_add(sentences)
            loss = float(loss)
            gradients_ok = mixed or math.isfinite(float(grad_norm))
            if not (math.isfinite(loss) and gradients_ok):
                can_roll_back = (
                    config.get("nan_policy", "stop") == "rollback"
                    and rollbacks < config.get("max_nan_rollbacks", 3)
                    and manager.latest_checkpoint
                )
                if not can_roll_back:
                    raise NonFiniteLossError(
                        f"training loss became {loss} at step {step}; the last good checkpoint "
                        f"is {manager.latest_checkpoint or 'none (no checkpoint written yet)'}; "
                        "lower --config.learning_rate, check the data, or set "
                        "--config.nan_policy=rollback"
                    )
                checkpoint.restore(manager.latest_checkpoint)
                lr_scale.assign(lr_scale * config.get("nan_rollback_lr_factor", 0.5))
                rollbacks += 1
                step = int(optimizer.iterations.numpy())
                logging.warning(
                    "non-finite loss: rolled back to %s (step %d), learning rate scaled by %.3g",
                    manager.latest_checkpoint,
                    step,
                    float(lr_scale.numpy()),
                )
                metrics.write(step, nan_rollback=rollbacks, lr_scale=float(lr_scale.numpy()))
                restart = True
                break
            if record_batch_ids:
                with (workdir / "batch_ids.jsonl").open("a") as f:
                    ids = [
                        i.decode()
                        for part in strategy.experimental_local_results(batch["id"])
                        for i in part.numpy()
                    ]
                    f.write(json.dumps({"step": step, "ids": ids}) + "\n")
            window["tokens"] += float(num_tokens)
            window["sentences"] += sentences
            window["loss"] += loss
            window["steps"] += 1
            if step % config.log_every == 0:
                elapsed = time.monotonic() - window["time"]
                steps_per_second = window["steps"] / elapsed
                remaining = (config.num_train_steps - step) / steps_per_second
                if budget_seconds:
                    remaining = min(remaining, budget_seconds - run_seconds())
                learning_rate = float(optimizer.learning_rate)
                metrics.write(
                    step,
                    loss=window["loss"] / window["steps"],
                    learning_rate=learning_rate,
                    grad_norm=float(grad_norm),
                    steps_per_second=steps_per_second,
                    target_tokens_per_second=window["tokens"] / elapsed,
                    sentences_per_second=window["sentences"] / elapsed,
                    **position(),
                )
                logging.info(
                    "step %d/%d epoch %d: loss %.3f lr %.2e | %.1f steps/s %.0f tokens/s "
                    "%.0f sentences/s | ETA %s",
                    step,
                    config.num_train_steps,
                    int(progress["epoch"].numpy()),
                    window["loss"] / window["steps"],
                    learning_rate,
                    steps_per_second,
                    window["tokens"] / elapsed,
                    window["sentences"] / elapsed,
                    format_duration(remaining),
                )
                window = {
                    "time": time.monotonic(),
                    "tokens": 0.0,
                    "sentences": 0,
                    "loss": 0.0,
                    "steps": 0,
                }
            if step % config.checkpoint_every == 0:
                manager.save(checkpoint_number=step)
                last_save_step = step
            if config.eval_every and step % config.eval_every == 0:
                evaluate(step)
                last_eval_step = step
                patience = config.early_stopping_patience
                if patience and int(progress["evals_without_improvement"].numpy()) >= patience:
                    stop_reason = (
                        f"early stopping: no {task.metric.upper()} gain in {patience} evaluations"
                    )
                    break
            if step >= config.num_train_steps:
                break
            if time_is_up():
                stop_reason = f"reached max_train_minutes={config.max_train_minutes}"
                break
        else:
            if batches_seen == 0 and int(progress["batch_in_epoch"].numpy()) == 0:
                raise ValueError(
                    f"the {config.data.train_split!r} split in {task.prepared_dir} "
                    "yields no batches"
                )
            rate.epoch_done(step, int(progress["batch_in_epoch"].numpy()))
            progress["epoch"].assign_add(1)
            progress["batch_in_epoch"].assign(0)
            continue
        if restart:
            restart = False
            continue
        break

    account_time()
    # With a time budget the final seconds must reach the checkpoint too, or a rerun of the
    # same command would train past the budget from an earlier save of this step.
    if last_save_step != step or budget_seconds:
        manager.save(checkpoint_number=step)
    if last_eval_step != step:
        evaluate(step)
    summary = {
        "workdir": str(workdir),
        "start_step": start_step,
        "final_step": step,
        "stop_reason": stop_reason,
        "train_minutes": (time.monotonic() - started) / 60.0,
        "run_train_minutes": float(progress["train_seconds"].numpy()) / 60.0,
        "examples_seen": int(progress["examples_seen"].numpy()),
        "epoch": int(progress["epoch"].numpy()),
        "compute_dtype": dtype,
        "budget_plan": plan,
        # This setting alone made a 2.7x difference on AVX2 hosts (pipelines/runtime.py).
        ONEDNN_ENV.lower(): os.environ.get(ONEDNN_ENV, "unset"),
        f"best_{metric_name}": float(progress["best_metric"].numpy()),
        "latest_checkpoint": manager.latest_checkpoint,
        "best_checkpoint": best_manager.latest_checkpoint,
    }
    write_json_atomic(workdir / "train_summary.json", summary)
    plot_training_curves(metrics.read(), workdir / "training_curves.png")
    logging.info("training finished (%s): %s", stop_reason, json.dumps(summary))
    return summary
