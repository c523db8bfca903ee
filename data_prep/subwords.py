"""SentencePiece subword models: training (joint or per side) with fixed special ids; encoding."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sentencepiece as spm
from absl import logging
from sentencepiece import sentencepiece_model_pb2

from data_prep.atomic import publish
from data_prep.errors import LipseqError
from data_prep.records import TMP_SUFFIX, sha256_file

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
SPECIAL_IDS = {"pad_id": PAD_ID, "unk_id": UNK_ID, "bos_id": BOS_ID, "eos_id": EOS_ID}
SPECIAL_PIECES = {
    "pad_piece": "<pad>",
    "unk_piece": "<unk>",
    "bos_piece": "<s>",
    "eos_piece": "</s>",
}
MODEL_TYPES = ("unigram", "bpe", "char", "word")
JOINT_NAME, SOURCE_NAME, TARGET_NAME = "spm_joint", "spm_source", "spm_target"
_TOO_HIGH = "Vocabulary size too high"


class SubwordError(LipseqError, RuntimeError):
    """SentencePiece could not train a model with the given options."""


@dataclass(frozen=True)
class SubwordModelInfo:
    """A trained model: its .model path, actual and requested vocabulary sizes, and SHA-256."""

    path: Path
    vocab_size: int
    requested_vocab_size: int
    sha256: str

    def to_manifest(self, root: str | os.PathLike) -> dict[str, Any]:
        """The manifest entry, with the model path relative to `root`."""
        return {
            "model": os.path.relpath(self.path, root),
            "vocab_size": self.vocab_size,
            "requested_vocab_size": self.requested_vocab_size,
            "sha256": self.sha256,
        }


def default_num_threads() -> int:
    """Trainer threads: the CPU count, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


def _train_once(
    input_files: Sequence[Path],
    model_prefix: Path,
    vocab_size: int,
    model_type: str,
    character_coverage: float,
    num_threads: int,
    input_sentence_size: int,
    hard_vocab_limit: bool,
) -> None:
    spm.SentencePieceTrainer.train(
        input=[str(f) for f in input_files],
        model_prefix=str(model_prefix),
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=character_coverage,
        hard_vocab_limit=hard_vocab_limit,
        num_threads=num_threads,
        input_sentence_size=input_sentence_size,
        shuffle_input_sentence=True,
        normalization_rule_name="identity",
        minloglevel=1,
        **SPECIAL_IDS,
        **SPECIAL_PIECES,
    )


def _strip_run_details(model_file: Path) -> None:
    """Drop input paths, prefix and thread count from the stored trainer spec.

    The model bytes (and checksum) then depend only on the training text and options.
    """
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(model_file.read_bytes())
    for name in ("input", "model_prefix", "num_threads"):
        proto.trainer_spec.ClearField(name)
    model_file.write_bytes(proto.SerializeToString(deterministic=True))


def train_sentencepiece(
    input_files: Sequence[str | os.PathLike],
    model_path: str | os.PathLike,
    vocab_size: int,
    model_type: str = "unigram",
    character_coverage: float = 1.0,
    seed: int = 42,
    num_threads: int | None = None,
    input_sentence_size: int = 0,
) -> SubwordModelInfo:
    """Train a SentencePiece model on one-sentence-per-line files into `model_path` (+ .vocab).

    Text must already be normalised: the model uses the identity normalisation rule, so decoding
    ids gives the training text back. Ids 0-3 are <pad>, <unk>, <s>, </s>. If `vocab_size` is
    more than the corpus supports, training is retried with a soft limit and the actual size is
    returned. `input_sentence_size` > 0 trains on a seeded sample of that many sentences.
    """
    if model_type not in MODEL_TYPES:
        raise ValueError(f"unknown SentencePiece model_type {model_type!r}; expected {MODEL_TYPES}")
    model_path = Path(model_path)
    if model_path.suffix != ".model":
        raise ValueError(f"model_path must end in .model, got {model_path}")
    files = [Path(f) for f in input_files]
    prefix = model_path.with_name(model_path.stem + TMP_SUFFIX)
    tmp_model, tmp_vocab = Path(f"{prefix}.model"), Path(f"{prefix}.vocab")
    spm.set_random_generator_seed(seed)
    options = (vocab_size, model_type, character_coverage, num_threads or default_num_threads())
    try:
        try:
            _train_once(files, prefix, *options, input_sentence_size, hard_vocab_limit=True)
        except RuntimeError as e:
            if _TOO_HIGH not in str(e):
                raise SubwordError(f"SentencePiece training of {model_path} failed: {e}") from e
            _train_once(files, prefix, *options, input_sentence_size, hard_vocab_limit=False)
        _strip_run_details(tmp_model)
        actual = load_model(tmp_model).get_piece_size()
        if actual != vocab_size:
            logging.warning(
                "%s: the corpus supports only %d subwords; vocab_size %d lowered to %d",
                model_path.name,
                actual,
                vocab_size,
                actual,
            )
        publish(tmp_vocab, model_path.with_suffix(".vocab"))
        publish(tmp_model, model_path)
    finally:
        tmp_model.unlink(missing_ok=True)
        tmp_vocab.unlink(missing_ok=True)
    return SubwordModelInfo(model_path, actual, vocab_size, sha256_file(model_path))


def train_vocabularies(
    source_file: str | os.PathLike,
    target_file: str | os.PathLike,
    output_dir: str | os.PathLike,
    vocab_size: int,
    joint: bool = False,
    model_type: str = "unigram",
    character_coverage: float = 1.0,
    seed: int = 42,
    num_threads: int | None = None,
) -> dict[str, SubwordModelInfo]:
    """Train `spm_joint.model` on both sides, or `spm_source.model` and `spm_target.model`.

    Returns {"source": info, "target": info} (the same info twice when joint). Model files of the
    other layout left by an earlier run in `output_dir` are removed.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    options = {
        "vocab_size": vocab_size,
        "model_type": model_type,
        "character_coverage": character_coverage,
        "seed": seed,
        "num_threads": num_threads,
    }
    if joint:
        info = train_sentencepiece(
            [source_file, target_file], output_dir / f"{JOINT_NAME}.model", **options
        )
        infos = {"source": info, "target": info}
        stale = (SOURCE_NAME, TARGET_NAME)
    else:
        infos = {
            side: train_sentencepiece([path], output_dir / f"{name}.model", **options)
            for side, path, name in (
                ("source", source_file, SOURCE_NAME),
                ("target", target_file, TARGET_NAME),
            )
        }
        stale = (JOINT_NAME,)
    for name in stale:
        for suffix in (".model", ".vocab"):
            (output_dir / f"{name}{suffix}").unlink(missing_ok=True)
    return infos


def vocab_manifest(
    infos: Mapping[str, SubwordModelInfo],
    joint: bool,
    root: str | os.PathLike,
    kind: str = "subwords",
) -> dict[str, Any]:
    """The manifest's "vocab" entry: kind (subwords | words), layout, per-side models (paths
    relative to root), ids."""
    return {
        "kind": kind,
        "joint": joint,
        "source": infos["source"].to_manifest(root),
        "target": infos["target"].to_manifest(root),
        **SPECIAL_IDS,
    }


def load_model(path: str | os.PathLike) -> spm.SentencePieceProcessor:
    """Load a SentencePiece model file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SentencePiece model not found: {path}")
    return spm.SentencePieceProcessor(model_file=str(path))


def encode(processor: spm.SentencePieceProcessor, text: str) -> list[int]:
    """Subword ids of `text`, without BOS/EOS."""
    return processor.encode(text, out_type=int)


def decode(processor: spm.SentencePieceProcessor, ids: Sequence[int]) -> str:
    """Text of subword ids; pad, BOS and EOS ids are ignored."""
    return processor.decode([int(i) for i in ids if i not in (PAD_ID, BOS_ID, EOS_ID)])
