"""Word times from attention alignments, and subtitles (SRT, WebVTT) from timed words."""

from __future__ import annotations

import numpy as np

SUBTITLE_FORMATS = ("srt", "vtt")


def word_times(text: str, alignment: np.ndarray, fps: float, num_frames: int) -> list[dict] | None:
    """Each word's start and end (seconds) from attention weights [output steps, frames].

    A character is placed at the frame its attention weights centre on (their mean); a word
    spans its characters' frames, one frame wide at least, and starts no earlier than the
    word before it (the words are spoken in order even where attention wanders). None
    without weights (CTC modes).
    """
    if not len(alignment) or not text:
        return None
    frames = np.arange(alignment.shape[1], dtype=np.float64)
    words, step, previous_start = [], 0, 0.0
    for word in text.split(" "):
        centres = []
        for _ in word:
            if step < len(alignment):
                weights = alignment[step].astype(np.float64)
                centres.append(float(weights @ frames / max(weights.sum(), 1e-9)))
            step += 1
        step += 1  # the space
        if word and centres:
            start = min(max(min(centres), previous_start), float(num_frames) - 1.0)
            end = min(max(max(centres), start) + 1.0, float(num_frames))
            previous_start = start
            words.append({"word": word, "start": round(start / fps, 3), "end": round(end / fps, 3)})
    return words


def _timestamp(seconds: float, separator: str) -> str:
    millis = int(round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}{separator}{rest % 1000:03d}"


def subtitles(words: list[dict], kind: str, words_per_cue: int = 7) -> str:
    """SRT or WebVTT text: cues of up to `words_per_cue` words at their spoken times."""
    if kind not in SUBTITLE_FORMATS:
        raise ValueError(f"unknown subtitle format {kind!r}; known: {', '.join(SUBTITLE_FORMATS)}")
    separator = "," if kind == "srt" else "."
    blocks = ["WEBVTT\n"] if kind == "vtt" else []
    for number, first in enumerate(range(0, len(words), words_per_cue), 1):
        cue = words[first : first + words_per_cue]
        start = _timestamp(cue[0]["start"], separator)
        end = _timestamp(cue[-1]["end"], separator)
        text = " ".join(w["word"] for w in cue)
        blocks.append(
            f"{number}\n{start} --> {end}\n{text}\n"
            if kind == "srt"
            else f"{start} --> {end}\n{text}\n"
        )
    return "\n".join(blocks)
