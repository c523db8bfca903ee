"""Batch transcription: many raw videos, one model load, preparation overlapped with the model.

    results = transcribe_many(videos, export_dir, output="out.jsonl", subtitles="srt")

Worker processes prepare the videos (decode, face, mouth crops) while the main process runs
the model on the ones already prepared, in order. Each video gives one JSON line: text, score,
words with start and end seconds (in every mode: pipelines/inference/words.py), ROI
confidence, or the reason it was skipped; a long video (long_video.is_long) is read in
overlapping windows and gives pieces and gaps too. The JSON Lines file and each subtitle file
appear whole or not at all.
"""

from __future__ import annotations

import csv
import glob
import json
import multiprocessing
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from data_prep.atomic import write_text_atomic
from data_prep.errors import LipseqError
from data_prep.lipreading import (
    ClipSkipped,
    LipreadingSettings,
    open_clip,
    prepare_video,
    worker_init,
)
from data_prep.video import VideoError
from pipelines.inference.long_video import is_long, transcribe_long
from pipelines.inference.words import SUBTITLE_FORMATS, subtitles, timed_words

VIDEO_SUFFIXES = (".mp4", ".mpg", ".mpeg", ".avi", ".mov", ".mkv", ".webm", ".m4v")
LONG_VIDEO_KEYS = ("text", "words", "pieces", "gaps", "num_frames", "fps")


class NoVideosError(LipseqError, ValueError):
    """The inputs named no video file."""


def expand_inputs(items: Iterable[str]) -> list[Path]:
    """Video paths from files, globs, directories (searched recursively) and manifests.

    A manifest is a .txt file with one video path a line, or a .csv/.jsonl file with a
    `video` column; relative paths are taken from the manifest's folder. Order is kept and
    repeats are dropped.
    """
    videos: list[Path] = []
    for item in items:
        path = Path(item)
        if any(ch in item for ch in "*?["):
            videos += [Path(p) for p in sorted(glob.glob(item, recursive=True))]
        elif path.is_dir():
            videos += sorted(p for p in path.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
        elif path.suffix.lower() in (".txt", ".csv", ".jsonl"):
            videos += _manifest_videos(path)
        else:
            videos.append(path)  # a missing file is reported as that video's skip reason
    unique = list(dict.fromkeys(videos))
    if not unique:
        raise NoVideosError(f"no video files in {', '.join(items) or 'the inputs'}")
    return unique


def _manifest_videos(path: Path) -> list[Path]:
    if not path.is_file():
        raise NoVideosError(f"{path}: no such manifest file")
    lines = path.read_text().splitlines()
    if path.suffix.lower() == ".txt":
        names = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    elif path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(lines))
        if rows and "video" not in rows[0]:
            raise NoVideosError(f"{path}: a CSV manifest needs a 'video' column")
        names = [row["video"] for row in rows]
    else:
        names = []
        for number, line in enumerate(lines, 1):
            if line.strip():
                try:
                    names.append(json.loads(line)["video"])
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise NoVideosError(
                        f'{path}: line {number} is not a JSON object with a "video" key'
                    ) from None
    return [p if p.is_absolute() else path.parent / p for p in map(Path, names)]


def _prepare(task: tuple[str, dict, int]) -> dict:
    """Worker: one video -> crops and ROI confidence, or the reason it cannot be prepared
    (too_short under `shortest`, the fewest frames the model can read)."""
    path, settings, shortest = task
    started = time.monotonic()
    try:
        with open_clip(path) as source:
            if is_long(source):
                return {"video": path, "long": True}  # streamed by the main process
            prepared = prepare_video(source, LipreadingSettings(**settings), shortest=shortest)
    except ClipSkipped as skipped:
        return {"video": path, "skipped": skipped.reason, "detail": skipped.detail}
    return {
        "video": path,
        "crops": prepared.crops,
        "fps": float(prepared.clip.fps),
        "roi_confidence": prepared.track.confidence.astype(np.float32),
        "prepare_seconds": time.monotonic() - started,
    }


def _prepared(videos: list[Path], settings: dict, shortest: int, workers: int) -> Iterator[dict]:
    tasks = [(str(v), settings, shortest) for v in videos]
    if workers <= 1:
        yield from map(_prepare, tasks)
        return
    # spawn: workers never inherit TensorFlow's threads from this process.
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=worker_init) as pool:
        yield from pool.imap(_prepare, tasks)


def transcribe_many(
    inputs: Iterable[str],
    export_dir: str | Path,
    output: str | Path,
    *,
    mode: str | None = None,
    grammar: bool = False,
    workers: int = 1,
    subtitle_format: str | None = None,
) -> dict:
    """Transcribes every video named by `inputs`; writes JSON Lines (and subtitles); summary."""
    # Late: TensorFlow stays out of the spawned preparation workers, which import this module.
    from pipelines.inference.lipreading import VideoTranscriber

    if subtitle_format and subtitle_format not in SUBTITLE_FORMATS:
        raise ValueError(f"unknown subtitle format {subtitle_format!r}")
    videos = expand_inputs(inputs)
    transcriber = VideoTranscriber(export_dir, mode, grammar)
    settings = transcriber.settings.to_dict()
    output = Path(output)
    lines, skipped, started = [], 0, time.monotonic()
    bar = tqdm(total=len(videos), unit="video", dynamic_ncols=True, mininterval=1.0)
    shortest = transcriber.export.shortest_frames
    for prepared in _prepared(videos, settings, shortest, workers):
        record = {"video": prepared["video"]}
        if "skipped" in prepared:
            record.update(skipped=prepared["skipped"], detail=prepared["detail"])
            skipped += 1
        elif prepared.get("long"):
            try:
                result = transcribe_long(prepared["video"], transcriber)
            except VideoError as error:
                record.update(skipped=error.reason, detail=str(error))
                skipped += 1
            else:
                record.update({k: result[k] for k in LONG_VIDEO_KEYS})
        else:
            crops = prepared["crops"]
            out = transcriber(crops[None], np.array([len(crops)], np.int32))
            text = out["text"].numpy()[0].decode()
            alignment = out["alignments"].numpy()[0]
            words = timed_words(transcriber.export, text, alignment, crops, prepared["fps"])
            confidence = prepared["roi_confidence"]
            record.update(
                text=text,
                score=round(float(out["scores"].numpy()[0]), 4),
                words=words,
                num_frames=len(crops),
                fps=prepared["fps"],
                roi_confidence={
                    "mean": round(float(np.nanmean(confidence)), 3),
                    "min": round(float(np.nanmin(confidence)), 3),
                },
            )
        if subtitle_format and record.get("words"):
            path = output.parent / f"{Path(prepared['video']).stem}.{subtitle_format}"
            write_text_atomic(path, subtitles(record["words"], subtitle_format))
            record["subtitles"] = str(path)
        lines.append(json.dumps(record))
        bar.set_postfix(skipped=skipped, refresh=False)
        bar.update(1)
    bar.close()
    output.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(output, "\n".join(lines) + "\n")
    seconds = time.monotonic() - started
    return {
        "videos": len(videos),
        "transcribed": len(videos) - skipped,
        "skipped": skipped,
        "seconds": round(seconds, 2),
        "videos_per_second": round(len(videos) / max(seconds, 1e-9), 2),
        "output": str(output),
    }
