"""A training run -> a SavedModel: the task decides the signatures, this module the rest.

The export holds the graph (raw input in, text out; no project code needed to run it) and
assets.extra/lipseq.json with the task, the checkpoint and the resolved experiment config,
from which inference code rebuilds everything else (e.g. video preparation).
"""

from __future__ import annotations

from pathlib import Path

from absl import logging

from data_prep.errors import ConfigError
from data_prep.paths import project_version
from pipelines.artifacts.exports import (
    INFO_PATH,
    export_config,
    read_export_info,
    resolve_export,
    save_export,
)
from pipelines.artifacts.runs import load_initial_weights
from pipelines.inference.lipreading import encoder_frames_per_step, shortest_clip
from pipelines.tasks import task_for
from pipelines.training.restore import (
    load_language_model,
    restore_averaged_model,
    restore_ensemble,
    restore_model,
)


def export_model(
    workdir: str | Path,
    export_dir: str | Path,
    checkpoint: str = "best",
    serving_version: int | None = None,
    language_model: str | Path | None = None,
    average_last: int = 0,
    ensemble_last: int = 0,
    ensemble_with: tuple = (),
) -> Path:
    """Exports the `checkpoint` (best, latest or a path) of a training run to `export_dir`.

    With `serving_version`, the SavedModel goes to `<export_dir>/<version>/`, the layout
    TensorFlow Serving watches for new versions of a model. `language_model` (a language-model
    training workdir or export) is built into the export for shallow fusion. `average_last`
    > 1 exports the mean weights of the run's last that many checkpoints instead.
    `ensemble_last` > 1 and `ensemble_with` (other runs' workdirs, their best checkpoints)
    export an ensemble whose searches average the members' next-label probabilities.
    """
    if serving_version is not None:
        if serving_version < 1:
            raise ValueError(f"serving_version must be a positive integer, got {serving_version}")
        export_dir = Path(export_dir) / str(serving_version)
    if average_last > 1 and (ensemble_last > 1 or ensemble_with):
        raise ConfigError("average_last and an ensemble exclude each other: choose one")
    if ensemble_last > 1 or ensemble_with:
        config, task, model, checkpoint_path = restore_ensemble(
            workdir, checkpoint, ensemble_last, tuple(ensemble_with)
        )
    elif average_last > 1:
        config, task, model, checkpoint_path = restore_averaged_model(workdir, average_last)
    else:
        config, task, model, checkpoint_path = restore_model(workdir, checkpoint)
    if language_model:
        lm, lm_source = load_language_model(language_model)
        module, signatures, task_info = task.serving_module(model, language_model=lm)
        task_info["language_model"]["source"] = lm_source
    else:
        module, signatures, task_info = task.serving_module(model)
    info = {
        "task": task.name,
        "version": project_version(),
        "checkpoint": checkpoint_path,
        "config": config.to_dict(),
        **task_info,
    }
    if "frame_shape" in info:  # reads faces: the fewest frames it can read, for its front door
        info["shortest_clip"] = shortest_clip(info, encoder_frames_per_step(model))
    save_export(module, signatures, info, export_dir)
    logging.info("exported %s (from %s)", export_dir, checkpoint_path)
    return Path(export_dir)


def rebuild_export(source: str | Path, export_dir: str | Path) -> Path:
    """A lip-reading export (a path or a shipped release) saved again with today's searches.

    The weights are the export's own variables and its lipseq.json is copied byte for byte,
    so only the graph's decoding code changes: a fix to a search reaches a release whose
    training run is gone. The prepared data's settings, frame shape and normalisation come
    from the info file, where export stored them.
    """
    source = resolve_export(source)
    info = read_export_info(source)
    if "frame_shape" not in info or "modalities" in info:
        raise ConfigError(f"{source}: only single-stream lip-reading exports can be rebuilt")
    task = task_for(export_config(info))
    task.manifest = {
        "settings": info["prep"],
        "frame_shape": info["frame_shape"],
        "normalisation": info["normalisation"],
    }
    model = task.build_model()
    load_initial_weights(model, source)
    module, signatures, rebuilt = task.serving_module(model)
    if set(rebuilt["signatures"]) != set(info["signatures"]):
        raise ConfigError(f"{source}: today's code would export other signatures")
    save_export(module, signatures, info, export_dir)
    (Path(export_dir) / INFO_PATH).write_bytes((source / INFO_PATH).read_bytes())
    logging.info("rebuilt %s from %s", export_dir, source)
    return Path(export_dir)
