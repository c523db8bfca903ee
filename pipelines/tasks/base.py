"""The contract every task fulfils; the CLIs, the training loop and export only use this.

A task is the one place that knows what differs between, say, translation and lip reading:
how raw data is prepared, which model and input pipeline it trains, its validation metric,
what its SavedModel serves and how an export is evaluated. The model it builds owns its loss
(`loss_terms`). Adding a task is one module with a `Task` subclass and one entry in
`pipelines/tasks/__init__.py: REGISTRY`.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import ml_collections
import tensorflow as tf

from data_prep.errors import ConfigError, NotPreparedError
from data_prep.records import read_manifest

Validator = Callable[[], tuple[float, str]]


class Task(abc.ABC):
    """One kind of experiment, configured by an experiment config whose `task` names it.

    Class attributes:
        name: the registry name (config.task).
        metric: the validation metric's name, e.g. "bleu" or "wer".
        higher_is_better: whether a larger metric is an improvement.
    """

    name: ClassVar[str]
    metric: ClassVar[str]
    higher_is_better: ClassVar[bool]

    def __init__(self, config: ml_collections.ConfigDict):
        self.config = config
        # Choices plan_for_epochs made for this run; the training loop sets them.
        self.budget_plan: dict[str, Any] = {}

    # --- Prepared data -------------------------------------------------------------------

    @property
    def prepared_dir(self) -> Path:
        """The prepared dataset directory named by config.data.prepared_dir."""
        if not self.config.data.prepared_dir:
            raise ConfigError("config.data.prepared_dir is empty: set it to prepare's output")
        return Path(self.config.data.prepared_dir)

    @functools.cached_property
    def manifest(self) -> dict:
        """manifest.json of the prepared data (NotPreparedError when absent)."""
        return read_manifest(self.prepared_dir, self.name)

    def check_prepared(self) -> None:
        """Raises NotPreparedError unless the data to train on is prepared."""
        split = self.config.data.train_split
        if split not in self.manifest["splits"]:
            raise NotPreparedError(
                f"{self.prepared_dir / 'manifest.json'} has no {split!r} split to train on"
            )

    @abc.abstractmethod
    def prepare(self) -> dict:
        """Raw corpus (config.data.input_dir) -> config.data.prepared_dir; returns the manifest."""

    def prepare_with_beam(self, pipeline_options: str = "") -> dict:
        """prepare on an Apache Beam runner (`pipeline_options`: comma-separated key=value)."""
        raise ConfigError(f"the {self.name} task prepares on one machine only (no --engine=beam)")

    def describe_prepared(self, manifest: dict) -> list[str]:
        """Lines summarising a finished preparation for the terminal."""
        splits = manifest["splits"]
        return [f"{split}: {entry['num_examples']} examples" for split, entry in splits.items()]

    def plot_example(self, example_id: str) -> Path:
        """Draws one prepared example to a PNG beside the data; returns its path."""
        raise ConfigError(f"the {self.name} task has no per-example plot")

    # --- Training ------------------------------------------------------------------------

    @abc.abstractmethod
    def build_model(self) -> tf.keras.Model:
        """A freshly initialised model sized for the prepared data, with `loss_terms`."""

    @abc.abstractmethod
    def batch_signature(self) -> dict[str, tf.TensorSpec]:
        """The TensorSpecs of one training batch (the keys the model and its loss read)."""

    def batch_examples(self, batch: dict) -> tf.Tensor:
        """How many examples (sentences, clips) one training batch holds: an int32 scalar.

        The training loop counts examples seen with it. Here: the rows of `labels`, which
        every task's batches carry.
        """
        return tf.shape(batch["labels"])[0]

    def batch_ids(self, batch: dict) -> tf.Tensor:
        """What identifies each example of a training batch: string [B]. Here: `id`, which
        the prepared-record input pipelines carry (--config.record_batch_ids logs them)."""
        return batch["id"]

    @abc.abstractmethod
    def train_dataset(
        self, epoch: int, batch_size: int | None = None, shard: tuple[int, int] | None = None
    ) -> tf.data.Dataset:
        """One epoch of training batches; the order depends only on (config.seed, epoch)."""

    def plan_for_epochs(self, projected_epochs: float) -> dict[str, Any]:
        """Training choices that depend on how many epochs the run will last, made once by
        the training loop after the second epoch, from the measured step rate and the time
        budget (pipelines/training/budget_plan.py). The loop keeps them in `budget_plan`
        for train_dataset to read, and in the workdir for resumes. None here."""
        del projected_epochs
        return {}

    @abc.abstractmethod
    def make_validator(self, model) -> Validator | None:
        """A function () -> (metric on the validation split, one example output), or None."""

    # --- Serving and evaluation ----------------------------------------------------------

    @abc.abstractmethod
    def serving_module(
        self, model, language_model=None
    ) -> tuple[tf.Module, dict[str, Any], dict[str, Any]]:
        """(module to save, signatures by name incl. serving_default, info for lipseq.json).

        language_model: a models.language_model model over the same output vocabulary, for
        tasks whose searches support shallow fusion (ConfigError from the others).
        The module holds the model as its `model` attribute (warm starts read it from there).
        The info may list `requires_modules` (Python modules whose ops the export needs, imported
        before loading) beside anything the task's own inference code reads back.
        """

    def ensemble_vocabulary(self) -> str:
        """What members of an exported ensemble must share (a fingerprint of this run's
        vocabularies); the tasks whose searches take an ensemble override it."""
        raise ConfigError(f"the {self.name} task does not export ensembles")

    @abc.abstractmethod
    def evaluate(
        self,
        export_dir: str | Path,
        *,
        split: str = "test",
        inputs: str | None = None,
        references: str | None = None,
        modes: list[str] | None = None,
        batch_size: int = 32,
    ) -> dict:
        """Scores an export: on a prepared split, or on `inputs` against `references`.

        Returns {"summary": {...}, <per-example list>: [...]}; `modes` picks decoding modes
        (the task's defaults when None).
        """

    @abc.abstractmethod
    def report_lines(self, report: dict) -> list[str]:
        """The summary of an evaluation report, for the terminal."""
