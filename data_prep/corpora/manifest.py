"""Clip lists in a manifest file: CSV/TSV with a header, or JSON Lines.

Required fields: `video` (a path, relative ones resolve against the manifest's directory) and
`transcript`; optional: `id` (default: the video's file name without suffix) and `speaker`.
A row that cannot be read (malformed JSON, not an object, a missing or empty `video`, no
`transcript`, the wrong number of CSV fields) becomes a ClipSpec with the problem
`bad_manifest_row:<line>` (1-based line number in the file); a repeated id gets `duplicate_id`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from data_prep.corpora.transcripts import CHARSET, ClipSpec, make_clip_spec
from data_prep.errors import CorpusLayoutError, CorpusNotFoundError

REQUIRED_FIELDS = ("video", "transcript")
CSV_SUFFIXES = {".csv": ",", ".tsv": "\t"}
JSONL_SUFFIXES = (".jsonl", ".ndjson")


def _bad_row(line: int, video: str | None, base: Path) -> ClipSpec:
    """A ClipSpec standing for an unreadable row."""
    return ClipSpec(
        id=f"line{line}",
        video_path=base / video if video else Path(),
        transcript="",
        raw_transcript="",
        problems=[f"bad_manifest_row:{line}"],
    )


def _row_clip(row: dict, line: int, base: Path, charset: Iterable[str]) -> ClipSpec:
    """A ClipSpec from one parsed row, or a bad-row ClipSpec if fields are missing."""
    video = row.get("video")
    transcript = row.get("transcript")
    if not isinstance(video, str) or not video.strip() or not isinstance(transcript, str):
        return _bad_row(line, video if isinstance(video, str) else None, base)
    video_path = base / Path(video.strip()).expanduser()
    clip_id = row.get("id")
    clip_id = str(clip_id).strip() if clip_id not in (None, "") else video_path.stem
    speaker = row.get("speaker")
    return make_clip_spec(
        clip_id,
        video_path,
        transcript,
        speaker=str(speaker) if speaker not in (None, "") else None,
        charset=charset,
    )


def _csv_rows(path: Path, delimiter: str) -> Iterator[tuple[int, dict | None]]:
    """(line, row) per CSV record; row is None when its field count is wrong."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        header = reader.fieldnames or []
        missing = [name for name in REQUIRED_FIELDS if name not in header]
        if missing:
            raise CorpusLayoutError(
                f"manifest {path} lacks the column(s) {missing}; header: {header}"
            )
        for row in reader:
            line = reader.line_num
            if None in row or any(value is None for value in row.values()):
                yield line, None
            else:
                yield line, row


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict | None]]:
    """(line, object) per non-blank JSON line; None when it is not a JSON object."""
    with path.open(encoding="utf-8-sig") as f:
        for line, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                yield line, None
                continue
            yield line, value if isinstance(value, dict) else None


def iter_manifest(path: str | Path, charset: Iterable[str] = CHARSET) -> Iterator[ClipSpec]:
    """Yield one ClipSpec per row of a .csv/.tsv or .jsonl/.ndjson manifest, in file order."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CorpusNotFoundError(f"manifest {path} does not exist or is not a file")
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        rows = _csv_rows(path, CSV_SUFFIXES[suffix])
    elif suffix in JSONL_SUFFIXES:
        rows = _jsonl_rows(path)
    else:
        raise CorpusLayoutError(
            f"manifest {path}: unknown format {path.suffix!r}; "
            f"use one of {sorted(CSV_SUFFIXES) + list(JSONL_SUFFIXES)}"
        )
    base = path.parent.resolve()
    seen: set[str] = set()
    for line, row in rows:
        clip = _bad_row(line, None, base) if row is None else _row_clip(row, line, base, charset)
        if not any(p.startswith("bad_manifest_row:") for p in clip.problems):
            if clip.id in seen:
                clip.problems.append("duplicate_id")
            seen.add(clip.id)
        yield clip
