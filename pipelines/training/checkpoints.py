"""A training run on disk: its resolved config and its checkpoints, restored into a model."""

from __future__ import annotations

import json
from pathlib import Path

import ml_collections
import numpy as np
import tensorflow as tf

from data_prep.atomic import write_json_atomic
from data_prep.errors import ConfigError, NotAWorkdirError
from pipelines.tasks import Task, task_for

CONFIG_NAME = "config.json"


def save_config(config: ml_collections.ConfigDict, workdir: Path) -> Path:
    """Writes the resolved config as workdir/config.json (atomically)."""
    return write_json_atomic(Path(workdir) / CONFIG_NAME, config.to_dict(), default=str)


def config_from_dict(values: dict) -> ml_collections.ConfigDict:
    """A ConfigDict from its JSON form, with the tuples JSON turned into lists restored."""

    def tuples(value):
        if isinstance(value, dict):
            return {k: tuples(v) for k, v in value.items()}
        if isinstance(value, list):
            return tuple(tuples(v) for v in value)
        return value

    return ml_collections.ConfigDict(tuples(values))


def load_config(workdir: str | Path) -> ml_collections.ConfigDict:
    """The config a training run in `workdir` used."""
    path = Path(workdir) / CONFIG_NAME
    if not path.is_file():
        raise NotAWorkdirError(f"not a lipseq training workdir: {path} not found")
    return config_from_dict(json.loads(path.read_text()))


def find_checkpoint(workdir: str | Path, checkpoint: str = "best") -> str:
    """The checkpoint path for `checkpoint` (best, latest or a path) in a training workdir."""
    workdir = Path(workdir)
    if checkpoint not in ("best", "latest"):
        if not tf.io.gfile.exists(f"{checkpoint}.index"):
            raise NotAWorkdirError(f"checkpoint not found: {checkpoint} (no {checkpoint}.index)")
        return checkpoint
    path = tf.train.latest_checkpoint(str(workdir / "best")) if checkpoint == "best" else None
    path = path or tf.train.latest_checkpoint(str(workdir / "checkpoints"))
    if not path:
        raise NotAWorkdirError(f"no checkpoint in {workdir}/best or {workdir}/checkpoints")
    return path


def restore_model(workdir: str | Path, checkpoint: str = "best") -> tuple:
    """(config, task, model, checkpoint path) of a training run."""
    config = load_config(workdir)
    path = find_checkpoint(workdir, checkpoint)
    task: Task = task_for(config)
    model = task.build_model()
    tf.train.Checkpoint(model=model).read(path).expect_partial()
    return config, task, model, path


def last_checkpoints(workdir: str | Path, count: int) -> list[str]:
    """The paths of the newest `count` checkpoints kept in workdir/checkpoints, oldest first."""
    state = tf.train.get_checkpoint_state(str(Path(workdir) / "checkpoints"))
    paths = list(state.all_model_checkpoint_paths) if state else []
    if len(paths) < count:
        raise NotAWorkdirError(
            f"{workdir}/checkpoints keeps {len(paths)} checkpoint(s); cannot average the last "
            f"{count} (raise config.keep_checkpoints when training)"
        )
    return paths[-count:]


def average_checkpoints(model, paths: list[str]) -> None:
    """Sets `model`'s weights to their mean over the checkpoints `paths`.

    The mean of the last few checkpoints of one run is a cheap, steadier model than any one of
    them; the optimizer's slots are not read.
    """
    total = None
    for path in paths:
        tf.train.Checkpoint(model=model).read(path).expect_partial()
        values = [variable.numpy() for variable in model.variables]
        total = values if total is None else [a + b for a, b in zip(total, values, strict=True)]
    # Integer state (dropout seed generators) keeps the last checkpoint's value.
    for variable, summed, last in zip(model.variables, total, values, strict=True):
        floating = np.issubdtype(last.dtype, np.floating)
        variable.assign(summed / len(paths) if floating else last)


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
    from models.ensemble import Ensemble

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


def load_initial_weights(model, source: str | Path, stream: str = "") -> str:
    """Loads the weights of a training workdir's best checkpoint, an export or a shipped
    release (by name) into `model`.

    For fine-tuning and warm starts: the architecture must match (same config.model and
    vocabulary); the optimizer and the data position start afresh. With `stream`, the source
    is a single-stream model whose front-end, encoder and CTC head go into that stream of a
    multi-stream model (a lip-reading model warm-starting an audio-visual one's video
    stream); the rest of `model` keeps its own initialisation. Returns what was read.
    """
    from pipelines.serving.saved_model import resolve_export

    source = resolve_export(source)  # a shipped release's name (grid_s1) is its export
    if (source / "saved_model.pb").is_file():
        # Every task's serving module holds the model as its `model` attribute.
        path = str(source / "variables" / "variables")
    else:
        path = find_checkpoint(source, "best")
    target = _stream_view(model, stream) if stream else model
    probe = (target.frontend if stream else model).trainable_variables[0]
    before = probe.numpy().copy()
    try:
        tf.train.Checkpoint(model=target).read(path).expect_partial()
    except (ValueError, tf.errors.InvalidArgumentError) as error:
        raise ConfigError(
            f"cannot initialise from {source}: its weights do not fit this model ({error})"
        ) from None
    if (probe.numpy() == before).all():
        raise ConfigError(f"cannot initialise from {source}: no model weights found in {path}")
    return path


def _stream_view(model, stream: str) -> tf.Module:
    """One stream of a multi-stream model under a single-stream model's attribute names, so
    a single-stream checkpoint restores into it."""
    streams = getattr(model, "streams", ())
    if stream not in streams:
        raise ConfigError(
            f"cannot initialise stream {stream!r}: the model's streams are {list(streams)}"
        )
    view = tf.Module()
    view.frontend = getattr(model, f"frontend_{stream}")
    view.encoder = getattr(model, f"encoder_{stream}")
    if hasattr(model, f"ctc_head_{stream}"):
        view.ctc_head = getattr(model, f"ctc_head_{stream}")
    return view


def load_language_model(source: str | Path) -> tuple:
    """(language model, where its weights came from) of a language-model workdir or export."""
    from models.language_model import build_language_model
    from pipelines.serving.saved_model import read_export_info, resolve_export

    path = resolve_export(source)
    if (path / "saved_model.pb").is_file():
        info = read_export_info(path, task="language_model")
        config, vocab_size = config_from_dict(info["config"]), int(info["vocab"]["size"])
    else:
        config = load_config(path)
        if config.task != "language_model":
            raise ConfigError(f"{path} trained a {config.task!r} model, not a language model")
        vocab_size = int(task_for(config).manifest["vocab"]["size"])
    model = build_language_model(config.model, vocab_size)
    return model, load_initial_weights(model, path)
