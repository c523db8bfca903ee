"""Atomic file output: everything the project writes appears whole or not at all.

Each writer writes to a temporary name in the target's directory and moves it into place
with `os.replace` once complete, so a crash, a kill or a full disk never leaves a file (or
an export directory) that looks finished.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yields a temporary path beside `path`; moves it onto `path` only if the block succeeds.

    `suffix` ends the temporary name, for writers that infer the format from it (matplotlib:
    suffix=".png").
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """`open` for writing whose file appears at `path` only if the block succeeds."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as f:
        yield f


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Writes UTF-8 text to `path` atomically (no newline translation)."""
    with atomic_open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    return Path(path)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Writes bytes to `path` atomically."""
    with atomic_open(path, "wb") as f:
        f.write(data)
    return Path(path)


def write_json_atomic(path: str | os.PathLike, data: Any, **dump_kwargs: Any) -> Path:
    """Writes `data` as indented UTF-8 JSON to `path` atomically."""
    dump_kwargs = {"indent": 2, "ensure_ascii": False, **dump_kwargs}
    return write_text_atomic(path, json.dumps(data, **dump_kwargs) + "\n")


def publish(finished: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Moves a finished file written elsewhere in the same directory onto its final name
    (for tools that pick their own output names, such as SentencePiece's trainer)."""
    os.replace(finished, target)
    return Path(target)


def replace_directory(tmp: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Moves the finished directory `tmp` onto `target`, replacing an older one if present."""
    tmp, target = Path(tmp), Path(target)
    backup = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        os.replace(target, backup)
    os.replace(tmp, target)
    shutil.rmtree(backup, ignore_errors=True)
    return target


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike) -> Iterator[Path]:
    """Yields a fresh temporary directory beside `target`; it replaces `target` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        replace_directory(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
