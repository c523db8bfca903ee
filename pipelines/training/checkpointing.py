"""Where a run saves itself while training: periodic checkpoints (for resumes and NaN
rollbacks) and the best one by the validation metric.

Model, optimizer and the run's Progress go in one tf.train.Checkpoint, so a resume restores
the data position (epoch, batch) with the weights. Distributed: only the chief writes the
shared workdir; another worker checkpoints under workdir/workers/<id> (collective saves
require every worker to save) and, joining a run, resumes from the chief's checkpoint.
"""

from pathlib import Path

import tensorflow as tf
from absl import logging

from pipelines.training.distribute import is_chief
from pipelines.training.progress import Progress


def run_workdir(workdir: Path, strategy: tf.distribute.Strategy) -> Path:
    """The directory this process writes: the workdir (the chief), or its worker folder."""
    if is_chief(strategy):
        return workdir
    return workdir / "workers" / str(strategy.cluster_resolver.task_id)


class RunCheckpoints:
    """The periodic and the best checkpoint managers of one process of a run.

    Args:
        workdir: this process's directory (run_workdir).
        shared_workdir: the run's workdir, whose checkpoints a joining worker resumes from.
        keep: periodic checkpoints kept (config.keep_checkpoints).
    """

    def __init__(
        self,
        model,
        optimizer,
        progress: Progress,
        *,
        workdir: Path,
        shared_workdir: Path,
        keep: int,
    ):
        self.optimizer, self.progress = optimizer, progress
        self.checkpoint = tf.train.Checkpoint(
            model=model, optimizer=optimizer, **progress.checkpointed()
        )
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, str(workdir / "checkpoints"), max_to_keep=keep
        )
        self.best = tf.train.CheckpointManager(
            self.checkpoint, str(workdir / "best"), max_to_keep=1
        )
        if workdir != shared_workdir and not self.manager.latest_checkpoint:
            shared = tf.train.CheckpointManager(
                self.checkpoint, str(shared_workdir / "checkpoints"), 1
            )
            if shared.latest_checkpoint:
                self.manager = shared  # a worker joining a run resumes from the chief's

    @property
    def latest(self) -> str | None:
        return self.manager.latest_checkpoint

    def resume(self) -> bool:
        """Restores the latest checkpoint, position included; False when there is none."""
        if not self.latest:
            return False
        self.checkpoint.restore(self.latest).assert_existing_objects_matched()
        logging.info(
            "resumed from %s at step %d (epoch %d, batch %d)",
            self.latest,
            int(self.optimizer.iterations.numpy()),
            int(self.progress.epoch.numpy()),
            int(self.progress.batch_in_epoch.numpy()),
        )
        return True

    def roll_back(self) -> int:
        """Restores the latest checkpoint (after a non-finite loss); returns its step."""
        self.checkpoint.restore(self.latest)
        return int(self.optimizer.iterations.numpy())

    def save(self, step: int) -> None:
        self.manager.save(checkpoint_number=step)

    def save_best(self, step: int) -> None:
        self.best.save(checkpoint_number=step)
