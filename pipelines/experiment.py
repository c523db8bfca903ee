"""Shared set-up for the pipelines: the prepared data, the model and its checkpoint."""

import json
from pathlib import Path

import ml_collections
import tensorflow as tf

from models.seq2seq import Seq2Seq, build_model
from pipelines.translator import Translator


def prepared_dir_of(config: ml_collections.ConfigDict) -> Path:
    """The prepared dataset directory named by the config."""
    if not config.data.prepared_dir:
        raise ValueError("config.data.prepared_dir is empty: set it to the output of prepare")
    return Path(config.data.prepared_dir)


def vocab_sizes(manifest: dict) -> tuple[int, int]:
    """(source, target) vocabulary sizes from a prepared manifest."""
    vocab = manifest["vocab"]
    return int(vocab["source"]["vocab_size"]), int(vocab["target"]["vocab_size"])


def subword_model_paths(prepared_dir: Path, manifest: dict) -> tuple[Path, Path]:
    """Paths of the source and target SentencePiece models."""
    vocab = manifest["vocab"]
    return prepared_dir / vocab["source"]["model"], prepared_dir / vocab["target"]["model"]


def model_for(config: ml_collections.ConfigDict, manifest: dict) -> Seq2Seq:
    """A freshly initialised model sized for the prepared data."""
    source_vocab, target_vocab = vocab_sizes(manifest)
    return build_model(config.model, source_vocab, target_vocab)


def translator_for(model, config, prepared_dir: Path, manifest: dict) -> Translator:
    """A string-to-string Translator around `model`."""
    source_spm, target_spm = subword_model_paths(prepared_dir, manifest)
    return Translator(model, source_spm, target_spm, config, manifest["vocab"])


def save_config(config: ml_collections.ConfigDict, workdir: Path) -> None:
    """Writes the resolved config as workdir/config.json (atomically)."""
    path = workdir / "config.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(config.to_dict(), indent=2, default=str))
    tmp.replace(path)


def load_config(workdir: Path) -> ml_collections.ConfigDict:
    """The config a training run in `workdir` used."""
    path = Path(workdir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {workdir} a training workdir?")
    config = ml_collections.ConfigDict(json.loads(path.read_text()))
    config.data.bucket_boundaries = tuple(config.data.bucket_boundaries)
    if "frame_shape" in config.model:
        config.model.frame_shape = tuple(config.model.frame_shape)
    return config


def restore_model(workdir: Path, checkpoint: str = "best") -> tuple:
    """(config, manifest, model, path) of a training run; `checkpoint`: best, latest or a path."""
    from pipelines.tasks import task_for

    workdir = Path(workdir)
    config = load_config(workdir)
    task = task_for(config)
    manifest = task.manifest
    model = task.build_model()
    if checkpoint in ("best", "latest"):
        path = tf.train.latest_checkpoint(str(workdir / "best")) if checkpoint == "best" else None
        path = path or tf.train.latest_checkpoint(str(workdir / "checkpoints"))
    else:
        path = checkpoint
    if not path:
        raise FileNotFoundError(f"no checkpoint in {workdir}/best or {workdir}/checkpoints")
    tf.train.Checkpoint(model=model).read(path).expect_partial()
    return config, manifest, model, path
