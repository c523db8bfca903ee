"""The training batches of an epoch, resumed mid-epoch and split over replicas, and what the
loop learns about them from the task: how many examples each holds and which ones they are."""

import json
from pathlib import Path

import tensorflow as tf

from pipelines.tasks import Task
from pipelines.training.distribute import local_parts, local_replicas


def epoch_batches(
    task: Task, strategy: tf.distribute.Strategy, batch_size: int, epoch: int, skip_steps: int
):
    """Epoch `epoch`'s training batches after the first `skip_steps` steps' worth.

    With several replicas the global batch (`batch_size`) is split over them and every input
    pipeline reads its own shard of the records.
    """
    if strategy.num_replicas_in_sync == 1:
        return task.train_dataset(epoch).skip(skip_steps)
    replicas_here = local_replicas(strategy)
    records = task.manifest["splits"]["train"]["num_examples"]

    def dataset_fn(context: tf.distribute.InputContext):
        per_replica = context.get_per_replica_batch_size(batch_size)
        dataset = task.train_dataset(
            epoch,
            batch_size=per_replica,
            shard=(context.num_input_pipelines, context.input_pipeline_id),
        )
        # Every worker must take as many steps an epoch as the others, or one worker's last
        # batches meet another's next epoch in the collective ops (a worker died of SIGFPE so):
        # each takes the steps its smallest shard surely fills (no batch holds more than
        # per_replica records, so a shard of n records gives at least n / per_replica).
        per_step = per_replica * replicas_here
        steps = max(1, records // context.num_input_pipelines // per_step)
        return dataset.take(steps * replicas_here).skip(skip_steps * replicas_here)

    return strategy.distribute_datasets_from_function(dataset_fn)


def step_inputs(batch: dict, keys: tuple[str, ...]) -> dict:
    """The part of a batch the train step takes: `keys`, those of the task's batch_signature
    (a batch may carry more, such as ids)."""
    return {key: batch[key] for key in keys}


def examples_in(task: Task, strategy: tf.distribute.Strategy, batch: dict) -> int:
    """Examples in a (possibly distributed) batch, summed over this worker's replicas."""
    return sum(int(task.batch_examples(part)) for part in local_parts(strategy, batch))


class BatchIdLog:
    """Appends each step's example ids to workdir/batch_ids.jsonl (config.record_batch_ids),
    one {"step", "ids"} line a step, ids in replica order."""

    def __init__(self, task: Task, strategy: tf.distribute.Strategy, workdir: Path, on: bool):
        self.task, self.strategy, self.on = task, strategy, on
        self.path = workdir / "batch_ids.jsonl"

    def write(self, step: int, batch: dict) -> None:
        if not self.on:
            return
        ids = [
            i.decode()
            for part in local_parts(self.strategy, batch)
            for i in self.task.batch_ids(part).numpy()
        ]
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, "ids": ids}) + "\n")
