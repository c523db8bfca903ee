"""A training run's model rebuilt by its task: best, averaged or ensembled checkpoints, and
language models for fusion."""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from data_prep.errors import ConfigError
from models.ensemble import Ensemble
from models.language_model import build_language_model
from pipelines.artifacts.exports import export_config, read_export_info, resolve_export
from pipelines.artifacts.runs import (
    average_checkpoints,
    find_checkpoint,
    last_checkpoints,
    load_config,
    load_initial_weights,
)
from pipelines.tasks import Task, task_for


def restore_model(workdir: str | Path, checkpoint: str = "best") -> tuple:
    """(config, task, model, checkpoint path) of a training run."""
    config = load_config(workdir)
    path = find_checkpoint(workdir, checkpoint)
    task: Task = task_for(config)
    model = task.build_model()
    tf.train.Checkpoint(model=model).read(path).expect_partial()
    return config, task, model, path


def restore_averaged_model(workdir: str | Path, count: int) -> tuple:
    """`restore_model` with the mean weights of the last `count` checkpoints."""
    config = load_config(workdir)
    paths = last_checkpoints(workdir, count)
    task: Task = task_for(config)
    model = task.build_model()
    average_checkpoints(model, paths)
    return config, task, model, paths


def restore_ensemble(
    workdir: str | Path,
    checkpoint: str = "best",
    ensemble_last: int = 0,
    ensemble_with: tuple = (),
) -> tuple:
    """(config, task, Ensemble, checkpoint paths): the last `ensemble_last` kept checkpoints of
    `workdir` (or its `checkpoint`), and the best checkpoint of each `ensemble_with` run.

    The first run's config decides decoding; every member must be of the same task with the
    same vocabularies (ConfigError naming the odd one out).
    """

    config = load_config(workdir)
    task: Task = task_for(config)
    vocabulary = task.ensemble_vocabulary()
    if ensemble_last > 1:
        paths = last_checkpoints(workdir, ensemble_last)
    else:
        paths = [find_checkpoint(workdir, checkpoint)]
    members = []
    for path in paths:
        model = task.build_model()
        tf.train.Checkpoint(model=model).read(path).expect_partial()
        members.append(model)
    for other in ensemble_with:
        other_config, other_task, model, path = restore_model(other, "best")
        if other_task.name != task.name or other_task.ensemble_vocabulary() != vocabulary:
            raise ConfigError(
                f"cannot ensemble {other} with {workdir}: a {other_task.name} run with other "
                "vocabularies (members need the same prepared vocabularies)"
            )
        members.append(model)
        paths.append(path)
    if len(members) < 2:
        raise ConfigError(
            "an ensemble needs two members or more: set ensemble_last or ensemble_with"
        )
    return config, task, Ensemble(members), paths


def load_language_model(source: str | Path) -> tuple:
    """(language model, where its weights came from) of a language-model workdir or export."""

    path = resolve_export(source)
    if (path / "saved_model.pb").is_file():
        info = read_export_info(path, task="language_model")
        config, vocab_size = export_config(info), int(info["vocab"]["size"])
    else:
        config = load_config(path)
        if config.task != "language_model":
            raise ConfigError(f"{path} trained a {config.task!r} model, not a language model")
        vocab_size = int(task_for(config).manifest["vocab"]["size"])
    model = build_language_model(config.model, vocab_size)
    return model, load_initial_weights(model, path)
