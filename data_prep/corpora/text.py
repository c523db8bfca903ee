"""Line-aligned parallel text: reading (plain, .gz or TFDS), normalisation and pair filtering."""

from __future__ import annotations

import gzip
import itertools
import os
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from data_prep.errors import LipseqError

DROP_REASONS = ("empty_source", "empty_target", "too_long")

Pair = tuple[int, str, str]
Encoder = Callable[[str], Sequence[int]]


class CorpusError(LipseqError, ValueError):
    """A parallel corpus that cannot be read as line-aligned UTF-8 text."""


@dataclass
class EncodedPair:
    """A kept pair: 0-based line index, normalised texts and their subword ids."""

    index: int
    source: str
    target: str
    source_ids: list[int]
    target_ids: list[int]


@dataclass
class DropCounts:
    """How many pairs were dropped, by reason; each pair counts once, under its first reason."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))

    def add(self, reason: str) -> None:
        """Count one dropped pair."""
        self.counts[reason] += 1

    @property
    def total(self) -> int:
        """All dropped pairs."""
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, int]:
        """Counts keyed by reason, in `DROP_REASONS` order."""
        return dict(self.counts)


def normalize_text(text: str) -> str:
    """NFKC-normalise, collapse runs of whitespace to one space, and strip."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def find_text_file(directory: str | os.PathLike, stem: str) -> Path | None:
    """`directory/stem` or `directory/stem.gz`, whichever exists (plain first), else None."""
    for candidate in (Path(directory) / stem, Path(directory) / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _open_binary(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return open(path, "rb")


def read_lines(path: str | os.PathLike) -> Iterator[str]:
    """Stream the lines of a UTF-8 text file (plain or .gz) without line terminators.

    Lines are split on "\\n" only, so Unicode line separators inside a sentence do not break
    the alignment; a leading byte-order mark is dropped. Raises `CorpusError` naming the file
    and 1-based line for invalid UTF-8.
    """
    path = Path(path)
    try:
        with _open_binary(path) as f:
            for number, raw in enumerate(f, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise CorpusError(
                        f"{path}: line {number} is not valid UTF-8 "
                        f"(byte {e.start}: {raw[e.start : e.start + 4]!r})"
                    ) from None
                if number == 1:
                    line = line.removeprefix("\ufeff")
                yield line.rstrip("\r\n")
    except (OSError, EOFError) as e:
        if isinstance(e, FileNotFoundError):
            raise CorpusError(f"{path}: file not found") from e
        raise CorpusError(f"{path}: cannot read ({e})") from e


def count_lines(path: str | os.PathLike) -> int:
    """The number of lines in a text file (plain or .gz); a final line without "\\n" counts."""
    with _open_binary(Path(path)) as f:
        return sum(1 for _ in f)


def read_parallel(source_path: str | os.PathLike, target_path: str | os.PathLike) -> Iterator[Pair]:
    """Stream raw `(index, source, target)` line pairs; `CorpusError` if line counts differ."""
    sources, targets = read_lines(source_path), read_lines(target_path)
    num_pairs = 0
    for source in sources:
        target = next(targets, None)
        if target is None:
            raise _mismatch(source_path, count_lines(source_path), target_path, num_pairs)
        yield num_pairs, source, target
        num_pairs += 1
    if next(targets, None) is not None:
        raise _mismatch(source_path, num_pairs, target_path, count_lines(target_path))


def _mismatch(
    source_path: str | os.PathLike, num_source: int, target_path: str | os.PathLike, num_target: int
) -> CorpusError:
    return CorpusError(
        f"parallel files have different line counts: {source_path} has {num_source} lines, "
        f"{target_path} has {num_target} lines"
    )


def _tfds_builder(name: str, data_dir: str | None):
    # Late: TensorFlow Datasets is heavy and only TFDS corpora need it.
    import tensorflow_datasets as tfds

    where = data_dir or "the default TFDS data_dir"
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as e:  # TFDS raises several unrelated types for "not on disk".
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CorpusError(f"TFDS dataset {name!r} not found in {where}: {reason}") from e
    if not builder.is_prepared():
        raise CorpusError(
            f"TFDS dataset {name!r} is not prepared in {where} ({builder.data_dir}); "
            "prepare it with tfds first, nothing is downloaded here"
        )
    return builder


def tfds_splits(name: str, data_dir: str | None = None) -> list[str]:
    """The split names of a TFDS dataset prepared on disk."""
    return sorted(_tfds_builder(name, data_dir).info.splits)


def read_tfds_pairs(
    name: str, split: str, source_lang: str, target_lang: str, data_dir: str | None = None
) -> Iterator[Pair]:
    """Stream `(index, source, target)` from a TFDS translate dataset already prepared on disk.

    `name` may carry a config and version ("wmt14_translate/de-en"); examples are dicts keyed by
    language code. Nothing is downloaded.
    """
    # Late: TensorFlow Datasets is heavy and only TFDS corpora need it.
    import tensorflow_datasets as tfds

    builder = _tfds_builder(name, data_dir)
    try:
        dataset = builder.as_dataset(split=split, shuffle_files=False)
    except Exception as e:  # TFDS error types vary by version.
        raise CorpusError(f"TFDS dataset {name!r}: cannot read split {split!r}: {e}") from e
    for index, example in enumerate(tfds.as_numpy(dataset)):
        texts = []
        for lang in (source_lang, target_lang):
            if lang not in example:
                raise CorpusError(
                    f"TFDS dataset {name!r} has no language {lang!r}; it has {sorted(example)}"
                )
            try:
                texts.append(example[lang].decode("utf-8"))
            except UnicodeDecodeError:
                raise CorpusError(
                    f"TFDS dataset {name!r} split {split!r}: example {index} ({lang}) "
                    "is not valid UTF-8"
                ) from None
        yield index, texts[0], texts[1]


def normalize_pairs(pairs: Iterable[Pair]) -> Iterator[Pair]:
    """Apply `normalize_text` to both sides of each pair."""
    for index, source, target in pairs:
        yield index, normalize_text(source), normalize_text(target)


def empty_reason(source: str, target: str) -> str | None:
    """The drop reason ("empty_source" or "empty_target") for a pair with an empty side."""
    if not source:
        return "empty_source"
    if not target:
        return "empty_target"
    return None


def encode_pairs(
    pairs: Iterable[Pair],
    encode_source: Encoder,
    encode_target: Encoder,
    max_length: int,
    dropped: DropCounts,
) -> Iterator[EncodedPair]:
    """Encode normalised pairs, dropping (and counting in `dropped`) empty and over-long ones.

    A pair is too long when either side has more than `max_length` subword ids (no BOS/EOS);
    `max_length <= 0` disables the length filter. An encoder with an `encode_batch(sentences)`
    method is given blocks of sentences (word vocabularies split text with TensorFlow ops,
    whose per-call cost dwarfs a sentence's).
    """
    pairs = iter(pairs)
    while block := list(itertools.islice(pairs, ENCODE_BLOCK)):
        kept = []
        for index, source, target in block:
            reason = empty_reason(source, target)
            if reason:
                dropped.add(reason)
            else:
                kept.append((index, source, target))
        source_ids = _encode_all(encode_source, [source for _, source, _ in kept])
        target_ids = _encode_all(encode_target, [target for _, _, target in kept])
        for (index, source, target), source_row, target_row in zip(
            kept, source_ids, target_ids, strict=True
        ):
            if max_length > 0 and max(len(source_row), len(target_row)) > max_length:
                dropped.add("too_long")
                continue
            yield EncodedPair(index, source, target, source_row, target_row)


ENCODE_BLOCK = 512


def _encode_all(encoder: Encoder, sentences: list[str]) -> list[list[int]]:
    if hasattr(encoder, "encode_batch"):
        return [list(ids) for ids in encoder.encode_batch(sentences)]
    return [list(encoder(sentence)) for sentence in sentences]
