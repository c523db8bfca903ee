"""Sharded TFRecord writing with atomic shards, checksums and a JSON manifest.

Generic over the payload: text pairs and video clips both go through `write_shards`.
Every file is written to `<name>.tmp` and moved into place with `os.replace` once complete,
so an interrupted run never leaves a file that looks finished.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import tensorflow as tf

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


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open `path.tmp` for writing and move it onto `path` only if the block succeeds."""
    path = Path(path)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    try:
        with open(tmp, mode, **kwargs) as f:
            yield f
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: str | os.PathLike, data: Any) -> Path:
    """Write `data` as indented UTF-8 JSON to `path` atomically."""
    path = Path(path)
    with atomic_open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, ensure_ascii=False)
        f.write("\n")
    return path


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
    tmp_paths = [output_dir / (name + TMP_SUFFIX) for name in names]
    block = max(1, math.ceil((num_records or 0) / num_shards))
    counts = [0] * num_shards
    writers: list[tf.io.TFRecordWriter] = []
    try:
        writers = [tf.io.TFRecordWriter(str(p)) for p in tmp_paths]
        for k, record in enumerate(records):
            if strategy == "round_robin":
                shard = k % num_shards
            else:
                shard = min(k // block, num_shards - 1)
            writers[shard].write(serialize(record))
            counts[shard] += 1
        for writer in writers:
            writer.close()
        shards = []
        for name, tmp, count in zip(names, tmp_paths, counts, strict=True):
            checksum = sha256_file(tmp)
            os.replace(tmp, output_dir / name)
            shards.append(ShardInfo(path=name, num_examples=count, sha256=checksum))
    finally:
        for writer in writers:
            writer.close()
        for tmp in tmp_paths:
            tmp.unlink(missing_ok=True)
    if remove_stale:
        pattern = re.compile(rf"{re.escape(split)}-\d{{5}}-of-\d{{5}}\.tfrecord")
        for path in output_dir.iterdir():
            if pattern.fullmatch(path.name) and path.name not in names:
                path.unlink()
    return shards
