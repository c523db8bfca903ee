"""Long videos: streamed, cut into overlapping windows, each window lip-read, the words stitched.

    result = transcribe_long("lecture.mp4", VideoTranscriber("grid_s1"))

The video is decoded as a stream (data_prep.video.stream_frames), scaled down to at most
`max_side` pixels, so memory stays flat whatever its length or resolution. Each window of
`window_seconds` (the length of the clips the model learnt from) overlaps the next by
`overlap_seconds`, so no word is read only from a cut-off mouth. A window owns the middle of
its span (its first and last half-overlap belong to its neighbours) and keeps the words whose
centre falls there (every mode has word times: pipelines/inference/words.py). Inside a
window the face is tracked as in preparation; stretches where it was lost become gaps in the
transcript, and the rest is read in pieces. The command, batch transcription and the HTTP
service all come here for a video that `is_long`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data_prep.lipreading import ClipSkipped, track_and_crop
from data_prep.video import VideoError, VideoSource, open_video, stream_frames
from pipelines.inference.words import timed_words

# A video longer than this, or with frames larger than full HD, goes the long-video way.
LONG_VIDEO_SECONDS = 20.0
LARGE_FRAME_PIXELS = 1920 * 1080


@dataclass(frozen=True)
class Windowing:
    """How a long video is cut: window and overlap (seconds), decode size, shortest piece."""

    window_seconds: float = 3.0
    overlap_seconds: float = 1.0
    max_side: int = 640
    min_piece_frames: int = 8

    def shortest_piece(self, export) -> int:
        """The fewest frames of face read as a piece: a shorter one, under any sentence the
        export can say (its shortest_frames), would only be guessed at."""
        return max(self.min_piece_frames, export.shortest_frames)


def is_long(video: str | Path | VideoSource) -> bool:
    """True for videos that should be streamed: long, of unknown length, or very large frames
    (from the header alone; nothing is decoded)."""

    try:
        with open_video(video) as source:
            duration, pixels = source.duration_s, source.width * source.height
    except VideoError:
        return False  # the whole-clip path reports the reason
    return duration is None or duration > LONG_VIDEO_SECONDS or pixels > LARGE_FRAME_PIXELS


def windows(
    frames: Iterable[tuple[int, np.ndarray]], size: int, hop: int
) -> Iterator[tuple[int, np.ndarray, bool]]:
    """(first index, frames [<=size, H, W, C], is last) every `hop` frames."""
    buffer: list[np.ndarray] = []
    start = 0
    ready = None  # held back one step, to know whether it is the last
    for _, frame in frames:
        buffer.append(frame)
        if len(buffer) == size:
            if ready is not None:
                yield (*ready, False)
            ready = (start, np.stack(buffer))
            buffer = buffer[hop:]
            start += hop
    fresh = buffer and (start == 0 or len(buffer) > size - hop)  # frames no window has had
    tail = (start, np.stack(buffer)) if fresh else None
    if ready is not None:
        yield (*ready, tail is None)
    if tail is not None:
        yield (*tail, True)


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True in a bool array."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def _too_long(video, longest: int, fps: float) -> ClipSkipped:
    name = getattr(video, "path", video)
    detail = f"longer than the limit of {longest / fps:g} s"
    return ClipSkipped(Path(str(name)).stem, str(name), "too_long", detail)


def read_run(transcriber, crops: np.ndarray, fps: float, seconds: dict) -> list[dict]:
    """The words of one run of usable crops, timed from its first frame; `seconds` gets the
    time of the model and of the word timing."""
    began = time.monotonic()
    out = transcriber(crops[None], np.array([len(crops)], np.int32))
    timed = time.monotonic()
    text = np.asarray(out["text"])[0].decode()
    alignment = np.asarray(out["alignments"])[0]
    words = timed_words(transcriber.export, text, alignment, crops, fps) or []
    seconds["model"] += timed - began
    seconds["words"] += time.monotonic() - timed
    return words


def _append_in_order(words: list[dict], kept: list[dict], offset: float) -> None:
    """Adds a piece's words to the video's, moved to the video's clock."""
    for word in kept:
        word["start"] = round(word["start"] + offset, 3)
        word["end"] = round(word["end"] + offset, 3)
        # A window's first word may spread its attention back into the overlap; words are
        # spoken in order, so it starts no earlier than the one before.
        if words and word["start"] < words[-1]["start"]:
            word["start"] = words[-1]["start"]
            word["end"] = max(word["end"], word["start"])
        words.append(word)


def transcribe_long(
    video: str | Path | VideoSource,
    transcriber,
    windowing: Windowing | None = None,
    longest: int | None = None,
) -> dict:
    """Text, timed words, pieces and gaps of a video of any length, read window by window.

    `transcriber` has the export's `settings`, its `export` and is called on batched crops
    and lengths (VideoTranscriber); a video of more than `longest` frames is refused as
    ClipSkipped("too_long") as soon as the stream passes that length.
    """

    windowing = windowing or Windowing()
    settings = transcriber.settings
    fps = float(settings.target_fps)
    size = max(1, int(round(windowing.window_seconds * fps)))
    overlap = int(round(windowing.overlap_seconds * fps))
    hop = max(1, size - overlap)
    words: list[dict] = []
    pieces: list[dict] = []
    lost = []
    total = 0
    started = time.monotonic()
    seconds = {"prepare": 0.0, "model": 0.0, "words": 0.0}
    shortest_piece = windowing.shortest_piece(transcriber.export)
    stream = stream_frames(video, fps, windowing.max_side)
    for start, frames, last in windows(stream, size, hop):
        total = max(total, start + len(frames))
        if longest is not None and total > longest:
            raise _too_long(video, longest, fps)
        # Frames this window speaks for: the middle of its span, the edges go to neighbours.
        owned_from = 0 if start == 0 else overlap // 2
        owned_to = len(frames) if last else len(frames) - (overlap - overlap // 2)
        began = time.monotonic()
        crops, track = track_and_crop(frames, settings)
        seconds["prepare"] += time.monotonic() - began
        usable = np.isfinite(track.mouth_boxes).all(axis=1)
        lost.extend(start + t for t in range(owned_from, owned_to) if not usable[t])
        for first, end in runs(usable):
            if end - first < shortest_piece:
                lost.extend(start + t for t in range(max(first, owned_from), min(end, owned_to)))
                continue
            offset = (start + first) / fps
            kept = [
                w
                for w in read_run(transcriber, crops[first:end], fps, seconds)
                if owned_from <= first + (w["start"] + w["end"]) / 2 * fps < owned_to
            ]
            _append_in_order(words, kept, offset)
            if kept:
                pieces.append(
                    {
                        "start": round(offset, 3),
                        "end": round((start + end) / fps, 3),
                        "text": " ".join(w["word"] for w in kept),
                        "roi_confidence": round(float(track.confidence[first:end].mean()), 3),
                    }
                )
    gaps = [
        {"start": round(a / fps, 3), "end": round(b / fps, 3)}
        for a, b in runs(np.isin(np.arange(total), np.array(sorted(set(lost)), int)))
    ]
    seconds["total"] = time.monotonic() - started
    return {
        "text": " ".join(w["word"] for w in words),
        "words": words,
        "pieces": pieces,
        "gaps": gaps,
        "num_frames": total,
        "fps": fps,
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
    }
