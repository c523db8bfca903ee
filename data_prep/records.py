"""Prepared data on disk: the record schemas, sharded TFRecords, checksums and the manifest.

This module is the one place that knows what a record holds. Writers (`clip_example`,
`text_example`) and parsers (`parse_clip`, `parse_text`) sit side by side:

Clip record (one tf.train.Example per lip-reading clip):
    id, text, speaker: bytes; frames: bytes (raw uint8 [T, H, W, C], C-order);
    num_frames, height, width, channels: int64; fps: float;
    roi_boxes: float [T*4] (x0, y0, x1, y1 in source pixels); roi_confidence: float [T];
    words: bytes list; word_start, word_end: int64 lists (frame indices; empty when unknown).
Text record (one per sentence pair):
    id, source, target: bytes (normalised text); source_ids, target_ids: int64 (subword ids).

Every shard is written to `<name>.tmp` and moved into place with `os.replace` once complete,
so an interrupted run never leaves a file that looks finished.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from data_prep.atomic import atomic_path, write_json_atomic
from data_prep.errors import NotPreparedError

TMP_SUFFIX = ".tmp"
MANIFEST_NAME = "manifest.json"
STRATEGIES = ("round_robin", "contiguous")

Record = bytes | tf.train.Example | Mapping[str, Any]


@dataclass(frozen=True)
class ShardInfo:
    """One finished shard: path relative to the output directory, size in examples, SHA-256."""

    path: str
    num_examples: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        """The manifest entry for this shard."""
        return asdict(self)


def int64_feature(values: int | Iterable[int]) -> tf.train.Feature:
    """An int64-list feature from one integer or a sequence of integers."""
    if isinstance(values, int | np.integer):
        values = [values]
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def float_feature(values: float | Iterable[float]) -> tf.train.Feature:
    """A float-list feature from one number or a sequence of numbers."""
    if isinstance(values, float | int | np.floating | np.integer):
        values = [values]
    return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))


def bytes_feature(values: bytes | str | Iterable[bytes | str]) -> tf.train.Feature:
    """A bytes-list feature from one value or a sequence; `str` values are UTF-8 encoded."""
    if isinstance(values, bytes | str):
        values = [values]
    encoded = [v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in values]
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=encoded))


def to_feature(value: Any) -> tf.train.Feature:
    """A feature inferred from a Python or NumPy value (bytes/str, ints, floats, or lists)."""
    if isinstance(value, tf.train.Feature):
        return value
    if isinstance(value, bytes | str):
        return bytes_feature(value)
    if isinstance(value, bool | int | np.integer):
        return int64_feature(int(value))
    if isinstance(value, float | np.floating):
        return float_feature(float(value))
    array = np.asarray(value)
    if array.dtype.kind in "biu":
        return int64_feature(array.reshape(-1).tolist())
    if array.dtype.kind == "f":
        return float_feature(array.reshape(-1).tolist())
    if array.dtype.kind in "SUO" and all(isinstance(v, bytes | str) for v in array.reshape(-1)):
        return bytes_feature(array.reshape(-1).tolist())
    raise TypeError(f"cannot make a tf.train.Feature from {type(value).__name__} ({value!r:.80})")


def make_example(features: Mapping[str, Any]) -> tf.train.Example:
    """A `tf.train.Example` from a dict of features or plain values (see `to_feature`)."""
    return tf.train.Example(
        features=tf.train.Features(feature={k: to_feature(v) for k, v in features.items()})
    )


def serialize(record: Record) -> bytes:
    """Serialised example bytes from bytes, a `tf.train.Example`, or a feature dict.

    Serialisation is deterministic (feature map in key order), so equal inputs give equal shards.
    """
    if isinstance(record, bytes):
        return record
    if isinstance(record, tf.train.Example):
        return record.SerializeToString(deterministic=True)
    if isinstance(record, Mapping):
        return make_example(record).SerializeToString(deterministic=True)
    raise TypeError(f"cannot write a record of type {type(record).__name__}")


def shard_name(split: str, index: int, num_shards: int) -> str:
    """The file name of shard `index` (0-based) of `num_shards` for `split`."""
    return f"{split}-{index:05d}-of-{num_shards:05d}.tfrecord"


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's contents."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(output_dir: str | os.PathLike, manifest: Mapping[str, Any]) -> Path:
    """Write `manifest.json` in `output_dir` atomically and return its path."""
    return write_json_atomic(Path(output_dir) / MANIFEST_NAME, dict(manifest))


def write_shards(
    records: Iterable[Record],
    output_dir: str | os.PathLike,
    split: str,
    num_shards: int,
    strategy: str = "round_robin",
    num_records: int | None = None,
    remove_stale: bool = True,
) -> list[ShardInfo]:
    """Write records into `num_shards` TFRecord files named `{split}-{i:05d}-of-{n:05d}.tfrecord`.

    "round_robin" sends record k to shard k mod n. "contiguous" fills shard 0 with the first
    ceil(num_records / n) records, then shard 1, and so on (the last shard takes any excess), so
    reading the shards in order gives the input order; it needs `num_records` (an estimate is
    fine). With `remove_stale`, other shard files of this split from earlier runs are deleted.
    """
    if num_shards < 1:
        raise ValueError(f"num_shards must be at least 1, got {num_shards}")
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown sharding strategy {strategy!r}; expected one of {STRATEGIES}")
    if strategy == "contiguous" and num_records is None:
        raise ValueError("contiguous sharding needs num_records (the expected record count)")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    names = [shard_name(split, i, num_shards) for i in range(num_shards)]
    block = max(1, math.ceil((num_records or 0) / num_shards))
    counts = [0] * num_shards
    # Writers close before their files are moved into place (the stack unwinds in reverse).
    with contextlib.ExitStack() as stack:
        tmp_paths = [stack.enter_context(atomic_path(output_dir / name)) for name in names]
        writers = [stack.enter_context(tf.io.TFRecordWriter(str(p))) for p in tmp_paths]
        for k, record in enumerate(records):
            if strategy == "round_robin":
                shard = k % num_shards
            else:
                shard = min(k // block, num_shards - 1)
            writers[shard].write(serialize(record))
            counts[shard] += 1
    shards = [
        ShardInfo(path=name, num_examples=count, sha256=sha256_file(output_dir / name))
        for name, count in zip(names, counts, strict=True)
    ]
    if remove_stale:
        pattern = re.compile(rf"{re.escape(split)}-\d{{5}}-of-\d{{5}}\.tfrecord")
        for path in output_dir.iterdir():
            if pattern.fullmatch(path.name) and path.name not in names:
                path.unlink()
    return shards


def read_manifest(prepared_dir: str | os.PathLike, task: str) -> dict:
    """manifest.json of a prepared `task` dataset; NotPreparedError naming the path otherwise."""
    path = Path(prepared_dir) / MANIFEST_NAME
    if not path.is_file():
        raise NotPreparedError(
            f"{path} not found: prepare the data first (lipseq prepare --config=<config>), or "
            "point at a prepared directory (--config.data.prepared_dir to train, "
            "--prepared_dir to evaluate)"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise NotPreparedError(f"{path} is not a readable manifest: {error}") from None
    if manifest.get("task", "translation") != task:
        raise NotPreparedError(f"{path} is a {manifest.get('task')!r} dataset, not {task!r}")
    return manifest


def split_files(prepared_dir: str | os.PathLike, manifest: dict, split: str) -> list[str]:
    """Shard paths of `split`, as listed in the manifest."""
    if split not in manifest["splits"]:
        raise NotPreparedError(
            f"split {split!r} not in {Path(prepared_dir) / MANIFEST_NAME}; "
            f"have {sorted(manifest['splits'])}"
        )
    return [str(Path(prepared_dir) / f["path"]) for f in manifest["splits"][split]["files"]]


# --- Clip records (lip reading) ----------------------------------------------------------

CLIP_FEATURES = {
    "id": tf.io.FixedLenFeature([], tf.string),
    "text": tf.io.FixedLenFeature([], tf.string),
    "speaker": tf.io.FixedLenFeature([], tf.string, default_value=""),
    "frames": tf.io.FixedLenFeature([], tf.string),
    "num_frames": tf.io.FixedLenFeature([], tf.int64),
    "height": tf.io.FixedLenFeature([], tf.int64),
    "width": tf.io.FixedLenFeature([], tf.int64),
    "channels": tf.io.FixedLenFeature([], tf.int64),
    "fps": tf.io.FixedLenFeature([], tf.float32, default_value=0.0),
    "roi_boxes": tf.io.VarLenFeature(tf.float32),
    "roi_confidence": tf.io.VarLenFeature(tf.float32),
    "words": tf.io.VarLenFeature(tf.string),
    "word_start": tf.io.VarLenFeature(tf.int64),
    "word_end": tf.io.VarLenFeature(tf.int64),
    # Empty without an audio track; int16 mono at sample_rate, sample 0 at frame 0.
    "audio": tf.io.FixedLenFeature([], tf.string, default_value=b""),
    "sample_rate": tf.io.FixedLenFeature([], tf.int64, default_value=0),
}


def clip_example(
    clip_id: str,
    text: str,
    frames: np.ndarray,
    *,
    speaker: str = "",
    fps: float = 0.0,
    roi_boxes: np.ndarray | None = None,
    roi_confidence: np.ndarray | None = None,
    words: Iterable[tuple[int, int, str]] = (),
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
) -> dict[str, tf.train.Feature]:
    """The features of one clip record; frames uint8 [T, H, W, C], words (start, end, word),
    audio int16 [S] aligned to the frames (None: the clip has no audio track)."""
    frames = np.ascontiguousarray(frames, np.uint8)
    words = list(words)
    boxes = np.zeros((0, 4), np.float32) if roi_boxes is None else np.asarray(roi_boxes)
    confidence = np.zeros(0, np.float32) if roi_confidence is None else roi_confidence
    return {
        "id": bytes_feature(clip_id),
        "text": bytes_feature(text),
        "speaker": bytes_feature(speaker),
        "frames": bytes_feature(frames.tobytes()),
        "num_frames": int64_feature(frames.shape[0]),
        "height": int64_feature(frames.shape[1]),
        "width": int64_feature(frames.shape[2]),
        "channels": int64_feature(frames.shape[3]),
        "fps": float_feature(float(fps)),
        "roi_boxes": float_feature(boxes.reshape(-1).tolist()),
        "roi_confidence": float_feature(np.asarray(confidence).tolist()),
        "words": bytes_feature([w for _, _, w in words]),
        "word_start": int64_feature([s for s, _, _ in words]),
        "word_end": int64_feature([e for _, e, _ in words]),
        "audio": bytes_feature(
            b"" if audio is None else np.ascontiguousarray(audio, "<i2").tobytes()
        ),
        "sample_rate": int64_feature(0 if audio is None else sample_rate),
    }


def parse_clip(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """One clip record -> id, text, speaker, fps, frames uint8 [T, H, W, C], roi_boxes [T, 4],
    roi_confidence [T], words [W], word_start / word_end int32 [W], audio int16 [S] (empty
    without a track) and sample_rate (0 without) (unbatched)."""
    example = tf.io.parse_single_example(serialized, CLIP_FEATURES)
    shape = tf.cast(
        tf.stack([example["num_frames"], example["height"], example["width"], example["channels"]]),
        tf.int32,
    )
    frames = tf.reshape(tf.io.decode_raw(example["frames"], tf.uint8), shape)
    return {
        "id": example["id"],
        "text": example["text"],
        "speaker": example["speaker"],
        "fps": example["fps"],
        "frames": frames,
        "roi_boxes": tf.reshape(tf.sparse.to_dense(example["roi_boxes"]), [-1, 4]),
        "roi_confidence": tf.sparse.to_dense(example["roi_confidence"]),
        "words": tf.sparse.to_dense(example["words"]),
        "word_start": tf.cast(tf.sparse.to_dense(example["word_start"]), tf.int32),
        "word_end": tf.cast(tf.sparse.to_dense(example["word_end"]), tf.int32),
        "audio": tf.io.decode_raw(example["audio"], tf.int16, little_endian=True),
        "sample_rate": tf.cast(example["sample_rate"], tf.int32),
    }


# --- Text records (translation) ----------------------------------------------------------

TEXT_FEATURES = {
    "id": tf.io.FixedLenFeature([], tf.string),
    "source": tf.io.FixedLenFeature([], tf.string),
    "target": tf.io.FixedLenFeature([], tf.string),
    "source_ids": tf.io.VarLenFeature(tf.int64),
    "target_ids": tf.io.VarLenFeature(tf.int64),
}


def text_example(
    example_id: str, source: str, target: str, source_ids: list[int], target_ids: list[int]
) -> dict[str, tf.train.Feature]:
    """The features of one sentence-pair record."""
    return {
        "id": bytes_feature(example_id),
        "source": bytes_feature(source),
        "target": bytes_feature(target),
        "source_ids": int64_feature(source_ids),
        "target_ids": int64_feature(target_ids),
    }


def parse_text(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
    """One text record -> id, source, target strings and int32 source_ids [S], target_ids [T]."""
    example = tf.io.parse_single_example(serialized, TEXT_FEATURES)
    return {
        "id": example["id"],
        "source": example["source"],
        "target": example["target"],
        "source_ids": tf.cast(tf.sparse.to_dense(example["source_ids"]), tf.int32),
        "target_ids": tf.cast(tf.sparse.to_dense(example["target_ids"]), tf.int32),
    }
