"""Text for language models: sentences -> normalised lines and their token ids, per split.

Sources (config.data.source):
  * "files": one sentence per line from config.data.{train,eval,test}_files (plain or .gz);
    a split without a file is cut from the training lines (config.data.heldout_lines each);
  * "grid": sentences of the GRID grammar drawn from its word lists (text only, no video).
Vocabularies (config.data.vocabulary):
  * "characters": the lip-reading characters (data_prep.characters), text lowercased and
    stripped to them, so a lip-reading model can be fused with the language model;
  * a path to a SentencePiece model (for example a prepared translation's target.model):
    the language model then speaks that model's pieces, for fusion with that translation.

Writes prepared_dir/{split}.txt (the normalised lines), {split}.ids.npz (the ids of every
line, flat, with row lengths) and manifest.json; a SentencePiece model is copied beside them,
so a prepared directory (and an export made from it) stands alone.
"""

from __future__ import annotations

import glob
import random
import shutil
from pathlib import Path

import numpy as np

from data_prep import subwords
from data_prep.atomic import atomic_path, write_text_atomic
from data_prep.characters import BOS_ID, EOS_ID, PAD_ID, CharVocabulary
from data_prep.corpora.grid import GRID_GRAMMAR
from data_prep.corpora.text import CorpusError, normalize_text, read_lines
from data_prep.corpora.transcripts import normalize_transcript
from data_prep.errors import ConfigError
from data_prep.records import write_manifest

TASK = "language_model"
SPLITS = ("train", "val", "test")
VOCABULARY_FILE = "vocabulary.model"


class TextVocabulary:
    """Normalises and encodes text for a language model: characters or SentencePiece pieces.

    Ids 0 pad, 1 unknown, 2 bos, 3 eos in both (the project's SentencePiece models are
    trained with these ids), so searches and models read either the same way.
    """

    def __init__(self, kind: str, spm_path: str | Path | None = None):
        self.kind = kind
        self.pad_id, self.bos_id, self.eos_id = PAD_ID, BOS_ID, EOS_ID
        if kind == "characters":
            self.characters = CharVocabulary()
            self.size = self.characters.size
        elif kind == "sentencepiece":
            self.processor = subwords.load_model(spm_path)
            self.size = self.processor.get_piece_size()
            ids = (self.processor.bos_id(), self.processor.eos_id(), self.processor.pad_id())
            if ids != (BOS_ID, EOS_ID, PAD_ID):
                raise ConfigError(
                    f"{spm_path}: bos/eos/pad ids are {ids}, language models need "
                    f"{(BOS_ID, EOS_ID, PAD_ID)} (train it with lipseq prepare)"
                )
        else:
            raise ConfigError(f"unknown vocabulary kind {kind!r}; known: characters, sentencepiece")

    def normalise(self, line: str) -> str:
        if self.kind == "characters":
            return normalize_transcript(line)[0]
        return normalize_text(line)

    def encode(self, text: str) -> list[int]:
        if self.kind == "characters":
            return self.characters.encode(text)
        return subwords.encode(self.processor, text)

    def decode(self, ids) -> str:
        """Text of ids without bos or eos (language-model lines and samples hold neither)."""
        if self.kind == "characters":
            return self.characters.decode(ids)
        return subwords.decode(self.processor, ids)


def vocabulary_from_manifest(prepared_dir: str | Path, manifest: dict) -> TextVocabulary:
    """The vocabulary a prepared language-model dataset was encoded with."""
    vocab = manifest["vocab"]
    if vocab["kind"] == "characters":
        return TextVocabulary("characters")
    return TextVocabulary("sentencepiece", Path(prepared_dir) / vocab["model"])


def grid_sentences(count: int, seed: int) -> list[str]:
    """`count` GRID-grammar sentences, each word drawn evenly from its slot's list."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(words) for words in GRID_GRAMMAR.values()) for _ in range(count)]


def _source_lines(data, seed: int) -> dict[str, list[str]]:
    """Raw lines of each split that has its own source."""
    if data.source == "grid":
        lines = grid_sentences(data.grid_sentences, seed)
        held = data.heldout_lines
        return {"val": lines[:held], "test": lines[held : 2 * held], "train": lines[2 * held :]}
    if data.source != "files":
        raise ConfigError(f"unknown language-model text source {data.source!r}; known: files, grid")
    if not data.train_files:
        raise ConfigError("config.data.train_files is empty: give the training text")
    lines: dict[str, list[str]] = {}
    for split, key in (("train", "train_files"), ("val", "eval_files"), ("test", "test_files")):
        patterns = data[key]
        paths = [Path(p) for pattern in patterns for p in sorted(glob.glob(pattern))]
        if patterns and not paths:
            raise CorpusError(f"config.data.{key}: no file matches {', '.join(patterns)}")
        if paths:
            lines[split] = [line for path in paths for line in read_lines(path)]
    return lines


def prepare_language_model(config) -> dict:
    """Reads, normalises, splits and encodes the text; writes the prepared directory."""
    data = config.data
    output = Path(data.prepared_dir)
    output.mkdir(parents=True, exist_ok=True)
    spm_path = None
    if data.vocabulary != "characters":
        spm_path = Path(data.vocabulary)
        if not spm_path.is_file():
            raise ConfigError(f"config.data.vocabulary: {spm_path} is not a SentencePiece model")
        shutil.copyfile(spm_path, output / VOCABULARY_FILE)
    kind = "characters" if spm_path is None else "sentencepiece"
    vocabulary = TextVocabulary(kind, spm_path)

    raw = _source_lines(data, config.seed)
    train = raw["train"]
    missing = [split for split in ("val", "test") if split not in raw]
    if missing:
        shuffled = list(train)
        random.Random(config.seed).shuffle(shuffled)
        held = data.heldout_lines
        for index, split in enumerate(missing):
            raw[split] = shuffled[index * held : (index + 1) * held]
        train = shuffled[len(missing) * held :]
        raw["train"] = train

    splits = {}
    for split in SPLITS:
        texts, ids, dropped = [], [], 0
        for line in raw[split]:
            text = vocabulary.normalise(line)
            tokens = vocabulary.encode(text) if text else []
            if not tokens or len(tokens) > data.max_length:
                dropped += 1
                continue
            texts.append(text)
            ids.append(tokens)
        if not texts:
            raise CorpusError(f"the {split} split of the language-model text has no usable line")
        write_text_atomic(output / f"{split}.txt", "\n".join(texts) + "\n")
        with atomic_path(output / f"{split}.ids.npz", suffix=".npz") as tmp:
            with open(tmp, "wb") as f:
                np.savez(
                    f,
                    ids=np.concatenate([np.asarray(t, np.int32) for t in ids]),
                    lengths=np.asarray([len(t) for t in ids], np.int32),
                )
        splits[split] = {
            "num_examples": len(texts),
            "num_tokens": int(sum(map(len, ids))),
            "num_characters": int(sum(map(len, texts))),
            "dropped": dropped,
            "text": f"{split}.txt",
            "ids": f"{split}.ids.npz",
        }
    vocab = {"kind": kind, "size": vocabulary.size, "bos_id": BOS_ID, "eos_id": EOS_ID}
    if spm_path is not None:
        vocab.update(model=VOCABULARY_FILE, source=str(spm_path))
    manifest = {"task": TASK, "source": data.source, "vocab": vocab, "splits": splits}
    write_manifest(output, manifest)
    return manifest


def read_split_ids(prepared_dir: str | Path, manifest: dict, split: str) -> list[np.ndarray]:
    """The token ids of every line of a prepared split."""
    if split not in manifest["splits"]:
        raise ConfigError(
            f"no {split!r} split in {prepared_dir}; have {sorted(manifest['splits'])}"
        )
    with np.load(Path(prepared_dir) / manifest["splits"][split]["ids"]) as stored:
        ids, lengths = stored["ids"], stored["lengths"]
    return np.split(ids, np.cumsum(lengths)[:-1])
