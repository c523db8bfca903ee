"""Tasks: the seam between what differs (data, model, metric, serving) and the shared code.

REGISTRY maps config.task to "module:Class". Entries are imported on first use, so a task's
heavy dependencies (OpenCV for video) load only when that task runs. `register_task` adds
one at run time (the tests add a tiny one this way).
"""

from __future__ import annotations

import importlib

import ml_collections

from data_prep.errors import ConfigError
from pipelines.tasks.base import Task

REGISTRY: dict[str, str | type[Task]] = {
    "translation": "pipelines.tasks.translation:TranslationTask",
    "lipreading": "pipelines.tasks.lipreading:LipreadingTask",
    "audio_visual": "pipelines.tasks.audio_visual:AudioVisualTask",
    "language_model": "pipelines.tasks.language_model:LanguageModelTask",
}


def register_task(name: str, task: str | type[Task]) -> None:
    """Adds (or replaces) a task under `name`: a Task subclass or its "module:Class" path."""
    REGISTRY[name] = task


def task_class(name: str) -> type[Task]:
    """The Task subclass registered as `name`."""
    if name not in REGISTRY:
        raise ConfigError(f"unknown task {name!r}; known: {', '.join(sorted(REGISTRY))}")
    entry = REGISTRY[name]
    if isinstance(entry, str):
        module_name, _, class_name = entry.partition(":")
        entry = getattr(importlib.import_module(module_name), class_name)
        REGISTRY[name] = entry
    return entry


def task_for(config: ml_collections.ConfigDict) -> Task:
    """The task object for an experiment config (config.task names it)."""
    return task_class(config.task)(config)


__all__ = ["REGISTRY", "Task", "register_task", "task_class", "task_for"]
