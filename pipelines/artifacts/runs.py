"""A training run on disk: its resolved config and its checkpoints (no task needed to read them)."""

from __future__ import annotations

import json
from pathlib import Path

import ml_collections
import numpy as np
import tensorflow as tf

from configs.upgrade import upgrade_config
from data_prep.atomic import write_json_atomic
from data_prep.errors import ConfigError, NotAWorkdirError
from pipelines.artifacts.exports import resolve_export

CONFIG_NAME = "config.json"


def save_config(config: ml_collections.ConfigDict, workdir: Path) -> Path:
    """Writes the resolved config as workdir/config.json (atomically)."""
    return write_json_atomic(Path(workdir) / CONFIG_NAME, config.to_dict(), default=str)


def load_config(workdir: str | Path) -> ml_collections.ConfigDict:
    """The config a training run in `workdir` used."""
    path = Path(workdir) / CONFIG_NAME
    if not path.is_file():
        raise NotAWorkdirError(f"not a lipseq training workdir: {path} not found")
    stored = json.loads(path.read_text())
    return upgrade_config(stored, stored["task"])


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


def load_initial_weights(model, source: str | Path, stream: str = "") -> str:
    """Loads the weights of a training workdir's best checkpoint, an export or a shipped
    release (by name) into `model`.

    For fine-tuning and warm starts: the architecture must match (same config.model and
    vocabulary); the optimizer and the data position start afresh. With `stream`, the source
    is a single-stream model whose front-end, encoder and CTC head go into that stream of a
    multi-stream model (a lip-reading model warm-starting an audio-visual one's video
    stream); the rest of `model` keeps its own initialisation. Returns what was read.
    """
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
