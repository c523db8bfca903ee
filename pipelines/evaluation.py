"""Evaluation of an export or of a training run's checkpoint, by the task the model is for."""

from __future__ import annotations

import inspect
import tempfile
from pathlib import Path

from data_prep.errors import ConfigError
from pipelines.artifacts.exports import export_config, read_export_info, resolve_export
from pipelines.serving.export import export_model
from pipelines.tasks import task_for


def evaluate_export(
    *,
    saved_model: str | Path | None = None,
    workdir: str | Path | None = None,
    checkpoint: str = "best",
    prepared_dir: str | Path | None = None,
    **options,
) -> tuple[dict, list[str], Path]:
    """(report, summary lines, default report path) for an export or a workdir's checkpoint.

    A checkpoint is exported to a temporary directory first, so both are measured through
    the same serving graph. `options` go to the task's `evaluate` (split, inputs,
    references, modes, batch_size); `prepared_dir` replaces the one the model trained on.
    """
    if bool(saved_model) == bool(workdir):
        raise ValueError("give exactly one of saved_model or workdir")
    with tempfile.TemporaryDirectory(prefix="lipseq-eval-") as scratch:
        if workdir:
            export_dir = export_model(workdir, Path(scratch) / "export", checkpoint)
            model_dir = Path(workdir)
        else:
            export_dir = model_dir = resolve_export(saved_model)
        config = export_config(read_export_info(export_dir))
        if prepared_dir:
            config.data.prepared_dir = str(prepared_dir)
        task = task_for(config)
        accepted = inspect.signature(task.evaluate).parameters
        for name in options:
            if name not in accepted:
                raise ConfigError(f"the {task.name} task's evaluation has no {name!r} option")
        report = task.evaluate(export_dir, **options)
    inputs = options.get("inputs")
    name = Path(inputs).name.split(".")[0] if inputs else options.get("split", "test")
    if saved_model and export_dir != Path(saved_model):  # a shipped release: report here
        model_dir, name = Path("."), f"{saved_model}_{name}"
    return report, task.report_lines(report), model_dir / f"eval_{name}.json"
