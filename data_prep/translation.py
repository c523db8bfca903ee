"""Parallel text -> subword models (or word vocabularies), sharded TFRecords and manifest.json
(translation).

Reads line-aligned files `{input_dir}/{split}.{lang}` (or `.gz`), or a TFDS translate dataset
already on disk (config.data.tfds_name / tfds_data_dir; split names come from the config, so
TFDS's "validation" needs `--config.data.eval_split=validation`).

Output layout (paths in the manifest are relative to the output directory):
  spm_source.model/.vocab, spm_target.model/.vocab   or  spm_joint.model/.vocab when joint
  words_source.txt, words_target.txt (or words_joint.txt)   with config.data.vocabulary=words
  dictionary.npy   words: target words per source word learnt from train (candidate lists)
  {split}-{i:05d}-of-{n:05d}.tfrecord   train: config.data.num_shards shards; eval/test: 1 shard
  {split}.source.txt, {split}.target.txt   normalised kept pairs, in record order
  manifest.json   written last; removed at the start of a run, so it exists only for a full run

Train shards hold contiguous blocks, so reading the shards in name order gives the order of
the reference text files. The record schema is in data_prep/records.py.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ml_collections
from absl import logging

from data_prep import records, subwords, word_vocab
from data_prep.atomic import atomic_open
from data_prep.corpora import text
from data_prep.errors import ConfigError
from data_prep.paths import project_version

LOG_EVERY_SECONDS = 10.0

PairReader = Callable[[], Iterator[text.Pair]]


class _Progress:
    """Logs "<label>: N lines (R lines/s)" at most every LOG_EVERY_SECONDS."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.start = self.last = time.monotonic()

    def track(self, pairs: Iterable[text.Pair]) -> Iterator[text.Pair]:
        count = 0
        for count, pair in enumerate(pairs, start=1):
            now = time.monotonic()
            if now - self.last >= LOG_EVERY_SECONDS:
                self.last = now
                logging.info("%s: %d lines (%.0f lines/s)", self.label, count, self.rate(count))
            yield pair
        logging.info(
            "%s: %d lines in %.1fs (%.0f lines/s)",
            self.label,
            count,
            time.monotonic() - self.start,
            self.rate(count),
        )

    def rate(self, count: int) -> float:
        return count / max(time.monotonic() - self.start, 1e-9)


@dataclass
class _SplitStats:
    num_input_lines: int = 0
    num_examples: int = 0
    dropped: text.DropCounts = field(default_factory=text.DropCounts)
    num_tokens: dict[str, int] = field(default_factory=lambda: {"source": 0, "target": 0})
    max_length: dict[str, int] = field(default_factory=lambda: {"source": 0, "target": 0})

    def add(self, pair: text.EncodedPair) -> None:
        self.num_examples += 1
        for side, ids in (("source", pair.source_ids), ("target", pair.target_ids)):
            self.num_tokens[side] += len(ids)
            self.max_length[side] = max(self.max_length[side], len(ids))

    def summary(self) -> dict[str, Any]:
        n = self.num_examples
        source, target = self.num_tokens["source"], self.num_tokens["target"]
        return {
            "num_examples": n,
            "num_input_lines": self.num_input_lines,
            "dropped": self.dropped.as_dict(),
            "max_source_length": self.max_length["source"],
            "max_target_length": self.max_length["target"],
            "mean_source_length": round(source / n, 3) if n else 0.0,
            "mean_target_length": round(target / n, 3) if n else 0.0,
            "num_source_tokens": source,
            "num_target_tokens": target,
        }


def _counted(pairs: Iterable[text.Pair], stats: _SplitStats) -> Iterator[text.Pair]:
    for pair in pairs:
        stats.num_input_lines += 1
        yield pair


def _file_reader(
    input_dir: Path, split: str, source_lang: str, target_lang: str
) -> PairReader | None:
    langs = (source_lang, target_lang)
    paths = {lang: text.find_text_file(input_dir, f"{split}.{lang}") for lang in langs}
    if not any(paths.values()):
        return None
    for lang, path in paths.items():
        if path is None:
            raise text.CorpusError(
                f"split {split!r}: {input_dir / f'{split}.{lang}'} (or .gz) is missing, "
                f"but the other side of the pair exists"
            )
    source_path, target_path = paths[source_lang], paths[target_lang]
    logging.info("split %s: %s, %s", split, source_path, target_path)
    return functools.partial(text.read_parallel, source_path, target_path)


def _split_readers(
    data: ml_collections.ConfigDict,
    input_dir: Path | None,
    tfds_name: str | None,
    tfds_data_dir: str | None,
) -> dict[str, PairReader]:
    """Readers for the configured splits that exist, train first; a missing train is an error."""
    if not data.train_split:
        raise ValueError("config.data.train_split is empty")
    configured = (data.train_split, data.eval_split, data.test_split)
    names = list(dict.fromkeys(s for s in configured if s))
    if tfds_name:
        available = text.tfds_splits(tfds_name, tfds_data_dir)
        readers = {
            split: functools.partial(
                text.read_tfds_pairs,
                tfds_name,
                split,
                data.source_lang,
                data.target_lang,
                tfds_data_dir,
            )
            for split in names
            if split in available
        }
        where = f"TFDS dataset {tfds_name!r} (splits: {', '.join(available)})"
    else:
        if input_dir is None or not input_dir.is_dir():
            raise text.CorpusError(f"input directory not found: {input_dir}")
        readers = {}
        for split in names:
            reader = _file_reader(input_dir, split, data.source_lang, data.target_lang)
            if reader is not None:
                readers[split] = reader
        where = str(input_dir)
    if data.train_split not in readers:
        raise text.CorpusError(
            f"train split {data.train_split!r} not found in {where} "
            f"(expected {data.train_split}.{data.source_lang}[.gz] and "
            f"{data.train_split}.{data.target_lang}[.gz])"
        )
    for split in names:
        if split not in readers:
            logging.warning("split %r not found in %s; skipping it", split, where)
    return readers


def _write_training_text(pairs: Iterable[text.Pair], source_file: Path, target_file: Path) -> int:
    """Write normalised non-empty pairs one sentence per line; return how many were written."""
    count = 0
    with (
        open(source_file, "w", encoding="utf-8") as src,
        open(target_file, "w", encoding="utf-8") as tgt,
    ):
        for _, source, target in text.normalize_pairs(pairs):
            if text.empty_reason(source, target) is None:
                src.write(source + "\n")
                tgt.write(target + "\n")
                count += 1
    return count


def _write_split(
    split: str,
    pairs: Iterable[text.Pair],
    encoders: dict[str, text.Encoder],
    output_dir: Path,
    num_shards: int,
    expected: int,
    max_length: int,
    collected: list | None = None,
) -> dict[str, Any]:
    """Encode, filter and write a split's shards and reference texts; return its manifest entry."""
    stats = _SplitStats()
    encoded = text.encode_pairs(
        text.normalize_pairs(_counted(pairs, stats)),
        encoders["source"],
        encoders["target"],
        max_length,
        stats.dropped,
    )
    reference_paths = {side: output_dir / f"{split}.{side}.txt" for side in ("source", "target")}
    with contextlib.ExitStack() as stack:
        refs = {
            side: stack.enter_context(atomic_open(path, "w", encoding="utf-8"))
            for side, path in reference_paths.items()
        }

        def examples() -> Iterator[dict[str, Any]]:
            for pair in encoded:
                refs["source"].write(pair.source + "\n")
                refs["target"].write(pair.target + "\n")
                stats.add(pair)
                if collected is not None:
                    collected.append((pair.source_ids, pair.target_ids))
                yield records.text_example(
                    f"{split}-{pair.index:06d}",
                    pair.source,
                    pair.target,
                    pair.source_ids,
                    pair.target_ids,
                )

        shards = records.write_shards(
            examples(), output_dir, split, num_shards, strategy="contiguous", num_records=expected
        )
    entry = stats.summary()
    entry["files"] = [shard.to_dict() for shard in shards]
    entry["references"] = {
        side: {"path": path.name, "sha256": records.sha256_file(path)}
        for side, path in reference_paths.items()
    }
    logging.info(
        "split %s: kept %d of %d pairs (dropped %s) in %d shard(s)",
        split,
        entry["num_examples"],
        entry["num_input_lines"],
        entry["dropped"],
        len(shards),
    )
    return entry


VOCABULARIES = ("subwords", "words")
DICTIONARY_NAME = "dictionary.npy"


def _word_vocabularies(data, source_file: Path, target_file: Path, output_dir: Path) -> dict:
    """Word vocabularies of config.data.vocab_size tokens (per side, or joint)."""
    options = {"vocab_size": data.vocab_size, "min_count": data.word_min_count}
    stale = ["spm_joint", "spm_source", "spm_target"]
    if data.joint_vocab:
        info = word_vocab.build_word_vocabulary(
            [source_file, target_file], output_dir / "words_joint.txt", **options
        )
        infos = {"source": info, "target": info}
        stale += ["words_source", "words_target"]
    else:
        infos = {
            side: word_vocab.build_word_vocabulary(
                [path], output_dir / f"words_{side}.txt", **options
            )
            for side, path in (("source", source_file), ("target", target_file))
        }
        stale.append("words_joint")
    for name in stale:
        for suffix in (".model", ".vocab", ".txt"):
            (output_dir / f"{name}{suffix}").unlink(missing_ok=True)
    for side, info in infos.items():
        logging.info("%s word vocabulary: %d tokens (%s)", side, info.vocab_size, info.path.name)
    return infos


def _encoder(path: Path) -> text.Encoder:
    if path.suffix == ".txt":
        return word_vocab.WordEncoder(word_vocab.load_words(path))
    processor = subwords.load_model(path)
    return lambda sentence: subwords.encode(processor, sentence)


def prepare_translation(
    config: ml_collections.ConfigDict,
    input_dir: str | os.PathLike | None = None,
    output_dir: str | os.PathLike | None = None,
    num_threads: int | None = None,
) -> dict[str, Any]:
    """Train subword models on the train split, write every split's shards; return the manifest.

    `input_dir`/`output_dir` default to config.data.input_dir / config.data.prepared_dir. With
    config.data.tfds_name set, pairs come from that TFDS dataset on disk instead of files.
    """
    data = config.data
    if data.vocabulary not in VOCABULARIES:
        raise ConfigError(
            f"unknown config.data.vocabulary {data.vocabulary!r}; expected one of {VOCABULARIES}"
        )
    tfds_name = data.tfds_name or None
    tfds_data_dir = data.tfds_data_dir or None
    raw_input_dir, raw_output_dir = input_dir or data.input_dir, output_dir or data.prepared_dir
    if not raw_output_dir:
        raise ValueError("no output directory: pass output_dir or set config.data.prepared_dir")
    input_dir = Path(raw_input_dir) if raw_input_dir else None
    output_dir = Path(raw_output_dir)
    readers = _split_readers(data, input_dir, tfds_name, tfds_data_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / records.MANIFEST_NAME).unlink(missing_ok=True)
    started = time.monotonic()

    with tempfile.TemporaryDirectory(dir=output_dir, prefix=".spm-train-") as tmp:
        source_file, target_file = Path(tmp) / "train.source", Path(tmp) / "train.target"
        progress = _Progress(f"{data.train_split} (subword training text)")
        num_train = _write_training_text(
            progress.track(readers[data.train_split]()), source_file, target_file
        )
        if num_train == 0:
            raise text.CorpusError(f"train split {data.train_split!r} has no non-empty pairs")
        if data.vocabulary == "words":
            infos = _word_vocabularies(data, source_file, target_file, output_dir)
        else:
            infos = subwords.train_vocabularies(
                source_file,
                target_file,
                output_dir,
                vocab_size=data.vocab_size,
                joint=data.joint_vocab,
                model_type=data.subword_model,
                character_coverage=data.character_coverage,
                seed=config.seed,
                num_threads=num_threads,
            )
    encoders = {side: _encoder(info.path) for side, info in infos.items()}

    vocabulary = data.vocabulary
    per_word = data.dictionary_size if vocabulary == "words" else 0
    train_pairs: list | None = [] if per_word else None
    splits = {}
    for split, reader in readers.items():
        is_train = split == data.train_split
        splits[split] = _write_split(
            split,
            _Progress(split).track(reader()),
            encoders,
            output_dir,
            num_shards=data.num_shards if is_train else 1,
            expected=num_train if is_train else 0,
            max_length=data.max_length,
            collected=train_pairs if is_train else None,
        )

    settings = json.loads(data.to_json())
    settings.update(input_dir=str(input_dir or ""), prepared_dir=str(output_dir))
    if tfds_name:
        settings.update(input_dir="", tfds_name=tfds_name, tfds_data_dir=tfds_data_dir or "")
    manifest = {
        "task": "translation",
        "version": project_version(),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "seed": config.seed,
        "settings": settings,
        "vocab": subwords.vocab_manifest(infos, data.joint_vocab, output_dir, kind=vocabulary),
        "splits": splits,
    }
    (output_dir / DICTIONARY_NAME).unlink(missing_ok=True)
    if train_pairs:
        table = word_vocab.learn_dictionary(
            train_pairs, infos["source"].vocab_size, infos["target"].vocab_size, per_word
        )
        path = word_vocab.save_dictionary(table, output_dir / DICTIONARY_NAME)
        manifest["vocab"]["dictionary"] = {
            "path": path.name,
            "per_word": per_word,
            "sha256": records.sha256_file(path),
        }
        logging.info("dictionary: %d target words per source word", per_word)
    records.write_manifest(output_dir, manifest)
    logging.info("prepared %s in %.1fs", output_dir, time.monotonic() - started)
    return manifest
